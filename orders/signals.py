"""The orders app's domain signals, for the apps that build on it (realtime, webhooks, metrics).

Each is sent once the transaction that made the change commits, never for one that rolled back
(``eventflow.signals.send_on_commit``), so a receiver may tell the outside world at once. Receivers
run in the request or task that made the change: they must be quick (queue a task, mark something
to push) and must not raise; one that does is logged and the others still run.
"""

from __future__ import annotations

from typing import NamedTuple

from django.dispatch import Signal


class OrderChange(NamedTuple):
    """One order's move: ``previous`` is ``None`` for a new order (a free one is new and ``paid``)."""

    order_id: object  # uuid.UUID
    event_id: int
    buyer_id: int
    status: str
    previous: str | None


# ``changes``: a list of ``OrderChange`` (an expiry sweep moves hundreds of orders in one commit).
# Cached receivers (``use_caching``): sent once or twice per purchase, looked up once per sender.
order_status_changed = Signal(use_caching=True)
# ``event_id``, ``ticket_type_ids``: the ticket types of one event whose ``available`` moved
# (a purchase, a release, a refund, a waiting-list offer, a payment that re-took its stock).
stock_changed = Signal(use_caching=True)


class WaitlistOffer(NamedTuple):
    """An offer to a waiting-list entry: a ``reserved`` order held until ``expires_at``."""

    order_id: object  # uuid.UUID
    buyer_id: int
    event_id: int
    ticket_type_id: int
    quantity: int
    total_cents: int
    currency: str
    expires_at: object  # datetime


# ``offer``: a ``WaitlistOffer``, once the offer's transaction commits (``orders.waitlist.offer_made``).
waitlist_offer_made = Signal()
