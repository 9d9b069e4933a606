"""The waiting list: joining a sold-out ticket type, FIFO offers and their expiry chain, the gate that
keeps released stock from newcomers, leaving, and the organizer's view (orders/waitlist.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import OrganizerProfileFactory, UserFactory
from eventflow.tests.clients import as_user as client_for
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import InventoryEntry, Order, WaitlistEntry
from orders.selectors import inventory_report
from orders.services import expire_due_holds

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    return body


def assert_inventory_clean() -> None:
    call_command("check_inventory")  # raises CommandError on any drift


@pytest.fixture
def event():
    return EventFactory(status=Event.Status.PUBLISHED)


@pytest.fixture
def tier(event):
    return TicketTypeFactory(event=event, name="GA", price_cents=2500, capacity=4, max_per_order=4, max_per_buyer=None)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Tasks queued on commit (offers, emails) run, as a worker would after the commit."""

    def run(call):
        with django_capture_on_commit_callbacks(execute=True):
            return call()

    return run


def buy(user, event, tier, quantity):
    return client_for(user).post(
        ORDERS, {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": quantity}]}, format="json"
    )


def join(user, event, tier, quantity):
    return client_for(user).post(
        f"/api/v1/events/{event.pk}/waitlist", {"ticket_type": tier.pk, "quantity": quantity}, format="json"
    )


def sell_out(event, tier) -> list[Order]:
    """Hold every ticket, in orders of one ticket each (so each cancellation frees one)."""
    orders = []
    for _ in range(tier.capacity):
        response = buy(UserFactory(), event, tier, 1)
        assert response.status_code == 201, response.content
        orders.append(Order.objects.get(pk=response.json()["id"]))
    return orders


def cancel(order: Order):
    return client_for(order.buyer).post(f"{ORDERS}/{order.pk}/cancel", format="json")


def later(minutes: int):
    return timezone.now() + timedelta(minutes=minutes)


# --- Joining -----------------------------------------------------------------------------------


def test_joining_a_sold_out_type_gives_fifo_positions(event, tier):
    sell_out(event, tier)
    first, second = UserFactory(), UserFactory()

    r1, r2 = join(first, event, tier, 2), join(second, event, tier, 1)

    assert r1.status_code == 201, r1.content
    assert r1.json()["position"] == 1
    assert r1.json()["status"] == "waiting"
    assert r1.json()["offer"] is None
    assert r2.json()["position"] == 2
    tier.refresh_from_db()
    assert tier.waitlisted == 2
    availability = APIClient().get(f"/api/v1/events/{event.pk}/availability").json()
    assert availability[0]["waitlist_length"] == 2
    assert availability[0]["available"] == 0
    assert_inventory_clean()


def test_joining_while_tickets_are_on_sale_is_refused(event, tier):
    buy(UserFactory(), event, tier, 3)  # one left

    body = assert_problem(join(UserFactory(), event, tier, 1), 409, "not_sold_out")

    assert body["available"] == 1
    assert not WaitlistEntry.objects.exists()


def test_joining_for_more_than_is_left_is_allowed(event, tier, run_on_commit):
    buy(UserFactory(), event, tier, 3)  # one left, two wanted
    user = UserFactory()

    response = run_on_commit(lambda: join(user, event, tier, 2))

    assert response.status_code == 201
    entry = WaitlistEntry.objects.get()
    assert entry.status == "waiting"  # nothing fits it: the one ticket stays, for the list
    assert_problem(buy(UserFactory(), event, tier, 1), 409, "sold_out")
    assert_inventory_clean()


def test_a_second_live_entry_is_refused(event, tier):
    sell_out(event, tier)
    user = UserFactory()
    join(user, event, tier, 1)

    assert_problem(join(user, event, tier, 2), 409, "already_on_waitlist")
    assert WaitlistEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ticket_type": 1}, "quantity"),
        ({"ticket_type": "x", "quantity": 1}, "ticket_type"),
        ({"ticket_type": 1, "quantity": 0}, "quantity"),
        ({"ticket_type": 1, "quantity": 10**30}, "quantity"),
        ({"ticket_type": 10**30, "quantity": 1}, "ticket_type"),
        ({"ticket_type": None, "quantity": 1}, "ticket_type"),
        ({"ticket_type": 1, "quantity": 1, "extra": 1}, "extra"),
    ],
)
def test_bad_join_bodies_are_400_naming_the_field(event, tier, body, field):
    response = client_for(UserFactory()).post(f"/api/v1/events/{event.pk}/waitlist", body, format="json")

    assert assert_problem(response, 400, "invalid")["errors"].keys() >= {field}


