"""Per-buyer limits: one account cannot hold a whole event's stock, whatever the number of orders."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import OrganizerProfileFactory, UserFactory
from accounts.tests.test_auth import assert_problem
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import Order, Ticket
from orders.services import expire_due_holds

from .conftest import order_body
from .test_concurrency import assert_inventory_clean, purchase, run_concurrently, sold

ORDERS = "/api/v1/orders"


@pytest.mark.django_db
class TestLimits:
    def test_ten_orders_of_ten_cannot_hold_a_hundred_tickets(self, client, event, buyer):
        tier = TicketTypeFactory(event=event, capacity=100, max_per_order=10, max_per_buyer=10)
        assert client.post(ORDERS, order_body(event, (tier, 10))).status_code == 201
        for _ in range(9):
            body = assert_problem(client.post(ORDERS, order_body(event, (tier, 10))), 409, "limit_exceeded")
        assert body["max_per_buyer"] == 10
        assert body["already_held"] == 10
        assert body["ticket_type"] == tier.pk
        tier.refresh_from_db()
        assert tier.available == 90  # nothing was held by the refused orders
        assert Order.objects.filter(buyer=buyer).count() == 1
        # another buyer is not affected
        other = APIClient()
        other.force_authenticate(UserFactory())
        assert other.post(ORDERS, order_body(event, (tier, 10))).status_code == 201

    def test_free_tickets_cannot_all_go_to_one_account(self, client, event, buyer):
        free = TicketTypeFactory(event=event, price_cents=0, capacity=50, max_per_order=10, max_per_buyer=10)
        results = [client.post(ORDERS, order_body(event, (free, 10))).status_code for _ in range(5)]
        assert results == [201, 409, 409, 409, 409]
        assert Ticket.objects.filter(holder=buyer).count() == 10
        free.refresh_from_db()
        assert free.available == 40

    def test_a_single_order_over_the_limit_is_refused_before_anything_is_written(self, client, event):
        tier = TicketTypeFactory(event=event, capacity=100, max_per_order=10, max_per_buyer=4)
        body = assert_problem(client.post(ORDERS, order_body(event, (tier, 5))), 409, "limit_exceeded")
        assert body["already_held"] == 0
        assert Order.objects.count() == 0

    def test_up_to_the_limit_over_several_orders(self, client, event, buyer):
        tier = TicketTypeFactory(event=event, capacity=100, max_per_order=10, max_per_buyer=5)
        assert [client.post(ORDERS, order_body(event, (tier, q))).status_code for q in (2, 3)] == [201, 201]
        body = assert_problem(client.post(ORDERS, order_body(event, (tier, 1))), 409, "limit_exceeded")
        assert (body["max_per_buyer"], body["already_held"]) == (5, 5)
        tier.refresh_from_db()
        assert (tier.available, Order.objects.filter(buyer=buyer).count()) == (95, 2)

    def test_cancelled_and_expired_orders_give_the_allowance_back(self, client, event, buyer):
        tier = TicketTypeFactory(event=event, capacity=100, max_per_order=10, max_per_buyer=4)
        first = client.post(ORDERS, order_body(event, (tier, 4))).json()
        assert_problem(client.post(ORDERS, order_body(event, (tier, 1))), 409, "limit_exceeded")
        assert client.post(f"{ORDERS}/{first['id']}/cancel").status_code == 200
        second = client.post(ORDERS, order_body(event, (tier, 4))).json()
        # a hold that ran out counts no more, even before the sweep expires it
        Order.objects.filter(pk=second["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert client.post(ORDERS, order_body(event, (tier, 4))).status_code == 201
        expire_due_holds()
        assert_inventory_clean()

    def test_the_event_limit_counts_every_ticket_type(self, client, buyer):
        event = EventFactory(status=Event.Status.PUBLISHED, max_tickets_per_buyer=6)
        a = TicketTypeFactory(event=event, capacity=100)
        b = TicketTypeFactory(event=event, capacity=100)
        assert client.post(ORDERS, order_body(event, (a, 4))).status_code == 201
        body = assert_problem(client.post(ORDERS, order_body(event, (b, 3))), 409, "limit_exceeded")
        assert (body["max_tickets_per_buyer"], body["already_held"]) == (6, 4)
        # refused after the order was written (under the buyer's lock): all of it rolled back
        b.refresh_from_db()
        assert (b.available, Order.objects.filter(buyer=buyer).count()) == (100, 1)
        assert_inventory_clean()
        assert client.post(ORDERS, order_body(event, (a, 1), (b, 1))).status_code == 201
        # the limit is per event: another event's tickets do not count
        elsewhere = EventFactory(status=Event.Status.PUBLISHED, max_tickets_per_buyer=6)
        c = TicketTypeFactory(event=elsewhere, capacity=100)
        assert client.post(ORDERS, order_body(elsewhere, (c, 6))).status_code == 201

    def test_organizers_set_the_limits_over_the_api(self):
        profile = OrganizerProfileFactory()
        owner = APIClient()
        owner.force_authenticate(profile.user)
        event = EventFactory(organizer=profile)
        r = owner.post(
            f"/api/v1/events/{event.pk}/ticket-types",
            {"name": "GA", "price_cents": 1000, "capacity": 100, "max_per_buyer": 4},
        )
        assert r.status_code == 201, r.content
        assert r.json()["max_per_buyer"] == 4
        tier_id = r.json()["id"]
        r = owner.patch(f"/api/v1/events/{event.pk}/ticket-types/{tier_id}", {"max_per_buyer": None})
        assert r.json()["max_per_buyer"] is None
        body = assert_problem(
            owner.patch(f"/api/v1/events/{event.pk}/ticket-types/{tier_id}", {"max_per_buyer": 0}), 400, "invalid"
        )
        assert "max_per_buyer" in body["errors"]
        r = owner.patch(f"/api/v1/events/{event.pk}", {"max_tickets_per_buyer": 8})
        assert r.status_code == 200, r.content
        assert r.json()["max_tickets_per_buyer"] == 8
        event.refresh_from_db()
        assert event.max_tickets_per_buyer == 8


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_one_buyer_racing_many_orders_gets_exactly_the_limit():
    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=500, max_per_order=10, max_per_buyer=3)
    buyer = UserFactory()
    results = run_concurrently([purchase(buyer, event, (tier, 1)) for _ in range(20)], workers=20)
    outcomes = Counter((status, code) for status, code, _ in results)
    assert outcomes == {(201, None): 3, (409, "limit_exceeded"): 17}
    assert sold(tier) == 3
    assert_inventory_clean()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_one_buyer_racing_over_two_ticket_types_keeps_the_event_limit():
    """Orders for different ticket types lock different stock rows; the buyer's own lock still
    makes them count each other."""
    event = EventFactory(status=Event.Status.PUBLISHED, max_tickets_per_buyer=4)
    a = TicketTypeFactory(event=event, capacity=500)
    b = TicketTypeFactory(event=event, capacity=500)
    buyer = UserFactory()
    results = run_concurrently([purchase(buyer, event, ((a, b)[i % 2], 1)) for i in range(20)], workers=20)
    assert Counter((status, code) for status, code, _ in results) == {(201, None): 4, (409, "limit_exceeded"): 16}
    assert sold(a) + sold(b) == 4
    assert_inventory_clean()


@pytest.mark.django_db
def test_messages_count_tickets_in_proper_plurals(client, event):
    one = TicketTypeFactory(event=event, name="Solo", capacity=3, max_per_order=1)
    body = assert_problem(client.post(ORDERS, order_body(event, (one, 2))), 409, "limit_exceeded")
    assert body["detail"] == "At most 1 ticket of Solo per order."
    pair = TicketTypeFactory(event=event, name="Pair", capacity=2, max_per_order=5)
    assert client.post(ORDERS, order_body(event, (pair, 1))).status_code == 201
    body = assert_problem(client.post(ORDERS, order_body(event, (pair, 2))), 409, "sold_out")
    assert body["detail"] == "Only 1 ticket of Pair is left."
    assert client.post(ORDERS, order_body(event, (pair, 1))).status_code == 201
    body = assert_problem(client.post(ORDERS, order_body(event, (pair, 1))), 409, "sold_out")
    assert body["detail"] == "Pair is sold out."
    capped = TicketTypeFactory(event=event, name="Capped", capacity=9, max_per_buyer=1)
    assert client.post(ORDERS, order_body(event, (capped, 1))).status_code == 201
    body = assert_problem(client.post(ORDERS, order_body(event, (capped, 1))), 409, "limit_exceeded")
    assert body["detail"] == "One buyer may hold at most 1 ticket of Capped; you already hold 1."


@pytest.mark.django_db
def test_a_new_ticket_type_limits_buyers_unless_the_organizer_says_otherwise(settings):
    """The issue's reproducer, with no limit set by anyone: ten orders of ten from one account."""
    profile = OrganizerProfileFactory()
    owner = APIClient()
    owner.force_authenticate(profile.user)
    event = EventFactory(organizer=profile, status=Event.Status.PUBLISHED)
    r = owner.post(f"/api/v1/events/{event.pk}/ticket-types", {"name": "GA", "price_cents": 0, "capacity": 100})
    assert r.json()["max_per_buyer"] == settings.DEFAULT_MAX_PER_BUYER == 10
    hoarder = APIClient()
    hoarder.force_authenticate(user := UserFactory())
    ten = {"event": event.pk, "items": [{"ticket_type": r.json()["id"], "quantity": 10}]}
    assert hoarder.post(ORDERS, ten).status_code == 201
    for _ in range(9):
        assert_problem(hoarder.post(ORDERS, ten), 409, "limit_exceeded")
    assert Ticket.objects.filter(holder=user).count() == 10  # free: issued at once, and no more
    assert Event.objects.get(pk=event.pk).ticket_types.get().available == 90
    # an organizer who wants no limit says so explicitly
    r = owner.post(
        f"/api/v1/events/{event.pk}/ticket-types",
        {"name": "Unlimited", "price_cents": 0, "capacity": 100, "max_per_buyer": None},
    )
    assert r.json()["max_per_buyer"] is None
