from datetime import timedelta

import factory
from django.utils import timezone

from accounts.tests.factories import OrganizerProfileFactory
from events.models import Category, Event, TicketType


class EventFactory(factory.django.DjangoModelFactory):
    """A draft event a month from now; ``status=Event.Status.PUBLISHED`` for a public one."""

    class Meta:
        model = Event

    organizer = factory.SubFactory(OrganizerProfileFactory)
    title = factory.Sequence(lambda n: f"Event {n}")
    slug = factory.Sequence(lambda n: f"event-{n}")
    description = "An evening to remember."
    category = Category.MUSIC
    venue_name = "Main Hall"
    city = "Berlin"
    country = "DE"
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(hours=3))
    timezone = "Europe/Berlin"
    currency = "EUR"
    status = Event.Status.DRAFT
    published_at = factory.LazyAttribute(lambda o: timezone.now() if o.status == Event.Status.PUBLISHED else None)


class TicketTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketType

    event = factory.SubFactory(EventFactory)
    name = factory.Sequence(lambda n: f"Tier {n}")
    price_cents = 2500
    capacity = 100
    available = factory.LazyAttribute(lambda o: o.capacity)
    max_per_order = 10
