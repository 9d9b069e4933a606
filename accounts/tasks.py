"""Periodic housekeeping for accounts."""

from celery import shared_task
from django.core.management import call_command


@shared_task(name="accounts.tasks.flush_expired_tokens")
def flush_expired_tokens() -> None:
    """Drop outstanding and blacklisted refresh tokens that have expired anyway."""
    call_command("flushexpiredtokens")