def test_joining_another_events_type_or_a_missing_event(event, tier):
    other = TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED))
    user = UserFactory()

    assert_problem(join(user, event, other, 1), 400, "invalid")
    response = client_for(user).post(
        "/api/v1/events/999999999999999999/waitlist", {"ticket_type": tier.pk, "quantity": 1}, format="json"
    )
    assert_problem(response, 404, "not_found")
    draft = EventFactory()
    assert_problem(join(user, draft, TicketTypeFactory(event=draft), 1), 404, "not_found")


def test_seated_types_and_closed_events_are_refused_clearly(event, tier):
    seated = TicketTypeFactory(event=event, seated=True, capacity=1, available=0)
    user = UserFactory()
    assert_problem(join(user, event, seated, 1), 400, "seated_not_supported")

    sell_out(event, tier)
    Event.objects.filter(pk=event.pk).update(status=Event.Status.CANCELLED)
    assert_problem(join(user, event, tier, 1), 409, "event_cancelled")

    ended = EventFactory(status=Event.Status.PUBLISHED, starts_at=later(-300), ends_at=later(-60))  # over an hour ago
    past = TicketTypeFactory(event=ended, capacity=1, available=0)
    assert_problem(join(user, ended, past, 1), 409, "sales_closed")


def test_joining_over_the_per_order_or_buyer_limit(event, tier):
    sell_out(event, tier)
    TicketType.objects.filter(pk=tier.pk).update(max_per_buyer=2)

    assert_problem(join(UserFactory(), event, tier, 5), 409, "limit_exceeded")
    assert_problem(join(UserFactory(), event, tier, 3), 409, "limit_exceeded")
    assert join(UserFactory(), event, tier, 2).status_code == 201


def test_joining_needs_an_account(event, tier):
    response = APIClient().post(
        f"/api/v1/events/{event.pk}/waitlist", {"ticket_type": tier.pk, "quantity": 1}, format="json"
    )
    assert response.status_code == 401


# --- The gate: newcomers cannot take the list's stock --------------------------------------------


def test_a_newcomer_cannot_buy_released_stock_while_the_list_waits(event, tier):
    orders = sell_out(event, tier)
    join(UserFactory(), event, tier, 1)
    cancel(orders[0])  # without the worker (on commit): the ticket is back, and the list's

    body = assert_problem(buy(UserFactory(), event, tier, 1), 409, "sold_out")

    assert body["waitlist_open"] is True
    assert body["available"] == 0
    assert "waiting list" in body["detail"]
    tier.refresh_from_db()
    assert tier.available == 1
    assert_inventory_clean()


def test_the_gate_holds_under_the_lock_too(event, tier):
    """A purchase validated before the list opened is refused by the stock statement itself."""
    from orders import services

    sell_out(event, tier)
    join(UserFactory(), event, tier, 1)
    TicketType.objects.filter(pk=tier.pk).update(available=1, capacity=5)  # as if a release had committed
    types = {tier.pk: TicketType.objects.get(pk=tier.pk)}
    with pytest.raises(services._ShortOfStock) as short:
        services._take_stock([(tier.pk, 1)], types)
    assert short.value.gated


# --- Offers ------------------------------------------------------------------------------------


