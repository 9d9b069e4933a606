"""The domain's signals (sent after commit) turned into webhook events.

Each receiver runs in the request or task that made the change, so it asks the subscriptions memo
first (no SQL, no network: ``subscriptions``) and does nothing more for an organizer without an
endpoint for that event type, the usual case. For one with an endpoint, one task is queued per
organizer with the events' facts; the worker builds the payloads and records the deliveries.

Which order moves are events: a new order is ``order.placed`` (a free one is new and paid at once:
``order.placed`` then ``order.paid``); ``paid``, ``cancelled`` and ``refunded`` are
``order.paid``, ``order.cancelled`` and ``order.refunded``. A hold that expired unpaid
(``expired``) is not an event: the order never counted, and its placing was told.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from . import subscriptions
from .models import EventType

_ORDER_EVENTS = {
    "paid": EventType.ORDER_PAID,
    "cancelled": EventType.ORDER_CANCELLED,
    "refunded": EventType.ORDER_REFUNDED,
}


def _queue(by_organizer: dict[int, list[dict[str, Any]]]) -> None:
    from .tasks import emit_events

    for organizer_id, events in by_organizer.items():
        emit_events.delay(organizer_id, events)


def _event(event_type: str, facts: dict[str, Any]) -> dict[str, Any]:
    from .services import new_event_id

    return {"id": new_event_id(), "type": str(event_type), "created_at": timezone.now().isoformat(), "facts": facts}


def on_order_status_changed(sender, *, changes, **kwargs) -> None:
    if not subscriptions.current():
        return
    by_organizer: dict[int, list[dict[str, Any]]] = {}
    for change in changes:
        types = [EventType.ORDER_PLACED] if change.previous is None else []
        if change.status in _ORDER_EVENTS:
            types.append(_ORDER_EVENTS[change.status])
        for event_type in types:
            organizer_id = subscriptions.subscriber(event_id=change.event_id, event_type=event_type)
            if organizer_id is not None:
                facts = {"order_id": str(change.order_id), "status": change.status, "previous_status": change.previous}
                by_organizer.setdefault(organizer_id, []).append(_event(event_type, facts))
    _queue(by_organizer)


def on_checked_in(sender, *, event_id: int, check_in_ids, **kwargs) -> None:
    organizer_id = subscriptions.subscriber(event_id=event_id, event_type=EventType.CHECKIN_CREATED)
    if organizer_id is not None:
        events = [_event(EventType.CHECKIN_CREATED, {"check_in_id": pk}) for pk in check_in_ids]
        _queue({organizer_id: events})


def on_event_cancelled(sender, *, event_id: int, **kwargs) -> None:
    organizer_id = subscriptions.subscriber(event_id=event_id, event_type=EventType.EVENT_CANCELLED)
    if organizer_id is not None:
        _queue({organizer_id: [_event(EventType.EVENT_CANCELLED, {"event_id": event_id})]})


def on_account_anonymised(sender, *, old_email: str, new_email: str, **kwargs: Any) -> None:
    """Inside the deletion's transaction: stored payloads forget the person (webhooks.services)."""
    from .services import deliveries_forget_buyer

    deliveries_forget_buyer(old_email=old_email, new_email=new_email)
