"""Organizers writing the catalogue over the API: events, ticket types, publishing, images."""

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import OrganizerProfileFactory, UserFactory
from accounts.tests.test_auth import assert_problem
from eventflow.tests.clients import as_user as client_for
from events.models import Event, TicketType

from .factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"


@pytest.fixture
def organizer():
    return OrganizerProfileFactory()


@pytest.fixture
def owner(organizer) -> APIClient:
    return client_for(organizer.user)


@pytest.fixture
def stranger() -> APIClient:
    """Another organizer."""
    return client_for(OrganizerProfileFactory().user)


def event_payload(**overrides) -> dict:
    starts = timezone.now() + timedelta(days=14)
    return {
        "title": "Summer Jam",
        "description": "Bands in the park.",
        "category": "music",
        "venue_name": "Park Stage",
        "address": "1 Park Road",
        "city": "Lisbon",
        "country": "pt",
        "latitude": "38.722252",
        "longitude": "-9.139337",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=5)).isoformat(),
        "timezone": "Europe/Lisbon",
        "currency": "EUR",
        **overrides,
    }


def test_organizer_creates_draft_adds_two_tiers_and_publishes(owner, organizer, api_client):
    r = owner.post(EVENTS, event_payload())
    assert r.status_code == 201, r.content
    event = r.json()
    assert (event["status"], event["slug"], event["country"], event["ticket_types"]) == (
        "draft",
        "summer-jam",
        "PT",
        [],
    )
    assert Event.objects.get(pk=event["id"]).organizer == organizer
    # a draft is invisible to everyone else
    assert_problem(api_client.get(f"{EVENTS}/{event['id']}"), 404, "not_found")
    assert api_client.get(EVENTS).json()["count"] == 0

    assert_problem(owner.post(f"{EVENTS}/{event['id']}/publish"), 409, "no_ticket_types")

    tiers = f"{EVENTS}/{event['id']}/ticket-types"
    r = owner.post(tiers, {"name": "General", "price_cents": 3500, "capacity": 200, "max_per_order": 6})
    assert r.status_code == 201, r.content
    assert (r.json()["available"], r.json()["capacity"]) == (200, 200)
    assert owner.post(tiers, {"name": "VIP", "price_cents": 9900, "capacity": 20, "position": 1}).status_code == 201

    r = owner.post(f"{EVENTS}/{event['id']}/publish")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "published"
    assert r.json()["published_at"] is not None

    # now public, with ticket types and live availability
    r = api_client.get(f"{EVENTS}/{event['id']}")
    assert r.status_code == 200
    assert [(t["name"], t["available"]) for t in r.json()["ticket_types"]] == [("General", 200), ("VIP", 20)]
    assert [e["id"] for e in api_client.get(EVENTS, {"search": "summer"}).json()["results"]] == [event["id"]]
    assert [e["id"] for e in api_client.get(EVENTS, {"city": "lisbon"}).json()["results"]] == [event["id"]]
    assert [e["id"] for e in api_client.get(EVENTS, {"near": "38.72,-9.14", "radius_km": 10}).json()["results"]] == [
        event["id"]
    ]
    assert_problem(owner.post(f"{EVENTS}/{event['id']}/publish"), 409, "invalid_status_transition")


def test_create_needs_an_organizer_and_authentication(api_client):
    assert_problem(api_client.post(EVENTS, event_payload()), 401, "not_authenticated")
    assert_problem(client_for(UserFactory()).post(EVENTS, event_payload()), 403, "not_organizer")
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": ""}, "title"),
        ({"ends_at": (timezone.now() + timedelta(days=1)).isoformat()}, "ends_at"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "ABC"}, "currency"),
        ({"latitude": "95"}, "latitude"),
        ({"latitude": None}, "longitude"),
        ({"category": "knitting"}, "category"),
        ({"country": "Portugal"}, "country"),
        ({"country": "ZZ"}, "country"),  # two letters, but no ISO 3166-1 country
        ({"country": "XK"}, "country"),
        ({"country": "PRT"}, "country"),  # alpha-3 is not what the field stores
        ({"country": 620}, "country"),
        ({"max_tickets_per_buyer": "5"}, "max_tickets_per_buyer"),
        ({"starts_at": "tomorrow"}, "starts_at"),
    ],
)
def test_create_rejects_bad_input_with_the_field(owner, overrides, field):
    body = assert_problem(owner.post(EVENTS, event_payload(**overrides)), 400, "invalid")
    assert field in body["errors"], body
    assert Event.objects.count() == 0