def test_released_stock_is_offered_fifo_to_the_first_entries_that_fit(event, tier, run_on_commit, mailoutbox):
    orders = sell_out(event, tier)
    first, second, third = UserFactory(), UserFactory(), UserFactory()
    join(first, event, tier, 2)
    join(second, event, tier, 1)
    join(third, event, tier, 1)

    run_on_commit(lambda: cancel(orders[0]))  # one ticket back: the first entry (2) does not fit

    entries = {e.user_id: e for e in WaitlistEntry.objects.all()}
    assert entries[first.pk].status == "waiting"
    assert entries[second.pk].status == "offered"
    assert entries[third.pk].status == "waiting"
    offer = entries[second.pk].order
    assert offer.status == "reserved"
    assert offer.buyer_id == second.pk
    assert offer.total_cents == 2500
    assert offer.expires_at > later(29)
    assert InventoryEntry.objects.filter(order=offer, kind="hold", quantity=1).exists()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [second.email]
    assert str(offer.pk) in mailoutbox[0].body
    # The entry that did not fit kept its place.
    mine = client_for(first).get("/api/v1/waitlist").json()["results"][0]
    assert mine["position"] == 1
    assert client_for(third).get("/api/v1/waitlist").json()["results"][0]["position"] == 2
    theirs = client_for(second).get(f"/api/v1/waitlist/{entries[second.pk].pk}").json()
    assert theirs["status"] == "offered"
    assert theirs["position"] is None
    assert theirs["offer"]["order"] == str(offer.pk)
    assert theirs["offer"]["expires_at"]
    tier.refresh_from_db()
    assert tier.available == 0
    assert tier.waitlisted == 2

    run_on_commit(lambda: cancel(orders[1]))  # one more: still too few for the first, the third gets it
    assert WaitlistEntry.objects.get(user=first).status == "waiting"
    assert WaitlistEntry.objects.get(user=third).status == "offered"
    run_on_commit(lambda: cancel(orders[2]))  # one: kept for the list (nobody can buy it) ...
    tier.refresh_from_db()
    assert tier.available == 1
    assert WaitlistEntry.objects.get(user=first).status == "waiting"
    assert_problem(buy(UserFactory(), event, tier, 1), 409, "sold_out")

    run_on_commit(lambda: cancel(orders[3]))  # ... until two are back: the first entry fits

    assert WaitlistEntry.objects.get(user=first).status == "offered"
    assert WaitlistEntry.objects.get(user=first).order.items.get().quantity == 2
    tier.refresh_from_db()
    assert tier.available == 0
    assert tier.waitlisted == 0
    assert_inventory_clean()


def test_an_unclaimed_offer_lapses_and_moves_on_down_the_line(event, tier, run_on_commit, mailoutbox, settings):
    settings.ORDER_HOLD_MINUTES = 600  # the buyers' own holds outlast the offers
    orders = sell_out(event, tier)
    users = [UserFactory() for _ in range(3)]
    for user in users:
        join(user, event, tier, 1)
    run_on_commit(lambda: cancel(orders[0]))
    assert [WaitlistEntry.objects.get(user=u).status for u in users] == ["offered", "waiting", "waiting"]

    run_on_commit(lambda: expire_due_holds(now=later(31)))  # the first offer lapses

    assert [WaitlistEntry.objects.get(user=u).status for u in users] == ["lapsed", "offered", "waiting"]
    assert WaitlistEntry.objects.get(user=users[0]).order.status == "expired"
    assert_inventory_clean()

    run_on_commit(lambda: expire_due_holds(now=later(62)))  # and the second

    assert [WaitlistEntry.objects.get(user=u).status for u in users] == ["lapsed", "lapsed", "offered"]
    run_on_commit(lambda: expire_due_holds(now=later(93)))  # the last: nobody waits any more

    tier.refresh_from_db()
    assert tier.waitlisted == 0
    assert tier.available == 1
    assert len(mailoutbox) == 3
    assert buy(UserFactory(), event, tier, 1).status_code == 201
    assert_inventory_clean()


def test_the_sweep_expires_the_other_holds_too_and_offers_them(event, tier, run_on_commit):
    """Holds of newcomers expiring hand their tickets to the list, not back to sale."""
    sell_out(event, tier)
    waiting = [UserFactory() for _ in range(5)]
    for user in waiting:
        join(user, event, tier, 1)

    run_on_commit(lambda: expire_due_holds(now=later(11)))  # all four holds run out

    statuses = [WaitlistEntry.objects.get(user=u).status for u in waiting]
    assert statuses == ["offered"] * 4 + ["waiting"]
    tier.refresh_from_db()
    assert tier.available == 0
    assert tier.waitlisted == 1
    assert_inventory_clean()


def test_paying_an_offer_claims_it(event, tier, run_on_commit):
    orders = sell_out(event, tier)
    user = UserFactory()
    join(user, event, tier, 1)
    run_on_commit(lambda: cancel(orders[0]))
    offer = WaitlistEntry.objects.get(user=user).order
    client = client_for(user)

    payment = client.post(f"{ORDERS}/{offer.pk}/pay", format="json").json()["payment"]
    run_on_commit(lambda: client.post(f"/api/v1/payments/test/{payment['id']}/complete"))

    offer.refresh_from_db()
    assert offer.status == "paid"
    assert WaitlistEntry.objects.get(user=user).status == "claimed"
    assert offer.tickets.count() == 1
    assert_inventory_clean()


