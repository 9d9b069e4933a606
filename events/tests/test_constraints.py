"""The database refuses impossible inventory even when code is wrong."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from events.models import Event, TicketType

from .factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "change",
    [
        {"available": -1},
        {"available": F("capacity") + 1},
        {"price_cents": -1},
        {"max_per_order": 0},
    ],
)
def test_ticket_type_constraints(change):
    tier = TicketTypeFactory(capacity=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        TicketType.objects.filter(pk=tier.pk).update(**change)
    tier.refresh_from_db()
    assert (tier.available, tier.price_cents) == (10, 2500)


def test_oversell_is_refused_by_the_database():
    tier = TicketTypeFactory(capacity=1)
    TicketType.objects.filter(pk=tier.pk).update(available=F("available") - 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        TicketType.objects.filter(pk=tier.pk).update(available=F("available") - 1)


def test_event_must_end_after_it_starts():
    event = EventFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=event.pk).update(ends_at=event.starts_at - timedelta(minutes=1))
