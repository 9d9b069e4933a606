"""What a deleted account's orders and tickets become (accounts.privacy calls this).

Orders stay: they are the accounting record of money that moved (and of the fees and
payouts that follow from it). What the person can no longer use goes:

- a reservation is cancelled, so its stock is back on sale at once;
- a paid order of an event still to come is refunded where the event's refund policy
  allows it (the same ``order_refund`` a buyer's cancel uses: tickets void, stock back,
  money returned through the gateway), unless somebody else now holds one of its tickets
  (a transfer): their ticket stays good;
- every ticket the account still holds for an event still to come is void, refunded or
  not: nobody can sign in to show it any more, and its code must not admit a stranger.

Past events are left alone: their tickets were used or not, and nothing is owed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import timezone

from events.models import Event

from .errors import NotRefundable, OrderNotCancellable
from .models import Order, Ticket
from .payments.services import order_refund
from .services import order_cancel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountClosure:
    cancelled: int  # reservations given up
    refunded: int  # paid orders refunded
    not_refundable: int  # paid orders of future events the policy did not let us refund
    tickets_voided: int  # tickets of future events voided without a refund


def account_orders_close(*, user_id: int) -> AccountClosure:
    """Close out ``user_id``'s live orders and tickets for a deleted account (see the module).

    No refund notices: the address is anonymised in the same transaction, so a notice sent after it
    commits would go to ``deleted-<id>@invalid``; the person asked for the deletion and its answer
    says what happens to their orders."""
    from .confirmation import confirmations_suppressed

    with confirmations_suppressed():
        return _close(user_id=user_id)


def _close(*, user_id: int) -> AccountClosure:
    now = timezone.now()
    cancelled = refunded = not_refundable = 0
    for order in Order.objects.filter(buyer_id=user_id, status=Order.Status.RESERVED).order_by("pk"):
        try:
            order_cancel(order=order)
            cancelled += 1
        except OrderNotCancellable:
            continue  # paid or expired meanwhile
    upcoming = (
        Order.objects.filter(buyer_id=user_id, status=Order.Status.PAID, event__starts_at__gt=now)
        .exclude(event__status=Event.Status.CANCELLED)  # refunded in full by the cancellation already
        .order_by("pk")
    )
    for order in upcoming:
        if Ticket.objects.filter(order=order, status=Ticket.Status.VALID).exclude(holder_id=user_id).exists():
            continue  # a ticket was given to somebody else: theirs stays good, so the order is not refunded
        try:
            order_refund(order=order)
            refunded += 1
        except NotRefundable:
            not_refundable += 1
        except OrderNotCancellable:
            continue  # refunded meanwhile
    voided = Ticket.objects.filter(
        holder_id=user_id, status=Ticket.Status.VALID, order__event__starts_at__gt=now
    ).update(status=Ticket.Status.VOID)
    logger.info(
        "Closed the orders of deleted account %s: %d cancelled, %d refunded, %d not refundable, %d tickets voided",
        user_id,
        cancelled,
        refunded,
        not_refundable,
        voided,
    )
    return AccountClosure(cancelled=cancelled, refunded=refunded, not_refundable=not_refundable, tickets_voided=voided)
