"""Stock split over buckets (events/stock.py): sold exactly, never oversold, never stranded.

The races use real threads on real PostgreSQL (``transaction=True``), like
test_concurrency.py; the rest are given / when / then through the services and the API.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from accounts.tests.test_auth import assert_problem
from events import services as catalogue
from events.errors import CapacityBelowSold, TicketTypeHasOrders
from events.models import Event, StockBucket, TicketType
from events.tests.factories import EventFactory
from orders import services
from orders.errors import SoldOut
from orders.models import Order
from orders.services import Line, expire_due_holds, order_cancel, order_place
from orders.tests.test_concurrency import assert_inventory_clean, buyers, purchase, run_concurrently, sold

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")

ORDERS = "/api/v1/orders"
EVENTS = "/api/v1/events"


@pytest.fixture
def event():
    return EventFactory(status=Event.Status.PUBLISHED)


def bucketed(event: Event, *, capacity: int, buckets: int, max_per_order: int = 10) -> TicketType:
    """A ticket type made as organizers make it, split over ``buckets`` rows."""
    return catalogue.ticket_type_create(
        event=event,
        name=f"GA {capacity}/{buckets}",
        price_cents=2500,
        capacity=capacity,
        max_per_order=max_per_order,
        max_per_buyer=None,
        stock_buckets=buckets,
    )


def shares(tt: TicketType) -> list[int]:
    return list(StockBucket.objects.filter(ticket_type=tt).order_by("number").values_list("available", flat=True))


def on_sale(tt: TicketType) -> int:
    return TicketType.objects.with_on_sale().get(pk=tt.pk).on_sale


def buy(tt: TicketType, quantity: int) -> Order:
    return order_place(buyer=UserFactory(), event_id=tt.event_id, lines=[Line(tt.pk, quantity)])


# --- Races ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eighty_buyers_on_eight_buckets_sell_exactly_the_capacity_and_the_last_ticket(event):
    # given 50 tickets over 8 buckets
    tier = bucketed(event, capacity=50, buckets=8, max_per_order=3)
    assert (tier.available, sum(shares(tier))) == (0, 50)  # all of it in the buckets

    # when 80 buyers asking for 1, 2 or 3 race for them
    quantities = [i % 3 + 1 for i in range(80)]
    results = run_concurrently(
        [purchase(user, event, (tier, q)) for user, q in zip(buyers(80), quantities, strict=True)], workers=24
    )

    # then what was sold fits, and every refused buyer wanted more than was left
    assert {(status, code) for status, code, _ in results} <= {(201, None), (409, "sold_out")}
    taken = sum(q for (status, _, _), q in zip(results, quantities, strict=True) if status == 201)
    left = on_sale(tier)
    assert taken == sold(tier) == 50 - left
    refused = [q for (status, _, _), q in zip(results, quantities, strict=True) if status == 409]
    assert all(q > left for q in refused)
    assert all(share >= 0 for share in shares(tier))

    # and what was left, however it lies in the buckets, is sold to the last ticket
    tail = run_concurrently([purchase(user, event, (tier, 1)) for user in buyers(left + 5)], workers=10)
    assert Counter((status, code) for status, code, _ in tail) == Counter({(201, None): left, (409, "sold_out"): 5})
    assert (on_sale(tier), sold(tier)) == (0, 50)
    assert_inventory_clean()


@pytest.mark.django_db(transaction=True)
def test_mixed_orders_in_opposite_orders_never_deadlock(event):
    # given a bucketed type and a single-row one
    hot = bucketed(event, capacity=1000, buckets=4)
    plain = catalogue.ticket_type_create(
        event=event, name="Plain", price_cents=100, capacity=1000, max_per_buyer=None, stock_buckets=1
    )

    # when buyers order both, listed either way round, next to single-type orders of each
    lines = [((hot, 1), (plain, 2)), ((plain, 2), (hot, 1)), ((hot, 3),), ((plain, 1),)]
    calls = [purchase(user, event, *lines[i % 4]) for i, user in enumerate(buyers(120))]
    results = run_concurrently(calls, workers=30)

    # then all are sold, none waits forever or deadlocks
    assert Counter(status for status, _, _ in results) == {201: 120}
    assert (sold(hot), sold(plain)) == (30 * 1 + 30 * 1 + 30 * 3, 30 * 2 + 30 * 2 + 30 * 1)
    assert on_sale(hot) == 1000 - sold(hot)
    assert_inventory_clean()


# --- The fallback: the sum decides, never one bucket ------------------------------------------


@pytest.mark.django_db
def test_a_quantity_larger_than_any_bucket_is_sold_from_their_sum(event):
    # given 20 tickets over 8 buckets: none holds more than 3
    tier = bucketed(event, capacity=20, buckets=8)
    assert shares(tier) == [3, 3, 3, 3, 2, 2, 2, 2]

    # when a buyer asks for 10
    buy(tier, 10)

    # then they get them, and the 10 left are spread evenly again
    assert shares(tier) == [2, 2, 1, 1, 1, 1, 1, 1]
    buy(tier, 10)
    assert sum(shares(tier)) == 0
    with pytest.raises(SoldOut):
        buy(tier, 1)
    assert_inventory_clean()


@pytest.mark.django_db
def test_more_buckets_than_tickets_strand_nothing(event):
    tier = bucketed(event, capacity=5, buckets=8)
    for _ in range(5):
        buy(tier, 1)
    with pytest.raises(SoldOut) as refused:
        buy(tier, 1)
    assert refused.value.extra == {"ticket_type": tier.pk, "available": 0}
    assert sold(tier) == 5
    assert_inventory_clean()


@pytest.mark.django_db
def test_an_order_short_by_its_sum_is_refused_whole_and_holds_nothing(event):
    tier = bucketed(event, capacity=6, buckets=3)
    buy(tier, 4)
    with pytest.raises(SoldOut) as refused:
        buy(tier, 3)
    assert refused.value.extra["available"] == 2
    assert (Order.objects.count(), on_sale(tier)) == (1, 2)
    assert_inventory_clean()


# --- Releases ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_released_stock_comes_back_and_is_sold_again(event):
    # given a sold-out bucketed type
    tier = bucketed(event, capacity=6, buckets=3)
    first, second, third = buy(tier, 2), buy(tier, 2), buy(tier, 2)
    assert on_sale(tier) == 0

    # when one order is cancelled and another's hold runs out
    order_cancel(order=first)
    Order.objects.filter(pk=second.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_due_holds() == 1

    # then their 4 tickets are on sale again (in the pool, on the ticket type's row), exactly once
    tier.refresh_from_db()
    assert (tier.available, on_sale(tier)) == (4, 4)
    assert_inventory_clean()

    # and buyers get them: first from the pool, spread over the buckets on the way
    buy(tier, 1)
    assert (TicketType.objects.get(pk=tier.pk).available, sum(shares(tier))) == (0, 3)
    buy(tier, 3)
    with pytest.raises(SoldOut):
        buy(tier, 1)
    assert sold(tier) == 6
    assert third.status == "reserved"
    assert_inventory_clean()


@pytest.mark.django_db
def test_a_late_payment_retakes_stock_that_only_the_buckets_hold(event):
    # given an expired order whose 2 tickets are back on sale, then spread over the buckets
    tier = bucketed(event, capacity=6, buckets=2)
    late = buy(tier, 2)
    Order.objects.filter(pk=late.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expire_due_holds()
    buy(tier, 4)  # no bucket holds 4: the exact path takes across, the 2 left go to the buckets
    assert (TicketType.objects.get(pk=tier.pk).available, shares(tier)) == (0, [1, 1])

    # when its payment lands after all
    late.refresh_from_db()
    assert services.retake(late, [(tier.pk, 2)]) is True
    services.mark_paid(late, paid_at=timezone.now())

    # then it takes them from the buckets, and nothing is left to retake a second time
    assert on_sale(tier) == 0
    assert services.retake(late, [(tier.pk, 1)]) is False
    assert_inventory_clean()


# --- The organizer's changes ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_capacity_change_on_a_bucketed_type_keeps_every_invariant(event):
    tier = bucketed(event, capacity=100, buckets=4)
    buy(tier, 10)

    tier = catalogue.ticket_type_update(ticket_type=tier, capacity=50)
    assert (tier.available, shares(tier), tier.on_sale) == (0, [10, 10, 10, 10], 40)
    assert_inventory_clean()

    with pytest.raises(CapacityBelowSold):
        catalogue.ticket_type_update(ticket_type=tier, capacity=9)

    tier = catalogue.ticket_type_update(ticket_type=tier, capacity=200, stock_buckets=1)
    assert (tier.available, shares(tier)) == (190, [])  # one row again
    tier = catalogue.ticket_type_update(ticket_type=tier, stock_buckets=8)
    assert (tier.available, sum(shares(tier)), len(shares(tier))) == (0, 190, 8)
    assert_inventory_clean()

    # a type with tickets on sale cannot be deleted; the check counts the buckets
    with pytest.raises(TicketTypeHasOrders):
        catalogue.ticket_type_delete(ticket_type=tier)


@pytest.mark.django_db
def test_a_buyer_who_read_the_type_before_it_was_split_still_buys(event, monkeypatch):
    # given a one-row type the organizer splits between a buyer's validation and their purchase
    tier = catalogue.ticket_type_create(
        event=event, name="GA", price_cents=100, capacity=10, max_per_buyer=None, stock_buckets=1
    )
    validate = services._validate

    def validate_then_split(*args, **kwargs):
        result = validate(*args, **kwargs)
        catalogue.ticket_type_update(ticket_type=TicketType.objects.get(pk=tier.pk), stock_buckets=4)
        return result

    monkeypatch.setattr(services, "_validate", validate_then_split)

    # when they buy: the pool they lock is empty now
    buy(tier, 1)

    # then the buckets sell it, not a false "sold out"
    assert (on_sale(tier), sold(tier)) == (9, 1)
    assert_inventory_clean()


# --- What buyers, organizers and staff see ------------------------------------------------------


@pytest.mark.django_db
def test_buyers_see_the_sum_of_the_buckets(event):
    tier = bucketed(event, capacity=50, buckets=8)
    buy(tier, 3)
    client = APIClient()

    availability = client.get(f"{EVENTS}/{event.pk}/availability").json()
    detail = client.get(f"{EVENTS}/{event.pk}").json()
    listed = client.get(f"{EVENTS}/{event.pk}/ticket-types").json()["results"][0]
    catalogue_hits = client.get(EVENTS, {"available": "true"}).json()

    (row,) = availability
    assert (row["available"], row["capacity"]) == (47, 50)
    assert (detail["ticket_types"][0]["available"], detail["ticket_types"][0]["sold_out"]) == (47, False)
    assert (listed["available"], listed["stock_buckets"]) == (47, 8)
    assert [hit["id"] for hit in catalogue_hits["results"]] == [event.pk]
    assert catalogue_hits["results"][0]["has_availability"] is True


@pytest.mark.django_db
def test_check_inventory_sees_a_corrupted_or_missing_bucket(event):
    tier = bucketed(event, capacity=40, buckets=4)
    buy(tier, 2)
    assert_inventory_clean()

    bucket = StockBucket.objects.filter(ticket_type=tier).order_by("number").first()
    StockBucket.objects.filter(pk=bucket.pk).update(available=bucket.available + 1)  # a ticket from nowhere
    with pytest.raises(CommandError):
        call_command("check_inventory")

    StockBucket.objects.filter(pk=bucket.pk).update(available=bucket.available)
    assert_inventory_clean()
    StockBucket.objects.filter(pk=bucket.pk).update(available=0)
    TicketType.objects.filter(pk=tier.pk).update(available=bucket.available)  # moved to the pool: fine
    assert_inventory_clean()
    StockBucket.objects.filter(pk=bucket.pk).delete()  # a bucket row gone
    with pytest.raises(CommandError):
        call_command("check_inventory")


# --- The API's ticket-type field -------------------------------------------------------------


@pytest.mark.django_db
def test_stock_buckets_follow_the_capacity_unless_the_organizer_says(event, settings):
    settings.STOCK_BUCKETS, settings.STOCK_BUCKETS_MIN_CAPACITY = 16, 1000
    owner = APIClient()
    owner.force_authenticate(event.organizer.user)
    url = f"{EVENTS}/{event.pk}/ticket-types"

    big = owner.post(url, {"name": "Big", "price_cents": 100, "capacity": 5000}, format="json")
    small = owner.post(url, {"name": "Small", "price_cents": 100, "capacity": 999}, format="json")
    chosen = owner.post(url, {"name": "One", "price_cents": 100, "capacity": 5000, "stock_buckets": 1}, format="json")

    assert [r.status_code for r in (big, small, chosen)] == [201, 201, 201]
    assert [r.json()["stock_buckets"] for r in (big, small, chosen)] == [16, 1, 1]
    assert big.json()["available"] == 5000
    assert sum(shares(TicketType.objects.get(pk=big.json()["id"]))) == 5000

    split = owner.patch(f"{url}/{small.json()['id']}", {"stock_buckets": 4}, format="json")
    assert (split.status_code, split.json()["stock_buckets"], split.json()["available"]) == (200, 4, 999)

    for bad in (0, 65, "many"):
        assert_problem(
            owner.patch(f"{url}/{small.json()['id']}", {"stock_buckets": bad}, format="json"), 400, "invalid"
        )
    seated = owner.post(
        url, {"name": "Seats", "price_cents": 1, "capacity": 10, "seated": True, "stock_buckets": 2}, format="json"
    )
    assert_problem(seated, 400, "invalid")


@pytest.mark.django_db
def test_a_bucketed_purchase_costs_no_more_statements_than_a_one_row_one(event):
    """The claim replaces the conditional UPDATE of the ticket-type row, and the validating read
    brings the buckets' sum along (the sold-out shortcut). No ticket-type row is locked or written."""
    plain = catalogue.ticket_type_create(
        event=event, name="Plain", price_cents=100, capacity=10, max_per_buyer=None, stock_buckets=1
    )
    hot = bucketed(event, capacity=10, buckets=4)
    client = APIClient()
    client.force_authenticate(UserFactory())

    def statements(tier: TicketType, key: str) -> list[str]:
        body = {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}]}
        client.post(ORDERS, body, format="json")  # warm
        with CaptureQueriesContext(connection) as queries:
            r = client.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert r.status_code == 201, r.content
        skip = ("SAVEPOINT", "RELEASE", "SET LOCAL")
        return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(skip)]

    one_row, buckets = statements(plain, "plain"), statements(hot, "hot")
    assert len(buckets) == len(one_row), "\n".join(sql[:100] for sql in buckets)
    assert sum("SKIP LOCKED" in sql for sql in buckets) == 1
    assert not any('UPDATE "events_tickettype"' in sql for sql in buckets)  # the hot row is left alone


@pytest.mark.django_db
def test_a_queued_on_sale_sees_the_buckets_before_refusing_anyone(event):
    from orders import queue
    from orders.services import refuse_if_sold_out

    tier = bucketed(event, capacity=10, buckets=4)
    types = {tier.pk: TicketType.objects.get(pk=tier.pk)}  # its pool is empty: all 10 are in the buckets
    assert not refuse_if_sold_out(event_id=event.pk, wanted={tier.pk: 10}, types=types, now=timezone.now())  # no 409
    assert queue.refuse_rest_if_sold_out(event_id=event.pk) == 0
    with pytest.raises(SoldOut):
        refuse_if_sold_out(event_id=event.pk, wanted={tier.pk: 11}, types=types, now=timezone.now())
