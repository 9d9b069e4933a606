"""Webhook background work. Tasks take ids, call one service and are safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import services

# An attempt holds its delivery for services.claim_hold_seconds() (4 x timeout + 30 s); the task
# ends well before: at the soft limit the attempt is recorded failed (a host name that took ages
# to resolve: the request itself is bounded by the timeout), at the hard one the worker process
# is killed. Either way before the hold runs out, so no second attempt can start meanwhile.
SEND_SOFT_TIME_LIMIT = settings.WEBHOOKS_TIMEOUT_SECONDS * 2 + 15
SEND_TIME_LIMIT = settings.WEBHOOKS_TIMEOUT_SECONDS * 3 + 20


@shared_task(name="webhooks.tasks.emit_events", acks_late=True)
def emit_events(organizer_id: int, events: list[dict]) -> int:
    """Record the deliveries of a few events to the organizer's endpoints (once per event id)."""
    return len(services.events_emit(organizer_id=organizer_id, events=events))


@shared_task(
    name="webhooks.tasks.send_delivery",
    acks_late=True,
    soft_time_limit=SEND_SOFT_TIME_LIMIT,
    time_limit=SEND_TIME_LIMIT,
)
def send_delivery(delivery_id: str) -> str | None:
    """One attempt if due; the outcome schedules the next (``services.delivery_attempt``)."""
    delivery = services.delivery_attempt(delivery_id=delivery_id)
    return delivery.status if delivery is not None else None


@shared_task(name="webhooks.tasks.send_due_deliveries", acks_late=True)
def send_due_deliveries() -> int:
    """Beat's sweep: queue every due retry (long waits, and any send whose message was lost)."""
    due = services.deliveries_due()
    for delivery_id in due:
        send_delivery.delay(str(delivery_id))
    return len(due)


@shared_task(name="webhooks.tasks.send_endpoint_disabled_notice", acks_late=True)
def send_endpoint_disabled_notice(endpoint_id: int, disabled_at: str) -> bool:
    return services.endpoint_disabled_notice_send(endpoint_id=endpoint_id, disabled_at=disabled_at)
