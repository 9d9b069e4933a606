"""Buying seats: by id, best available, and seats following their order through pay, expiry,
cancellation and refund; the concurrency claims on real PostgreSQL threads."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import UserFactory
from accounts.tests.test_auth import assert_problem
from eventflow.tests.clients import as_user as client_for
from events.models import Event, Seat, TicketType
from events.seats import seats_create
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import InventoryEntry, Order, OrderItem, Ticket
from orders.seating import best_block
from orders.selectors import inventory_report
from orders.services import Line, expire_due_holds, order_place

ORDERS = "/api/v1/orders"


def seated_type(event, *, price_cents=3000, name="Stalls", **kwargs) -> TicketType:
    return TicketTypeFactory(
        event=event, name=name, price_cents=price_cents, capacity=0, available=0, seated=True, **kwargs
    )


def lay_out(event, ticket_type, rows: dict[str, int], *, section="", x: bool = False) -> dict[tuple[str, str], Seat]:
    """Seats row by row (``{"A": 10}``: A1..A10), through the service; returned by (row, number)."""
    data = [
        {
            "section": section,
            "row": row,
            "number": str(n),
            "ticket_type": ticket_type.pk,
            **({"x": float(n), "y": 0.0} if x else {}),
        }
        for row, count in rows.items()
        for n in range(1, count + 1)
    ]
    created = seats_create(event=event, rows=data)
    return {(seat.row, seat.number): seat for seat in created}


def assert_clean(event=None) -> None:
    report = inventory_report(event_id=event.pk if event else None)
    assert all(not row["problems"] for row in report), [row for row in report if row["problems"]]


def buy(client, event, *, seats=None, items=None, **headers):
    body = {"event": event.pk}
    if seats is not None:
        body["seats"] = [seat.pk if isinstance(seat, Seat) else seat for seat in seats]
    if items is not None:
        body["items"] = [{"ticket_type": tt.pk, "quantity": q} for tt, q in items]
    return client.post(ORDERS, body, format="json", **headers)


@pytest.mark.django_db
class TestBySeat:
    @pytest.fixture
    def hall(self, event):
        stalls = seated_type(event)
        seats = lay_out(event, stalls, {"A": 6, "B": 6})
        return stalls, seats

    def test_buying_seats_holds_them_and_takes_their_stock(self, client, buyer, event, hall):
        stalls, seats = hall
        picked = [seats[("A", "3")], seats[("A", "4")]]
        r = buy(client, event, seats=picked)
        assert r.status_code == 201, r.content
        body = r.json()
        assert body["status"] == "reserved"
        assert body["total_cents"] == 6000
        assert body["items"] == [
            {
                "ticket_type": stalls.pk,
                "ticket_type_name": "Stalls",
                "quantity": 2,
                "unit_price_cents": 3000,
                "subtotal_cents": 6000,
            }
        ]
        assert [(s["row"], s["number"], s["ticket_type"]) for s in body["seats"]] == [
            ("A", "3", stalls.pk),
            ("A", "4", stalls.pk),
        ]
        assert client.get(f"{ORDERS}/{body['id']}").json() == body  # the 201 is what reading gives
        order = Order.objects.get(pk=body["id"])
        assert set(Seat.objects.filter(order=order).values_list("pk", "status")) == {
            (picked[0].pk, "held"),
            (picked[1].pk, "held"),
        }
        stalls.refresh_from_db()
        assert (stalls.capacity, stalls.available) == (12, 10)
        assert_clean(event)

    def test_a_taken_seat_is_a_409_naming_it_and_nothing_is_held(self, client, event, hall):
        stalls, seats = hall
        assert buy(client, event, seats=[seats[("A", "1")]]).status_code == 201
        other = client_for(UserFactory())
        r = buy(other, event, seats=[seats[("A", "2")], seats[("A", "1")]])
        body = assert_problem(r, 409, "seat_taken")
        assert body["seats"] == [seats[("A", "1")].pk]
        assert Seat.objects.get(pk=seats[("A", "2")].pk).status == "available"
        assert Order.objects.count() == 1
        stalls.refresh_from_db()
        assert stalls.available == 11
        assert_clean(event)

    @pytest.mark.parametrize(
        ("seats", "field"),
        [
            ([], "seats"),
            ([1, 1], "seats"),
            (list(range(1, 12)), "seats"),
            (["1"], "seats.0"),
            ([0], "seats.0"),
            ([2**63], "seats.0"),
            (None, "seats"),
        ],
    )
    def test_malformed_seat_lists_are_a_400(self, client, event, hall, seats, field):
        r = client.post(ORDERS, {"event": event.pk, "seats": seats}, format="json")
        body = assert_problem(r, 400, "invalid")
        assert field in body["errors"], body

    def test_seats_of_another_event_or_unknown_ones_are_a_400_naming_them(self, client, event, hall):
        other_event = EventFactory(status=Event.Status.PUBLISHED)
        foreign = lay_out(other_event, seated_type(other_event), {"A": 1})[("A", "1")]
        r = buy(client, event, seats=[foreign, 99_999_999])
        body = assert_problem(r, 400, "invalid")
        assert body["seats"] == sorted([foreign.pk, 99_999_999])
        assert "seats" in body["errors"]
        assert Order.objects.count() == 0

    def test_seats_and_a_quantity_for_the_same_type_is_a_400(self, client, event, hall):
        stalls, seats = hall
        r = buy(client, event, seats=[seats[("A", "1")]], items=[(stalls, 1)])
        assert_problem(r, 400, "invalid")

    def test_seats_combine_with_unseated_items(self, client, event, tier, hall):
        stalls, seats = hall
        r = buy(client, event, seats=[seats[("B", "1")]], items=[(tier, 2)])
        assert r.status_code == 201, r.content
        assert {item["ticket_type"]: item["quantity"] for item in r.json()["items"]} == {tier.pk: 2, stalls.pk: 1}
        assert r.json()["total_cents"] == 3000 + 2 * 2500
        assert_clean(event)

    def test_the_per_order_limit_counts_seats(self, client, event):
        stalls = seated_type(event, max_per_order=2)
        seats = lay_out(event, stalls, {"A": 4})
        r = buy(client, event, seats=list(seats.values())[:3])
        assert_problem(r, 409, "limit_exceeded")
        assert not Seat.objects.exclude(status="available").exists()

    def test_paying_sells_the_seats_and_the_tickets_carry_them(self, client, event, hall):
        _stalls, seats = hall
        order = buy(client, event, seats=[seats[("A", "2")], seats[("A", "1")]]).json()
        payment = client.post(f"{ORDERS}/{order['id']}/pay").json()["payment"]
        assert client.post(f"/api/v1/payments/test/{payment['id']}/complete").status_code == 200
        assert set(Seat.objects.filter(order_id=order["id"]).values_list("status", flat=True)) == {"sold"}
        tickets = client.get(f"{ORDERS}/{order['id']}/tickets").json()["results"]
        assert sorted((t["seat"]["row"], t["seat"]["number"]) for t in tickets) == [("A", "1"), ("A", "2")]
        assert {t["seat"]["id"] for t in tickets} == {seats[("A", "1")].pk, seats[("A", "2")].pk}
        mine = client.get("/api/v1/users/me/tickets").json()["results"]
        assert all(t["seat"] is not None for t in mine)
        pdf = client.get(f"{ORDERS}/{order['id']}/tickets.pdf")
        assert pdf.status_code == 200
        assert pdf.content.startswith(b"%PDF")
        assert_clean(event)

    def test_a_free_seated_order_is_sold_at_once(self, client, event):
        free = seated_type(event, price_cents=0)
        seats = lay_out(event, free, {"A": 2})
        r = buy(client, event, seats=[seats[("A", "1")]])
        assert r.status_code == 201, r.content
        assert r.json()["status"] == "paid"
        assert Seat.objects.get(pk=seats[("A", "1")].pk).status == "sold"
        assert Ticket.objects.get(order_id=r.json()["id"]).seat_id == seats[("A", "1")].pk
        assert_clean(event)

    def test_unseated_tickets_have_no_seat(self, client, event, tier):
        r = buy(client, event, items=[(TicketTypeFactory(event=event, price_cents=0, capacity=2), 1)])
        assert r.json()["seats"] == []
        ticket = client.get(f"{ORDERS}/{r.json()['id']}/tickets").json()["results"][0]
        assert ticket["seat"] is None


@pytest.mark.django_db
class TestSeatsFollowTheirOrder:
    @pytest.fixture
    def hall(self, event):
        stalls = seated_type(event)
        return stalls, lay_out(event, stalls, {"A": 4})

    def test_expiry_frees_the_seats_once(self, client, event, hall):
        stalls, seats = hall
        order_id = buy(client, event, seats=[seats[("A", "1")], seats[("A", "2")]]).json()["id"]
        Order.objects.filter(pk=order_id).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert expire_due_holds() == 1
        assert expire_due_holds() == 0
        assert not Seat.objects.exclude(status="available").exists()
        assert not Seat.objects.filter(order__isnull=False).exists()
        stalls.refresh_from_db()
        assert stalls.available == 4
        assert InventoryEntry.objects.filter(order_id=order_id, kind="release").count() == 1
        assert_clean(event)
        # and they are on sale again
        assert buy(client_for(UserFactory()), event, seats=[seats[("A", "1")]]).status_code == 201

    def test_a_purchase_finding_a_seat_in_a_due_hold_expires_it_and_buys(self, client, event, hall):
        _stalls, seats = hall
        first = buy(client, event, seats=[seats[("A", "1")]]).json()["id"]
        Order.objects.filter(pk=first).update(expires_at=timezone.now() - timedelta(seconds=1))
        r = buy(client_for(UserFactory()), event, seats=[seats[("A", "1")]])
        assert r.status_code == 201, r.content
        assert Order.objects.get(pk=first).status == "expired"
        assert_clean(event)

    def test_cancelling_frees_the_seats(self, client, event, hall):
        stalls, seats = hall
        order_id = buy(client, event, seats=[seats[("A", "3")]]).json()["id"]
        assert client.post(f"{ORDERS}/{order_id}/cancel").json()["status"] == "cancelled"
        assert Seat.objects.get(pk=seats[("A", "3")].pk).status == "available"
        assert_problem(client.post(f"{ORDERS}/{order_id}/cancel"), 409, "order_not_cancellable")
        stalls.refresh_from_db()
        assert stalls.available == 4
        assert_clean(event)

    def test_a_refund_frees_sold_seats_once(self, client, event, hall, django_capture_on_commit_callbacks):
        stalls, seats = hall
        Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=48)
        order_id = buy(client, event, seats=[seats[("A", "1")], seats[("A", "4")]]).json()["id"]
        payment = client.post(f"{ORDERS}/{order_id}/pay").json()["payment"]
        client.post(f"/api/v1/payments/test/{payment['id']}/complete")
        assert Seat.objects.filter(status="sold").count() == 2
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(f"{ORDERS}/{order_id}/cancel").json()["status"] == "refunded"
        assert not Seat.objects.exclude(status="available").exists()
        assert_problem(client.post(f"{ORDERS}/{order_id}/cancel"), 409, "order_not_cancellable")
        stalls.refresh_from_db()
        assert stalls.available == 4
        assert set(Ticket.objects.filter(order_id=order_id).values_list("status", flat=True)) == {"void"}
        assert_clean(event)
        # Sold again to someone else: a new valid ticket on the same seat.
        again = buy(client_for(UserFactory()), event, seats=[seats[("A", "1")]])
        assert again.status_code == 201
        assert_clean(event)

    def test_a_payment_after_expiry_does_not_retake_seats_it_is_refunded(self, client, event, hall):
        _stalls, seats = hall
        order_id = buy(client, event, seats=[seats[("A", "2")]]).json()["id"]
        payment = client.post(f"{ORDERS}/{order_id}/pay").json()["payment"]
        Order.objects.filter(pk=order_id).update(expires_at=timezone.now() - timedelta(seconds=1))
        expire_due_holds()
        buy(client_for(UserFactory()), event, seats=[seats[("A", "2")]])  # somebody else sits there now
        client.post(f"/api/v1/payments/test/{payment['id']}/complete")
        assert Order.objects.get(pk=order_id).status == "expired"
        assert Seat.objects.get(pk=seats[("A", "2")].pk).order_id != order_id
        assert_clean(event)

    def test_check_inventory_sees_seats_that_drift(self, client, event, hall):
        stalls, seats = hall
        buy(client, event, seats=[seats[("A", "1")]])
        Seat.objects.filter(pk=seats[("A", "2")].pk).update(status="sold", order=Order.objects.get())
        row = next(r for r in inventory_report(event_id=event.pk) if r["ticket_type"] == stalls.pk)
        assert any("seats sold" in problem for problem in row["problems"]), row
        Seat.objects.filter(pk=seats[("A", "2")].pk).update(status="available", order=None)
        Seat.objects.filter(pk=seats[("A", "3")].pk).delete()  # behind the service's back
        row = next(r for r in inventory_report(event_id=event.pk) if r["ticket_type"] == stalls.pk)
        assert any("seats for capacity" in problem for problem in row["problems"]), row


@pytest.mark.django_db
class TestBestAvailable:
    def test_front_row_centre_first_then_the_next_best(self, client, event):
        stalls = seated_type(event)
        seats = lay_out(event, stalls, {"A": 7, "B": 9})
        r = buy(client, event, items=[(stalls, 3)])
        assert r.status_code == 201, r.content
        assert [(s["row"], s["number"]) for s in r.json()["seats"]] == [("A", "3"), ("A", "4"), ("A", "5")]
        # Row A has no 3 adjacent left (1-2 and 6-7): row B's centre.
        r = buy(client_for(UserFactory()), event, items=[(stalls, 3)])
        assert [(s["row"], s["number"]) for s in r.json()["seats"]] == [("B", "4"), ("B", "5"), ("B", "6")]
        # Two fit in row A again, at the side nearest the centre (a tie broken by seat order).
        r = buy(client_for(UserFactory()), event, items=[(stalls, 2)])
        assert [(s["row"], s["number"]) for s in r.json()["seats"]] == [("A", "1"), ("A", "2")]
        assert seats  # laid out
        assert_clean(event)

    def test_rows_and_numbers_sort_naturally(self, event):
        stalls = seated_type(event)
        data = [
            {"row": row, "number": number, "ticket_type": stalls.pk}
            for row in ("10", "2", "1")
            for number in ("1", "2", "10", "9", "3")
        ]
        seats_create(event=event, rows=data)
        block = best_block(event_id=event.pk, ticket_type_id=stalls.pk, quantity=3)
        labels = sorted(Seat.objects.filter(pk__in=block).values_list("row", "number"))
        assert labels == [("1", "2"), ("1", "3"), ("1", "9")]  # row 1 before 2 and 10; 2, 3, 9 the middle

    def test_x_positions_decide_the_centre_across_sections(self, event):
        stalls = seated_type(event)
        lay_out(event, stalls, {"A": 10}, section="Left", x=True)
        # the centre of "Left" by x is 5.5: seats 5 and 6
        block = best_block(event_id=event.pk, ticket_type_id=stalls.pk, quantity=2)
        assert sorted(Seat.objects.filter(pk__in=block).values_list("number", flat=True)) == ["5", "6"]

    def test_no_row_with_enough_adjacent_seats_is_sold_out_not_scattered(self, client, event):
        stalls = seated_type(event)
        seats = lay_out(event, stalls, {"A": 3})
        buy(client, event, seats=[seats[("A", "2")]])
        r = buy(client_for(UserFactory()), event, items=[(stalls, 2)])
        body = assert_problem(r, 409, "sold_out")
        assert body["adjacent"] is False
        assert body["available"] == 2
        r = buy(client_for(UserFactory()), event, items=[(stalls, 5)])
        assert assert_problem(r, 409, "sold_out")["available"] == 2
        assert_clean(event)

    def test_seats_of_another_type_break_a_row(self, event):
        stalls = seated_type(event)
        vip = seated_type(event, name="VIP")
        seats_create(
            event=event,
            rows=[{"row": "A", "number": str(n), "ticket_type": (vip if n == 3 else stalls).pk} for n in range(1, 6)],
        )
        assert best_block(event_id=event.pk, ticket_type_id=stalls.pk, quantity=3) is None
        assert len(best_block(event_id=event.pk, ticket_type_id=stalls.pk, quantity=2)) == 2

    def test_a_high_demand_event_places_seat_orders_directly(self, client, event):
        Event.objects.filter(pk=event.pk).update(high_demand=True)
        stalls = seated_type(event)
        seats = lay_out(event, stalls, {"A": 2})
        r = buy(client, event, seats=[seats[("A", "1")]])
        assert r.status_code == 201, r.content
        r = buy(client_for(UserFactory()), event, items=[(stalls, 1)])
        assert r.status_code == 201, r.content

    def test_idempotent_replay_of_a_seat_order(self, client, event):
        stalls = seated_type(event)
        seats = lay_out(event, stalls, {"A": 2})
        first = buy(client, event, seats=[seats[("A", "1")]], HTTP_IDEMPOTENCY_KEY="k1")
        again = buy(client, event, seats=[seats[("A", "1")]], HTTP_IDEMPOTENCY_KEY="k1")
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert Order.objects.count() == 1


@pytest.mark.django_db
def test_a_plain_purchase_never_touches_seats(event, tier):
    """The seated path is out of a plain purchase's way: nothing about seats is read or written."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(tier.pk, 1)])
    assert not any("events_seat" in q["sql"] for q in queries.captured_queries)


