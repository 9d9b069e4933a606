"""Periodic housekeeping for accounts."""

from celery import shared_task

from . import passwords, services


@shared_task(name="accounts.tasks.purge_expired_sessions")
def purge_expired_sessions() -> int:
    """Forget sessions whose refresh tokens have all expired anyway."""
    return services.sessions_purge()


@shared_task(
    name="accounts.tasks.send_password_code",
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=3600,
    max_retries=30,
)
def send_password_code(user_id: int) -> bool:
    """Email a code to set a password (``accounts.passwords``); queued on commit."""
    return passwords.password_code_send(user_id=user_id)