def test_cancelling_an_offer_declines_it_and_the_next_gets_it(event, tier, run_on_commit):
    orders = sell_out(event, tier)
    first, second = UserFactory(), UserFactory()
    join(first, event, tier, 1)
    join(second, event, tier, 1)
    run_on_commit(lambda: cancel(orders[0]))
    offer = WaitlistEntry.objects.get(user=first).order

    run_on_commit(lambda: cancel(offer))

    assert WaitlistEntry.objects.get(user=first).status == "declined"
    assert WaitlistEntry.objects.get(user=second).status == "offered"
    assert_inventory_clean()


def test_a_refund_is_offered_to_the_list(event, tier, run_on_commit):
    Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=1)
    orders = sell_out(event, tier)
    buyer = orders[0].buyer
    client = client_for(buyer)
    payment = client.post(f"{ORDERS}/{orders[0].pk}/pay", format="json").json()["payment"]
    run_on_commit(lambda: client.post(f"/api/v1/payments/test/{payment['id']}/complete"))
    user = UserFactory()
    join(user, event, tier, 1)

    response = run_on_commit(lambda: cancel(orders[0]))

    assert response.json()["status"] == "refunded"
    assert WaitlistEntry.objects.get(user=user).status == "offered"
    assert_inventory_clean()


def test_a_capacity_increase_is_offered_to_the_list(event, tier, run_on_commit):
    from events.services import ticket_type_update

    sell_out(event, tier)
    user = UserFactory()
    join(user, event, tier, 2)

    run_on_commit(lambda: ticket_type_update(ticket_type=tier, capacity=6))

    entry = WaitlistEntry.objects.get(user=user)
    assert entry.status == "offered"
    assert entry.order.items.get().quantity == 2
    assert_inventory_clean()


def test_an_entry_past_its_buyer_limit_at_offer_time_is_skipped_and_keeps_its_place(event, tier, run_on_commit):
    orders = sell_out(event, tier)
    greedy, next_in_line = orders[1].buyer, UserFactory()
    join(greedy, event, tier, 1)  # holds one already: two in all, within no limit yet
    join(next_in_line, event, tier, 1)
    TicketType.objects.filter(pk=tier.pk).update(max_per_buyer=1)

    run_on_commit(lambda: cancel(orders[0]))

    assert WaitlistEntry.objects.get(user=greedy).status == "waiting"
    assert WaitlistEntry.objects.get(user=next_in_line).status == "offered"
    assert client_for(greedy).get("/api/v1/waitlist").json()["results"][0]["position"] == 1
    assert_inventory_clean()


def test_a_bucketed_type_is_gated_and_offered_alike(event, run_on_commit):
    from events.services import ticket_type_create

    tier = ticket_type_create(event=event, name="Hot", price_cents=1000, capacity=8, max_per_order=8, stock_buckets=4)
    held = buy(UserFactory(), event, tier, 8)
    assert held.status_code == 201
    user = UserFactory()
    join(user, event, tier, 3)
    run_on_commit(lambda: cancel(Order.objects.get(pk=held.json()["id"])))  # 8 back to the pool

    assert WaitlistEntry.objects.get(user=user).status == "offered"
    assert buy(UserFactory(), event, tier, 1).status_code == 201  # the list is empty again: on sale
    assert_inventory_clean()


def test_an_event_cancellation_closes_its_list(event, tier, run_on_commit):
    from events.services import event_cancel

    orders = sell_out(event, tier)
    first, second = UserFactory(), UserFactory()
    join(first, event, tier, 1)
    join(second, event, tier, 1)
    run_on_commit(lambda: cancel(orders[0]))

    run_on_commit(lambda: event_cancel(event=event))

    assert set(WaitlistEntry.objects.values_list("status", flat=True)) == {"closed"}
    tier.refresh_from_db()
    assert tier.waitlisted == 0
    assert_inventory_clean()


# --- Leaving -----------------------------------------------------------------------------------


def test_leaving_the_list(event, tier, run_on_commit):
    sell_out(event, tier)
    first, second = UserFactory(), UserFactory()
    entry = WaitlistEntry.objects.get(pk=join(first, event, tier, 1).json()["id"])
    join(second, event, tier, 1)

    response = client_for(first).delete(f"/api/v1/waitlist/{entry.pk}")

    assert response.status_code == 204
    entry.refresh_from_db()
    assert entry.status == "left"
    assert client_for(second).get("/api/v1/waitlist").json()["results"][0]["position"] == 1
    assert_problem(client_for(first).delete(f"/api/v1/waitlist/{entry.pk}"), 409, "waitlist_entry_closed")
    tier.refresh_from_db()
    assert tier.waitlisted == 1
    assert_inventory_clean()


