"""Organizers manage their events' discount codes: /events/{id}/discount-codes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import OrganizerProfileFactory, UserFactory
from accounts.tests.test_auth import assert_problem
from events.models import DiscountCode, Event
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return EventFactory(status=Event.Status.PUBLISHED)


@pytest.fixture
def owner(event) -> APIClient:
    client = APIClient()
    client.force_authenticate(event.organizer.user)
    return client


def url(event, code_id=None) -> str:
    base = f"/api/v1/events/{event.pk}/discount-codes"
    return base if code_id is None else f"{base}/{code_id}"


def test_the_owner_creates_reads_changes_and_deletes_a_code(owner, event):
    ga, vip = TicketTypeFactory(event=event), TicketTypeFactory(event=event)
    created = owner.post(
        url(event),
        {"code": "Early-Bird", "percent_off": 20, "max_uses": 5, "ticket_types": [vip.pk, vip.pk]},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["code"] == "Early-Bird"
    assert (body["percent_off"], body["amount_off_cents"], body["max_uses"], body["uses"]) == (20, None, 5, 0)
    assert body["ticket_types"] == [vip.pk]
    assert body["active"] is True
    code = DiscountCode.objects.get(pk=body["id"])
    assert list(code.ticket_types.all()) == [vip]

    listed = owner.get(url(event))
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [code.pk]
    assert owner.get(url(event, code.pk)).json() == body

    # Sending the amount alone switches the kind; the ticket types are replaced.
    changed = owner.patch(url(event, code.pk), {"amount_off_cents": 500, "ticket_types": [ga.pk]}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["percent_off"], changed.json()["amount_off_cents"]) == (None, 500)
    assert changed.json()["ticket_types"] == [ga.pk]
    cleared = owner.patch(url(event, code.pk), {"ticket_types": [], "max_uses": None}, format="json")
    assert (cleared.json()["ticket_types"], cleared.json()["max_uses"]) == ([], None)

    assert owner.delete(url(event, code.pk)).status_code == 204
    assert not DiscountCode.objects.filter(pk=code.pk).exists()  # no order carried it: really gone
    assert_problem(owner.get(url(event, code.pk)), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "X"}, "percent_off"),  # neither
        ({"code": "X", "percent_off": 10, "amount_off_cents": 100}, "percent_off"),  # both
        ({"code": "X", "percent_off": 0}, "percent_off"),
        ({"code": "X", "percent_off": 101}, "percent_off"),
        ({"code": "X", "amount_off_cents": 0}, "amount_off_cents"),
        ({"code": "X", "amount_off_cents": 10**12}, "amount_off_cents"),
        ({"code": "X", "percent_off": "10"}, "percent_off"),
        ({"code": "has space", "percent_off": 10}, "code"),
        ({"code": "", "percent_off": 10}, "code"),
        ({"code": "x" * 65, "percent_off": 10}, "code"),
        ({"code": None, "percent_off": 10}, "code"),
        ({"code": "X", "percent_off": 10, "max_uses": 0}, "max_uses"),
        ({"code": "X", "percent_off": 10, "max_uses": 2**63}, "max_uses"),
        ({"code": "X", "percent_off": 10, "ticket_types": [2**62]}, "ticket_types"),
        ({"code": "X", "percent_off": 10, "ticket_types": "1"}, "ticket_types"),
        ({"code": "X", "percent_off": 10, "ticket_types": [0]}, "ticket_types.0"),
        ({"code": "X", "percent_off": 10, "uses": 3}, "uses"),
        ({"code": "X", "percent_off": 10, "valid_from": "2027-01-01T00:00:00"}, "valid_from"),
        (
            {
                "code": "X",
                "percent_off": 10,
                "valid_from": "2027-02-01T00:00:00+00:00",
                "valid_until": "2027-01-01T00:00:00+00:00",
            },
            "valid_until",
        ),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(owner, event, body, field):
    problem = assert_problem(owner.post(url(event), body, format="json"), 400, "invalid")
    assert field in problem["errors"], problem
    assert not DiscountCode.objects.exists()


def test_ticket_types_of_another_event_are_refused(owner, event):
    other = TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED))
    mine = TicketTypeFactory(event=event)
    problem = assert_problem(
        owner.post(url(event), {"code": "X", "percent_off": 10, "ticket_types": [mine.pk, other.pk]}, format="json"),
        400,
        "invalid",
    )
    assert str(other.pk) in problem["errors"]["ticket_types"][0]
    assert not DiscountCode.objects.exists()


def test_a_code_is_unique_per_event_whatever_its_case(owner, event):
    assert owner.post(url(event), {"code": "SUMMER", "percent_off": 10}, format="json").status_code == 201
    problem = assert_problem(
        owner.post(url(event), {"code": "summer", "amount_off_cents": 100}, format="json"), 400, "discount_code_taken"
    )
    assert "code" in problem["errors"]
    other = owner.post(url(event), {"code": "winter", "percent_off": 10}, format="json").json()
    assert_problem(owner.patch(url(event, other["id"]), {"code": "Summer"}, format="json"), 400, "discount_code_taken")
    # Another event may have the same code; the database enforces the rule too.
    second = EventFactory(organizer=event.organizer, status=Event.Status.PUBLISHED)
    assert owner.post(url(second), {"code": "summer", "percent_off": 5}, format="json").status_code == 201
    with pytest.raises(IntegrityError), transaction.atomic():
        DiscountCode.objects.create(event=event, code="sUmMeR", percent_off=1)


def test_max_uses_never_drops_below_uses(owner, event):
    code = DiscountCode.objects.create(event=event, code="FIVE", percent_off=10, max_uses=5, uses=3)
    problem = assert_problem(
        owner.patch(url(event, code.pk), {"max_uses": 2}, format="json"), 409, "max_uses_below_uses"
    )
    assert problem["uses"] == 3
    assert owner.patch(url(event, code.pk), {"max_uses": 3}, format="json").status_code == 200
    code.refresh_from_db()
    assert code.max_uses == 3
    # uses is read-only over the API.
    assert_problem(owner.patch(url(event, code.pk), {"uses": 0}, format="json"), 400, "invalid")


def test_the_database_refuses_what_the_service_refuses(event):
    for fields in (
        {"percent_off": 10, "amount_off_cents": 100},
        {},
        {"percent_off": 0},
        {"amount_off_cents": 0},
        {"percent_off": 10, "max_uses": 2, "uses": 3},
        {"percent_off": 10, "valid_from": timezone.now(), "valid_until": timezone.now() - timedelta(days=1)},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            DiscountCode.objects.create(event=event, code="DB", **fields)


def test_only_the_owner_manages_codes(event):
    code = DiscountCode.objects.create(event=event, code="SECRET", percent_off=50)
    stranger = APIClient()
    stranger.force_authenticate(UserFactory())
    other_organizer = APIClient()
    other_organizer.force_authenticate(OrganizerProfileFactory().user)
    for client in (stranger, other_organizer):
        assert_problem(client.get(url(event)), 403, "permission_denied")
        assert_problem(client.get(url(event, code.pk)), 403, "permission_denied")
        assert_problem(
            client.post(url(event), {"code": "MINE", "percent_off": 99}, format="json"), 403, "permission_denied"
        )
        assert_problem(client.patch(url(event, code.pk), {"percent_off": 99}, format="json"), 403, "permission_denied")
        assert_problem(client.delete(url(event, code.pk)), 403, "permission_denied")
    assert APIClient().get(url(event)).status_code == 401
    # Someone else's draft does not exist for them; a code of another event neither.
    draft = EventFactory(organizer=event.organizer)
    assert_problem(other_organizer.get(url(draft)), 404, "not_found")
    owner = APIClient()
    owner.force_authenticate(event.organizer.user)
    assert_problem(owner.get(url(draft, code.pk)), 404, "not_found")
    assert_problem(owner.get(url(event, 2**62)), 404, "not_found")
    code.refresh_from_db()
    assert (code.code, code.percent_off) == ("SECRET", 50)
    assert DiscountCode.objects.count() == 1


def test_a_cancelled_event_takes_no_new_codes(owner, event):
    Event.objects.filter(pk=event.pk).update(status=Event.Status.CANCELLED)
    assert_problem(owner.post(url(event), {"code": "LATE", "percent_off": 10}, format="json"), 409, "event_cancelled")


def test_deleting_the_last_ticket_type_of_a_limited_code_switches_it_off(event):
    kept, gone = TicketTypeFactory(event=event), TicketTypeFactory(event=event)
    limited = DiscountCode.objects.create(event=event, code="GONE", percent_off=10)
    limited.ticket_types.set([gone])
    wider = DiscountCode.objects.create(event=event, code="BOTH", percent_off=10)
    wider.ticket_types.set([gone, kept])
    gone.delete()
    limited.refresh_from_db()
    wider.refresh_from_db()
    assert limited.active is False  # it must not start applying to every type
    assert wider.active is True