def test_status_and_organizer_in_the_body_are_refused(owner, organizer):
    other = OrganizerProfileFactory()
    r = owner.post(EVENTS, event_payload(status="published", organizer=other.pk, published_at="2020-01-01T00:00:00Z"))
    body = assert_problem(r, 400, "invalid")
    assert set(body["errors"]) == {"status", "organizer", "published_at"}
    assert Event.objects.count() == 0
    r = owner.post(EVENTS, event_payload())
    event = Event.objects.get(pk=r.json()["id"])
    assert (event.status, event.organizer, event.published_at) == ("draft", organizer, None)


def test_slugs_are_unique_per_organizer(owner, stranger):
    assert owner.post(EVENTS, event_payload()).json()["slug"] == "summer-jam"
    assert owner.post(EVENTS, event_payload()).json()["slug"] == "summer-jam-2"
    assert stranger.post(EVENTS, event_payload()).json()["slug"] == "summer-jam"
    assert_problem(owner.post(EVENTS, event_payload(slug="summer-jam")), 400, "slug_taken")


def test_patch_event(owner, organizer):
    event = EventFactory(organizer=organizer)
    r = owner.patch(f"{EVENTS}/{event.pk}", {"title": "Renamed", "city": "Porto"})
    assert r.status_code == 200
    event.refresh_from_db()
    assert (event.title, event.city) == ("Renamed", "Porto")
    # ends_at before the stored starts_at
    body = assert_problem(
        owner.patch(f"{EVENTS}/{event.pk}", {"ends_at": (event.starts_at - timedelta(hours=1)).isoformat()}),
        400,
        "invalid",
    )
    assert "ends_at" in body["errors"]


def test_others_get_404_on_drafts_and_403_on_published(stranger, api_client, organizer):
    draft = EventFactory(organizer=organizer)
    live = EventFactory(organizer=organizer, status=Event.Status.PUBLISHED)
    TicketTypeFactory(event=live)
    for method, suffix, data in [
        ("patch", "", {"title": "Hacked"}),
        ("delete", "", None),
        ("post", "/publish", None),
        ("post", "/ticket-types", {"name": "X", "price_cents": 1, "capacity": 1}),
    ]:
        call = getattr(stranger, method)
        assert_problem(call(f"{EVENTS}/{draft.pk}{suffix}", data), 404, "not_found")
        assert_problem(call(f"{EVENTS}/{live.pk}{suffix}", data), 403, "permission_denied")
        assert_problem(getattr(api_client, method)(f"{EVENTS}/{live.pk}{suffix}", data), 401, "not_authenticated")
    assert_problem(stranger.get(f"{EVENTS}/{draft.pk}"), 404, "not_found")
    assert_problem(stranger.get(f"{EVENTS}/{draft.pk}/ticket-types"), 404, "not_found")
    assert_problem(stranger.get(f"{EVENTS}/{draft.pk}/availability"), 404, "not_found")
    draft.refresh_from_db()
    live.refresh_from_db()
    assert draft.title != "Hacked"
    assert live.title != "Hacked"
    assert (draft.status, draft.deleted_at) == (Event.Status.DRAFT, None)
    assert (live.status, live.deleted_at) == (Event.Status.PUBLISHED, None)
    assert TicketType.objects.filter(name="X").count() == 0


def test_platform_admin_can_do_everything(organizer):
    admin = User.objects.create_superuser(email="root@example.com", password="x-Strong-Pass-1")
    draft = EventFactory(organizer=organizer)
    client = client_for(admin)
    assert client.get(f"{EVENTS}/{draft.pk}").status_code == 200
    assert client.patch(f"{EVENTS}/{draft.pk}", {"title": "By admin"}).status_code == 200
    assert (
        client.post(f"{EVENTS}/{draft.pk}/ticket-types", {"name": "A", "price_cents": 0, "capacity": 5}).status_code
        == 201
    )
    assert client.post(f"{EVENTS}/{draft.pk}/publish").status_code == 200
    assert client.delete(f"{EVENTS}/{draft.pk}").status_code == 204


def test_delete_is_soft_and_refused_once_tickets_are_taken(owner, organizer, api_client):
    event = EventFactory(organizer=organizer, status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=10)
    TicketType.objects.filter(pk=tier.pk).update(available=9)  # one ticket sold or held
    assert_problem(owner.delete(f"{EVENTS}/{event.pk}"), 409, "event_has_orders")
    assert Event.objects.alive().filter(pk=event.pk).exists()

    TicketType.objects.filter(pk=tier.pk).update(available=10)
    assert owner.delete(f"{EVENTS}/{event.pk}").status_code == 204
    event.refresh_from_db()
    assert event.deleted_at is not None
    assert_problem(api_client.get(f"{EVENTS}/{event.pk}"), 404, "not_found")
    assert_problem(owner.get(f"{EVENTS}/{event.pk}"), 404, "not_found")
    assert owner.post(EVENTS, event_payload(slug=event.slug)).status_code == 201  # the slug is free again


