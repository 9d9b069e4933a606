"""Order background work. Tasks take ids, call one service and are safe to run twice."""

import logging
import smtplib

from celery import shared_task

from . import confirmation, services

logger = logging.getLogger(__name__)


@shared_task(name="orders.tasks.expire_reservations", acks_late=True)
def expire_reservations() -> int:
    """Beat runs this every 30 s; purchases also expire due holds inline when stock is short."""
    return services.expire_due_holds()


@shared_task(name="orders.tasks.purge_idempotency_records")
def purge_idempotency_records() -> int:
    return services.purge_expired_idempotency_records()


@shared_task(
    bind=True,
    name="orders.tasks.send_order_confirmation",
    acks_late=True,
    # A mail server that is down, slow or says "try later" (4xx) is worth retrying for about a day:
    # 30 s, 1, 2, 4 ... minutes, capped at an hour, with jitter so a recovering server is not stampeded.
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    # Every recipient refused: the address is wrong, and asking again will not change that.
    dont_autoretry_for=(smtplib.SMTPRecipientsRefused,),
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=30,
)
def send_order_confirmation(self, order_id: str) -> bool:
    """Queued on commit by ``confirmation.order_confirmation_queue``; sends at most one email per order."""
    if self.request.retries:
        logger.info("Order %s: confirmation, attempt %d", order_id, self.request.retries + 1)
    return confirmation.order_confirmation_send(order_id=order_id)
