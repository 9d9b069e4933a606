"""The admin as the organizers' back office: scoping, writes through the services, actions."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import OrganizerProfile, User
from accounts.services import organizer_profile_create, organizers_group
from accounts.tests.factories import UserFactory
from eventflow.regional import to_major
from events import admin as events_admin
from events.errors import CapacityBelowSold
from events.models import Event, TicketType

from .factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/events/event/"
ADD = "/admin/events/event/add/"
PREFIX = "ticket_types"


def change_url(event: Event) -> str:
    return reverse("admin:events_event_change", args=[event.pk])


def delete_url(event: Event) -> str:
    return reverse("admin:events_event_delete", args=[event.pk])


def make_organizer(display_name: str) -> OrganizerProfile:
    return organizer_profile_create(user=UserFactory(), display_name=display_name)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def soon() -> datetime:
    # whole seconds: the admin's time inputs have no microseconds
    return (timezone.now() + timedelta(days=30)).replace(microsecond=0)


def draft_of(organizer: OrganizerProfile, **fields: Any) -> Event:
    starts = soon()
    fields.setdefault("timezone", "Europe/Lisbon")  # the zone the forms below are filled in (ZONE)
    return EventFactory(organizer=organizer, starts_at=starts, ends_at=starts + timedelta(hours=3), **fields)


# The form's times are the event's local times (the admin shows and reads them in its time zone).
ZONE = ZoneInfo("Europe/Lisbon")
SINGLE_INPUT = {"sales_start", "sales_end"}  # one datetime-local input; the event's times are split


def _encode(prefix: str, values: dict[str, Any]) -> dict[str, str]:
    """Field values as the admin's widgets post them (split date and time, checkboxes only when on)."""
    data: dict[str, str] = {}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if isinstance(value, datetime) and name in SINGLE_INPUT:
            data[key] = value.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")
        elif isinstance(value, datetime):
            value = value.astimezone(ZONE)
            data[f"{key}_0"], data[f"{key}_1"] = value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S")
        elif name in SINGLE_INPUT and value is None:
            data[key] = ""
        elif name == "refundable_until" and value is None:
            data[f"{key}_0"] = data[f"{key}_1"] = ""
        elif isinstance(value, bool):
            if value:
                data[key] = "on"
        else:
            data[key] = "" if value is None else str(value)
    return data


def event_form(event: Event | None = None, **overrides: Any) -> dict[str, str]:
    """The event fields of the add form (or of ``event``'s change form), with ``overrides``."""
    starts = soon()
    values: dict[str, Any] = {
        "title": "Summer Jam",
        "slug": "",
        "category": "music",
        "description": "Bands in the park.",
        "venue_name": "Park Stage",
        "address": "1 Park Road",
        "city": "Lisbon",
        "country": "PT",
        "latitude": None,
        "longitude": None,
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=5),
        "timezone": "Europe/Lisbon",
        "currency": "EUR",
        "refundable_until": None,
    }
    if event is not None:
        values = {name: getattr(event, name) for name in values}
    values.update(overrides)
    return {**_encode("", values), "_save": "Save"}


def new_row(**fields: Any) -> dict[str, Any]:
    return {"id": None, "event": None, "max_per_order": 10, "position": 0, "sales_start": None, "sales_end": None} | (
        fields
    )


def row_of(ticket_type: TicketType, **changes: Any) -> dict[str, Any]:
    """An existing ticket type's inline row as the change page shows it, with ``changes``."""
    fields = ["name", "capacity", "max_per_order", "sales_start", "sales_end", "seated", "position"]
    values = {name: getattr(ticket_type, name) for name in fields}
    values["price"] = to_major(ticket_type.price_cents, ticket_type.event.currency)
    return {"id": ticket_type.pk, "event": ticket_type.event_id, **values, **changes}


