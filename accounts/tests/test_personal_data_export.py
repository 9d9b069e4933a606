"""Personal data export: GET /users/me/export and the admin's data-request action (accounts.privacy)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import django_ratelimit.core
import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from checkin.models import CheckIn, CheckInStaff
from eventflow.tests.clients import as_user
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import Payment, Refund, Ticket, WaitlistEntry
from orders.tests.helpers import paid_order
from orders.transfers import ticket_transfer

from .factories import DEFAULT_PASSWORD, OrganizerProfileFactory, UserFactory
from .test_auth import assert_problem

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/users/me/export"
USERS_CHANGELIST = "/admin/accounts/user/"


@pytest.fixture
def event():
    return EventFactory(status=Event.Status.PUBLISHED, title="Spring Gala", venue_name="Hall", city="Lyon")


@pytest.fixture
def tier(event):
    return TicketTypeFactory(event=event, name="GA", price_cents=2500, capacity=50)


@pytest.fixture
def ada():
    return UserFactory(email="ada@example.com", name="Ada Lovelace")


@pytest.fixture
def frozen_ratelimit_clock(monkeypatch):
    """django-ratelimit counts in fixed windows of wall-clock time: pin the clock."""
    clock = SimpleNamespace(now=1_800_000_000.0)
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: clock.now))
    return clock


@pytest.fixture
def history(ada, event, tier):
    """Ada's account after a season: orders (one paid and refunded), tickets given away and received,
    a check-in, a waiting-list entry, a sign-in; and Bob's, which must never show in hers."""
    bob = UserFactory(email="bob@example.com", name="Bob")
    kept = paid_order(ada, tier, quantity=2)
    given, scanned = list(kept.tickets.order_by("id"))
    ticket_transfer(ticket_id=given.pk, sender=ada, email="bob@example.com")
    received = ticket_transfer(ticket_id=paid_order(bob, tier).tickets.get().pk, sender=bob, email="ada@example.com")
    CheckIn.objects.create(ticket=scanned, event=tier.event, scanned_at=timezone.now(), gate="North", scanned_by=bob)
    refunded = paid_order(ada, tier)
    payment = Payment.objects.create(
        order=refunded, provider="test", reference="pay_1", amount_cents=2500, currency="EUR", status="succeeded"
    )
    Refund.objects.create(payment=payment, amount_cents=2500, reason=Refund.Reason.REQUESTED_BY_BUYER)
    vip = TicketTypeFactory(event=tier.event, name="VIP", capacity=1)
    WaitlistEntry.objects.create(event=tier.event, ticket_type=vip, user=ada, quantity=2, created_at=timezone.now())
    WaitlistEntry.objects.create(event=tier.event, ticket_type=vip, user=bob, quantity=1, created_at=timezone.now())
    CheckInStaff.objects.create(organizer=tier.event.organizer, user=ada)
    r = APIClient().post(
        "/api/v1/auth/login", {"email": ada.email, "password": DEFAULT_PASSWORD}, HTTP_USER_AGENT="UA/1"
    )
    assert r.status_code == 200
    bobs_order = paid_order(bob, tier)
    return SimpleNamespace(
        bob=bob, kept=kept, given=given, scanned=scanned, received=received, refunded=refunded, bobs_order=bobs_order
    )


