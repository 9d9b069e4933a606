"""Tickets a buyer can use: a QR code per ticket (SVG) and one PDF per order, for their owners only."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import segno
from django.utils import timezone
from pypdf import PdfReader
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from accounts.tests.test_auth import assert_problem
from eventflow.tests.clients import as_user
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import services
from orders.models import Order, Ticket

pytestmark = pytest.mark.django_db

NEW_YORK = "America/New_York"


def paid_order(buyer, *lines) -> Order:
    """An order through the same services a real purchase and its payment use."""
    event_id = lines[0][0].event_id
    order = services.order_place(
        buyer=buyer, event_id=event_id, lines=[services.Line(tier.pk, quantity) for tier, quantity in lines]
    )
    return services.order_mark_paid(order=order)


@pytest.fixture
def evening_in_new_york():
    """An event at 23:30 UTC: the evening before, on New York's clocks."""
    starts = (timezone.now() + timedelta(days=40)).replace(hour=23, minute=30, second=0, microsecond=0)
    return EventFactory(
        status=Event.Status.PUBLISHED,
        title="Jazz at the Pier",
        timezone=NEW_YORK,
        starts_at=starts,
        venue_name="Pier 17",
        address="89 South Street",
        city="New York",
        country="US",
    )


def qr_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules (row, column) a segno SVG path draws, quiet zone removed."""
    path = re.search(r'stroke="#000" d="([^"]+)"', svg).group(1)  # the dark modules; the white square is apart
    border = 4
    x = y = 0.0
    dark = set()
    for command, args in re.findall(r"([Mmh])([-\d. ]+)", path):
        numbers = [float(n) for n in args.split()]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        else:
            dark.update((int(y) - border, int(x) + i - border) for i in range(int(numbers[0])))
            x += numbers[0]
    return dark


def expected_modules(code: str) -> set[tuple[int, int]]:
    qr = segno.make(code, error="m", micro=False, boost_error=False)
    return {(r, c) for r, row in enumerate(qr.matrix_iter(border=0)) for c, on in enumerate(row) if on}


# --- QR code ------------------------------------------------------------------------------------


def test_the_holder_gets_a_qr_code_that_encodes_the_ticket_code(buyer, tier):
    # given
    ticket = paid_order(buyer, (tier, 1)).tickets.get()

    # when
    r = as_user(buyer).get(f"/api/v1/tickets/{ticket.pk}/qr.svg")

    # then
    assert r.status_code == 200
    assert r["Content-Type"] == "image/svg+xml"
    assert r["Cache-Control"] == "private, no-store"
    svg = r.content.decode()
    assert svg.startswith("<?xml")
    assert qr_modules(svg) == expected_modules(ticket.code)
    assert qr_modules(svg) != expected_modules(ticket.code[::-1])  # the comparison can fail


def test_the_holder_and_the_buyer_get_the_qr_code_and_nobody_else(buyer, tier):
    # given: a ticket the buyer passed to a friend
    ticket = paid_order(buyer, (tier, 1)).tickets.get()
    friend = UserFactory()
    Ticket.objects.filter(pk=ticket.pk).update(holder=friend)
    path = f"/api/v1/tickets/{ticket.pk}/qr.svg"

    # then
    assert as_user(friend).get(path).status_code == 200
    assert as_user(buyer).get(path).status_code == 200
    assert_problem(as_user(UserFactory()).get(path), 404, "not_found")
    assert_problem(APIClient().get(path), 401, "not_authenticated")
    assert_problem(as_user(buyer).get(f"/api/v1/tickets/{ticket.pk + 1000}/qr.svg"), 404, "not_found")
    assert_problem(as_user(buyer).get("/api/v1/tickets/9999999999999999999999/qr.svg"), 404, "not_found")


def test_a_void_ticket_has_no_qr_code(buyer, tier):
    ticket = paid_order(buyer, (tier, 1)).tickets.get()
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.VOID)

    assert_problem(as_user(buyer).get(f"/api/v1/tickets/{ticket.pk}/qr.svg"), 409, "ticket_void")


# --- PDF ------------------------------------------------------------------------------------------


def test_the_pdf_has_a_page_per_ticket_with_the_local_start_time(buyer, evening_in_new_york):
    # given: three tickets of two types
    event = evening_in_new_york
    floor = TicketTypeFactory(event=event, name="Standing floor", price_cents=3000)
    balcony = TicketTypeFactory(event=event, name="Balcony", price_cents=4500)
    order = paid_order(buyer, (floor, 2), (balcony, 1))
    codes = {ticket.code: ticket.ticket_type.name for ticket in order.tickets.select_related("ticket_type")}

    # when
    r = as_user(buyer).get(f"/api/v1/orders/{order.pk}/tickets.pdf")

    # then
    assert r.status_code == 200
    assert r["Content-Type"] == "application/pdf"
    assert r["Content-Disposition"] == f'inline; filename="tickets-{str(order.pk)[:8]}.pdf"'
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages]
    assert len(pages) == 3
    local = event.starts_at.astimezone(ZoneInfo(NEW_YORK))
    utc = event.starts_at.astimezone(ZoneInfo("UTC"))
    assert local.strftime("%H:%M") != utc.strftime("%H:%M")
    for page in pages:
        assert "Jazz at the Pier" in page
        assert f"{local.day} {local:%b %Y}, {local:%H:%M}" in page  # the venue's clock, not UTC
        assert utc.strftime("%H:%M") not in page
        assert NEW_YORK in page
        assert "Pier 17" in page
        assert "New York" in page
        assert buyer.name in page
    printed = {code: name for code, name in codes.items() for page in pages if code in page and name in page}
    assert printed == codes  # every code on a page of its own ticket type
    assert b"/FontFile2" not in r.content  # Latin-1 text: built-in faces, no TrueType font parsed and embedded


def test_an_event_title_beyond_latin_1_prints(buyer):
    event = EventFactory(status=Event.Status.PUBLISHED, title="Łódź — Ἑλλάς")
    order = paid_order(buyer, (TicketTypeFactory(event=event, name="Świetny"), 1))

    r = as_user(buyer).get(f"/api/v1/orders/{order.pk}/tickets.pdf")

    assert r.status_code == 200
    text = PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
    assert "Łódź" in text
    assert "Świetny" in text
    assert b"/FontFile2" in r.content  # the Unicode font, embedded


def test_a_reserved_order_has_no_pdf(client, buyer, tier):
    order = services.order_place(buyer=buyer, event_id=tier.event_id, lines=[services.Line(tier.pk, 1)])

    assert_problem(client.get(f"/api/v1/orders/{order.pk}/tickets.pdf"), 409, "order_not_paid")


def test_only_the_buyer_gets_the_pdf(buyer, tier):
    order = paid_order(buyer, (tier, 1))
    path = f"/api/v1/orders/{order.pk}/tickets.pdf"

    assert_problem(as_user(UserFactory()).get(path), 404, "not_found")
    assert_problem(APIClient().get(path), 401, "not_authenticated")
    assert_problem(as_user(buyer).get(f"/api/v1/orders/{uuid.uuid4()}/tickets.pdf"), 404, "not_found")


def test_the_pdf_is_served_whatever_the_client_accepts(buyer, tier):
    order = paid_order(buyer, (tier, 1))

    r = as_user(buyer).get(f"/api/v1/orders/{order.pk}/tickets.pdf", HTTP_ACCEPT="application/json")

    assert r.status_code == 200
    assert r.content.startswith(b"%PDF")


# --- Ticket lists link to them ---------------------------------------------------------------


def test_ticket_lists_link_to_the_documents(buyer, tier):
    order = paid_order(buyer, (tier, 2))
    client = as_user(buyer)

    for path in (f"/api/v1/orders/{order.pk}/tickets", "/api/v1/users/me/tickets"):
        tickets = client.get(path).json()["results"]
        assert len(tickets) == 2
        for ticket in tickets:
            assert ticket["qr_svg_url"] == f"http://testserver/api/v1/tickets/{ticket['id']}/qr.svg"
            assert ticket["pdf_url"] == f"http://testserver/api/v1/orders/{order.pk}/tickets.pdf"
            assert ticket["seat"] is None
            assert client.get(ticket["qr_svg_url"]).status_code == 200


def test_ticket_lists_take_a_fixed_number_of_queries(buyer, tier, django_assert_max_num_queries):
    client = as_user(buyer)
    first = paid_order(buyer, (tier, 1))
    with django_assert_max_num_queries(2):
        assert client.get("/api/v1/users/me/tickets").json()["count"] == 1
    with django_assert_max_num_queries(5):  # the order (with its items and seats), then its tickets
        assert client.get(f"/api/v1/orders/{first.pk}/tickets").json()["count"] == 1

    more = paid_order(buyer, (tier, 5))
    with django_assert_max_num_queries(2):
        assert client.get("/api/v1/users/me/tickets").json()["count"] == 6
    with django_assert_max_num_queries(5):
        assert client.get(f"/api/v1/orders/{more.pk}/tickets").json()["count"] == 5
