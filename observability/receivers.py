"""The domain signals, counted. Receivers run after the change committed, in the request or task
that made it; each is a few additions, no query (the purchase path's budget)."""

from __future__ import annotations

from collections.abc import Sequence

from orders.models import Order
from orders.signals import OrderChange

from . import metrics

_PAID = Order.Status.PAID.value
_EXPIRED = Order.Status.EXPIRED.value


def count_order_changes(sender: object, changes: Sequence[OrderChange], **kwargs: object) -> None:
    """Placed (``previous`` is None: a hold, or a free order paid at once), paid, expired."""
    placed = paid = expired = 0
    for change in changes:
        if change.previous is None:
            placed += 1
        if change.status == _PAID:
            paid += 1
        elif change.status == _EXPIRED:
            expired += 1
    if placed:
        metrics.ORDERS_PLACED.inc(placed)
    if paid:
        metrics.ORDERS_PAID.inc(paid)
    if expired:
        metrics.HOLDS_EXPIRED.inc(expired)


def count_checkins(sender: object, check_in_ids: Sequence[object], **kwargs: object) -> None:
    metrics.CHECKINS.inc(len(check_in_ids))
