"""Cache invalidation: every saved or deleted event or ticket type, from any code path
(API, admin, shell), bumps the catalogue's cache versions after commit. And the catalogue's
own domain signals, for the apps that build on it."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from . import cache
from .models import Event, TicketType

# Sent after an event's cancellation commits, with ``event_id``: the orders app refunds its
# buyers. Apps that build on the catalogue listen here instead of the catalogue calling them.
event_cancelled = Signal()
# Sent after a change that put more of a ticket type on sale (its capacity raised) commits, with
# ``ticket_type_id``: the orders app offers it to the type's waiting list first.
stock_added = Signal()


@receiver([post_save, post_delete], sender=Event, dispatch_uid="events_event_changed")
def event_changed(sender, instance: Event, **kwargs) -> None:
    cache.catalogue_changed(instance.pk)


@receiver([post_save, post_delete], sender=TicketType, dispatch_uid="events_ticket_type_changed")
def ticket_type_changed(sender, instance: TicketType, **kwargs) -> None:
    cache.catalogue_changed(instance.event_id)