# --- Concurrency, on real PostgreSQL ------------------------------------------------------------


def _event_with_seats(count: int, *, row_length: int = 10):
    event = EventFactory(status=Event.Status.PUBLISHED)
    stalls = seated_type(event, max_per_order=10, max_per_buyer=None)
    rows = {chr(ord("A") + index): row_length for index in range(count // row_length)}
    seats = lay_out(event, stalls, rows)
    return event, stalls, sorted(seats.values(), key=lambda seat: seat.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_100_buyers_on_20_seats_with_overlapping_choices_never_share_a_seat():
    from orders.tests.test_concurrency import run_concurrently

    event, stalls, seats = _event_with_seats(20)
    users = UserFactory.create_batch(100)
    choices = [[seats[(i * 3 + k) % 20] for k in range(1 + i % 3)] for i in range(100)]  # 1-3 seats, overlapping

    def call(user, picked):
        def run():
            r = buy(client_for(user), event, seats=picked)
            return r.status_code, r.json()

        return run

    results = run_concurrently([call(u, c) for u, c in zip(users, choices, strict=True)], workers=16)
    statuses = Counter(status for status, _body in results)
    assert set(statuses) <= {201, 409, 503}, statuses
    assert statuses[201] >= 7  # 20 seats, 1-3 per buyer: at least 7 orders fit before every seat is gone
    assert statuses[409] >= 50  # and most of the 100 found a seat taken
    won: list[int] = []
    for (status, body), picked in zip(results, choices, strict=True):
        if status == 201:
            ids = sorted(seat.pk for seat in picked)
            assert sorted(s["id"] for s in body["seats"]) == ids
            assert sorted(Seat.objects.filter(order_id=body["id"]).values_list("pk", flat=True)) == ids
            won += ids
        elif status == 409:
            assert body["code"] == "seat_taken"
            assert set(body["seats"]) <= {seat.pk for seat in picked}
    assert len(won) == len(set(won))  # no seat sold twice
    assert Seat.objects.filter(status="held").count() == len(won)
    stalls.refresh_from_db()
    assert stalls.available == 20 - len(won)
    call_command("check_inventory")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_best_available_under_concurrency_gives_adjacent_blocks_that_never_overlap():
    from orders.tests.test_concurrency import run_concurrently

    event, stalls, seats = _event_with_seats(40)  # rows A-D of 10
    users = UserFactory.create_batch(30)

    def call(user):
        def run():
            r = buy(client_for(user), event, items=[(stalls, 2)])
            return r.status_code, r.json()

        return run

    results = run_concurrently([call(u) for u in users], workers=12)
    statuses = Counter(status for status, _body in results)
    assert set(statuses) <= {201, 409, 503}, statuses
    assert statuses[201] >= 15
    taken: list[int] = []
    position = {seat.pk: (seat.row, int(seat.number)) for seat in seats}
    for status, body in results:
        if status != 201:
            continue
        ids = [s["id"] for s in body["seats"]]
        (row_a, n_a), (row_b, n_b) = sorted(position[pk] for pk in ids)
        assert row_a == row_b
        assert n_b == n_a + 1
        taken += ids
    assert len(taken) == len(set(taken))
    assert OrderItem.objects.filter(ticket_type=stalls).count() == statuses[201]
    call_command("check_inventory")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_control_without_the_seat_lock_a_seat_is_sold_twice_and_check_inventory_says_so(monkeypatch):
    """The control for the test above: with the seat check taken outside any lock, buyers racing
    for one seat both get it, and check_inventory reports the drift. So the lock is what holds."""
    import contextlib
    import threading

    from orders import seating
    from orders.tests.test_concurrency import run_concurrently

    event, _stalls, seats = _event_with_seats(10)
    target = seats[0]
    gate = threading.Barrier(8)

    def unlocked(seat_ids, *, skip_locked=False):
        free = {seat.pk: seat for seat in Seat.objects.filter(pk__in=seat_ids, status=Seat.Status.AVAILABLE)}
        with contextlib.suppress(threading.BrokenBarrierError):
            gate.wait(timeout=5)  # everyone has read "available" before anyone writes
        return free

    monkeypatch.setattr(seating, "_lock", unlocked)
    users = UserFactory.create_batch(8)
    results = run_concurrently(
        [lambda user=user: buy(client_for(user), event, seats=[target]).status_code for user in users], workers=8
    )
    assert results.count(201) > 1  # sold more than once
    with pytest.raises(Exception, match="drift"):
        call_command("check_inventory")