def test_leaving_with_an_offer_cancels_it_and_passes_it_on(event, tier, run_on_commit):
    orders = sell_out(event, tier)
    first, second = UserFactory(), UserFactory()
    join(first, event, tier, 1)
    join(second, event, tier, 1)
    run_on_commit(lambda: cancel(orders[0]))
    entry = WaitlistEntry.objects.get(user=first)

    response = run_on_commit(lambda: client_for(first).delete(f"/api/v1/waitlist/{entry.pk}"))

    assert response.status_code == 204
    entry.refresh_from_db()
    assert entry.status == "left"
    assert entry.order.status == "cancelled"
    assert WaitlistEntry.objects.get(user=second).status == "offered"
    assert_inventory_clean()


def test_the_last_entry_leaving_puts_held_back_stock_on_sale(event, tier, run_on_commit):
    buy(UserFactory(), event, tier, 3)
    user = UserFactory()
    entry_id = run_on_commit(lambda: join(user, event, tier, 2)).json()["id"]
    assert_problem(buy(UserFactory(), event, tier, 1), 409, "sold_out")

    client_for(user).delete(f"/api/v1/waitlist/{entry_id}")

    assert buy(UserFactory(), event, tier, 1).status_code == 201


def test_someone_elses_entry_is_a_404(event, tier):
    sell_out(event, tier)
    entry_id = join(UserFactory(), event, tier, 1).json()["id"]
    stranger = client_for(UserFactory())

    assert_problem(stranger.get(f"/api/v1/waitlist/{entry_id}"), 404, "not_found")
    assert_problem(stranger.delete(f"/api/v1/waitlist/{entry_id}"), 404, "not_found")
    assert stranger.get("/api/v1/waitlist").json()["results"] == []
    assert WaitlistEntry.objects.get(pk=entry_id).status == "waiting"


# --- The organizer -----------------------------------------------------------------------------


@pytest.fixture
def owner(event):
    return event.organizer.user


def test_the_organizer_sees_the_list_in_order(event, tier, owner, django_assert_max_num_queries):
    sell_out(event, tier)
    users = [UserFactory() for _ in range(3)]
    for user in users:
        join(user, event, tier, 1)

    with django_assert_max_num_queries(8):
        response = client_for(owner).get(f"/api/v1/events/{event.pk}/waitlist-entries")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["user_email"] for row in rows] == [u.email for u in users]
    assert [row["position"] for row in rows] == [1, 2, 3]
    assert rows[0]["quantity"] == 1
    assert rows[0]["status"] == "waiting"


def test_the_organizer_adds_and_removes_entries(event, tier, owner):
    orders = sell_out(event, tier)
    user = UserFactory()
    Order.objects.filter(pk=orders[0].pk).update(buyer=user)  # one of the organizer's buyers
    client = client_for(owner)
    url = f"/api/v1/events/{event.pk}/waitlist-entries"

    added = client.post(url, {"email": user.email.upper(), "ticket_type": tier.pk, "quantity": 2}, format="json")

    assert added.status_code == 201, added.content
    assert added.json()["user_email"] == user.email
    assert added.json()["position"] == 1
    assert_problem(
        client.post(url, {"email": "nobody@example.com", "ticket_type": tier.pk, "quantity": 1}, format="json"),
        400,
        "invalid",
    )
    assert client.delete(f"{url}/{added.json()['id']}").status_code == 204
    assert WaitlistEntry.objects.get().status == "removed"
    assert_problem(client.delete(url, {"id": added.json()["id"]}, format="json"), 409, "waitlist_entry_closed")
    assert_inventory_clean()


def test_only_the_owner_sees_or_edits_the_list(event, tier):
    sell_out(event, tier)
    entry_id = join(UserFactory(), event, tier, 1).json()["id"]
    other_organizer = OrganizerProfileFactory().user
    url = f"/api/v1/events/{event.pk}/waitlist-entries"

    for user in (UserFactory(), other_organizer):
        client = client_for(user)
        assert_problem(client.get(url), 403, "permission_denied")
        assert_problem(client.delete(f"{url}/{entry_id}"), 403, "permission_denied")
    assert WaitlistEntry.objects.get().status == "waiting"


