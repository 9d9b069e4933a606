import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory


@pytest.fixture
def event():
    return EventFactory(status=Event.Status.PUBLISHED)


@pytest.fixture
def tier(event):
    return TicketTypeFactory(event=event, name="GA", price_cents=2500, capacity=10, max_per_order=6)


@pytest.fixture
def buyer():
    return UserFactory()


@pytest.fixture
def client(buyer) -> APIClient:
    client = APIClient()
    client.force_authenticate(buyer)
    return client


def order_body(event, *lines) -> dict:
    return {"event": event.pk, "items": [{"ticket_type": tt.pk, "quantity": q} for tt, q in lines]}
