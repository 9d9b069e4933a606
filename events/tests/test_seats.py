"""Seat maps: bulk upload, CSV import (command and admin), the admin, the public map and its cache."""

from __future__ import annotations

from io import StringIO
from unittest import mock

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.services import organizer_profile_create
from accounts.tests.factories import UserFactory
from accounts.tests.test_auth import assert_problem
from events.models import Event, Seat, TicketType, natural_key
from events.seats import MAX_SEATS_PER_UPLOAD, seats_create
from orders.selectors import inventory_report

from .factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def organizer():
    return organizer_profile_create(user=UserFactory(), display_name="Hall Co")


@pytest.fixture
def owner(organizer) -> APIClient:
    client = APIClient()
    client.force_authenticate(organizer.user)
    return client


@pytest.fixture
def event(organizer):
    return EventFactory(organizer=organizer, status=Event.Status.PUBLISHED)


@pytest.fixture
def stalls(event):
    return TicketTypeFactory(event=event, name="Stalls", capacity=0, available=0, seated=True)


def url(event) -> str:
    return f"/api/v1/events/{event.pk}/seats"


def seat(row, number, ticket_type, section="", **extra) -> dict:
    return {"section": section, "row": row, "number": number, "ticket_type": ticket_type.pk, **extra}


def clean(event) -> None:
    assert all(not row["problems"] for row in inventory_report(event_id=event.pk))


# --- Upload -----------------------------------------------------------------------------------


def test_uploading_seats_adds_them_and_their_capacity(owner, event, stalls):
    body = [seat("A", str(n), stalls, section="Stalls", x=n * 10.0, y=0.0) for n in range(1, 5)]
    r = owner.post(url(event), body, format="json")
    assert r.status_code == 201, r.content
    assert [(s["row"], s["number"], s["status"], s["ticket_type"]) for s in r.json()] == [
        ("A", str(n), "available", stalls.pk) for n in range(1, 5)
    ]
    stalls.refresh_from_db()
    assert (stalls.capacity, stalls.available) == (4, 4)
    assert Seat.objects.filter(event=event).count() == 4
    detail = APIClient().get(f"/api/v1/events/{event.pk}/availability").json()
    assert detail[0]["capacity"] == 4
    clean(event)


def test_a_duplicate_in_the_upload_or_against_existing_seats_is_a_400_naming_it(owner, event, stalls):
    assert owner.post(url(event), [seat("A", "1", stalls)], format="json").status_code == 201
    r = owner.post(url(event), [seat("A", "2", stalls), seat("A", "1", stalls), seat("A", "2", stalls)], format="json")
    body = assert_problem(r, 400, "invalid")
    assert set(body["errors"]) == {"1", "2"}
    assert "already exists" in body["errors"]["1"][0]
    assert "listed twice" in body["errors"]["2"][0]
    assert "0" in body["errors"]["2"][0]
    assert Seat.objects.count() == 1  # all or nothing
    stalls.refresh_from_db()
    assert stalls.capacity == 1


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"row": "A", "number": "1"}, "0.ticket_type"),
        ({"row": "", "number": "1", "ticket_type": 1}, "0.row"),
        ({"row": "A", "number": 1, "ticket_type": 1}, "0.number"),
        ({"row": "A" * 21, "number": "1", "ticket_type": 1}, "0.row"),
        ({"row": "A", "number": "1", "ticket_type": 1, "x": 1e9}, "0.x"),
        ({"row": "A", "number": "1", "ticket_type": 1, "x": "left"}, "0.x"),
        ({"row": "A", "number": "1", "ticket_type": 2**63}, "0.ticket_type"),
        ({"row": "A", "number": "1", "ticket_type": 1, "status": "sold"}, "0.status"),
        ({"row": None, "number": "1", "ticket_type": 1}, "0.row"),
    ],
)
def test_malformed_seats_are_a_400_per_field(owner, event, stalls, item, field):
    r = owner.post(url(event), [item], format="json")
    body = assert_problem(r, 400, "invalid")
    assert field in body["errors"], body
    assert not Seat.objects.exists()


