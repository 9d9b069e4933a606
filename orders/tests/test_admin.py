"""Orders in the back office: read-only, scoped to the organizer's events, cancelling through the service."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains

from accounts.models import OrganizerProfile, User
from accounts.services import organizer_profile_create, organizers_group
from accounts.tests.factories import UserFactory
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import InventoryEntry, Order, Ticket
from orders.services import Line, order_cancel, order_place

pytestmark = pytest.mark.django_db

ORDERS = "/admin/orders/order/"
TICKETS = "/admin/orders/ticket/"
LEDGER = "/admin/orders/inventoryentry/"
PASSWORD = "x-Strong-Pass-1"


def order_url(order: Order, view: str = "change") -> str:
    return reverse(f"admin:orders_order_{view}", args=[order.pk])


def make_organizer(display_name: str) -> OrganizerProfile:
    return organizer_profile_create(user=UserFactory(), display_name=display_name)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def on_sale(organizer: OrganizerProfile, **fields) -> Event:
    return EventFactory(organizer=organizer, status=Event.Status.PUBLISHED, **fields)


def place(buyer: User, *lines: tuple[TicketType, int]) -> Order:
    return order_place(buyer=buyer, event_id=lines[0][0].event_id, lines=[Line(tt.pk, q) for tt, q in lines])


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def listed(response) -> set:
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.fixture
def organizer() -> OrganizerProfile:
    return make_organizer("Dora Concerts")


@pytest.fixture
def rival() -> OrganizerProfile:
    return make_organizer("Rival Shows")


@pytest.fixture
def event(organizer) -> Event:
    return on_sale(organizer, title="Summer Jam")


@pytest.fixture
def tier(event) -> TicketType:
    return TicketTypeFactory(event=event, name="Standard", price_cents=2500, capacity=10)


@pytest.fixture
def free_tier(event) -> TicketType:
    return TicketTypeFactory(event=event, name="Guest list", price_cents=0, capacity=10)


@pytest.fixture
def buyer() -> User:
    return UserFactory(email="bea@example.com", name="Bea Buyer")


# --- An organizer reads the orders of their events -----------------------------------------


def test_an_organizer_sees_the_orders_of_their_events_with_items_tickets_and_ledger(organizer, tier, free_tier, buyer):
    # given a reservation and a free order (paid at once, with tickets)
    reserved = place(buyer, (tier, 2))
    paid = place(buyer, (free_tier, 1))
    client = logged_in(organizer.user)

    # when the organizer opens the orders
    page = client.get(ORDERS)

    # then both are listed, with the buyer, the status and the total with its currency
    assert page.status_code == 200
    assert listed(page) == {reserved.pk, paid.pk}
    html = page.content.decode()
    assert "bea@example.com" in html
    assert "50.00 EUR" in html
    assert str(reserved.pk)[:8] in html

    # and the reservation's page shows its item and the hold in the ledger, all read-only
    page = client.get(order_url(reserved))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Standard" in html
    assert "25.00 EUR" in html  # unit price
    assert "inventory ledger" in html.lower()
    assertContains(page, '<td class="field-kind"><p>Hold</p></td>', html=True)
    assert 'name="_save"' not in html
    assert page.context["adminform"].form.fields == {}  # every field is read-only
    for inline in page.context["inline_admin_formsets"]:
        assert not inline.has_add_permission
        assert not inline.has_change_permission
        assert not inline.has_delete_permission
    ledger = next(f for f in page.context["inline_admin_formsets"] if f.formset.model is InventoryEntry)
    assert [(form.instance.kind, form.instance.quantity) for form in ledger.formset.forms] == [("hold", 2)]

    # and the paid order's page shows its ticket (by a short code only) and the hold then the sale
    page = client.get(order_url(paid))
    html = page.content.decode()
    ticket = Ticket.objects.get(order=paid)
    assert ticket.code[:8] in html
    assert ticket.code not in html
    ledger = next(f for f in page.context["inline_admin_formsets"] if f.formset.model is InventoryEntry)
    assert [form.instance.kind for form in ledger.formset.forms] == ["hold", "sell"]


def test_orders_can_be_searched_and_filtered(organizer, tier, free_tier, buyer):
    bea = place(buyer, (tier, 1))
    other = place(UserFactory(email="carl@example.com"), (free_tier, 1))
    client = logged_in(organizer.user)

    assert listed(client.get(ORDERS, {"q": "bea@example"})) == {bea.pk}
    assert listed(client.get(ORDERS, {"q": "Bea Buyer"})) == {bea.pk}
    assert listed(client.get(ORDERS, {"q": str(other.pk)})) == {other.pk}
    assert listed(client.get(ORDERS, {"q": str(other.pk)[:8]})) == {other.pk}
    assert listed(client.get(ORDERS, {"q": "Summer"})) == {bea.pk, other.pk}
    assert listed(client.get(ORDERS, {"status__exact": "paid"})) == {other.pk}


def test_the_order_changelist_takes_a_fixed_number_of_queries(organizer, rival, tier, django_assert_max_num_queries):
    for _ in range(3):
        place(UserFactory(), (tier, 1))
    client = logged_in(organizer.user)
    with CaptureQueriesContext(connection) as few:
        assert client.get(ORDERS).status_code == 200
    for _ in range(5):
        place(UserFactory(), (tier, 1))
    with django_assert_max_num_queries(len(few)):
        page = client.get(ORDERS)
    assert page.context["cl"].result_count == 8


# --- Another organizer's orders do not exist -----------------------------------------------


def test_another_organizer_cannot_see_or_cancel_the_orders(organizer, rival, tier, free_tier, buyer):
    # given an order and a ticket of the organizer's event, and the rival with an order of their own
    reserved = place(buyer, (tier, 2))
    paid = place(buyer, (free_tier, 1))
    ticket = Ticket.objects.get(order=paid)
    rival_tier = TicketTypeFactory(event=on_sale(rival, title="Rival Night"))
    own = place(buyer, (rival_tier, 1))
    client = logged_in(rival.user)

    # then the rival's lists hold only their own order, and their event filter offers only their event
    page = client.get(ORDERS)
    assert listed(page) == {own.pk}
    assert "Summer Jam" not in page.content.decode()
    assert listed(client.get(TICKETS)) == set()

    # and the organizer's order and ticket answer as if they did not exist
    for url in (
        order_url(reserved),
        order_url(reserved, "history"),
        reverse("admin:orders_ticket_change", args=[ticket.pk]),
    ):
        r = client.get(url, follow=True)
        assert r.redirect_chain == [("/admin/", 302)], url
        assert "doesn\u2019t exist" in messages_of(r)[0]

    # and the cancel action does not reach them
    r = client.post(ORDERS, {"action": "cancel_reservations", "_selected_action": [reserved.pk]}, follow=True)
    assert r.status_code == 200
    reserved.refresh_from_db()
    tier.refresh_from_db()
    assert (reserved.status, tier.available) == ("reserved", 8)


def test_staff_without_an_organizer_profile_see_no_orders(tier, buyer):
    place(buyer, (tier, 1))
    staff = UserFactory(is_staff=True)
    staff.groups.add(organizers_group())
    client = logged_in(staff)
    assert client.get(ORDERS).context["cl"].result_count == 0
    assert client.get(TICKETS).context["cl"].result_count == 0


# --- Nobody edits orders ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["organizer", "superuser"])
def test_orders_cannot_be_added_changed_or_deleted(who, organizer, tier, free_tier, buyer):
    order = place(buyer, (tier, 2))
    paid = place(buyer, (free_tier, 1))
    ticket = Ticket.objects.get(order=paid)
    user = (
        organizer.user
        if who == "organizer"
        else User.objects.create_superuser(email="root@example.com", password=PASSWORD)
    )
    client = logged_in(user)

    assert client.get(reverse("admin:orders_order_add")).status_code == 403
    assert client.get(order_url(order, "delete")).status_code == 403
    assert client.post(order_url(order, "delete"), {"post": "yes"}).status_code == 403
    assert client.post(order_url(order), {"status": "paid", "total_cents": "1"}).status_code == 403
    assert client.get(reverse("admin:orders_ticket_add")).status_code == 403
    assert client.post(reverse("admin:orders_ticket_change", args=[ticket.pk]), {"status": "void"}).status_code == 403
    assert "delete_selected" not in client.get(ORDERS).context["action_form"].fields["action"].choices.__str__()

    order.refresh_from_db()
    ticket.refresh_from_db()
    assert (order.status, order.total_cents, ticket.status) == ("reserved", 5000, "valid")
    assert Order.objects.count() == 2


def test_a_superuser_sees_every_order_and_the_ledger(organizer, rival, tier, buyer):
    mine = place(buyer, (tier, 1))
    theirs = place(buyer, (TicketTypeFactory(event=on_sale(rival)), 1))
    client = logged_in(User.objects.create_superuser(email="root@example.com", password=PASSWORD))

    assert listed(client.get(ORDERS)) == {mine.pk, theirs.pk}
    assert client.get(order_url(theirs)).status_code == 200
    page = client.get(LEDGER)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 2
    entry = InventoryEntry.objects.first()
    assert client.post(reverse("admin:orders_inventoryentry_change", args=[entry.pk]), {}).status_code == 403
    assert (
        client.post(reverse("admin:orders_inventoryentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    )


def test_organizers_see_orders_and_tickets_in_the_index_but_not_the_whole_ledger(organizer):
    client = logged_in(organizer.user)
    index = client.get("/admin/").content.decode()
    assert ORDERS in index
    assert TICKETS in index
    assert LEDGER not in index
    assert client.get(LEDGER).status_code == 403


# --- Tickets ------------------------------------------------------------------------------


def test_an_organizer_lists_and_searches_the_tickets_of_their_events(organizer, rival, free_tier, buyer):
    place(buyer, (free_tier, 2))
    carl = place(UserFactory(email="carl@example.com"), (free_tier, 1))
    place(buyer, (TicketTypeFactory(event=on_sale(rival), price_cents=0), 1))  # a rival's ticket
    client = logged_in(organizer.user)

    page = client.get(TICKETS)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 3
    carls = Ticket.objects.get(order=carl)
    assert listed(client.get(TICKETS, {"q": "carl@"})) == {carls.pk}
    assert listed(client.get(TICKETS, {"q": carls.code[:10]})) == {carls.pk}
    assert listed(client.get(TICKETS, {"ticket_type__event__id__exact": free_tier.event_id})) == set(
        Ticket.objects.filter(ticket_type=free_tier).values_list("pk", flat=True)
    )
    page = client.get(reverse("admin:orders_ticket_change", args=[carls.pk]))
    assert page.status_code == 200
    assert carls.code in page.content.decode()  # the ticket's own page shows the whole code


# --- The ticket-type inline on the event page ---------------------------------------------


def test_the_ticket_type_inline_shows_sold_and_held_from_the_orders(organizer, event, tier, free_tier, buyer):
    # given 2 held and 3 sold
    place(buyer, (tier, 2))
    place(buyer, (free_tier, 3))
    cancelled = place(buyer, (tier, 1))
    order_cancel(order=cancelled)  # neither sold nor held any more
    client = logged_in(organizer.user)

    # when the organizer opens the event
    page = client.get(reverse("admin:events_event_change", args=[event.pk]))

    # then each ticket type shows its sold, held and available tickets
    assert page.status_code == 200
    rows = {
        form.instance.name: (form.instance.sold, form.instance.held, form.instance.available)
        for form in page.context["inline_admin_formsets"][0].formset.forms
        if form.instance.pk
    }
    assert rows == {"Standard": (0, 2, 8), "Guest list": (3, 0, 7)}
    assertContains(page, '<td class="field-sold"><p>3</p></td>', html=True)
    assertContains(page, '<td class="field-held"><p>2</p></td>', html=True)


def test_the_sold_and_held_columns_take_no_query_per_ticket_type(organizer, event, tier, buyer):
    place(buyer, (tier, 1))
    client = logged_in(organizer.user)
    url = reverse("admin:events_event_change", args=[event.pk])
    with CaptureQueriesContext(connection) as one_type:
        assert client.get(url).status_code == 200
    for n in range(4):
        place(buyer, (TicketTypeFactory(event=event, name=f"Extra {n}"), 1))
    with CaptureQueriesContext(connection) as five_types:
        assert client.get(url).status_code == 200
    assert len(five_types) == len(one_type)


# --- Cancelling reservations --------------------------------------------------------------


def test_the_cancel_action_returns_stock_and_reports_what_it_could_not_cancel(organizer, tier, free_tier, buyer):
    # given two reservations and a paid order
    first = place(buyer, (tier, 2))
    second = place(buyer, (tier, 3))
    paid = place(buyer, (free_tier, 1))
    tier.refresh_from_db()
    assert tier.available == 5
    client = logged_in(organizer.user)

    # when the organizer cancels all three
    r = client.post(
        ORDERS, {"action": "cancel_reservations", "_selected_action": [first.pk, second.pk, paid.pk]}, follow=True
    )

    # then the reservations are cancelled and their stock is back on sale, the paid order is kept and reported
    assert r.status_code == 200
    tier.refresh_from_db()
    assert tier.available == 10
    assert set(Order.objects.values_list("status", flat=True)) == {"cancelled", "paid"}
    assert list(Order.objects.filter(pk=paid.pk).values_list("status", flat=True)) == ["paid"]
    assert set(
        InventoryEntry.objects.filter(order__in=[first, second], kind="release").values_list("order_id", "quantity")
    ) == {(first.pk, 2), (second.pk, 3)}
    assert messages_of(r) == [
        f"Order {str(paid.pk)[:8]} is paid: use “Refund selected paid orders”.",
        "2 reservations were cancelled; their tickets are back on sale.",
    ]

    # when they try again, nothing moves twice
    r = client.post(ORDERS, {"action": "cancel_reservations", "_selected_action": [first.pk]}, follow=True)
    tier.refresh_from_db()
    assert tier.available == 10
    assert messages_of(r) == [
        f"Could not cancel order {str(first.pk)[:8]}: This order is cancelled and can no longer be cancelled."
    ]