def test_publish_refuses_ended_events(owner, organizer):
    event = EventFactory(
        organizer=organizer, starts_at=timezone.now() - timedelta(days=2), ends_at=timezone.now() - timedelta(days=1)
    )
    TicketTypeFactory(event=event)
    assert_problem(owner.post(f"{EVENTS}/{event.pk}/publish"), 409, "event_ended")


# --- ticket types ------------------------------------------------------------------


def test_ticket_type_crud_and_the_capacity_rule(owner, organizer, api_client):
    event = EventFactory(organizer=organizer, status=Event.Status.PUBLISHED)
    first = TicketTypeFactory(event=event, capacity=100)
    url = f"{EVENTS}/{event.pk}/ticket-types"
    r = owner.post(url, {"name": "Late", "price_cents": 4000, "capacity": 50})
    late_id = r.json()["id"]
    assert [t["name"] for t in api_client.get(url).json()["results"]] == [first.name, "Late"]
    assert api_client.get(f"{url}/{late_id}").json()["capacity"] == 50

    TicketType.objects.filter(pk=first.pk).update(available=70)  # 30 sold or held
    r = owner.patch(f"{url}/{first.pk}", {"capacity": 60})
    assert r.status_code == 200
    assert (r.json()["capacity"], r.json()["available"]) == (60, 30)
    body = assert_problem(owner.patch(f"{url}/{first.pk}", {"capacity": 29}), 409, "capacity_below_sold")
    assert body["sold_and_held"] == 30
    first.refresh_from_db()
    assert (first.capacity, first.available) == (60, 30)
    assert owner.patch(f"{url}/{first.pk}", {"capacity": 30}).json()["available"] == 0

    assert_problem(owner.delete(f"{url}/{first.pk}"), 409, "ticket_type_has_orders")
    assert owner.delete(f"{url}/{late_id}").status_code == 204
    TicketType.objects.filter(pk=first.pk).update(available=30)
    assert_problem(owner.delete(f"{url}/{first.pk}"), 409, "last_ticket_type")
    assert TicketType.objects.filter(event=event).count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"price_cents": -1}, "price_cents"),
        ({"price_cents": "ten"}, "price_cents"),
        ({"capacity": -5}, "capacity"),
        ({"capacity": 10**9}, "capacity"),
        ({"max_per_order": 0}, "max_per_order"),
        ({"sales_start": "2030-01-02T00:00:00Z", "sales_end": "2030-01-01T00:00:00Z"}, "sales_end"),
    ],
)
def test_ticket_type_bad_input(owner, organizer, payload, field):
    event = EventFactory(organizer=organizer)
    body = assert_problem(
        owner.post(f"{EVENTS}/{event.pk}/ticket-types", {"name": "X", "price_cents": 100, "capacity": 10, **payload}),
        400,
        "invalid",
    )
    assert field in body["errors"]
    assert TicketType.objects.count() == 0


