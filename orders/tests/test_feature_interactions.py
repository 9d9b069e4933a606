"""Where issue 11's features meet (found by review after its parts were merged): an account that
leaves with a waiting-list entry, seats on a high-demand event, offers racing for buyers' rows,
what organizers learn about accounts, and a transferred ticket's documents."""

from __future__ import annotations

import contextlib
import threading

import pytest

from accounts.tests.factories import UserFactory
from eventflow.tests.clients import as_user as client_for
from events.models import DiscountCode, Event, TicketType
from events.seats import seats_create
from events.services import ticket_type_create
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import documents, services, sql
from orders.models import Order, Ticket, WaitlistEntry
from orders.selectors import inventory_report
from orders.services import Line, order_cancel, order_place
from orders.tests.test_concurrency import run_concurrently
from orders.waitlist import offer_released, waitlist_join

ORDERS = "/api/v1/orders"


def _waiting_for_the_last_ticket() -> tuple[Event, TicketType, Order, object]:
    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=1, max_per_buyer=None)
    holder = UserFactory()
    held = order_place(buyer=holder, event_id=event.pk, lines=[Line(tier.pk, 1)])
    waiting = UserFactory()
    waitlist_join(user=waiting, event_id=event.pk, ticket_type_id=tier.pk, quantity=1)
    return event, tier, held, waiting


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["deleted", "deactivated"])
def test_an_account_that_goes_leaves_its_waiting_lists_and_the_stock_is_on_sale_again(
    how, django_capture_on_commit_callbacks
):
    event, tier, held, waiting = _waiting_for_the_last_ticket()
    with django_capture_on_commit_callbacks(execute=True):
        if how == "deleted":
            waiting.delete()
        else:
            waiting.is_active = False
            waiting.save()
    tier.refresh_from_db()
    assert tier.waitlisted == 0
    assert not WaitlistEntry.objects.filter(status__in=WaitlistEntry.LIVE).exists()
    order_cancel(order=held)
    r = client_for(UserFactory()).post(
        ORDERS, {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}]}, format="json"
    )
    assert r.status_code == 201, r.content  # not gated on nobody
    assert all(not row["problems"] for row in inventory_report(event_id=event.pk))


@pytest.mark.django_db
def test_a_seat_does_not_carry_other_tickets_of_a_high_demand_event_past_the_line():
    event = EventFactory(status=Event.Status.PUBLISHED, high_demand=True)
    ga = TicketTypeFactory(event=event, name="GA", capacity=100, max_per_buyer=None)
    stalls = TicketTypeFactory(event=event, name="Stalls", capacity=0, available=0, seated=True)
    seat = seats_create(event=event, rows=[{"section": "S", "row": "A", "number": "1", "ticket_type": stalls.pk}])[0]
    buyer = client_for(UserFactory())
    mixed = {"event": event.pk, "seats": [seat.pk], "items": [{"ticket_type": ga.pk, "quantity": 10}]}
    r = buyer.post(ORDERS, mixed, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["code"] == "invalid"
    assert "items" in r.json()["errors"]
    assert not Order.objects.exists()
    assert (
        buyer.post(ORDERS, {"event": event.pk, "seats": [seat.pk]}, format="json").status_code == 201
    )  # alone: at once
    r = buyer.post(ORDERS, {"event": event.pk, "items": [{"ticket_type": ga.pk, "quantity": 2}]}, format="json")
    assert r.status_code == 202, r.content  # GA waits in line


@pytest.mark.django_db(transaction=True)
def test_offers_on_two_ticket_types_never_wait_on_each_others_buyers(monkeypatch):
    """X waits first on A, Y first on B; both run their offers at once. A run holding its ticket
    type never waits on a buyer's row (a purchase takes them the other way round): it stops at a
    busy buyer, and the next run offers the rest."""
    monkeypatch.setattr("orders.tasks.offer_waitlist.delay", lambda *a, **k: None)
    event = EventFactory(status=Event.Status.PUBLISHED, max_tickets_per_buyer=10)
    a = ticket_type_create(event=event, name="A", price_cents=1000, capacity=2, max_per_order=4)
    b = ticket_type_create(event=event, name="B", price_cents=1000, capacity=2, max_per_order=4)
    holder = order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(a.pk, 2), Line(b.pk, 2)])
    x, y = UserFactory(), UserFactory()
    for user, tier in ((x, a), (y, a), (y, b), (x, b)):
        waitlist_join(user=user, event_id=event.pk, ticket_type_id=tier.pk, quantity=1)
    order_cancel(order=holder)

    real = sql.lock_buyer_and_count_held
    barrier = threading.Barrier(2)
    local = threading.local()

    def meet_after_the_first_buyer(**kwargs):  # both runs hold their first buyer, then go on
        held = real(**kwargs)
        if not getattr(local, "met", False):
            local.met = True
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5)
        return held

    monkeypatch.setattr(sql, "lock_buyer_and_count_held", meet_after_the_first_buyer)

    def offers_of(tier):
        return lambda: len(offer_released(ticket_type_id=tier.pk))

    first = run_concurrently([offers_of(a), offers_of(b)], workers=2)
    assert all(isinstance(count, int) for count in first), first  # no Busy, no deadlock
    monkeypatch.setattr(sql, "lock_buyer_and_count_held", real)
    offer_released(ticket_type_id=a.pk)  # what the scheduled retry (or beat's sweep) does
    offer_released(ticket_type_id=b.pk)
    assert set(WaitlistEntry.objects.values_list("status", flat=True)) == {WaitlistEntry.Status.OFFERED}
    assert all(not row["problems"] for row in inventory_report(event_id=event.pk))