def test_the_export_holds_the_user_s_data_and_nobody_else_s(ada, history):
    # when
    r = as_user(ada).get(EXPORT)

    # then
    assert r.status_code == 200, r.content
    assert r["Content-Disposition"].startswith('attachment; filename="eventflow-personal-data-')
    assert r["Cache-Control"] == "no-store"
    data = r.json()
    assert data["format_version"] == 1
    assert data["profile"]["email"] == "ada@example.com"
    assert data["profile"]["name"] == "Ada Lovelace"
    assert data["organizer_profile"] is None
    # her orders, with items, payments and refunds, money in minor units and currency
    assert [o["id"] for o in data["orders"]] == [str(history.kept.pk), str(history.refunded.pk)]
    kept, refunded = data["orders"]
    assert kept["items"] == [{"ticket_type": "GA", "quantity": 2, "unit_price_cents": 2500}]
    assert (kept["total_cents"], kept["currency"], kept["status"]) == (5000, "EUR", "paid")
    assert kept["event"]["title"] == "Spring Gala"
    assert kept["payments"] == []
    assert refunded["payments"][0]["amount_cents"] == 2500
    assert refunded["payments"][0]["refund"]["reason"] == "requested_by_buyer"
    assert str(history.bobs_order.pk) not in r.content.decode()
    # tickets she holds or held: the one she gave away, the one scanned, the one she received, the other order's
    tickets = {t["id"]: t for t in data["tickets"]}
    assert set(tickets) == {
        history.given.pk,
        history.scanned.pk,
        history.received.pk,
        history.refunded.tickets.get().pk,
    }
    assert tickets[history.given.pk]["status"] == "transferred"
    assert tickets[history.given.pk]["transferred_out_at"] is not None
    assert tickets[history.received.pk]["transferred_in"] is True
    assert tickets[history.received.pk]["code"] == Ticket.objects.get(pk=history.received.pk).code
    assert tickets[history.scanned.pk]["transferred_out_at"] is None
    # the admission with her ticket (not who scanned it)
    assert data["check_ins"] == [
        {
            "ticket": history.scanned.pk,
            "event": history.scanned.ticket_type.event_id,
            "scanned_at": data["check_ins"][0]["scanned_at"],
            "gate": "North",
            "source": "online",
        }
    ]
    assert [(e["ticket_type"], e["quantity"], e["status"]) for e in data["waitlist_entries"]] == [("VIP", 2, "waiting")]
    assert [s["user_agent"] for s in data["sessions"]] == ["UA/1"]
    assert data["check_in_roles"][0]["organizer"] == history.kept.event.organizer.display_name


def test_the_export_carries_no_secrets(ada, history):
    text = as_user(ada).get(EXPORT).content.decode()

    user = User.objects.get(pk=ada.pk)
    assert user.password not in text
    assert "current_jti" not in text
    assert "password" not in json.loads(text)["profile"]
    assert "client_secret" not in text


def test_an_organizer_s_export_has_their_organizer_profile():
    profile = OrganizerProfileFactory(display_name="Night Owls")

    data = as_user(profile.user).get(EXPORT).json()

    assert data["organizer_profile"]["display_name"] == "Night Owls"
    assert data["orders"] == []


def test_the_export_costs_the_same_queries_however_long_the_history(ada, tier, django_assert_max_num_queries):
    # given: a short history, measured
    paid_order(ada, tier)
    client = as_user(ada)
    with CaptureQueriesContext(connection) as short:
        assert client.get(EXPORT).status_code == 200

    # when: ten times as many orders, tickets, payments, check-ins and waiting-list entries
    for _ in range(10):
        order = paid_order(ada, tier, quantity=2)
        Payment.objects.create(order=order, provider="test", amount_cents=5000, currency="EUR")
        ticket = order.tickets.first()
        CheckIn.objects.create(ticket=ticket, event=tier.event, scanned_at=timezone.now(), scanned_by=ada)
    for n in range(10):
        vip = TicketTypeFactory(event=tier.event, name=f"T{n}", capacity=1)
        WaitlistEntry.objects.create(event=tier.event, ticket_type=vip, user=ada, quantity=1, created_at=timezone.now())

    # then
    with django_assert_max_num_queries(len(short.captured_queries)):
        r = client.get(EXPORT)
    assert r.status_code == 200
    assert len(r.json()["orders"]) == 11
    assert len(r.json()["check_ins"]) == 10
    # the user, then one read per section: tickets (with check-ins), organizer profile, orders (+ items,
    # + payments with refunds), waiting list, queued purchases, sessions, check-in roles
    assert len(short.captured_queries) == 10


