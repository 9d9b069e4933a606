"""Discount codes in the organizers' back office: their own events' codes only, through the services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from events.models import DiscountCode, Event
from orders.models import Order
from orders.services import Line, order_place

from .factories import EventFactory, TicketTypeFactory
from .test_admin import logged_in, make_organizer

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/events/discountcode/"
ADD = "/admin/events/discountcode/add/"


def form(event, **overrides) -> dict:
    data = {
        "event": str(event.pk),
        "code": "SPRING",
        "active": "on",
        "percent_off": "",
        "amount_off": "",
        "max_uses": "",
        "valid_from_0": "",
        "valid_from_1": "",
        "valid_until_0": "",
        "valid_until_1": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def organizer():
    return make_organizer("Spring Sounds")


@pytest.fixture
def event(organizer):
    event = EventFactory(organizer=organizer, status=Event.Status.PUBLISHED, currency="EUR")
    TicketTypeFactory(event=event, price_cents=2000, capacity=10)
    return event


def test_an_organizer_adds_a_code_with_an_amount_in_the_events_currency(organizer, event):
    vip = TicketTypeFactory(event=event, name="VIP")
    client = logged_in(organizer.user)
    r = client.post(ADD, form(event, amount_off="5.50", max_uses="10", ticket_types=[str(vip.pk)]))
    assert r.status_code == 302, r.content.decode()[:3000]
    code = DiscountCode.objects.get()
    assert (code.code, code.amount_off_cents, code.percent_off, code.max_uses, code.uses) == (
        "SPRING",
        550,
        None,
        10,
        0,
    )
    assert list(code.ticket_types.all()) == [vip]
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "5.50 EUR" in page.content.decode()
    assert "0 / 10" in page.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"percent_off": "10", "amount_off": "1.00"}, "percent_off"),
        ({}, "percent_off"),
        ({"percent_off": "101"}, "percent_off"),
        ({"amount_off": "1.005"}, "amount_off"),
        ({"code": "two words", "percent_off": "10"}, "code"),
    ],
)
def test_the_form_refuses_what_the_api_refuses(organizer, event, overrides, field):
    r = logged_in(organizer.user).post(ADD, form(event, **overrides))
    assert r.status_code == 200
    assert field in r.context["adminform"].form.errors, r.context["adminform"].form.errors
    assert not DiscountCode.objects.exists()


def test_a_taken_code_and_foreign_ticket_types_are_refused_on_their_fields(organizer, event):
    DiscountCode.objects.create(event=event, code="Spring", percent_off=5)
    other = TicketTypeFactory(event=EventFactory(organizer=organizer, status=Event.Status.PUBLISHED))
    r = logged_in(organizer.user).post(ADD, form(event, percent_off="10", ticket_types=[str(other.pk)]))
    errors = r.context["adminform"].form.errors
    assert "code" in errors, errors
    assert "ticket_types" in errors, errors
    assert DiscountCode.objects.count() == 1


def test_uses_are_read_only_and_max_uses_stays_above_them(organizer, event):
    code = DiscountCode.objects.create(event=event, code="HALF", percent_off=50, max_uses=5)
    tier = event.ticket_types.get()
    for _ in range(3):
        from accounts.tests.factories import UserFactory

        order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(tier.pk, 1)], discount_code="half")
    client = logged_in(organizer.user)
    url = reverse("admin:events_discountcode_change", args=[code.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="uses"' not in page.content.decode()
    r = client.post(url, form(event, code="HALF", percent_off="50", max_uses="2", uses="0"))
    assert r.status_code == 200
    assert "max_uses" in r.context["adminform"].form.errors
    code.refresh_from_db()
    assert (code.max_uses, code.uses) == (5, 3)
    r = client.post(url, form(event, code="HALF", percent_off="40", max_uses="3"))
    assert r.status_code == 302
    code.refresh_from_db()
    assert (code.percent_off, code.max_uses, code.uses) == (40, 3, 3)


def test_another_organizers_codes_do_not_exist_for_them(organizer, event):
    code = DiscountCode.objects.create(event=event, code="MINE", percent_off=10)
    stranger = make_organizer("Elsewhere")
    client = logged_in(stranger.user)
    listed = client.get(CHANGELIST)
    assert listed.status_code == 200
    assert "MINE" not in listed.content.decode()
    assert client.get(reverse("admin:events_discountcode_change", args=[code.pk])).status_code == 302  # "doesn't exist"
    r = client.post(ADD, form(event, code="THEIRS", percent_off="90"))
    assert r.status_code == 200  # their form offers only their own events
    assert "event" in r.context["adminform"].form.errors
    assert DiscountCode.objects.count() == 1


def test_deleting_a_used_code_keeps_it_for_its_orders(organizer, event):
    from accounts.tests.factories import UserFactory

    code = DiscountCode.objects.create(event=event, code="USED", percent_off=10)
    order = order_place(
        buyer=UserFactory(), event_id=event.pk, lines=[Line(event.ticket_types.get().pk, 1)], discount_code="used"
    )
    client = logged_in(organizer.user)
    r = client.post(reverse("admin:events_discountcode_delete", args=[code.pk]), {"post": "yes"})
    assert r.status_code == 302
    code.refresh_from_db()
    assert code.deleted_at is not None
    assert Order.objects.get(pk=order.pk).discount_code_id == code.pk
    assert list(client.get(CHANGELIST).context["cl"].result_list) == []
