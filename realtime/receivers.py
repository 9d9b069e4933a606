"""What the realtime app hears from the others, turned into pushes (realtime/publish.py).

Each receiver only records in memory; the publisher's thread does the sending. The domain
signals arrive after their transaction commits; the catalogue's model saves arrive inside it
and wait for the commit here (``transaction.on_commit``), so a rolled-back change pushes nothing.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction

from .publish import event_group, message, publisher, user_group


def stock_changed(sender, *, event_id: int, **kwargs) -> None:
    """On every purchase: marks the event dirty, nothing more (no SQL, no network)."""
    publisher.stock_changed(event_id)


def order_status_changed(sender, *, changes, **kwargs) -> None:
    for change in changes:
        publisher.push(
            user_group(change.buyer_id),
            message("order.status", {"id": str(change.order_id), "status": change.status}),
            user_id=change.buyer_id,
        )


def waitlist_offer_made(sender, *, offer, **kwargs) -> None:
    data = {
        "order": {
            "id": str(offer.order_id),
            "event": offer.event_id,
            "ticket_type": offer.ticket_type_id,
            "quantity": offer.quantity,
            "total_cents": offer.total_cents,
            "currency": offer.currency,
            "expires_at": offer.expires_at.isoformat() if offer.expires_at else None,
        }
    }
    publisher.push(user_group(offer.buyer_id), message("waitlist.offer", data), user_id=offer.buyer_id)


def event_cancelled(sender, *, event_id: int, **kwargs) -> None:
    publisher.push(event_group(event_id), message("event.cancelled", {"event": event_id}))


def catalogue_saved(sender, instance, **kwargs) -> None:
    """An event or a ticket type saved or deleted (API, admin, shell): ``event.updated`` once it commits,
    coalesced with the other saves of the same moment."""
    event_id = instance.pk if sender._meta.model_name == "event" else instance.event_id
    if event_id is not None:
        transaction.on_commit(partial(publisher.event_changed, event_id), robust=True)