def test_the_export_is_limited_per_account(ada, settings, frozen_ratelimit_clock):
    settings.DATA_EXPORT_RATE_PER_USER = "2/h"
    client = as_user(ada)
    assert client.get(EXPORT).status_code == 200
    assert client.get(EXPORT).status_code == 200

    body = assert_problem(client.get(EXPORT), 429, "throttled")

    assert body["retry_after"] >= 1
    # another account is not affected
    assert as_user(UserFactory()).get(EXPORT).status_code == 200
    # and the next window lets her in again
    frozen_ratelimit_clock.now += 3600
    assert client.get(EXPORT).status_code == 200


def test_the_export_needs_a_signed_in_user():
    assert_problem(APIClient().get(EXPORT), 401, "not_authenticated")


# --- The admin: a data request made to staff --------------------------------------------------


def admin_client(user) -> Client:
    client = Client()  # the admin's forms: form-encoded posts, not the API client's JSON
    client.force_login(user)
    return client


def test_staff_download_the_same_export_for_one_user(ada, history):
    # given
    admin = UserFactory(is_staff=True, is_superuser=True, role=User.Role.ADMIN)

    # when
    r = admin_client(admin).post(USERS_CHANGELIST, {"action": "export_personal_data", "_selected_action": [ada.pk]})

    # then
    assert r.status_code == 200, r.content[:500]
    assert r["Content-Type"] == "application/json"
    assert (
        r["Content-Disposition"]
        == f'attachment; filename="eventflow-personal-data-{ada.pk}-{timezone.now():%Y%m%d}.json"'
    )
    data = json.loads(r.content)
    api = as_user(ada).get(EXPORT).json()
    assert data["profile"] == api["profile"]
    assert [o["id"] for o in data["orders"]] == [o["id"] for o in api["orders"]]
    assert {t["id"] for t in data["tickets"]} == {t["id"] for t in api["tickets"]}
    assert str(history.bobs_order.pk) not in r.content.decode()
    # the request is on the user's history in the admin: who exported, when
    entry = LogEntry.objects.get(object_id=str(ada.pk))
    assert entry.user_id == admin.pk
    assert "Exported personal data" in entry.get_change_message()


def test_the_admin_export_is_for_exactly_one_user(ada):
    admin = UserFactory(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
    other = UserFactory()

    r = admin_client(admin).post(
        USERS_CHANGELIST, {"action": "export_personal_data", "_selected_action": [ada.pk, other.pk]}, follow=True
    )

    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/html")
    assert "Select exactly one user" in r.content.decode()
    assert not LogEntry.objects.exists()


def test_only_platform_admins_may_export(ada):
    # given: staff allowed to see users, but not a superuser
    from django.contrib.auth.models import Permission

    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))

    # when
    client = admin_client(staff)
    page = client.get(USERS_CHANGELIST)
    r = client.post(USERS_CHANGELIST, {"action": "export_personal_data", "_selected_action": [ada.pk]})

    # then: the action is not offered, and posting it anyway downloads nothing
    assert page.status_code == 200
    assert "export_personal_data" not in page.content.decode()
    assert r.get("Content-Disposition") is None
    assert not LogEntry.objects.exists()


def test_a_ticket_given_to_you_does_not_name_the_givers_order():
    # given a buyer who gives one of two tickets to a friend
    buyer, friend = UserFactory(), UserFactory()
    order = paid_order(buyer, TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED)), 2)
    ticket_transfer(ticket_id=order.tickets.first().pk, sender=buyer, email=friend.email)
    # the friend's export has the ticket, not the buyer's order id; the buyer's has their order
    friends = as_user(friend).get(EXPORT).json()["tickets"]
    assert [(t["transferred_in"], t["order"]) for t in friends] == [(True, None)]
    buyers = as_user(buyer).get(EXPORT).json()["tickets"]
    assert {t["order"] for t in buyers} == {str(order.pk)}
