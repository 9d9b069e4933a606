"""Periodic order housekeeping. Tasks call one service and are safe to run twice."""

from celery import shared_task

from . import services


@shared_task(name="orders.tasks.expire_reservations", acks_late=True)
def expire_reservations() -> int:
    """Beat runs this every 30 s; purchases also expire due holds inline when stock is short."""
    return services.expire_due_holds()


@shared_task(name="orders.tasks.purge_idempotency_records")
def purge_idempotency_records() -> int:
    return services.purge_expired_idempotency_records()
