"""Orders as tests across the apps need them, made through the services a real purchase uses."""

from __future__ import annotations

from orders import services
from orders.models import Order


def paid_order(buyer, tier, quantity: int = 1) -> Order:
    """``quantity`` tickets of ``tier`` bought by ``buyer`` and paid."""
    order = services.order_place(buyer=buyer, event_id=tier.event_id, lines=[services.Line(tier.pk, quantity)])
    return services.order_mark_paid(order=order)
