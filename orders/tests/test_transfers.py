"""Ticket transfer: the holder gives a ticket to another email; the old code dies, a new one is issued."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import EmailCode, User
from accounts.tests.factories import UserFactory
from accounts.tests.test_auth import assert_problem
from eventflow.tests.clients import as_user
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import Ticket
from orders.payments.services import order_refund
from orders.tests.helpers import paid_order

pytestmark = pytest.mark.django_db


def transfer(user, ticket, email):
    return as_user(user).post(f"/api/v1/tickets/{ticket.pk}/transfer", {"email": email}, format="json")


@pytest.fixture
def event():
    return EventFactory(status=Event.Status.PUBLISHED, refundable_until_hours_before=24)


@pytest.fixture
def tier(event):
    return TicketTypeFactory(event=event, name="GA", capacity=10)


@pytest.fixture
def buyer():
    return UserFactory(email="buyer@example.com")


@pytest.fixture
def ticket(buyer, tier) -> Ticket:
    return paid_order(buyer, tier).tickets.get()


def test_the_recipient_gets_a_new_ticket_and_the_old_code_is_void(
    buyer, ticket, tier, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    friend = UserFactory(email="friend@example.com")
    old_code = ticket.code

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = transfer(buyer, ticket, "Friend@Example.com")

    # then: the answer is the new ticket, without its code (the recipient's alone)
    assert response.status_code == 201, response.content
    body = response.json()
    assert "code" not in body
    assert body["holder"] == "friend@example.com"
    assert body["transferred_from"] == ticket.pk
    assert body["recipient_invited"] is False
    assert body["ticket_type"] == {"id": tier.pk, "name": "GA"}
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.TRANSFERRED
    new = Ticket.objects.get(pk=body["id"])
    assert (new.holder, new.order_id, new.ticket_type_id, new.status) == (friend, ticket.order_id, tier.pk, "valid")
    assert new.transferred_from == ticket
    assert ticket.transferred_to == new
    assert new.code != old_code
    # the recipient sees it, the sender no longer does
    mine = as_user(friend).get("/api/v1/users/me/tickets").json()["results"]
    assert [t["code"] for t in mine] == [new.code]
    assert mine[0]["pdf_url"] is None  # the order's PDF is the buyer's
    assert as_user(buyer).get("/api/v1/users/me/tickets").json()["results"] == []
    # nor through the order: its list shows the old ticket as transferred, never the new code
    listed = as_user(buyer).get(f"/api/v1/orders/{ticket.order_id}/tickets").json()["results"]
    assert [(t["id"], t["status"]) for t in listed] == [(ticket.pk, "transferred")]
    assert as_user(buyer).get(f"/api/v1/tickets/{new.pk}/qr.svg").status_code == 404
    assert as_user(friend).get(f"/api/v1/tickets/{new.pk}/qr.svg").status_code == 200
    # the recipient is told, with the ticket attached
    assert [m.to for m in mailoutbox] == [["friend@example.com"]]
    assert mailoutbox[0].attachments[0][2] == "application/pdf"
    assert "code" not in mailoutbox[0].body.split("transferred")[0]  # no invitation for an existing account
    call_command("check_inventory")  # one valid ticket per sold seat still


def test_a_new_address_gets_an_account_and_an_invitation_to_set_its_password(
    buyer, ticket, mailoutbox, django_capture_on_commit_callbacks, api_client, settings
):
    settings.INVITE_CODE_HOURS = 72
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = transfer(buyer, ticket, "newcomer@example.com")

    # then: an account without a usable password holds the ticket
    assert response.status_code == 201, response.content
    assert response.json()["recipient_invited"] is True
    newcomer = User.objects.get(email="newcomer@example.com")
    assert not newcomer.has_usable_password()
    assert Ticket.objects.get(pk=response.json()["id"]).holder == newcomer
    (mail,) = mailoutbox
    assert mail.to == ["newcomer@example.com"]
    code = re.search(r'"code": "([^"]+)"', mail.body).group(1)
    assert "72 hours" in mail.body  # INVITE_CODE_HOURS: the email may be opened days later
    assert EmailCode.objects.get(user=newcomer).expires_at > timezone.now() + timedelta(hours=71)

    # when: they set a password with the emailed code and sign in
    password = "a-long-passphrase-42-tickets"
    confirm = {"email": "newcomer@example.com", "code": code, "new_password": password}
    assert api_client.post("/api/v1/auth/password/reset/confirm", confirm, format="json").status_code == 204
    login = api_client.post("/api/v1/auth/login", {"email": "newcomer@example.com", "password": password})

    # then: they see their ticket; the code worked once
    assert login.status_code == 200, login.content
    mine = APIClient(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}").get("/api/v1/users/me/tickets")
    assert [t["id"] for t in mine.json()["results"]] == [response.json()["id"]]
    again = api_client.post("/api/v1/auth/password/reset/confirm", {**confirm, "new_password": password + "x"})
    assert_problem(again, 400, "code_invalid")


def test_only_the_holder_may_transfer_and_never_to_themselves(buyer, ticket):
    stranger = UserFactory()
    assert_problem(transfer(stranger, ticket, "x@example.com"), 404, "not_found")
    body = assert_problem(transfer(buyer, ticket, "BUYER@example.com"), 400, "invalid")
    assert "email" in body["errors"]
    assert_problem(transfer(buyer, ticket, "not-an-email"), 400, "invalid")
    assert_problem(
        as_user(buyer).post(f"/api/v1/tickets/{ticket.pk}/transfer", {"email": "a@b.co", "x": 1}, format="json"),
        400,
        "invalid",
    )
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.VALID


def test_a_transferred_ticket_cannot_be_transferred_again_by_its_old_holder(buyer, ticket):
    UserFactory(email="friend@example.com")
    assert transfer(buyer, ticket, "friend@example.com").status_code == 201
    body = assert_problem(transfer(buyer, ticket, "other@example.com"), 409, "ticket_void")
    assert body["ticket_status"] == "transferred"


def test_the_new_holder_can_pass_it_on(buyer, ticket):
    friend = UserFactory(email="friend@example.com")
    second = Ticket.objects.get(pk=transfer(buyer, ticket, "friend@example.com").json()["id"])
    response = transfer(friend, second, "third@example.com")
    assert response.status_code == 201, response.content
    assert Ticket.objects.filter(order=ticket.order, status="valid").get().holder.email == "third@example.com"


def test_a_checked_in_ticket_cannot_be_transferred(buyer, ticket, event):
    from checkin.services import ticket_check_in

    ticket_check_in(event=event, code=ticket.code, scanned_by=event.organizer.user, gate="North")
    body = assert_problem(transfer(buyer, ticket, "late@example.com"), 409, "already_checked_in")
    assert body["gate"] == "North"
    assert body["checked_in_at"]


def _starts_in(event: Event, delta: timedelta) -> None:
    """Move the event (hours of margin either side of any cutoff: no race with the clock)."""
    starts = timezone.now() + delta
    Event.objects.filter(pk=event.pk).update(starts_at=starts, ends_at=starts + timedelta(hours=3))


def test_transfers_close_at_the_organizers_cutoff_and_at_the_start(buyer, ticket, event):
    # given: transfers close 48 hours before the start
    Event.objects.filter(pk=event.pk).update(transfer_cutoff_hours=48)

    # 49 hours before: open
    _starts_in(event, timedelta(hours=49))
    assert transfer(buyer, ticket, "early@example.com").status_code == 201
    new = Ticket.objects.get(status="valid")

    # 47 hours before: closed, and the answer says since when
    _starts_in(event, timedelta(hours=47))
    body = assert_problem(transfer(new.holder, new, "late@example.com"), 409, "transfer_closed")
    assert body["transfers_closed_at"]

    # without a cutoff: open until the start, closed once it started
    Event.objects.filter(pk=event.pk).update(transfer_cutoff_hours=None)
    assert transfer(new.holder, new, "later@example.com").status_code == 201
    newer = Ticket.objects.get(status="valid")
    _starts_in(event, -timedelta(minutes=30))
    assert_problem(transfer(newer.holder, newer, "latest@example.com"), 409, "transfer_closed")


def test_an_organizer_can_turn_transfers_off(buyer, ticket, event):
    organizer = as_user(event.organizer.user)
    response = organizer.patch(f"/api/v1/events/{event.pk}", {"transfers_enabled": False}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["transfers_enabled"] is False
    assert_problem(transfer(buyer, ticket, "x@example.com"), 409, "transfer_closed")
    bad = organizer.patch(f"/api/v1/events/{event.pk}", {"transfer_cutoff_hours": -1}, format="json")
    assert_problem(bad, 400, "invalid")


def test_a_refund_voids_the_transferred_ticket_too(buyer, ticket):
    UserFactory(email="friend@example.com")
    new_id = transfer(buyer, ticket, "friend@example.com").json()["id"]

    order_refund(order=ticket.order)

    assert Ticket.objects.get(pk=new_id).status == Ticket.Status.VOID
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.TRANSFERRED
    assert_problem(
        transfer(Ticket.objects.get(pk=new_id).holder, Ticket.objects.get(pk=new_id), "y@e.com"), 409, "ticket_void"
    )
    call_command("check_inventory")


def test_a_refunded_ticket_cannot_be_transferred(buyer, ticket):
    order_refund(order=ticket.order)
    assert_problem(transfer(buyer, ticket, "x@example.com"), 409, "ticket_void")


def test_the_sales_report_counts_a_transferred_ticket_once(buyer, ticket, event, tier):
    UserFactory(email="friend@example.com")
    transfer(buyer, ticket, "friend@example.com")
    sales = as_user(event.organizer.user).get(f"/api/v1/events/{event.pk}/sales").json()
    assert (sales["issued"], sales["checked_in"]) == (1, 0)
    assert sales["ticket_types"][0]["issued"] == 1


def test_transfers_are_limited_per_client_address(buyer, tier, settings):
    # given: two invitations a minute
    settings.INVITE_RATE_PER_IP = "2/m"
    first, second, third = paid_order(buyer, tier, 3).tickets.order_by("pk")

    # then: the third is throttled and nothing changed
    assert transfer(buyer, first, "a@example.com").status_code == 201
    assert transfer(buyer, second, "b@example.com").status_code == 201
    assert_problem(transfer(buyer, third, "c@example.com"), 429, "throttled")
    third.refresh_from_db()
    assert third.status == Ticket.Status.VALID
    assert not User.objects.filter(email="c@example.com").exists()
