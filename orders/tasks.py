"""Order background work: housekeeping, emails and refunds. Tasks take ids, call one service and
are safe to run twice."""

import logging
import secrets
import smtplib

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from kombu.exceptions import KombuError

from . import confirmation, services, waitlist
from . import queue as purchase_queue
from .errors import Busy
from .payments import services as payment_services
from .payments.base import ProviderError

logger = logging.getLogger(__name__)


@shared_task(name="orders.tasks.expire_reservations", acks_late=True)
def expire_reservations() -> int:
    """Beat runs this every 30 s; purchases also expire due holds inline when stock is short."""
    return services.expire_due_holds()


@shared_task(name="orders.tasks.drain_purchase_queue", bind=True, acks_late=True)
def drain_purchase_queue(self, event_id: int, slot: int = 0) -> int:
    """Place a high-demand event's queued purchases in order (``orders.queue``). Kicked on enqueue
    and by the sweep; safe to run twice or side by side: requests are taken with ``SKIP LOCKED``
    and a killed run's batch rolls back whole, so ``acks_late`` redelivery places nothing twice."""
    return purchase_queue.drain_in_slot(event_id=event_id, slot=slot, eager=bool(self.request.is_eager))


@shared_task(name="orders.tasks.sweep_purchase_queues", acks_late=True)
def sweep_purchase_queues() -> int:
    """Beat's safety net for the queued on-sale: every line has a drainer; stale requests expire."""
    return purchase_queue.sweep()


@shared_task(name="orders.tasks.purge_idempotency_records")
def purge_idempotency_records() -> int:
    return services.purge_expired_idempotency_records()


@shared_task(name="orders.tasks.refund_send", bind=True, acks_late=True, max_retries=None)
def refund_send(self, refund_id: str) -> str:
    """Ask the gateway to refund; retried with exponential backoff (``REFUND_RETRY_BASE_SECONDS``
    doubling, at most an hour) ``REFUND_MAX_RETRIES`` times, then marked failed for staff to retry.
    Without a worker (tasks run eagerly) there is nobody to retry later: one attempt, then failed.
    Idempotent: the refund's id is the gateway's idempotency key, and a succeeded one is not resent."""
    retries = self.request.retries
    final = retries >= settings.REFUND_MAX_RETRIES or bool(self.request.is_eager)
    try:
        return payment_services.refund_send(refund_id=refund_id, final_attempt=final).status
    except ProviderError as exc:
        if final:
            return "failed"
        base = settings.REFUND_RETRY_BASE_SECONDS
        raise self.retry(exc=exc, countdown=min(3600, base * 2**retries) + secrets.randbelow(base + 1)) from exc


@shared_task(
    name="orders.tasks.refund_cancelled_event",
    acks_late=True,
    # Orders locked elsewhere, a database or broker hiccup: run again (it resumes); the
    # resend-stuck-refunds beat job re-drives a cancelled event whose retries ran out.
    autoretry_for=(payment_services.RefundsIncomplete, Busy, OperationalError, KombuError),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=20,
)
def refund_cancelled_event(event_id: int) -> int:
    """After an event is cancelled: release its holds and refund every paid order, each once.

    ``acks_late``: a worker killed half-way leaves the message to be delivered
    again, and the rerun skips what the first run finished."""
    return payment_services.event_refund_all(event_id=event_id)


@shared_task(name="orders.tasks.resend_stuck_refunds", acks_late=True)
def resend_stuck_refunds() -> int:
    """Refunds committed but never sent (a process died between commit and queueing) go out again,
    and cancelled events whose refunding stopped are refunded again."""
    return payment_services.refunds_resend_stuck()


# Emails: a mail server that is down, slow or says "try later" (4xx) is worth retrying for about a
# day: 30 s, 1, 2, 4 ... minutes, capped at an hour, with jitter so a recovering server is not
# stampeded. Every recipient refused: the address is wrong, and asking again will not change that.
EMAIL_TASK = {
    "bind": True,
    "acks_late": True,
    "autoretry_for": (smtplib.SMTPException, ConnectionError, TimeoutError),
    "dont_autoretry_for": (smtplib.SMTPRecipientsRefused,),
    "retry_backoff": 30,
    "retry_backoff_max": 3600,
    "retry_jitter": True,
    "max_retries": 30,
}


@shared_task(name="orders.tasks.send_order_confirmation", **EMAIL_TASK)
def send_order_confirmation(self, order_id: str) -> bool:
    """Queued on commit by ``confirmation.order_confirmation_queue``; sends at most one email per order."""
    if self.request.retries:
        logger.info("Order %s: confirmation, attempt %d", order_id, self.request.retries + 1)
    return confirmation.order_confirmation_send(order_id=order_id)


@shared_task(name="orders.tasks.send_order_refund_notice", **EMAIL_TASK)
def send_order_refund_notice(self, order_id: str) -> bool:
    """Queued on commit when an order is refunded; sends at most one notice per order."""
    return confirmation.order_refund_notice_send(order_id=order_id)


# --- The waiting list (orders/waitlist.py) ------------------------------------------------------


@shared_task(
    name="orders.tasks.offer_waitlist",
    acks_late=True,
    autoretry_for=(Busy, OperationalError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=10,
)
def offer_waitlist(ticket_type_id: int) -> int:
    """Stock of a ticket type with waiting entries came back: offer it to the first entries that fit.
    Queued on commit; safe to run twice (under the ticket type's row lock, the second run finds the
    stock offered); ``sweep_waitlists`` makes up for one that never ran."""
    return len(waitlist.offer_released(ticket_type_id=ticket_type_id))


@shared_task(name="orders.tasks.sweep_waitlists", acks_late=True)
def sweep_waitlists() -> int:
    """Beat's safety net: ticket types with waiting entries and stock on sale get their offers."""
    return waitlist.offer_sweep()


@shared_task(name="orders.tasks.send_waitlist_offer", **EMAIL_TASK)
def send_waitlist_offer(self, entry_id: int) -> bool:
    """Queued on commit when an offer is made; sends at most one email per offer."""
    return waitlist.offer_notice_send(entry_id=entry_id)


@shared_task(name="orders.tasks.send_ticket_transfer_notice", **EMAIL_TASK)
def send_ticket_transfer_notice(self, ticket_id: int) -> bool:
    """Queued on commit by ``transfers.ticket_transfer``: the recipient's ticket (and invitation)."""
    from . import transfers

    return transfers.transfer_notice_send(ticket_id=ticket_id)
