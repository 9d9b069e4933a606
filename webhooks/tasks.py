"""Webhook background work. Tasks take ids, call one service and are safe to run twice."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="webhooks.tasks.emit_events", acks_late=True)
def emit_events(organizer_id: int, events: list[dict]) -> int:
    """Record the deliveries of a few events to the organizer's endpoints (once per event id)."""
    return len(services.events_emit(organizer_id=organizer_id, events=events))


@shared_task(name="webhooks.tasks.send_delivery", acks_late=True)
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