@pytest.mark.parametrize("body", [[], {}, None, "x", [1], {"row": "A"}])
def test_not_a_list_of_seats_is_a_400(owner, event, stalls, body):
    assert_problem(owner.post(url(event), body, format="json"), 400, "invalid")


def test_unseated_or_foreign_ticket_types_are_refused(owner, event, stalls):
    plain = TicketTypeFactory(event=event, capacity=5)
    foreign = TicketTypeFactory(event=EventFactory(), seated=True, capacity=0, available=0)
    r = owner.post(url(event), [seat("A", "1", plain), seat("A", "2", foreign)], format="json")
    body = assert_problem(r, 400, "invalid")
    assert "not a seated" in body["errors"]["0"][0]
    assert "no ticket type" in body["errors"]["1"][0]
    plain.refresh_from_db()
    assert plain.capacity == 5


def test_too_many_seats_in_one_request(owner, event, stalls):
    body = [seat("A", str(n), stalls) for n in range(MAX_SEATS_PER_UPLOAD + 1)]
    assert_problem(owner.post(url(event), body, format="json"), 400, "invalid")
    assert not Seat.objects.exists()


def test_only_the_owner_uploads(event, stalls):
    body = [seat("A", "1", stalls)]
    assert_problem(APIClient().post(url(event), body, format="json"), 401, "not_authenticated")
    stranger = APIClient()
    stranger.force_authenticate(UserFactory())
    assert_problem(stranger.post(url(event), body, format="json"), 403, "permission_denied")
    draft = EventFactory()
    assert_problem(stranger.post(url(draft), body, format="json"), 404, "not_found")
    assert not Seat.objects.exists()


def test_a_cancelled_event_takes_no_seats(owner, event, stalls):
    Event.objects.filter(pk=event.pk).update(status=Event.Status.CANCELLED)
    assert_problem(owner.post(url(event), [seat("A", "1", stalls)], format="json"), 409, "event_cancelled")


# --- Ticket types follow their seats ----------------------------------------------------------


