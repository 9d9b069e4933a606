"""Periodic housekeeping for accounts, and the emails that carry codes."""

from celery import shared_task

from . import passwords, services, verification


@shared_task(name="accounts.tasks.purge_expired_sessions")
def purge_expired_sessions() -> int:
    """Forget sessions whose refresh tokens have all expired anyway."""
    return services.sessions_purge()


_EMAIL_RETRIES = {
    "acks_late": True,
    "autoretry_for": (OSError,),
    "retry_backoff": 30,
    "retry_backoff_max": 3600,
    "max_retries": 30,
}


@shared_task(name="accounts.tasks.send_password_code", **_EMAIL_RETRIES)
def send_password_code(user_id: int) -> bool:
    """Email an invited account the code to set its first password (``accounts.passwords``); queued on commit."""
    return passwords.password_code_send(user_id=user_id)


@shared_task(name="accounts.tasks.send_password_reset", **_EMAIL_RETRIES)
def send_password_reset(email: str) -> bool:
    """Email a reset code if an account has this address.

    Takes the address, not an id: the request queues it for any address, so that it does the
    same work whether or not an account exists (``passwords.password_reset_request``)."""
    return passwords.password_reset_send(email=email)


@shared_task(name="accounts.tasks.send_email_verification", **_EMAIL_RETRIES)
def send_email_verification(user_id: int) -> bool:
    """Email a new account the code that verifies its address; queued on commit of the registration."""
    return verification.email_verification_send(user_id=user_id)


@shared_task(name="accounts.tasks.resend_email_verification", **_EMAIL_RETRIES)
def resend_email_verification(email: str) -> bool:
    """Email a fresh verification code if an unverified account has this address (by address: see
    ``send_password_reset``)."""
    return verification.email_verification_resend(email=email)