@pytest.mark.django_db
def test_organizers_learn_nothing_about_accounts_they_do_not_sell_to():
    organizer = UserFactory(role="organizer")
    from accounts.models import OrganizerProfile

    profile = OrganizerProfile.objects.create(user=organizer, display_name="Org", slug="org-x", contact_email="o@x.org")
    event = EventFactory(status=Event.Status.PUBLISHED, organizer=profile)
    tier = TicketTypeFactory(event=event, capacity=0, available=0)
    stranger = UserFactory(email="victim@example.com", name="Victoria Private")
    client = client_for(organizer)

    r = client.post("/api/v1/organizers/me/check-in-staff", {"email": stranger.email}, format="json")
    assert r.status_code == 201, r.content
    assert "Victoria" not in r.content.decode()
    assert set(r.json()["user"]) == {"id", "email"}

    entries = f"/api/v1/events/{event.pk}/waitlist-entries"
    known = client.post(entries, {"email": stranger.email, "ticket_type": tier.pk, "quantity": 1}, format="json")
    unknown = client.post(
        entries, {"email": "nobody@example.com", "ticket_type": tier.pk, "quantity": 1}, format="json"
    )
    assert known.status_code == unknown.status_code == 400
    assert known.json()["detail"] == unknown.json()["detail"]
    assert not WaitlistEntry.objects.exists()


@pytest.mark.django_db
def test_a_transferred_tickets_pdf_does_not_show_what_the_buyer_paid(monkeypatch, django_capture_on_commit_callbacks):
    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=5, price_cents=10000)
    DiscountCode.objects.create(event=event, code="STAFF-ONLY-90", percent_off=90)
    buyer = client_for(UserFactory())
    body = {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}], "discount_code": "staff-only-90"}
    r = buyer.post(ORDERS, body, format="json")
    assert r.status_code == 201, r.content
    order = services.order_mark_paid(order=Order.objects.get(pk=r.json()["id"]))
    lines: list[str] = []
    write_line = documents._TicketPDF.write_line

    def spy(self, text, *args, **kwargs):
        lines.append(text)
        return write_line(self, text, *args, **kwargs)

    monkeypatch.setattr(documents._TicketPDF, "write_line", spy)
    documents.order_tickets_pdf(order, list(Ticket.objects.filter(order=order)))
    assert any("STAFF-ONLY-90" in line for line in lines)  # the buyer's own PDF shows it
    lines.clear()
    ticket = Ticket.objects.get(order=order)
    with django_capture_on_commit_callbacks(execute=True):
        r = buyer.post(f"/api/v1/tickets/{ticket.pk}/transfer", {"email": "friend@example.com"}, format="json")
    assert r.status_code == 201, r.content
    assert lines, "the recipient's email carries a PDF"
    assert not any("STAFF-ONLY-90" in line or "paid" in line for line in lines), lines
