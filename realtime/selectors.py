"""Reads for the realtime app: who may subscribe to an event, and an event's stock as pushed."""

from __future__ import annotations

from django.conf import settings

from events.models import Event, TicketType


def event_is_public(*, event_id: int) -> bool:
    """Anyone may subscribe to a published or cancelled event; a draft, a deleted or an unknown one
    is refused alike (a draft's existence is not told)."""
    return Event.objects.alive().filter(pk=event_id).exclude(status=Event.Status.DRAFT).exists()


def stock_of_event(*, event_id: int) -> dict[int, tuple[int, int]]:
    """``{ticket_type_id: (available, low_stock_threshold)}`` in one query, ``available`` as
    ``GET /events/{id}/availability`` tells it: the pool plus the stock buckets, and 0 while the
    type's waiting list has entries (that stock is the list's)."""
    rows = (
        TicketType.objects.filter(event_id=event_id)
        .with_on_sale()
        .order_by("position", "id")
        .values_list("id", "available", "bucket_stock", "waitlisted", "low_stock_threshold")
    )
    default = settings.STOCK_LOW_THRESHOLD
    return {
        pk: (0 if waitlisted else pool + in_buckets, default if threshold is None else threshold)
        for pk, pool, in_buckets, waitlisted, threshold in rows
    }
