"""Check-in at the door: one admission per ticket, scoped to the organizer and its staff, online and offline."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import OrganizerProfileFactory, UserFactory
from accounts.tests.test_auth import assert_problem
from checkin.models import CheckIn, CheckInStaff
from eventflow.tests.clients import as_user
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import services
from orders.models import Order, Ticket
from orders.payments.services import order_refund
from orders.tests.helpers import paid_order

pytestmark = pytest.mark.django_db


def scan(user, event, code, gate=None):
    body = {"code": code, **({"gate": gate} if gate is not None else {})}
    return as_user(user).post(f"/api/v1/events/{event.pk}/check-ins", body, format="json")


def upload(user, event, scans):
    return as_user(user).post(f"/api/v1/events/{event.pk}/check-ins/batch", scans, format="json")


def iso(moment) -> str:
    return moment.isoformat()


@pytest.fixture
def event():
    return EventFactory(status=Event.Status.PUBLISHED, refundable_until_hours_before=24)


@pytest.fixture
def organizer(event):
    return event.organizer.user


@pytest.fixture
def tier(event):
    return TicketTypeFactory(event=event, name="GA", capacity=20)


@pytest.fixture
def vip(event):
    return TicketTypeFactory(event=event, name="VIP", capacity=5)


@pytest.fixture
def holder():
    return UserFactory(name="Ada Lovelace", email="ada@example.com")


@pytest.fixture
def ticket(holder, tier) -> Ticket:
    return paid_order(holder, tier).tickets.get()


# --- Online scans ----------------------------------------------------------------------------


def test_first_scan_admits_the_second_says_when_and_where(organizer, event, ticket, tier):
    # when
    first = scan(organizer, event, ticket.code, gate="North")

    # then
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["ticket"] == {
        "id": ticket.pk,
        "status": "valid",
        "ticket_type": {"id": tier.pk, "name": "GA"},
        "holder": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "seat": None,
    }
    assert body["gate"] == "North"
    assert body["source"] == "online"
    check_in = CheckIn.objects.get(ticket=ticket)
    assert (check_in.event_id, check_in.scanned_by, check_in.gate) == (event.pk, organizer, "North")

    # when: scanned again elsewhere
    second = assert_problem(scan(organizer, event, ticket.code, gate="South"), 409, "already_checked_in")

    # then: the first scan's time and gate
    assert second["gate"] == "North"
    assert second["checked_in_at"] == body["scanned_at"]
    assert CheckIn.objects.count() == 1


def test_ticket_responses_show_the_check_in(organizer, event, ticket, holder):
    mine = as_user(holder).get("/api/v1/users/me/tickets").json()["results"]
    assert mine[0]["checked_in_at"] is None
    scan(organizer, event, ticket.code)
    mine = as_user(holder).get("/api/v1/users/me/tickets").json()["results"]
    assert mine[0]["checked_in_at"] == CheckIn.objects.get().scanned_at.isoformat().replace("+00:00", "Z")


def test_unknown_codes_and_other_events_tickets_are_404(organizer, event, ticket, holder):
    other_event = EventFactory(status=Event.Status.PUBLISHED, organizer=event.organizer)
    other = paid_order(holder, TicketTypeFactory(event=other_event)).tickets.get()
    assert_problem(scan(organizer, event, "no-such-code"), 404, "not_found")
    assert_problem(scan(organizer, event, other.code), 404, "not_found")
    assert_problem(scan(organizer, event, "x" * 201), 400, "invalid")
    assert_problem(scan(organizer, event, None), 400, "invalid")
    assert_problem(
        as_user(organizer).post(f"/api/v1/events/{event.pk}/check-ins", {"code": 5}, format="json"), 400, "invalid"
    )
    assert_problem(
        as_user(organizer).post(f"/api/v1/events/{event.pk}/check-ins", {"code": "a", "at": 1}, format="json"),
        400,
        "invalid",
    )
    assert_problem(scan(organizer, EventFactory.build(pk=999_999_999), ticket.code), 404, "not_found")
    assert not CheckIn.objects.exists()


def test_refunded_and_transferred_tickets_are_void_at_the_door(organizer, event, tier, holder, ticket):
    # given: one ticket transferred, one refunded
    UserFactory(email="friend@example.com")
    response = as_user(holder).post(f"/api/v1/tickets/{ticket.pk}/transfer", {"email": "friend@example.com"})
    assert response.status_code == 201
    new = Ticket.objects.get(pk=response.json()["id"])
    refunded = paid_order(UserFactory(), tier).tickets.get()
    order_refund(order=refunded.order)

    # then: the old code is void, the new one admits
    body = assert_problem(scan(organizer, event, ticket.code), 409, "ticket_void")
    assert body["ticket_status"] == "transferred"
    assert assert_problem(scan(organizer, event, refunded.code), 409, "ticket_void")["ticket_status"] == "void"
    assert scan(organizer, event, new.code).status_code == 201
    call_command("check_inventory")


def test_an_unpaid_order_has_no_ticket_to_scan(organizer, event, tier, holder):
    order = services.order_place(buyer=holder, event_id=event.pk, lines=[services.Line(tier.pk, 1)])
    assert order.status == Order.Status.RESERVED
    assert not Ticket.objects.filter(order=order).exists()  # issued on payment only: any code is a 404


# --- Who may scan ---------------------------------------------------------------------------


def test_staff_scan_their_organizers_events_only(organizer, event, ticket, holder):
    # given: the organizer names a scanner
    response = as_user(organizer).post("/api/v1/organizers/me/check-in-staff", {"email": "door@example.com"})
    assert response.status_code == 201, response.content
    door = CheckInStaff.objects.get().user
    assert door.email == "door@example.com"
    assert not door.has_usable_password()
    again = as_user(organizer).post("/api/v1/organizers/me/check-in-staff", {"email": "DOOR@example.com"})
    assert again.status_code == 200
    assert CheckInStaff.objects.count() == 1
    listed = as_user(organizer).get("/api/v1/organizers/me/check-in-staff").json()
    assert [s["user"]["email"] for s in listed["results"]] == ["door@example.com"]

    # another organizer's event and draft
    rival = OrganizerProfileFactory()
    rival_event = EventFactory(status=Event.Status.PUBLISHED, organizer=rival)
    rival_ticket = paid_order(holder, TicketTypeFactory(event=rival_event)).tickets.get()
    rival_draft = EventFactory(organizer=rival)

    # then: they find the events they scan for, and scan them
    door_events = as_user(door).get("/api/v1/users/me/events?role=checkin").json()["results"]
    assert [e["id"] for e in door_events] == [event.pk]
    assert scan(door, event, ticket.code).status_code == 201
    assert_problem(scan(door, rival_event, rival_ticket.code), 403, "permission_denied")
    assert_problem(as_user(door).get(f"/api/v1/events/{rival_event.pk}/check-in-list"), 403, "permission_denied")
    assert_problem(
        upload(door, rival_event, [{"code": "x", "scanned_at": iso(timezone.now())}]), 403, "permission_denied"
    )
    assert_problem(scan(door, rival_draft, "x"), 404, "not_found")
    assert_problem(scan(rival.user, event, ticket.code), 403, "permission_denied")
    assert_problem(scan(holder, event, ticket.code), 403, "permission_denied")
    assert_problem(APIClient().post(f"/api/v1/events/{event.pk}/check-ins", {"code": "x"}), 401, "not_authenticated")
    # staff cannot manage the event or see its sales
    assert as_user(door).get(f"/api/v1/events/{event.pk}/sales").status_code == 403
    assert_problem(as_user(door).get("/api/v1/organizers/me/check-in-staff"), 403, "not_organizer")

    # when: removed, they can no longer scan
    staff_id = listed["results"][0]["id"]
    assert_problem(as_user(rival.user).delete(f"/api/v1/organizers/me/check-in-staff/{staff_id}"), 404, "not_found")
    assert as_user(organizer).delete(f"/api/v1/organizers/me/check-in-staff/{staff_id}").status_code == 204
    assert_problem(scan(door, event, ticket.code), 403, "permission_denied")


def test_naming_staff_invites_a_new_address_and_refuses_nonsense(
    organizer, mailoutbox, django_capture_on_commit_callbacks, settings
):
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            as_user(organizer).post("/api/v1/organizers/me/check-in-staff", {"email": "new@example.com"}).status_code
            == 201
        )
    assert [m.to for m in mailoutbox] == [["new@example.com"]]
    assert "An EventFlow account was created" in mailoutbox[0].body
    assert f"{settings.INVITE_CODE_HOURS} hours" in mailoutbox[0].body  # an invitation's code outlives a reset's
    code = re.search(r"Your code: (\S+)", mailoutbox[0].body).group(1)
    body = {"email": "new@example.com", "code": code, "new_password": "door-scanner-lantern-27"}
    assert APIClient().post("/api/v1/auth/password/reset/confirm", body, format="json").status_code == 204
    assert_problem(
        as_user(organizer).post("/api/v1/organizers/me/check-in-staff", {"email": organizer.email}), 400, "invalid"
    )
    assert_problem(as_user(organizer).post("/api/v1/organizers/me/check-in-staff", {"email": "x"}), 400, "invalid")
    assert_problem(as_user(organizer).post("/api/v1/organizers/me/check-in-staff", {}, format="json"), 400, "invalid")


# --- The offline list -----------------------------------------------------------------------


def test_the_check_in_list_has_hashes_statuses_and_a_version(organizer, event, tier, vip, holder, ticket):
    # given
    vip_ticket = paid_order(holder, vip).tickets.get()
    refunded = paid_order(UserFactory(), tier).tickets.get()
    order_refund(order=refunded.order)
    scan(organizer, event, vip_ticket.code)
    url = f"/api/v1/events/{event.pk}/check-in-list"

    # when
    response = as_user(organizer).get(url)

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["hash"] == "sha256"
    assert response["ETag"] == f'"{body["version"]}"'
    by_hash = {t["code_sha256"]: t for t in body["tickets"]}
    sha = lambda code: hashlib.sha256(code.encode()).hexdigest()  # noqa: E731
    assert by_hash[sha(ticket.code)]["status"] == "valid"
    assert by_hash[sha(ticket.code)]["ticket_type_name"] == "GA"
    assert by_hash[sha(vip_ticket.code)]["status"] == "checked_in"
    assert by_hash[sha(vip_ticket.code)]["checked_in_at"]
    assert by_hash[sha(refunded.code)]["status"] == "void"
    assert len(body["tickets"]) == 3
    assert ticket.code not in response.content.decode()

    # a current copy costs a 304
    assert as_user(organizer).get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304

    # every change moves the version: a check-in, a transfer, a new ticket, a void
    versions = {body["version"]}

    def version() -> str:
        current = as_user(organizer).get(url, HTTP_IF_NONE_MATCH=response["ETag"])
        assert current.status_code == 200
        return current.json()["version"]

    scan(organizer, event, ticket.code)
    versions.add(version())
    other = paid_order(UserFactory(email="o@example.com"), tier).tickets.get()
    versions.add(version())
    as_user(other.holder).post(f"/api/v1/tickets/{other.pk}/transfer", {"email": "p@example.com"})
    versions.add(version())
    order_refund(order=vip_ticket.order)
    versions.add(version())
    # an offline scan from before the online one becomes the check-in: its time on the list changed
    earlier = (timezone.now() - timedelta(hours=1)).isoformat()
    moved = upload(organizer, event, [{"code": ticket.code, "scanned_at": earlier, "gate": "East"}])
    assert moved.json()["results"][0]["result"] == "checked_in"
    versions.add(version())
    assert len(versions) == 6


def test_the_check_in_list_is_for_the_door_only(event, holder):
    assert_problem(as_user(holder).get(f"/api/v1/events/{event.pk}/check-in-list"), 403, "permission_denied")


# --- Offline batches ------------------------------------------------------------------------


def test_offline_duplicates_resolve_to_the_earliest_scan(organizer, event, tier, holder):
    # given: three tickets; one already scanned online
    a, b, c = paid_order(holder, tier, 3).tickets.order_by("pk")
    online = scan(organizer, event, c.code, gate="Main").json()
    now = timezone.now()
    scans = [
        {"code": a.code, "scanned_at": iso(now - timedelta(minutes=5)), "gate": "East"},
        {"code": a.code, "scanned_at": iso(now - timedelta(minutes=9)), "gate": "West"},  # earliest of a
        {"code": b.code, "scanned_at": iso(now - timedelta(minutes=2)), "gate": "East"},
        {"code": c.code, "scanned_at": iso(now - timedelta(hours=1)), "gate": "East"},  # before the online scan
        {"code": "unknown", "scanned_at": iso(now), "gate": "East"},
        {"code": b.code, "scanned_at": iso(now + timedelta(hours=1)), "gate": "East"},  # the future
        {"code": b.code},
        "nonsense",
    ]

    # when
    response = upload(organizer, event, scans)

    # then
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["result"] for r in results] == [
        "already_checked_in",
        "checked_in",
        "checked_in",
        "checked_in",
        "not_found",
        "invalid",
        "invalid",
        "invalid",
    ]
    assert [r["index"] for r in results] == list(range(8))
    assert results[0]["gate"] == "West"
    assert "scanned_at" in results[5]["errors"]
    assert "scanned_at" in results[6]["errors"]
    assert results[1]["ticket"]["id"] == a.pk
    stored = {ci.ticket_id: ci for ci in CheckIn.objects.all()}
    assert stored[a.pk].gate == "West"
    assert stored[a.pk].source == "offline"
    assert stored[a.pk].scanned_at == now - timedelta(minutes=9)
    # the earlier offline scan of c replaced the online one: it is the admission
    assert stored[c.pk].scanned_at == now - timedelta(hours=1)
    assert stored[c.pk].gate == "East"
    assert online["gate"] == "Main"
    assert len(stored) == 3

    # when: the same batch again (the device did not get the answer)
    again = upload(organizer, event, scans)

    # then: the same answers, nothing changed
    assert again.json() == response.json()
    assert {ci.ticket_id: (ci.scanned_at, ci.gate) for ci in CheckIn.objects.all()} == {
        pk: (ci.scanned_at, ci.gate) for pk, ci in stored.items()
    }

    # a later offline scan of a loses against the stored earliest one
    later = upload(organizer, event, [{"code": a.code, "scanned_at": iso(now), "gate": "North"}]).json()["results"]
    assert later[0]["result"] == "already_checked_in"
    assert later[0]["gate"] == "West"
    # and an online scan after all that says when and where the first scan was
    assert assert_problem(scan(organizer, event, a.code), 409, "already_checked_in")["gate"] == "West"


def test_an_offline_scan_of_a_void_ticket_is_void(organizer, event, tier, holder):
    ticket = paid_order(holder, tier).tickets.get()
    order_refund(order=ticket.order)
    results = upload(organizer, event, [{"code": ticket.code, "scanned_at": iso(timezone.now())}]).json()["results"]
    assert results[0]["result"] == "ticket_void"
    assert results[0]["ticket_status"] == "void"
    assert not CheckIn.objects.exists()


def test_a_batch_is_a_bounded_list(organizer, event):
    assert_problem(upload(organizer, event, []), 400, "invalid")
    assert_problem(upload(organizer, event, {"code": "x"}), 400, "invalid")
    too_many = [{"code": f"c{i}", "scanned_at": iso(timezone.now())} for i in range(501)]
    assert_problem(upload(organizer, event, too_many), 400, "invalid")
    fine = upload(organizer, event, too_many[:500])
    assert fine.status_code == 200
    assert {r["result"] for r in fine.json()["results"]} == {"not_found"}


# --- Counts -----------------------------------------------------------------------------------


def test_sales_count_checked_in_and_issued_per_ticket_type(organizer, event, tier, vip, holder):
    ga = list(paid_order(holder, tier, 3).tickets.all())
    paid_order(holder, vip, 1)
    scan(organizer, event, ga[0].code)
    scan(organizer, event, ga[1].code)

    sales = as_user(organizer).get(f"/api/v1/events/{event.pk}/sales").json()

    per_type = {row["name"]: (row["checked_in"], row["issued"]) for row in sales["ticket_types"]}
    assert per_type == {"GA": (2, 3), "VIP": (0, 1)}
    assert (sales["checked_in"], sales["issued"]) == (2, 4)


def test_the_door_lists_cost_a_fixed_number_of_queries(organizer, event, tier, holder, django_assert_max_num_queries):
    for _ in range(3):
        paid_order(UserFactory(), tier, 2)
    scan(organizer, event, Ticket.objects.first().code)
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        as_user(organizer).post("/api/v1/organizers/me/check-in-staff", {"email": email})

    with django_assert_max_num_queries(8):
        listed = as_user(organizer).get(f"/api/v1/events/{event.pk}/check-in-list")
    assert len(listed.json()["tickets"]) == 6
    with django_assert_max_num_queries(6):
        staff = as_user(organizer).get("/api/v1/organizers/me/check-in-staff")
    assert staff.json()["count"] == 3
