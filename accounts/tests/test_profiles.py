"""/users/me and /organizers/me."""

import pytest
from rest_framework.test import APIClient

from accounts.models import OrganizerProfile, User

from .factories import OrganizerProfileFactory, UserFactory
from .test_auth import assert_problem

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me"
ORG = "/api/v1/organizers/me"


@pytest.fixture
def user() -> User:
    return UserFactory(email="dora@example.com", name="Dora")


@pytest.fixture
def client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_patch_me_updates_name_only(client, user):
    body = assert_problem(
        client.patch(ME, {"name": "Dora M.", "email": "evil@example.com", "role": "admin"}), 400, "invalid"
    )
    assert set(body["errors"]) == {"email", "role"}
    user.refresh_from_db()
    assert (user.name, user.email, user.role) == ("Dora", "dora@example.com", "attendee")  # nothing of it saved

    r = client.patch(ME, {"name": "Dora M."})
    assert r.status_code == 200
    assert r.json()["name"] == "Dora M."
    user.refresh_from_db()
    assert (user.name, user.email, user.role) == ("Dora M.", "dora@example.com", "attendee")


def test_patch_me_validates(client):
    body = assert_problem(client.patch(ME, {"name": "x" * 151}), 400, "invalid")
    assert "name" in body["errors"]


def test_organizer_profile_lifecycle(client, user):
    assert_problem(client.get(ORG), 404, "not_found")
    assert_problem(client.patch(ORG, {"display_name": "x"}), 404, "not_found")

    r = client.post(ORG, {"display_name": "Dora's Concerts"})
    assert r.status_code == 201, r.content
    assert r.json()["slug"] == "doras-concerts"
    assert r.json()["contact_email"] == "dora@example.com"
    user.refresh_from_db()
    assert user.role == "organizer"

    assert client.get(ORG).json()["display_name"] == "Dora's Concerts"
    assert_problem(client.post(ORG, {"display_name": "Again"}), 409, "organizer_exists")
    assert OrganizerProfile.objects.filter(user=user).count() == 1

    r = client.patch(ORG, {"contact_email": "tickets@dora.example", "slug": "dora"})
    assert r.status_code == 200
    assert (r.json()["contact_email"], r.json()["slug"]) == ("tickets@dora.example", "dora")


def test_organizer_slug_collisions(client):
    OrganizerProfileFactory(slug="taken")
    OrganizerProfileFactory(slug="big-shows")
    body = assert_problem(client.post(ORG, {"display_name": "X", "slug": "taken"}), 400, "slug_taken")
    assert "slug" in body["errors"]
    # a derived slug never collides
    r = client.post(ORG, {"display_name": "Big Shows"})
    assert r.status_code == 201
    assert r.json()["slug"] == "big-shows-2"
    assert_problem(client.patch(ORG, {"slug": "taken"}), 400, "slug_taken")


def test_admin_keeps_admin_role_when_becoming_organizer():
    admin = User.objects.create_superuser(email="root@example.com", password="x-Strong-Pass-1")
    client = APIClient()
    client.force_authenticate(admin)
    assert client.post(ORG, {"display_name": "House"}).status_code == 201
    admin.refresh_from_db()
    assert admin.role == "admin"


def test_email_is_stored_lowercase_by_the_database():
    from django.db import IntegrityError, transaction

    user = UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=user.pk).update(email="MiXeD@example.com")


def test_an_organizer_profile_sets_the_defaults_of_new_events(client):
    r = client.post(
        "/api/v1/organizers/me",
        {"display_name": "Broadway Nights", "timezone": "America/New_York", "currency": "USD"},
    )
    assert r.status_code == 201, r.content
    assert (r.json()["timezone"], r.json()["currency"]) == ("America/New_York", "USD")
    event = client.post(
        "/api/v1/events",
        {"title": "Late show", "starts_at": "2031-05-01T21:30:00-04:00", "ends_at": "2031-05-01T23:30:00-04:00"},
    )
    assert event.status_code == 201, event.content
    assert (event.json()["timezone"], event.json()["currency"]) == ("America/New_York", "USD")
    # an event can still choose its own
    other = client.post(
        "/api/v1/events",
        {
            "title": "Paris",
            "starts_at": "2031-06-01T20:00:00+02:00",
            "ends_at": "2031-06-01T22:00:00+02:00",
            "timezone": "Europe/Paris",
            "currency": "EUR",
        },
    )
    assert (other.json()["timezone"], other.json()["currency"]) == ("Europe/Paris", "EUR")
    r = client.patch("/api/v1/organizers/me", {"currency": "CAD"})
    assert r.json()["currency"] == "CAD"
    body = assert_problem(client.patch("/api/v1/organizers/me", {"timezone": "Mars/Base"}), 400, "invalid")
    assert "timezone" in body["errors"]


def test_an_organizer_edits_only_their_own_profile_in_the_admin(client):
    from django.test import Client

    from accounts.services import organizer_profile_create

    mine = organizer_profile_create(user=UserFactory(), display_name="Mine")
    theirs = organizer_profile_create(user=UserFactory(), display_name="Theirs")
    admin = Client()
    admin.force_login(mine.user)
    assert admin.get("/admin/accounts/organizerprofile/").context["cl"].result_count == 1
    assert admin.get(f"/admin/accounts/organizerprofile/{theirs.pk}/change/").status_code == 302  # "does not exist"
    r = admin.post(
        f"/admin/accounts/organizerprofile/{mine.pk}/change/",
        {
            "user": theirs.user.pk,  # ignored: read-only for an organizer
            "display_name": "Mine",
            "slug": mine.slug,
            "contact_email": mine.contact_email,
            "timezone": "Asia/Tokyo",
            "currency": "JPY",
        },
    )
    assert r.status_code == 302, r.context["adminform"].form.errors
    mine.refresh_from_db()
    assert (mine.timezone, mine.currency, mine.user_id) == ("Asia/Tokyo", "JPY", mine.user_id)
    assert mine.user_id != theirs.user_id
