"""What the orders app does when the catalogue tells it something happened."""

from __future__ import annotations

from . import tasks, waitlist


def refund_cancelled_event(sender, *, event_id: int, **kwargs) -> None:
    """Sent after the cancellation committed: the refunds run in a worker, retried and resumable."""
    tasks.refund_cancelled_event.delay(event_id)


def close_waitlists(sender, *, event_id: int, **kwargs) -> None:
    """An event's cancellation committed: its waiting lists close (nobody is offered anything)."""
    waitlist.waitlist_close_event(event_id=event_id)


def close_entries_of_deleted_user(sender, instance, **kwargs) -> None:
    """An account is deleted (its entries would vanish with it, CASCADE, leaving the ticket types'
    ``waitlisted`` counters gated on nobody): its live entries leave their lines first."""
    waitlist.close_entries_of(user_id=instance.pk)


def close_entries_of_deactivated_user(sender, instance, **kwargs) -> None:
    """A deactivated account waits for nothing: once that commits, its live entries leave their lines."""
    if not instance.is_active and instance.pk is not None:
        from django.db import transaction

        transaction.on_commit(lambda: waitlist.close_entries_of(user_id=instance.pk), robust=True)


def offer_added_stock(sender, *, ticket_type_id: int, **kwargs) -> None:
    """More of a ticket type went on sale (its capacity raised): its waiting list is offered it first."""
    tasks.offer_waitlist.delay(ticket_type_id)