def test_check_inventory_notices_a_drifting_counter(event, tier):
    sell_out(event, tier)
    join(UserFactory(), event, tier, 1)
    TicketType.objects.filter(pk=tier.pk).update(waitlisted=2)

    problems = next(row for row in inventory_report() if row["ticket_type"] == tier.pk)["problems"]

    assert problems == ["waitlisted 2 but 1 waiting list entries wait"]


# --- The admin ---------------------------------------------------------------------------------

ENTRIES_ADMIN = "/admin/orders/waitlistentry/"


def test_the_admin_shows_the_organizers_lists_fifo_and_removes_entries(event, tier):
    from django.test import Client

    from accounts.services import organizer_profile_create

    organizer = organizer_profile_create(user=UserFactory(), display_name="Dora Concerts")
    Event.objects.filter(pk=event.pk).update(organizer=organizer)
    sell_out(event, tier)
    users = [UserFactory() for _ in range(3)]
    ids = [join(user, event, tier, 1).json()["id"] for user in users]
    rival = organizer_profile_create(user=UserFactory(), display_name="Rival")
    rival_event = EventFactory(organizer=rival, status=Event.Status.PUBLISHED)
    rival_tier = TicketTypeFactory(event=rival_event, capacity=1, available=0)
    rival_entry = join(UserFactory(), rival_event, rival_tier, 1).json()["id"]
    client = Client()
    client.force_login(organizer.user)

    page = client.get(ENTRIES_ADMIN)

    assert page.status_code == 200
    assert [entry.pk for entry in page.context["cl"].result_list] == ids  # first come first, own events only
    assert [entry.position for entry in page.context["cl"].result_list] == [1, 2, 3]
    assert client.get(f"{ENTRIES_ADMIN}{rival_entry}/change/").status_code in (302, 404)
    assert client.get(f"{ENTRIES_ADMIN}{ids[0]}/change/").status_code == 200
    event_page = client.get(f"/admin/events/event/{event.pk}/change/")
    assert event_page.status_code == 200
    assert "(3 waiting)" in event_page.content.decode()  # the ticket type inline's Available column

    response = client.post(
        ENTRIES_ADMIN, {"action": "remove_entries", "_selected_action": [ids[0], rival_entry]}, follow=True
    )

    assert response.status_code == 200
    assert WaitlistEntry.objects.get(pk=ids[0]).status == "removed"
    assert WaitlistEntry.objects.get(pk=rival_entry).status == "waiting"
    tier.refresh_from_db()
    assert tier.waitlisted == 2
    call_command("check_inventory", event=event.pk)


def test_a_free_types_offer_is_sold_at_once(event, run_on_commit, mailoutbox):
    free = TicketTypeFactory(event=event, price_cents=0, capacity=1, max_per_order=2, max_per_buyer=None)
    holder = buy(UserFactory(), event, free, 1).json()  # free: paid at once
    assert holder["status"] == "paid"
    user = UserFactory()
    join(user, event, free, 1)
    order = Order.objects.get(pk=holder["id"])
    order.refresh_from_db()
    from orders.payments.services import order_refund

    run_on_commit(lambda: order_refund(order=order, by_policy=False))

    entry = WaitlistEntry.objects.get(user=user)
    assert entry.status == "claimed"
    assert entry.order.status == "paid"
    assert entry.order.tickets.count() == 1
    assert [mail.to for mail in mailoutbox if user.email in mail.to] == [[user.email]]  # the confirmation
    assert_inventory_clean()


def test_a_bucket_claim_is_refused_while_the_list_waits(event):
    from events import stock
    from events.services import ticket_type_create

    tier = ticket_type_create(event=event, name="Hot", price_cents=1000, capacity=8, max_per_order=8, stock_buckets=4)
    assert buy(UserFactory(), event, tier, 7).status_code == 201  # one ticket left, in a bucket
    assert join(UserFactory(), event, tier, 2).status_code == 201  # too few for this entry: the list opens

    assert_problem(buy(UserFactory(), event, tier, 1), 409, "sold_out")
    with pytest.raises(stock.ShortOfStock) as short:  # and under the lock: the claim, then the locked path
        stock.take([(tier.pk, 1)], buckets={tier.pk: 4})
    assert short.value.gated
    assert TicketType.objects.get(pk=tier.pk).on_sale == 1
    assert_inventory_clean()
