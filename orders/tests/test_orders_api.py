"""Placing, reading and cancelling orders over the API."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from accounts.tests.test_auth import assert_problem
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import InventoryEntry, Order, OrderItem, Ticket
from orders.selectors import inventory_report

from .conftest import order_body

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"


def nothing_held(*tiers) -> None:
    for tt in tiers:
        tt.refresh_from_db()
        assert tt.available == tt.capacity
    assert Order.objects.count() == 0
    assert OrderItem.objects.count() == 0
    assert InventoryEntry.objects.count() == 0


def test_reserve_read_and_cancel(client, buyer, event, tier, settings):
    settings.ORDER_HOLD_MINUTES = 10
    before = timezone.now()
    r = client.post(ORDERS, order_body(event, (tier, 2)))
    assert r.status_code == 201, r.content
    order = r.json()
    assert order["status"] == "reserved"
    assert order["total_cents"] == 5000
    assert order["currency"] == "EUR"
    assert order["items"] == [
        {
            "ticket_type": tier.pk,
            "ticket_type_name": "GA",
            "quantity": 2,
            "unit_price_cents": 2500,
            "subtotal_cents": 5000,
        }
    ]
    expires = Order.objects.get(pk=order["id"]).expires_at
    assert before + timedelta(minutes=10) <= expires <= timezone.now() + timedelta(minutes=10)
    tier.refresh_from_db()
    assert tier.available == 8
    assert list(InventoryEntry.objects.values_list("kind", "quantity")) == [("hold", 2)]

    assert client.get(f"{ORDERS}/{order['id']}").json()["id"] == order["id"]
    assert [o["id"] for o in client.get(ORDERS).json()["results"]] == [order["id"]]
    assert client.get(f"{ORDERS}/{order['id']}/tickets").json()["results"] == []  # not paid yet

    r = client.post(f"{ORDERS}/{order['id']}/cancel")
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    tier.refresh_from_db()
    assert tier.available == 10
    assert_problem(client.post(f"{ORDERS}/{order['id']}/cancel"), 409, "order_not_cancellable")
    assert tier.available == 10
    assert all(not row["problems"] for row in inventory_report())


def test_free_order_is_paid_at_once_with_tickets(client, buyer, event):
    free = TicketTypeFactory(event=event, name="Free", price_cents=0, capacity=5)
    r = client.post(ORDERS, order_body(event, (free, 3)))
    assert r.status_code == 201
    order = r.json()
    assert (order["status"], order["total_cents"], order["expires_at"]) == ("paid", 0, None)
    tickets = client.get(f"{ORDERS}/{order['id']}/tickets").json()["results"]
    assert len(tickets) == 3
    assert len({t["code"] for t in tickets}) == 3
    assert all(len(t["code"]) >= 22 and t["status"] == "valid" for t in tickets)  # >= 128 random bits
    assert [t["code"] for t in client.get("/api/v1/users/me/tickets").json()["results"]] == [t["code"] for t in tickets]
    free.refresh_from_db()
    assert free.available == 2
    assert sorted(InventoryEntry.objects.values_list("kind", flat=True)) == ["hold", "sell"]
    assert_problem(client.post(f"{ORDERS}/{order['id']}/cancel"), 409, "not_refundable")
    assert all(not row["problems"] for row in inventory_report())


def test_orders_of_others_are_404(client, event, tier):
    order_id = client.post(ORDERS, order_body(event, (tier, 1))).json()["id"]
    other = APIClient()
    other.force_authenticate(UserFactory())
    for call in (
        lambda: other.get(f"{ORDERS}/{order_id}"),
        lambda: other.post(f"{ORDERS}/{order_id}/cancel"),
        lambda: other.get(f"{ORDERS}/{order_id}/tickets"),
    ):
        assert_problem(call(), 404, "not_found")
    assert other.get(ORDERS).json()["count"] == 0
    assert Order.objects.get(pk=order_id).status == "reserved"
    assert_problem(APIClient().get(f"{ORDERS}/{order_id}"), 401, "not_authenticated")
    assert_problem(client.get(f"{ORDERS}/not-a-uuid"), 404, "not_found")


def test_orders_newest_first(client, event, tier):
    ids = [client.post(ORDERS, order_body(event, (tier, 1))).json()["id"] for _ in range(3)]
    assert [o["id"] for o in client.get(ORDERS).json()["results"]] == ids[::-1]


def test_sold_out_leaves_nothing_held(client, event, tier):
    TicketType.objects.filter(pk=tier.pk).update(capacity=2, available=2)
    body = assert_problem(client.post(ORDERS, order_body(event, (tier, 3))), 409, "sold_out")
    assert (body["ticket_type"], body["available"]) == (tier.pk, 2)
    tier.refresh_from_db()
    assert tier.available == 2
    assert Order.objects.count() == 0


def test_two_item_order_with_the_second_sold_out_is_rejected_whole(client, event, tier):
    gone = TicketTypeFactory(event=event, name="VIP", capacity=1)
    TicketType.objects.filter(pk=gone.pk).update(available=0, capacity=0)
    gone.refresh_from_db()
    assert_problem(client.post(ORDERS, order_body(event, (tier, 2), (gone, 1))), 409, "sold_out")
    nothing_held(tier, gone)


def test_limit_exceeded_and_sales_window(client, event, tier):
    body = assert_problem(client.post(ORDERS, order_body(event, (tier, 7))), 409, "limit_exceeded")
    assert body["max_per_order"] == 6
    TicketType.objects.filter(pk=tier.pk).update(sales_start=timezone.now() + timedelta(days=1))
    assert_problem(client.post(ORDERS, order_body(event, (tier, 1))), 409, "sales_closed")
    TicketType.objects.filter(pk=tier.pk).update(sales_start=None, sales_end=timezone.now() - timedelta(minutes=1))
    assert_problem(client.post(ORDERS, order_body(event, (tier, 1))), 409, "sales_closed")
    nothing_held(tier)


def test_cancelled_or_ended_events_are_closed(client, event, tier):
    Event.objects.filter(pk=event.pk).update(
        starts_at=timezone.now() - timedelta(hours=3), ends_at=timezone.now() - timedelta(hours=1)
    )
    assert_problem(client.post(ORDERS, order_body(event, (tier, 1))), 409, "sales_closed")
    nothing_held(tier)


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([{"ticket_type": "TT", "quantity": 0}], "items.0.quantity"),
        ([{"ticket_type": "TT", "quantity": -1}], "items.0.quantity"),
        ([{"ticket_type": "TT", "quantity": 10**9}], "items.0.quantity"),
        ([{"ticket_type": "TT", "quantity": "two"}], "items.0.quantity"),
        ([{"ticket_type": "TT", "quantity": 1.5}], "items.0.quantity"),
        ([{"ticket_type": "TT"}], "items.0.quantity"),
        ([{"ticket_type": "abc", "quantity": 1}], "items.0.ticket_type"),
        ([{"ticket_type": "TT", "quantity": 1, "unit_price_cents": 0}], "items.0.unit_price_cents"),
        ([], "items"),
        ("GA", "items"),
        ([{"ticket_type": "TT", "quantity": 1}, {"ticket_type": "TT", "quantity": 1}], "items"),
    ],
)
def test_bad_items_are_clean_400s(client, event, tier, items, field):
    if isinstance(items, list):
        items = [{k: (tier.pk if v == "TT" else v) for k, v in item.items()} for item in items]
    body = assert_problem(client.post(ORDERS, {"event": event.pk, "items": items}), 400, "invalid")
    assert field in body["errors"], body
    nothing_held(tier)


@pytest.mark.parametrize("extra", [{"status": "paid"}, {"total_cents": 0}, {"buyer": 1}, {"expires_at": None}])
def test_server_owned_fields_in_the_body_are_refused(client, event, tier, extra):
    body = assert_problem(client.post(ORDERS, {**order_body(event, (tier, 1)), **extra}), 400, "invalid")
    assert set(body["errors"]) == set(extra)
    nothing_held(tier)


def test_ticket_type_of_another_event(client, event, tier):
    foreign = TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED))
    body = assert_problem(client.post(ORDERS, order_body(event, (foreign, 1))), 400, "invalid")
    assert "items.0.ticket_type" in body["errors"]
    foreign.refresh_from_db()
    assert foreign.available == foreign.capacity
    assert Order.objects.count() == 0


@pytest.mark.parametrize("status", [Event.Status.DRAFT, Event.Status.CANCELLED])
def test_unpublished_events_cannot_be_bought(client, event, tier, status):
    Event.objects.filter(pk=event.pk).update(status=status)
    body = assert_problem(client.post(ORDERS, order_body(event, (tier, 1))), 400, "invalid")
    assert "event" in body["errors"]
    nothing_held(tier)


def test_deleted_event_and_unknown_event(client, event, tier):
    body = assert_problem(
        client.post(ORDERS, {"event": 10**12, "items": [{"ticket_type": tier.pk, "quantity": 1}]}), 400, "invalid"
    )
    assert "event" in body["errors"]
    Event.objects.filter(pk=event.pk).update(deleted_at=timezone.now())
    assert_problem(client.post(ORDERS, order_body(event, (tier, 1))), 400, "invalid")
    nothing_held(tier)


def test_order_requires_authentication(event, tier):
    assert_problem(APIClient().post(ORDERS, order_body(event, (tier, 1))), 401, "not_authenticated")
    nothing_held(tier)


def test_event_with_orders_cannot_be_deleted(client, event, tier):
    order_id = client.post(ORDERS, order_body(event, (tier, 1))).json()["id"]
    client.post(f"{ORDERS}/{order_id}/cancel")  # stock is back, but the event has an order now
    owner = APIClient()
    owner.force_authenticate(event.organizer.user)
    assert_problem(owner.delete(f"/api/v1/events/{event.pk}"), 409, "event_has_orders")
    event.refresh_from_db()
    assert event.deleted_at is None


def test_capacity_rule_sees_held_tickets(client, event, tier):
    client.post(ORDERS, order_body(event, (tier, 4)))
    owner = APIClient()
    owner.force_authenticate(event.organizer.user)
    url = f"/api/v1/events/{event.pk}/ticket-types/{tier.pk}"
    assert_problem(owner.patch(url, {"capacity": 3}), 409, "capacity_below_sold")
    assert owner.patch(url, {"capacity": 4}).json()["available"] == 0
    assert all(not row["problems"] for row in inventory_report())


def test_ticket_codes_are_unique_and_random():
    codes = {Ticket().code for _ in range(2000)}
    assert len(codes) == 2000


def test_a_sold_out_answer_writes_and_locks_nothing(client, event, tier):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    TicketType.objects.filter(pk=tier.pk).update(capacity=0, available=0)
    with CaptureQueriesContext(connection) as queries:
        assert_problem(client.post(ORDERS, order_body(event, (tier, 1))), 409, "sold_out")
    statements = " ".join(q["sql"] for q in queries.captured_queries)
    # the validating read, then the due holds and the stock again in one statement (one snapshot)
    assert len(queries.captured_queries) == 2, statements
    assert "INSERT" not in statements
    assert "FOR UPDATE" not in statements
    assert "FOR NO KEY UPDATE" not in statements


def test_a_sold_out_event_with_a_due_hold_sells_the_released_ticket(client, event, tier):
    from orders.services import Line, order_place

    TicketType.objects.filter(pk=tier.pk).update(capacity=1, available=1)
    stale = order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(tier.pk, 1)])
    Order.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.post(ORDERS, order_body(event, (tier, 1))).status_code == 201
    stale.refresh_from_db()
    assert stale.status == "expired"
    assert all(not row["problems"] for row in inventory_report())


@pytest.mark.parametrize(("max_per_buyer", "statements"), [(None, 4), (10, 6)])
def test_a_purchase_costs_a_pinned_number_of_sql_statements_and_redis_round_trips(event, max_per_buyer, statements):
    """The purchase path is the product's heart and its cost is budgeted (bench/README.md, issue 10):
    an idempotent POST /orders with a real access token is one validating read, one statement
    writing the order, its item and its ledger entry, the stored response (the key's claim), and
    the conditional stock update, in one transaction; a per-buyer limit adds the buyer's lock and
    the count of what they hold. No user row is read; the connection's health check sends
    nothing. Redis: the token's revocation check and the throttle, one round trip each. A change
    here must be a decision."""
    import redis.connection
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework_simplejwt.tokens import AccessToken

    tier = TicketTypeFactory(event=event, capacity=10, max_per_buyer=max_per_buyer)
    buyer = UserFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(buyer)}")
    body = order_body(event, (tier, 1))
    client.post(ORDERS, body, format="json")  # warm: content types, the first query of a connection
    sent = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    with (
        mock.patch.object(redis.connection.AbstractConnection, "send_packed_command", counting),
        CaptureQueriesContext(connection) as queries,
    ):
        r = client.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY="pinned")
    assert r.status_code == 201, r.content
    work = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(work) == statements, "\n".join(sql[:100] for sql in work)
    assert not any("accounts_user" in sql and "FOR NO KEY UPDATE" not in sql for sql in work)
    assert len(sent) == 2, sent
    assert Order.objects.filter(buyer=buyer).count() == 2


@pytest.mark.parametrize("prices", [(4900,), (4900, 1500), (0,)])
def test_the_201_body_is_what_reading_the_order_gives(client, event, prices):
    """POST /orders writes its body by hand (orders.serializers.order_representation); it must be
    exactly what the serializer gives for the same order, for any shape of order."""
    tiers = [TicketTypeFactory(event=event, capacity=10, price_cents=price) for price in prices]
    created = client.post(ORDERS, order_body(event, *((tier, 2) for tier in tiers)), format="json")
    assert created.status_code == 201, created.content
    read = client.get(f"{ORDERS}/{created.json()['id']}")
    assert created.json() == read.json()
    assert created.json()["status"] == ("paid" if prices == (0,) else "reserved")
