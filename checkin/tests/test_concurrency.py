"""Races at the door and on transfers, with real threads on real PostgreSQL (each thread its own
connection; ``transaction=True`` lets every request commit, as in production)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import UserFactory
from checkin.models import CheckIn
from eventflow.tests.clients import as_user
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import services
from orders.models import Ticket
from orders.payments.services import order_refund
from orders.tests.test_concurrency import run_concurrently

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]


@pytest.fixture
def event():
    return EventFactory(status=Event.Status.PUBLISHED, refundable_until_hours_before=24)


@pytest.fixture
def ticket(event) -> Ticket:
    tier = TicketTypeFactory(event=event, capacity=10)
    order = services.order_place(buyer=UserFactory(), event_id=event.pk, lines=[services.Line(tier.pk, 1)])
    return services.order_mark_paid(order=order).tickets.get()


def test_two_scanners_on_one_ticket_admit_it_once(event, ticket):
    # given: eight door devices, the organizer's account on each
    organizer = event.organizer.user

    def scan(gate: str):
        def call():
            response = as_user(organizer).post(
                f"/api/v1/events/{event.pk}/check-ins", {"code": ticket.code, "gate": gate}, format="json"
            )
            return response.status_code, response.json().get("gate")

        return call

    # when: all scan the same ticket at the same moment
    results = run_concurrently([scan(f"gate-{i}") for i in range(8)], workers=8)

    # then: exactly one 201; every other scanner is told the winner's gate
    assert Counter(code for code, _gate in results) == {201: 1, 409: 7}
    winner = next(gate for code, gate in results if code == 201)
    assert {gate for code, gate in results if code == 409} == {winner}
    assert CheckIn.objects.get().gate == winner


def test_an_online_scan_and_an_offline_upload_racing_keep_one_check_in(event, ticket):
    organizer = event.organizer.user
    earlier = (timezone.now() - timedelta(minutes=10)).isoformat()

    def online():
        response = as_user(organizer).post(f"/api/v1/events/{event.pk}/check-ins", {"code": ticket.code}, format="json")
        return response.status_code

    def offline():
        body = [{"code": ticket.code, "scanned_at": earlier, "gate": "offline"}]
        response = as_user(organizer).post(f"/api/v1/events/{event.pk}/check-ins/batch", body, format="json")
        return response.json()["results"][0]["result"]

    results = run_concurrently([online, offline, online, offline], workers=4)

    # one check-in, and it is the earliest scan (the offline one), whoever committed first
    (check_in,) = CheckIn.objects.all()
    assert check_in.gate == "offline"
    assert results.count("checked_in") == 2  # the same offline scan, reported as the record both times
    assert results.count(201) <= 1


def test_two_transfers_of_one_ticket_give_it_away_once(ticket):
    holder = ticket.holder

    def give(email: str):
        def call():
            response = as_user(holder).post(f"/api/v1/tickets/{ticket.pk}/transfer", {"email": email}, format="json")
            return response.status_code, response.json().get("code")

        return call

    results = run_concurrently([give(f"friend{i}@example.com") for i in range(6)], workers=6)

    assert Counter(code for code, _ in results) == {201: 1, 409: 5}
    assert {code for status, code in results if status == 409} == {"ticket_void"}
    assert Ticket.objects.filter(order=ticket.order, status="valid").count() == 1
    assert Ticket.objects.get(pk=ticket.pk).status == "transferred"
    call_command("check_inventory")


def test_a_transfer_racing_a_refund_ends_with_no_valid_ticket(ticket):
    holder = ticket.holder

    def give():
        response = as_user(holder).post(
            f"/api/v1/tickets/{ticket.pk}/transfer", {"email": "friend@example.com"}, format="json"
        )
        return response.status_code

    def refund():
        order_refund(order=ticket.order)
        return "refunded"

    results = run_concurrently([give, refund], workers=2)

    # whichever came first, the other waited (no deadlock) and the order's tickets are all void
    assert "refunded" in results
    assert results[0] in (201, 409)
    assert not Ticket.objects.filter(order=ticket.order, status="valid").exists()
    call_command("check_inventory")


def test_a_scan_racing_a_transfer_never_admits_a_ticket_given_away(event, ticket):
    organizer, holder = event.organizer.user, ticket.holder

    def scan():
        return (
            as_user(organizer)
            .post(f"/api/v1/events/{event.pk}/check-ins", {"code": ticket.code}, format="json")
            .status_code
        )

    def give():
        return (
            as_user(holder)
            .post(f"/api/v1/tickets/{ticket.pk}/transfer", {"email": "friend@example.com"}, format="json")
            .status_code
        )

    scanned, given = run_concurrently([scan, give], workers=2)

    # exactly one of them happened
    assert sorted([scanned, given]) == [201, 409]
    if scanned == 201:
        assert Ticket.objects.get(pk=ticket.pk).status == "valid"
    else:
        assert not CheckIn.objects.exists()
