"""``manage.py seed_demo``: demo accounts and catalogue, idempotent, refused on real databases."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import OrganizerProfile, User
from accounts.tests.factories import UserFactory
from events.management.commands.seed_demo import (
    ACCOUNTS,
    ADMIN,
    ATTENDEES,
    DEFAULT_PASSWORD,
    DEMO_BUYERS,
    ORGANIZER,
)
from events.models import Event, TicketType

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
EVENTS = "/api/v1/events"


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", "--force", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    """Everything a rerun could create or change."""
    return {
        "users": sorted(User.objects.values_list("email", "password", "role", "is_staff", "is_superuser")),
        "profiles": sorted(OrganizerProfile.objects.values_list("pk", "display_name", "slug", "updated_at")),
        "events": sorted(Event.objects.values_list("pk", "slug", "status", "starts_at", "updated_at")),
        "ticket_types": sorted(TicketType.objects.values_list("pk", "event_id", "capacity", "available", "updated_at")),
    }


def test_seed_creates_accounts_that_can_log_in_with_the_printed_password(api_client):
    # when
    output = seed()

    # then: the roles are right
    admin = User.objects.get(email=ADMIN.email)
    assert admin.role == User.Role.ADMIN
    assert admin.is_superuser
    assert admin.is_staff
    organizer = User.objects.get(email=ORGANIZER.email)
    assert organizer.role == User.Role.ORGANIZER
    assert organizer.organizer_profile.display_name == "Demo Live"
    for attendee in ATTENDEES:
        user = User.objects.get(email=attendee.email)
        assert user.role == User.Role.ATTENDEE
        assert not user.is_staff
    assert User.objects.count() == len(ACCOUNTS) + len(DEMO_BUYERS)
    for buyer in DEMO_BUYERS:  # they bought the demo's tickets; nobody signs in as them
        assert not User.objects.get(email=buyer.email).has_usable_password()

    # and the output holds every login, the password and where to go
    assert DEFAULT_PASSWORD in output
    for account in ACCOUNTS:
        assert account.email in output
    assert "http://127.0.0.1:8000/admin/" in output
    assert "/api/docs" in output

    # and that password works over the API
    for account in ACCOUNTS:
        r = api_client.post(LOGIN, {"email": account.email, "password": DEFAULT_PASSWORD})
        assert r.status_code == 200, (account.email, r.content)
        assert r.json()["access"]


def test_seed_creates_a_published_catalogue_and_one_draft():
    # given
    before = timezone.now()

    # when
    seed()

    # then
    profile = OrganizerProfile.objects.get(user__email=ORGANIZER.email)
    published = list(Event.objects.filter(organizer=profile, status=Event.Status.PUBLISHED))
    assert 6 <= len(published) <= 8
    assert len({event.city for event in published}) >= 5
    assert len({event.category for event in published}) >= 5
    drafts = Event.objects.filter(organizer=profile, status=Event.Status.DRAFT)
    assert drafts.count() == 1

    for event in [*published, *drafts]:
        event.full_clean()  # time zone, currency, country, coordinates all valid
        assert event.latitude is not None
        assert event.longitude is not None
        assert event.starts_at > before
        assert event.ends_at > event.starts_at
        tiers = list(event.ticket_types.all())
        assert 1 <= len(tiers) <= 3
    assert all(event.published_at is not None for event in published)
    assert len({event.starts_at.date() for event in published}) == len(published)  # spread over different days

    tiers = TicketType.objects.filter(event__in=published)
    assert tiers.filter(price_cents=0).exists(), "one free tier"
    nearly_sold_out = tiers.get(name__icontains="nearly sold out")
    assert 0 < nearly_sold_out.available <= 2


def test_seed_leaves_a_realistic_picture_of_sales():
    """Every number of the back office is non-zero on a fresh make run: sold, held, cancelled, revenue."""
    from orders.models import Order, Ticket
    from orders.selectors import event_order_counts, event_sales, inventory_report, payments_report

    seed()
    published = Event.objects.filter(status=Event.Status.PUBLISHED)
    for event in published:
        sales = event_sales(event=event)
        assert sum(row["sold"] for row in sales["ticket_types"]) > 0, event.title
        counts = event_order_counts(event=event)
        assert counts["paid"] > 0, event.title
        if any(row["gross_cents"] for row in sales["ticket_types"]):
            assert sales["gross_cents"] > 0
            assert counts["reserved"] > 0, event.title
            assert counts["closed"] > 0, event.title
            assert len(sales["days"]) > 1, "paid over several days: the chart has bars"
    draft = Event.objects.get(status=Event.Status.DRAFT)
    assert not Order.objects.filter(event=draft).exists()
    assert Ticket.objects.filter(status=Ticket.Status.VALID).count() == sum(
        row["sold"] for event in published for row in event_sales(event=event)["ticket_types"]
    )
    assert all(not row["problems"] for row in inventory_report()), "the ledger proves every number"
    # demo sales are paid through the test gateway, with fees: the money trail adds up too
    assert payments_report() == []
    assert sum(event_sales(event=event)["fees_cents"] for event in published) > 0


def test_published_events_are_in_the_public_catalogue(api_client):
    # given
    seed()
    published = set(Event.objects.filter(status=Event.Status.PUBLISHED).values_list("pk", flat=True))

    # when
    r = api_client.get(EVENTS)

    # then: every published event is listed, the draft is not
    assert r.status_code == 200, r.content
    listed = {item["id"] for item in r.json()["results"]}
    assert listed == published


def test_rerun_creates_and_changes_nothing():
    # given
    seed()
    before = snapshot()

    # when
    output = seed()

    # then
    assert snapshot() == before
    assert "nothing created" in output
    assert DEFAULT_PASSWORD in output  # still prints usable credentials


def test_rerun_never_resets_an_existing_password(api_client):
    # given: the organizer account exists with a password of its own
    UserFactory(email=ORGANIZER.email, password="")
    user = User.objects.get(email=ORGANIZER.email)
    user.set_password("my-own-secret-passphrase")
    user.save()

    # when
    output = seed()

    # then: it became the demo organizer but kept its password, and the output says so
    user.refresh_from_db()
    assert user.check_password("my-own-secret-passphrase")
    assert user.role == User.Role.ORGANIZER
    assert Event.objects.filter(organizer__user=user).count() >= 7
    organizer_line = next(line for line in output.splitlines() if ORGANIZER.email in line)
    assert DEFAULT_PASSWORD not in organizer_line
    assert "left as it is" in organizer_line
    assert authenticate(RequestFactory().post("/"), email=ORGANIZER.email, password=DEFAULT_PASSWORD) is None


def test_password_comes_from_the_option_or_the_environment(monkeypatch):
    # given
    monkeypatch.setenv("DEMO_PASSWORD", "from-the-environment-77")

    # when
    output = seed()

    # then
    assert "from-the-environment-77" in output
    request = RequestFactory().post("/admin/login/")  # every password check goes through the lockout backend
    assert authenticate(request, email=ADMIN.email, password="from-the-environment-77") is not None

    # and the option wins over the environment for accounts it creates
    User.objects.filter(email=ADMIN.email).delete()
    seed("--password", "from-the-option-88")
    assert authenticate(request, email=ADMIN.email, password="from-the-option-88") is not None


def test_a_weak_password_is_refused_before_anything_is_written():
    with pytest.raises(CommandError, match="password"):
        seed("--password", "demo")
    assert not User.objects.exists()
    assert not Event.objects.exists()


def test_refuses_on_postgresql_without_force():
    # The suite runs on PostgreSQL: exactly what must not be seeded by accident.
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo", stdout=StringIO())
    assert not User.objects.exists()
    assert not Event.objects.exists()


def test_it_prints_where_the_server_answers():
    output = seed("--base-url", "http://127.0.0.1:8001")
    assert "http://127.0.0.1:8001/admin/" in output
    assert "http://127.0.0.1:8001/api/docs" in output
