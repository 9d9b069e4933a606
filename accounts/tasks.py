"""Periodic housekeeping for accounts."""

from celery import shared_task

from . import services


@shared_task(name="accounts.tasks.purge_expired_sessions")
def purge_expired_sessions() -> int:
    """Forget sessions whose refresh tokens have all expired anyway."""
    return services.sessions_purge()
