"""Oversell, deadlock and double-release races, with real threads on real PostgreSQL.

Each thread has its own database connection (Django opens one per thread), so
these are genuinely concurrent transactions. ``transaction=True`` lets every
request commit, as in production.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import UserFactory
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import InventoryEntry, Order, OrderItem
from orders.services import Line, expire_due_holds, order_place

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]

ORDERS = "/api/v1/orders"


def run_concurrently(calls: list[Callable[[], object]], *, workers: int) -> list[object]:
    """Run ``calls`` on ``workers`` threads that start together; each thread closes its connection."""
    barrier = threading.Barrier(min(workers, len(calls)))

    def run(call: Callable[[], object], index: int) -> object:
        try:
            if index < barrier.parties:
                barrier.wait(timeout=30)
            return call()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, calls, range(len(calls))))


def buyers(n: int) -> list[User]:
    return UserFactory.create_batch(n)


def purchase(user: User, event: Event, *lines: tuple[TicketType, int], key: str | None = None) -> Callable:
    def call():
        client = APIClient()
        client.force_authenticate(user)
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        body = {"event": event.pk, "items": [{"ticket_type": tt.pk, "quantity": q} for tt, q in lines]}
        response = client.post(ORDERS, body, format="json", **headers)
        return response.status_code, response.json().get("code"), response.json().get("id")

    return call


def sold(tt: TicketType) -> int:
    return sum(
        OrderItem.objects.filter(ticket_type=tt, order__status__in=["reserved", "paid"]).values_list(
            "quantity", flat=True
        )
    )


def assert_inventory_clean() -> None:
    call_command("check_inventory")  # raises CommandError on any drift


@pytest.fixture
def event():
    return EventFactory(status=Event.Status.PUBLISHED)


def test_fifty_buyers_race_for_the_last_ticket(event):
    last = TicketTypeFactory(event=event, capacity=1)
    results = run_concurrently([purchase(user, event, (last, 1)) for user in buyers(50)], workers=50)
    outcomes = Counter((status, code) for status, code, _ in results)
    assert outcomes == {(201, None): 1, (409, "sold_out"): 49}
    last.refresh_from_db()
    assert last.available == 0
    assert sold(last) == 1
    assert Order.objects.count() == 1
    assert_inventory_clean()


def test_five_hundred_buyers_over_two_ticket_types(event):
    a = TicketTypeFactory(event=event, capacity=50)
    b = TicketTypeFactory(event=event, capacity=50)
    calls = [purchase(user, event, ((a, b)[i % 2], 1)) for i, user in enumerate(buyers(500))]
    results = run_concurrently(calls, workers=8)
    outcomes = Counter((status, code) for status, code, _ in results)
    assert outcomes == {(201, None): 100, (409, "sold_out"): 400}
    for tt in (a, b):
        tt.refresh_from_db()
        assert (tt.available, sold(tt)) == (0, 50)
    assert_inventory_clean()


def test_opposite_lock_orders_never_deadlock(event):
    a = TicketTypeFactory(event=event, capacity=1000, max_per_order=10)
    b = TicketTypeFactory(event=event, capacity=1000, max_per_order=10)
    calls = [
        purchase(user, event, *(((a, 1), (b, 2)) if i % 2 else ((b, 2), (a, 1)))) for i, user in enumerate(buyers(120))
    ]
    results = run_concurrently(calls, workers=30)
    assert Counter(status for status, _, _ in results) == {201: 120}
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.available, b.available) == (1000 - 120, 1000 - 240)
    assert_inventory_clean()


def test_same_idempotency_key_twice_at_once_makes_one_order(event):
    tier = TicketTypeFactory(event=event, capacity=100)
    for attempt in range(10):
        user = UserFactory()
        key = f"checkout-{attempt}"
        results = run_concurrently([purchase(user, event, (tier, 1), key=key) for _ in range(2)], workers=2)
        assert Order.objects.filter(buyer=user).count() == 1
        statuses = sorted((status, code) for status, code, _ in results)
        # The key is claimed inside the order's transaction: the second waits for the first to
        # commit and replays its response, never a "still in progress" for a POST /orders.
        assert statuses == [(201, None), (201, None)], statuses
        ids = {order_id for status, _, order_id in results if status == 201}
        assert len(ids) == 1
    tier.refresh_from_db()
    assert tier.available == 90
    assert_inventory_clean()


def test_expiry_racing_a_cancel_returns_stock_once(event):
    tier = TicketTypeFactory(event=event, capacity=5)
    for _ in range(15):
        user = UserFactory()
        order = order_place(buyer=user, event_id=event.pk, lines=[Line(tier.pk, 2)])
        Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

        def cancel(user=user, order=order):
            client = APIClient()
            client.force_authenticate(user)
            response = client.post(f"{ORDERS}/{order.pk}/cancel")
            return response.status_code, response.json().get("code"), None

        def expire():
            return expire_due_holds(), None, None

        results = run_concurrently([cancel, expire], workers=2)
        order.refresh_from_db()
        tier.refresh_from_db()
        assert tier.available == 5, results
        assert order.status in {"cancelled", "expired"}
        assert InventoryEntry.objects.filter(order=order, kind="release").count() == 1
        cancel_status, cancel_code, _ = results[0]
        assert (cancel_status, order.status) in {(200, "cancelled"), (409, "expired")}
        if cancel_status == 409:
            assert cancel_code == "order_not_cancellable"
    assert_inventory_clean()


def test_a_purchase_releases_due_holds_itself_when_stock_is_short(event):
    tier = TicketTypeFactory(event=event, capacity=2)
    stale = order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(tier.pk, 2)])
    Order.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    results = run_concurrently([purchase(user, event, (tier, 1)) for user in buyers(6)], workers=6)
    assert Counter(status for status, _, _ in results) == {201: 2, 409: 4}
    stale.refresh_from_db()
    assert stale.status == "expired"
    assert_inventory_clean()


def test_a_stuck_lock_is_503_busy_not_a_hang(event, settings):
    settings.ORDER_LOCK_TIMEOUT_MS = 300
    tier = TicketTypeFactory(event=event, capacity=10)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic():
                list(TicketType.objects.select_for_update().filter(pk=tier.pk))
                locked.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        started = time.monotonic()
        client = APIClient()
        client.force_authenticate(UserFactory())
        response = client.post(ORDERS, {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}]})
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert response.status_code == 503
    assert response.json()["code"] == "busy"
    assert response["Retry-After"] == "1"
    assert elapsed < 3
    tier.refresh_from_db()
    assert tier.available == 10
    assert Order.objects.count() == 0


def test_control_without_the_lock_the_same_race_oversells(event):
    """The harness can see an oversell: a naive read-check-write purchase sells more than it has."""
    tier = TicketTypeFactory(event=event, capacity=1)
    wins = []

    def naive_purchase():
        with transaction.atomic():
            row = TicketType.objects.get(pk=tier.pk)  # no lock
            if row.available >= 1:
                time.sleep(0.2)  # everyone has read "1 left" by now
                TicketType.objects.filter(pk=tier.pk).update(available=row.available - 1)
                wins.append(1)

    run_concurrently([naive_purchase for _ in range(5)], workers=5)
    tier.refresh_from_db()
    assert len(wins) > 1  # several buyers "bought" the single ticket
    assert tier.available == 0  # and the stock row cannot tell: lost updates
