"""The waiting list under real concurrency on PostgreSQL: released stock never slips to a newcomer
while the list waits, offers are made once, and the counter stays equal to the entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from events.models import Event, TicketType
from events.services import ticket_type_create
from events.tests.factories import EventFactory
from orders.models import Order, WaitlistEntry
from orders.services import Line, expire_due_holds, order_cancel, order_place
from orders.tests.test_concurrency import assert_inventory_clean, run_concurrently
from orders.waitlist import offer_released, offer_sweep, waitlist_join

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]

ORDERS = "/api/v1/orders"


def newcomer(event: Event, tier: TicketType):
    user = UserFactory()

    def call():
        client = APIClient()
        client.force_authenticate(user)
        body = {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}]}
        statuses = []
        for _ in range(3):  # hammering: three tries each
            response = client.post(ORDERS, body, format="json")
            statuses.append((response.status_code, response.json().get("code")))
        return statuses

    return call


@pytest.fixture
def worker_later(monkeypatch):
    """Offer tasks queued on commit wait for a worker that comes later (``offer_sweep`` here), as
    with a real broker: released stock then sits in the pool, and only the gate keeps it."""
    queued = []
    monkeypatch.setattr("orders.tasks.offer_waitlist.delay", queued.append)
    return queued


def sold_out_with_list(*, stock_buckets: int = 1, capacity: int = 12, waiting: int = 8):
    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = ticket_type_create(
        event=event, name="GA", price_cents=1000, capacity=capacity, max_per_order=4, stock_buckets=stock_buckets
    )
    holds = [order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(tier.pk, 1)]) for _ in range(capacity)]
    entries = [
        waitlist_join(user=UserFactory(), event_id=event.pk, ticket_type_id=tier.pk, quantity=1) for _ in range(waiting)
    ]
    return event, tier, holds, entries


@pytest.mark.parametrize("stock_buckets", [1, 4])
def test_cancellations_while_newcomers_hammer_go_to_the_list(stock_buckets, worker_later):
    # given a sold-out type with 8 buyers waiting
    event, tier, holds, _entries = sold_out_with_list(stock_buckets=stock_buckets)

    # when 8 holders cancel while 24 newcomers try to buy, all at once
    cancels = [lambda order=order: order_cancel(order=order).status for order in holds[:8]]
    results = run_concurrently([*cancels, *[newcomer(event, tier) for _ in range(24)]], workers=32)

    # then no newcomer got a ticket: every answer was sold out
    attempts = [attempt for result in results[8:] for attempt in result]
    assert {attempt for attempt in attempts} <= {(409, "sold_out"), (503, "busy")}, attempts
    assert results[:8] == ["cancelled"] * 8
    tier.refresh_from_db()
    assert tier.on_sale == 8  # released, waiting for the worker
    assert len(worker_later) == 8
    # and once the worker comes, every released ticket is offered to the list
    offer_sweep()
    assert set(WaitlistEntry.objects.values_list("status", flat=True)) == {"offered"}
    tier.refresh_from_db()
    assert tier.waitlisted == 0
    assert tier.on_sale == 0
    assert Order.objects.filter(event=event, status="reserved", waitlist_entry__isnull=False).count() == 8
    assert_inventory_clean()


def test_expiry_while_newcomers_hammer_goes_to_the_list(worker_later):
    event, tier, _holds, _entries = sold_out_with_list()
    later = timezone.now() + timedelta(minutes=11)  # every hold is due

    sweeps = [lambda: expire_due_holds(now=later) for _ in range(3)]
    results = run_concurrently([*sweeps, *[newcomer(event, tier) for _ in range(24)]], workers=27)

    attempts = [attempt for result in results[3:] for attempt in result]
    assert {attempt for attempt in attempts} <= {(409, "sold_out"), (503, "busy")}, attempts
    assert sum(results[:3]) == 12
    offer_sweep()
    assert set(WaitlistEntry.objects.values_list("status", flat=True)) == {"offered"}
    tier.refresh_from_db()
    # 12 released, 8 offered; the list is empty now, so the 4 left are on sale again, and nobody
    # bought while the list waited: no order but the 12 first ones and the 8 offers exists.
    assert Order.objects.filter(event=event).count() == 12 + 8
    assert tier.waitlisted == 0
    assert tier.on_sale == 4
    assert_inventory_clean()


def test_concurrent_offer_runs_offer_each_entry_once():
    _event, tier, holds, _entries = sold_out_with_list(waiting=6)
    Order.objects.filter(pk__in=[order.pk for order in holds[:4]]).update(expires_at=timezone.now())
    expire_due_holds(now=timezone.now() + timedelta(seconds=1))  # queued offers ran eagerly: 4 offered

    assert WaitlistEntry.objects.filter(status="offered").count() == 4
    TicketType.objects.filter(pk=tier.pk).update(capacity=tier.capacity + 2, available=2)  # two more, no task

    results = run_concurrently([lambda: len(offer_released(ticket_type_id=tier.pk)) for _ in range(6)], workers=6)

    assert sorted(results) == [0, 0, 0, 0, 0, 2]
    assert WaitlistEntry.objects.filter(status="offered").count() == 6
    assert Order.objects.filter(waitlist_entry__isnull=False).count() == 6
    assert_inventory_clean()


def test_one_buyer_joining_twice_at_once_gets_one_entry():
    event, tier, _holds, _entries = sold_out_with_list(waiting=0)
    user = UserFactory()

    def join():
        client = APIClient()
        client.force_authenticate(user)
        response = client.post(
            f"/api/v1/events/{event.pk}/waitlist", {"ticket_type": tier.pk, "quantity": 1}, format="json"
        )
        return response.status_code, response.json().get("code")

    results = run_concurrently([join for _ in range(6)], workers=6)

    assert sorted(results, key=str)[0][0] == 201
    assert results.count((409, "already_on_waitlist")) == 5
    assert WaitlistEntry.objects.count() == 1
    tier.refresh_from_db()
    assert tier.waitlisted == 1
    assert_inventory_clean()