def test_a_seated_ticket_type_starts_empty_and_its_capacity_follows_its_seats(owner, event):
    r = owner.post(
        f"/api/v1/events/{event.pk}/ticket-types",
        {"name": "Circle", "price_cents": 1000, "capacity": 100, "seated": True},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert (r.json()["capacity"], r.json()["available"]) == (0, 0)
    tt = r.json()["id"]
    owner.post(url(event), [{"row": "A", "number": "1", "ticket_type": tt}], format="json")
    patch = owner.patch(f"/api/v1/events/{event.pk}/ticket-types/{tt}", {"capacity": 5}, format="json")
    assert assert_problem(patch, 400, "invalid")["errors"]["capacity"]
    patch = owner.patch(f"/api/v1/events/{event.pk}/ticket-types/{tt}", {"seated": False}, format="json")
    assert assert_problem(patch, 400, "invalid")["errors"]["seated"]
    plain = TicketTypeFactory(event=event, capacity=10)
    patch = owner.patch(f"/api/v1/events/{event.pk}/ticket-types/{plain.pk}", {"seated": True}, format="json")
    assert_problem(patch, 400, "invalid")
    clean(event)


def test_deleting_an_available_seat_takes_one_from_capacity(event, stalls):
    from events.seats import SeatNotAvailable, seat_delete

    created = seats_create(event=event, rows=[seat("A", "1", stalls), seat("A", "2", stalls)])
    seat_delete(seat=created[0])
    stalls.refresh_from_db()
    assert (stalls.capacity, stalls.available) == (1, 1)
    from orders.services import Line, order_place

    order_place(buyer=UserFactory(), event_id=event.pk, lines=[], seats=[created[1].pk])
    with pytest.raises(SeatNotAvailable):
        seat_delete(seat=created[1])
    stalls.refresh_from_db()
    assert (stalls.capacity, stalls.available) == (1, 0)
    assert Line  # imported for the signature
    clean(event)


def test_natural_keys_sort_as_people_read():
    labels = ["10", "2", "1", "10A", "B", "a", "9"]
    assert sorted(labels, key=natural_key) == ["1", "2", "9", "10", "10A", "a", "B"]


# --- The map ----------------------------------------------------------------------------------


def test_the_map_lists_every_seat_in_natural_order_with_its_status(owner, event, stalls):
    seats_create(event=event, rows=[seat("A", n, stalls) for n in ("10", "2", "1")] + [seat("B", "1", stalls)])
    r = APIClient().get(url(event))
    assert r.status_code == 200
    body = r.json()
    assert [(s["row"], s["number"]) for s in body] == [("A", "1"), ("A", "2"), ("A", "10"), ("B", "1")]
    assert set(body[0]) == {"id", "section", "row", "number", "ticket_type", "status", "x", "y"}
    again = APIClient().get(url(event), HTTP_IF_NONE_MATCH=r["ETag"])
    assert again.status_code == 304


def test_a_drafts_map_is_for_its_organizer_only(owner, organizer):
    draft = EventFactory(organizer=organizer)
    tt = TicketTypeFactory(event=draft, capacity=0, available=0, seated=True)
    seats_create(event=draft, rows=[seat("A", "1", tt)])
    assert_problem(APIClient().get(url(draft)), 404, "not_found")
    r = owner.get(url(draft))
    assert r.status_code == 200
    assert len(r.json()) == 1
    assert_problem(APIClient().get("/api/v1/events/999999999/seats"), 404, "not_found")


def test_a_sale_shows_on_the_map_within_a_second(event, stalls, settings):
    """The map is cached for AVAILABILITY_CACHE_SECONDS (1 s) and not invalidated by sales: a
    reader may see it a second old, never older. Time is the cache's: the entry's expiry."""
    created = seats_create(event=event, rows=[seat("A", "1", stalls), seat("A", "2", stalls)])
    assert settings.AVAILABILITY_CACHE_SECONDS <= 1
    reader = APIClient()
    assert {s["status"] for s in reader.get(url(event)).json()} == {"available"}
    buyer = APIClient()
    buyer.force_authenticate(UserFactory())
    assert buyer.post("/api/v1/orders", {"event": event.pk, "seats": [created[0].pk]}, format="json").status_code == 201
    with mock.patch("events.seats.cache.set", wraps=cache.set) as stored:
        cache.delete(f"events:event:{event.pk}:seats")  # the second has passed: the entry is gone
        statuses = {s["id"]: s["status"] for s in reader.get(url(event)).json()}
    assert statuses == {created[0].pk: "held", created[1].pk: "available"}
    assert stored.call_args.kwargs["timeout"] == settings.AVAILABILITY_CACHE_SECONDS


def test_uploading_seats_refreshes_the_map_at_once(owner, event, stalls, django_capture_on_commit_callbacks):
    assert APIClient().get(url(event)).json() == []
    with django_capture_on_commit_callbacks(execute=True):
        owner.post(url(event), [seat("A", "1", stalls)], format="json")
    assert len(APIClient().get(url(event)).json()) == 1


# --- import_seats -----------------------------------------------------------------------------


def write(tmp_path, text: str):
    path = tmp_path / "seats.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_seats_by_name_or_id(tmp_path, event, stalls):
    vip = TicketTypeFactory(event=event, name="VIP", capacity=0, available=0, seated=True)
    csv = f"section,row,number,ticket_type,x,y\nStalls,A,1,Stalls,1,2\nStalls,A,2,{stalls.pk},,\nBox,1,1,vip,,\n"
    out = StringIO()
    call_command("import_seats", str(event.pk), write(tmp_path, csv), stdout=out)
    assert "Imported 3 seats" in out.getvalue()
    stalls.refresh_from_db()
    vip.refresh_from_db()
    assert (stalls.capacity, vip.capacity) == (2, 1)
    assert Seat.objects.get(section="Stalls", number="1").x == 1.0
    clean(event)


def test_import_seats_reports_every_bad_line_and_imports_nothing(tmp_path, event, stalls):
    csv = "section,row,number,ticket_type\nS,A,1,Stalls\nS,A,1,Stalls\nS,,2,Stalls\nS,A,3,Nope\nS,A\n"
    err = StringIO()
    with pytest.raises(CommandError, match="No seats imported"):
        call_command("import_seats", str(event.pk), write(tmp_path, csv), stderr=err)
    assert "line 6" in err.getvalue()
    assert not Seat.objects.exists()
    csv = "section,row,number,ticket_type\nS,A,1,Stalls\nS,A,1,Stalls\nS,,2,Stalls\nS,A,3,Nope\n"
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_seats", str(event.pk), write(tmp_path, csv), stderr=err)
    messages = err.getvalue()
    assert "line 3" in messages
    assert "listed twice" in messages
    assert "line 2" in messages
    assert "line 4" in messages
    assert "line 5" in messages
    assert not Seat.objects.exists()


@pytest.mark.parametrize("text", ["", "row,number\nA,1\n", "section,row,number,ticket_type,color\n"])
def test_import_seats_refuses_a_wrong_header(tmp_path, event, stalls, text):
    with pytest.raises(CommandError):
        call_command("import_seats", str(event.pk), write(tmp_path, text), stderr=StringIO())


def test_import_seats_unknown_event_or_file(tmp_path, event):
    with pytest.raises(CommandError, match="No event"):
        call_command("import_seats", "999999", write(tmp_path, "x"))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_seats", str(event.pk), str(tmp_path / "missing.csv"))


# --- The admin --------------------------------------------------------------------------------


def admin_client(organizer) -> Client:
    client = Client()
    client.force_login(organizer.user)
    return client


def test_the_admin_imports_a_csv_on_the_event(organizer, event, stalls):
    client = admin_client(organizer)
    page = reverse("admin:events_event_import_seats", args=[event.pk])
    assert client.get(page).status_code == 200
    upload = SimpleUploadedFile("s.csv", b"section,row,number,ticket_type\n,A,1,Stalls\n,A,2,Stalls\n")
    r = client.post(page, {"file": upload})
    assert r.status_code == 302
    assert Seat.objects.filter(event=event).count() == 2
    bad = SimpleUploadedFile("s.csv", b"section,row,number,ticket_type\n,A,1,Stalls\n")
    r = client.post(page, {"file": bad})
    assert r.status_code == 200
    assert "already exists" in r.content.decode()
    # another organizer's event does not exist for them
    other = organizer_profile_create(user=UserFactory(), display_name="Other")
    assert admin_client(other).get(page).status_code == 404
    listing = admin_client(other).get(reverse("admin:events_seat_changelist"))
    assert listing.status_code == 200
    assert "row A seat 1" not in listing.content.decode()


def test_the_admin_adds_a_seat_through_the_service_and_checks_it(organizer, event, stalls):
    client = admin_client(organizer)
    add = reverse("admin:events_seat_add")
    r = client.post(add, {"event": event.pk, "ticket_type": stalls.pk, "section": "", "row": "C", "number": "7"})
    assert r.status_code == 302, r.content.decode()[:2000]
    stalls.refresh_from_db()
    assert stalls.capacity == 1
    created = Seat.objects.get()
    assert created.row_key == natural_key("C")
    again = client.post(add, {"event": event.pk, "ticket_type": stalls.pk, "section": "", "row": "C", "number": "7"})
    assert again.status_code == 200
    assert Seat.objects.count() == 1
    plain = TicketTypeFactory(event=event, capacity=3)
    wrong = client.post(add, {"event": event.pk, "ticket_type": plain.pk, "row": "C", "number": "8"})
    assert wrong.status_code == 200
    assert Seat.objects.count() == 1
    # the changelist, the (read-only) seat page, and deleting through the service
    assert client.get(reverse("admin:events_seat_changelist")).status_code == 200
    assert client.get(reverse("admin:events_seat_change", args=[created.pk])).status_code == 200
    r = client.post(reverse("admin:events_seat_delete", args=[created.pk]), {"post": "yes"})
    assert r.status_code == 302
    stalls.refresh_from_db()
    assert (stalls.capacity, stalls.available, Seat.objects.count()) == (0, 0, 0)
    clean(event)


def test_the_event_page_links_to_its_seats(organizer, event, stalls):
    r = admin_client(organizer).get(reverse("admin:events_event_change", args=[event.pk]))
    assert reverse("admin:events_event_import_seats", args=[event.pk]) in r.content.decode()


def test_ticket_type_model_unchanged_for_unseated(event):
    tt = TicketTypeFactory(event=event, capacity=7)
    assert TicketType.objects.get(pk=tt.pk).capacity == 7