def test_ticket_type_of_another_event_is_404(owner, organizer):
    mine = EventFactory(organizer=organizer)
    theirs = TicketTypeFactory()
    assert_problem(owner.patch(f"{EVENTS}/{mine.pk}/ticket-types/{theirs.pk}", {"capacity": 1}), 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.capacity == 100


def test_availability(api_client, organizer):
    event = EventFactory(organizer=organizer, status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, name="GA", capacity=10)
    r = api_client.get(f"{EVENTS}/{event.pk}/availability")
    assert r.status_code == 200
    assert r.json() == [{"id": tier.pk, "name": "GA", "available": 10, "capacity": 10, "waitlist_length": 0}]
    assert_problem(api_client.get(f"{EVENTS}/999999/availability"), 404, "not_found")
    assert_problem(api_client.get(f"{EVENTS}/abc"), 404, "not_found")


# --- images ------------------------------------------------------------------------------


def png_bytes(size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_upload_stores_through_storage(owner, organizer, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    event = EventFactory(organizer=organizer)
    upload = SimpleUploadedFile("poster.png", png_bytes(), content_type="image/png")
    r = owner.post(f"{EVENTS}/{event.pk}/image", {"image": upload}, format="multipart")
    assert r.status_code == 200, r.content
    event.refresh_from_db()
    assert event.image.name.startswith("events/")
    assert event.image.name.endswith(".png")
    assert "poster" not in event.image.name  # stored under a random name
    with Image.open(tmp_path / event.image.name) as stored:  # re-encoded (events/tests/test_images.py)
        assert (stored.format, stored.size) == ("PNG", (8, 8))
    assert r.json()["image_url"].endswith(event.image.name)

    # a new image replaces the old file
    old = tmp_path / event.image.name
    upload = SimpleUploadedFile("second.png", png_bytes((4, 4)), content_type="image/png")
    with django_capture_on_commit_callbacks(execute=True):  # the old file goes once the new one is committed
        assert owner.post(f"{EVENTS}/{event.pk}/image", {"image": upload}, format="multipart").status_code == 200
    assert not old.exists()


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("evil.png", b"<?php echo 'hi'; ?>", "invalid"),
        ("empty.png", b"", "invalid"),
        ("doc.pdf", b"%PDF-1.4 not an image", "invalid"),
    ],
)
def test_image_upload_rejects_non_images(owner, organizer, settings, tmp_path, name, content, code):
    settings.MEDIA_ROOT = tmp_path
    event = EventFactory(organizer=organizer)
    upload = SimpleUploadedFile(name, content, content_type="image/png")
    body = assert_problem(owner.post(f"{EVENTS}/{event.pk}/image", {"image": upload}, format="multipart"), 400, code)
    assert "image" in body["errors"]
    event.refresh_from_db()
    assert not event.image


def test_image_upload_rejects_other_formats(owner, organizer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="BMP")
    event = EventFactory(organizer=organizer)
    upload = SimpleUploadedFile("x.bmp", buffer.getvalue(), content_type="image/bmp")
    assert_problem(owner.post(f"{EVENTS}/{event.pk}/image", {"image": upload}, format="multipart"), 400, "invalid")


def test_image_upload_size_limit(owner, organizer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.EVENT_IMAGE_MAX_BYTES = 1024
    event = EventFactory(organizer=organizer)
    big = png_bytes((400, 400)) + b"\0" * 2048
    upload = SimpleUploadedFile("big.png", big, content_type="image/png")
    body = assert_problem(
        owner.post(f"{EVENTS}/{event.pk}/image", {"image": upload}, format="multipart"), 400, "file_too_large"
    )
    assert body["max_bytes"] == 1024
    assert list(tmp_path.rglob("*.png")) == []


def test_image_upload_missing_file_and_json_body(owner, organizer):
    event = EventFactory(organizer=organizer)
    assert_problem(owner.post(f"{EVENTS}/{event.pk}/image", {}, format="multipart"), 400, "invalid")
    assert_problem(owner.post(f"{EVENTS}/{event.pk}/image", {"image": "x"}), 415, "unsupported_media_type")


# --- the past is not for sale ---------------------------------------------------------------


def test_an_event_cannot_be_created_to_start_in_the_past(owner):
    past = timezone.now() - timedelta(hours=1)
    body = assert_problem(
        owner.post(EVENTS, event_payload(starts_at=past.isoformat(), ends_at=(past + timedelta(hours=3)).isoformat())),
        400,
        "invalid",
    )
    assert body["errors"] == {"starts_at": ["An event must start in the future."]}
    assert Event.objects.count() == 0


def test_an_event_that_has_started_cannot_be_published_but_can_still_be_corrected(owner, organizer):
    started = EventFactory(
        organizer=organizer,
        starts_at=timezone.now() - timedelta(minutes=5),
        ends_at=timezone.now() + timedelta(hours=2),
    )
    TicketTypeFactory(event=started)
    assert_problem(owner.post(f"{EVENTS}/{started.pk}/publish"), 409, "event_started")
    started.refresh_from_db()
    assert started.status == Event.Status.DRAFT
    # fixing a typo is fine; moving the start into the past is not
    r = owner.patch(f"{EVENTS}/{started.pk}", {"title": "Summer Jam (typo fixed)"})
    assert (r.status_code, r.json()["title"]) == (200, "Summer Jam (typo fixed)")
    before = Event.objects.values_list("starts_at", "title").get(pk=started.pk)
    body = assert_problem(
        owner.patch(f"{EVENTS}/{started.pk}", {"starts_at": (timezone.now() - timedelta(hours=1)).isoformat()}),
        400,
        "invalid",
    )
    assert "starts_at" in body["errors"]
    assert Event.objects.values_list("starts_at", "title").get(pk=started.pk) == before