def inline(*rows: dict[str, Any]) -> dict[str, str]:
    """The ticket-type inline's management form and rows; existing rows (with an id) must come first."""
    data = {
        f"{PREFIX}-TOTAL_FORMS": str(len(rows)),
        f"{PREFIX}-INITIAL_FORMS": str(sum(1 for row in rows if row.get("id"))),
        f"{PREFIX}-MIN_NUM_FORMS": "0",
        f"{PREFIX}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update(_encode(f"{PREFIX}-{index}-", row))
    return data


def messages_of(response) -> list[str]:
    """The messages on the page a followed redirect ended on (rendering consumes them)."""
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def organizer() -> OrganizerProfile:
    return make_organizer("Dora Concerts")


@pytest.fixture
def rival() -> OrganizerProfile:
    return make_organizer("Rival Shows")


# --- An organizer's day in the back office ---------------------------------------------


def test_organizer_adds_an_event_with_two_ticket_types_and_publishes_it(organizer):
    client = logged_in(organizer.user)
    assert client.get("/admin/").status_code == 200
    add_page = client.get(ADD)
    assert add_page.status_code == 200
    assert b'name="organizer"' not in add_page.content  # an organizer's event is always their own

    # when they add an event with two ticket types through the add form
    r = client.post(
        ADD,
        event_form(title="Summer Jam", latitude="38.722252", longitude="-9.139337")
        | inline(
            new_row(name="Standard", price="25.00", capacity=100),
            new_row(name="VIP", price="90", capacity=20, max_per_order=2, position=1),
        ),
        follow=True,
    )

    # then it is their draft, with a derived slug and both ticket types fully available
    assert r.redirect_chain == [(CHANGELIST, 302)], r.context["adminform"].form.errors
    event = Event.objects.get(title="Summer Jam")
    assert (event.organizer, event.slug, event.status, event.country) == (organizer, "summer-jam", "draft", "PT")

    # when they publish it with the admin action
    r = client.post(CHANGELIST, {"action": "publish_events", "_selected_action": [event.pk]}, follow=True)

    # then it is published and its stock untouched
    assert r.redirect_chain == [(CHANGELIST, 302)]
    assert messages_of(r) == ["1 event was published."]
    event.refresh_from_db()
    assert event.status == Event.Status.PUBLISHED
    assert event.published_at is not None
    rows = list(event.ticket_types.values_list("name", "price_cents", "capacity", "available", "max_per_order"))
    assert rows == [("Standard", 2500, 100, 100, 10), ("VIP", 9000, 20, 20, 2)]

    # and the changelist shows it with its tickets available
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "Summer Jam" in page.content.decode()
    assert page.context["cl"].result_list[0].available_total == 120

    # and the public API lists it: search, city and near find it, the detail has both tiers
    api = APIClient()
    for params in ({"search": "summer"}, {"city": "lisbon"}, {"near": "38.72,-9.14", "radius_km": 5}):
        assert [e["id"] for e in api.get("/api/v1/events", params).json()["results"]] == [event.pk], params
    detail = api.get(f"/api/v1/events/{event.pk}").json()
    assert [(t["name"], t["available"]) for t in detail["ticket_types"]] == [("Standard", 100), ("VIP", 20)]


def test_form_errors_are_shown_and_nothing_is_saved(organizer):
    draft_of(organizer, slug="taken")
    client = logged_in(organizer.user)
    starts = soon()

    r = client.post(
        ADD,
        event_form(title="Clash", slug="taken", starts_at=starts, ends_at=starts - timedelta(hours=1))
        | inline(new_row(name="Standard", price="1.00", capacity=10)),
    )

    assert r.status_code == 200
    errors = r.context["adminform"].form.errors
    assert errors["slug"] == ["You already have an event with this slug."]
    assert errors["ends_at"] == ["Must be later than the start."]
    assert not Event.objects.filter(title="Clash").exists()
    assert not TicketType.objects.filter(name="Standard").exists()


# --- Another organizer's event does not exist --------------------------------------------


def test_another_organizer_cannot_see_change_delete_or_publish_an_event(organizer, rival):
    # given an event of the organizer, with a ticket type so it could be published
    event = draft_of(organizer, title="Private Party")
    TicketTypeFactory(event=event)
    client = logged_in(rival.user)

    # then the rival's changelist does not show it
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "Private Party" not in page.content.decode()
    assert page.context["cl"].result_count == 0

    # and its pages answer as if it did not exist
    for url in (change_url(event), delete_url(event), reverse("admin:events_event_history", args=[event.pk])):
        r = client.get(url, follow=True)
        assert r.redirect_chain == [("/admin/", 302)], url
        assert messages_of(r) == [
            f"event with ID “{event.pk}” doesn\u2019t exist. Perhaps it was deleted?"
        ]  # Django's wording

    # and posting to them changes nothing
    r = client.post(change_url(event), event_form(event, title="Hijacked") | inline(), follow=True)
    assert r.redirect_chain == [("/admin/", 302)]
    r = client.post(delete_url(event), {"post": "yes"}, follow=True)
    assert r.redirect_chain == [("/admin/", 302)]
    r = client.post(CHANGELIST, {"action": "publish_events", "_selected_action": [event.pk]}, follow=True)
    assert r.redirect_chain == [(CHANGELIST, 302)]
    assert messages_of(r) == []
    event.refresh_from_db()
    assert (event.title, event.status, event.deleted_at) == ("Private Party", "draft", None)


def test_staff_without_an_organizer_profile_see_nothing_and_cannot_add():
    # given a staff member with the event permissions but no organizer profile
    staff = UserFactory(is_staff=True)
    staff.groups.add(organizers_group())
    draft_of(make_organizer("Someone"))
    client = logged_in(staff)

    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 0
    assert client.get(ADD).status_code == 403


def test_a_superuser_sees_every_alive_event_and_picks_the_organizer(organizer, rival, django_assert_max_num_queries):
    # given events of two organizers, and one soft-deleted
    mine = draft_of(organizer, title="Mine")
    theirs = draft_of(rival, title="Theirs")
    draft_of(rival, title="Gone", deleted_at=timezone.now())
    root = User.objects.create_superuser(email="root@example.com", password="x-Strong-Pass-1")
    client = logged_in(root)

    # then the changelist holds both alive events, and no deleted one, in a fixed number of queries
    for _ in range(5):
        TicketTypeFactory(event=draft_of(make_organizer("Filler"), title="Filler"))
    with django_assert_max_num_queries(10):
        page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert {event.title for event in page.context["cl"].result_list} == {"Mine", "Theirs", "Filler"}
    assert client.get(change_url(mine)).status_code == 200
    assert client.get(change_url(theirs)).status_code == 200

    # and an event they add belongs to the organizer they chose
    assert b'name="organizer"' in client.get(ADD).content
    r = client.post(ADD, event_form(title="For Rival", organizer=rival.pk) | inline())
    assert r.status_code == 302
    assert Event.objects.get(title="For Rival").organizer == rival


# --- Ticket types through the inline ------------------------------------------------------


def test_a_capacity_change_moves_available_and_never_drops_below_sold_or_held(organizer):
    # given a ticket type of 100 of which 10 are sold
    event = draft_of(organizer)
    tier = TicketTypeFactory(event=event, capacity=100)
    TicketType.objects.filter(pk=tier.pk).update(available=90)
    tier.refresh_from_db()
    client = logged_in(organizer.user)
    page = client.get(change_url(event))
    assert page.status_code == 200
    assert {"Sold", "Held"} <= {str(f["label"]) for f in page.context["inline_admin_formsets"][0].fields()}

    # when the capacity goes down to 50
    r = client.post(change_url(event), event_form(event) | inline(row_of(tier, capacity=50)))

    # then 40 are left for sale
    assert r.status_code == 302
    tier.refresh_from_db()
    assert (tier.capacity, tier.available) == (50, 40)

    # when it goes below the 10 sold
    r = client.post(change_url(event), event_form(event) | inline(row_of(tier, capacity=5)))

    # then the form says why and nothing changed
    assert r.status_code == 200
    assert r.context["inline_admin_formsets"][0].formset.errors[0]["capacity"] == [
        "Capacity cannot drop below 10 tickets already sold or held."
    ]
    tier.refresh_from_db()
    assert (tier.capacity, tier.available) == (50, 40)


def test_a_ticket_type_with_sold_tickets_cannot_be_deleted(organizer):
    event = draft_of(organizer)
    tier = TicketTypeFactory(event=event, name="Standard", capacity=100)
    TicketType.objects.filter(pk=tier.pk).update(available=99)
    client = logged_in(organizer.user)

    r = client.post(change_url(event), event_form(event) | inline(row_of(tier, DELETE=True)))

    assert r.status_code == 200
    errors = r.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert errors == [
        "“Standard” cannot be deleted: Tickets of this type have been sold or are held; it cannot be deleted."
    ]
    assert TicketType.objects.filter(pk=tier.pk).exists()


def test_a_published_event_keeps_at_least_one_ticket_type(organizer):
    event = draft_of(organizer, status=Event.Status.PUBLISHED, published_at=timezone.now())
    tier = TicketTypeFactory(event=event, name="Only")
    client = logged_in(organizer.user)

    # deleting the only ticket type is refused
    r = client.post(change_url(event), event_form(event) | inline(row_of(tier, DELETE=True)))
    assert r.status_code == 200
    assert r.context["inline_admin_formsets"][0].formset.non_form_errors() == [
        "A published event needs at least one ticket type."
    ]
    assert TicketType.objects.filter(pk=tier.pk).exists()

    # replacing it in the same save is fine
    r = client.post(
        change_url(event),
        event_form(event) | inline(row_of(tier, DELETE=True), new_row(name="New", price="1.00", capacity=5)),
    )
    assert r.status_code == 302
    assert list(event.ticket_types.values_list("name", "available")) == [("New", 5)]


def test_a_refusal_the_form_could_not_foresee_rolls_the_whole_save_back(organizer, monkeypatch):
    # given tickets sold between the form's check and the save (the service refuses)
    event = draft_of(organizer, title="Before")
    tier = TicketTypeFactory(event=event, capacity=100)

    def sold_meanwhile(**kwargs):
        raise CapacityBelowSold("Capacity cannot drop below 80: that many tickets are sold or held.")

    monkeypatch.setattr(events_admin, "ticket_type_update", sold_meanwhile)
    client = logged_in(organizer.user)

    # when the organizer renames the event and lowers the capacity in one save
    r = client.post(
        change_url(event), event_form(event, title="After") | inline(row_of(tier, capacity=50)), follow=True
    )

    # then they are told, and neither change was kept
    assert r.redirect_chain == [(change_url(event), 302)]
    assert messages_of(r) == ["Capacity cannot drop below 80: that many tickets are sold or held."]
    event.refresh_from_db()
    tier.refresh_from_db()
    assert (event.title, tier.capacity, tier.available) == ("Before", 100, 100)


# --- Status actions and deletion --------------------------------------------------------


def test_publishing_an_event_without_ticket_types_reports_why_and_leaves_it_draft(organizer):
    event = draft_of(organizer, title="Empty")
    ready = draft_of(organizer, title="Ready")
    TicketTypeFactory(event=ready)
    client = logged_in(organizer.user)

    r = client.post(CHANGELIST, {"action": "publish_events", "_selected_action": [event.pk, ready.pk]}, follow=True)

    assert sorted(messages_of(r)) == [
        "1 event was published.",
        "Could not publish “Empty”: Add at least one ticket type before publishing the event.",
    ]
    event.refresh_from_db()
    ready.refresh_from_db()
    assert (event.status, ready.status) == ("draft", "published")


def test_unpublish_action(organizer):
    event = draft_of(organizer, status=Event.Status.PUBLISHED, published_at=timezone.now())
    TicketTypeFactory(event=event)
    client = logged_in(organizer.user)

    r = client.post(CHANGELIST, {"action": "unpublish_events", "_selected_action": [event.pk]}, follow=True)

    assert messages_of(r) == ["1 event was unpublished."]
    event.refresh_from_db()
    assert event.status == Event.Status.DRAFT


def test_deleting_is_a_soft_delete_and_refused_while_tickets_are_sold(organizer):
    # given an event without sales and one with a sold ticket
    quiet = draft_of(organizer, title="Quiet")
    TicketTypeFactory(event=quiet)
    busy = draft_of(organizer, title="Busy")
    tier = TicketTypeFactory(event=busy)
    TicketType.objects.filter(pk=tier.pk).update(available=tier.capacity - 1)
    client = logged_in(organizer.user)

    # when the quiet one is deleted
    assert client.get(delete_url(quiet)).status_code == 200
    r = client.post(delete_url(quiet), {"post": "yes"})

    # then it leaves the admin but its row and ticket types stay
    assert r.status_code == 302
    quiet.refresh_from_db()
    assert quiet.deleted_at is not None
    assert quiet.ticket_types.count() == 1
    assert client.get(change_url(quiet)).status_code == 302

    # and the busy one is refused with the reason
    page = client.get(delete_url(busy))
    assert page.status_code == 200
    assert "Tickets of this event have been sold or are held" in page.content.decode()
    client.post(delete_url(busy), {"post": "yes"})
    r = client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [busy.pk], "post": "yes"})
    assert r.status_code == 200  # the confirmation page, listing it as protected
    busy.refresh_from_db()
    assert busy.deleted_at is None


def test_a_cancelled_event_is_read_only(organizer):
    event = draft_of(organizer, title="Called Off", status=Event.Status.CANCELLED)
    client = logged_in(organizer.user)

    page = client.get(change_url(event))
    assert page.status_code == 200
    assert b'name="title"' not in page.content  # view-only page
    r = client.post(change_url(event), event_form(event, title="Back On") | inline())
    assert r.status_code == 403
    event.refresh_from_db()
    assert event.title == "Called Off"


def test_an_event_with_only_cancelled_orders_is_protected_in_the_admin_as_in_the_api(organizer):
    """The delete page asks the same rule the service applies: any order keeps an event."""
    from orders.services import Line, order_cancel, order_place

    event = draft_of(organizer, title="Had a buyer")
    tier = TicketTypeFactory(event=event)
    Event.objects.filter(pk=event.pk).update(status=Event.Status.PUBLISHED)
    order_cancel(order=order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(tier.pk, 1)]))
    tier.refresh_from_db()
    assert tier.available == tier.capacity  # no ticket is taken any more

    page = logged_in(organizer.user).get(delete_url(event))
    assert page.status_code == 200
    assert page.context["protected"]  # refused up front, not after the click
    event.refresh_from_db()
    assert event.deleted_at is None
