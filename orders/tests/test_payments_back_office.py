"""Money in the back office and on the command line: refunds, event cancellation, the test gateway's
actions, payouts, reconciliation, and the caller's events."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import organizer_profile_create
from accounts.tests.factories import UserFactory
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import Order, Payment, Refund, Ticket
from orders.payments.services import payment_start
from orders.services import Line, order_place

pytestmark = pytest.mark.django_db


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def superuser():
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def show():
    organizer = organizer_profile_create(user=UserFactory(), display_name="Dora Concerts")  # staff, in the group
    event = EventFactory(organizer=organizer, status=Event.Status.PUBLISHED, refundable_until_hours_before=None)
    TicketTypeFactory(event=event, name="GA", price_cents=4000, capacity=20, max_per_buyer=None)
    return event


def reserve(event, buyer=None, quantity=1) -> Order:
    tier = event.ticket_types.get()
    return order_place(buyer=buyer or UserFactory(), event_id=event.pk, lines=[Line(tier.pk, quantity)])


def paid_order(event, buyer=None, quantity=1) -> Order:
    order = reserve(event, buyer, quantity)
    call_command("test_payment", str(payment_start(order=order).pk), stdout=StringIO())
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    return order


def test_the_command_completes_and_declines_test_payments(show):
    order = reserve(show)
    payment = payment_start(order=order)
    out = StringIO()
    call_command("test_payment", str(payment.pk), "--fail", stdout=out)
    assert "failed" in out.getvalue()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    again = payment_start(order=order)
    call_command("test_payment", str(again.pk), stdout=out)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    with pytest.raises(CommandError, match="No test payment"):
        call_command("test_payment", str(uuid.uuid4()))
    with pytest.raises(CommandError, match="No test payment"):
        call_command("test_payment", "not-a-uuid")


def test_the_command_exists_only_with_the_test_gateway(show, settings):
    payment = payment_start(order=reserve(show))
    settings.TEST_PAYMENTS_ENABLED = False
    with pytest.raises(CommandError, match="not enabled"):
        call_command("test_payment", str(payment.pk))
    assert Payment.objects.get().status == Payment.Status.PENDING


def test_the_organizer_refunds_a_paid_order_from_the_admin_whatever_the_policy(
    show, django_capture_on_commit_callbacks
):
    order = paid_order(show, quantity=2)
    client = admin_client(show.organizer.user)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            "/admin/orders/order/", {"action": "refund_orders", "_selected_action": [order.pk]}, follow=True
        )
    assert r.status_code == 200
    assert messages_of(r) == ["1 order was refunded; its tickets are void and back on sale."]
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    refund = Refund.objects.get()
    assert (refund.reason, refund.status, refund.amount_cents) == ("staff", "succeeded", 8000)
    assert not Ticket.objects.filter(order=order, status=Ticket.Status.VALID).exists()
    # again: refused, reported, nothing moves twice
    r = client.post("/admin/orders/order/", {"action": "refund_orders", "_selected_action": [order.pk]}, follow=True)
    assert messages_of(r) == [
        f"Could not refund order {str(order.pk)[:8]}: This order is refunded and can no longer be cancelled."
    ]
    assert Refund.objects.count() == 1


def test_another_organizer_cannot_refund_or_cancel(show):
    order = paid_order(show)
    other = organizer_profile_create(user=UserFactory(), display_name="Rival").user
    client = admin_client(other)
    client.post("/admin/orders/order/", {"action": "refund_orders", "_selected_action": [order.pk]})
    client.post("/admin/events/event/", {"action": "cancel_events", "_selected_action": [show.pk]})
    order.refresh_from_db()
    show.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert show.status == Event.Status.PUBLISHED


def test_cancelling_an_event_in_the_admin_refunds_its_buyers_and_shows_progress(
    show, django_capture_on_commit_callbacks
):
    orders = [paid_order(show) for _ in range(3)]
    held = reserve(show)
    client = admin_client(show.organizer.user)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/admin/events/event/", {"action": "cancel_events", "_selected_action": [show.pk]}, follow=True)
    assert messages_of(r) == ["1 event was cancelled; its buyers are being refunded (progress under Sales)."]
    assert set(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True)) == {"refunded"}
    assert Order.objects.get(pk=held.pk).status == Order.Status.CANCELLED
    page = client.get(f"/admin/events/event/{show.pk}/change/")
    assert page.status_code == 200
    assert "3 refunded, 0 waiting for the payment provider, 0 failed, 0 paid orders still to refund" in " ".join(
        page.content.decode().split()
    )


def test_staff_complete_a_test_payment_and_read_payments_refunds_webhooks_and_payouts(superuser, show):
    order = reserve(show, quantity=3)
    payment = payment_start(order=order)
    client = admin_client(superuser)
    r = client.post(
        "/admin/orders/payment/", {"action": "complete_test_payments", "_selected_action": [payment.pk]}, follow=True
    )
    assert messages_of(r) == [f"Webhooks delivered: {str(payment.pk)[:8]}: paid"]
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    for page in ("payment", "refund", "webhookevent"):
        assert client.get(f"/admin/orders/{page}/").status_code == 200, page
    payouts = client.get("/admin/orders/payout/")
    assert payouts.status_code == 200
    text = " ".join(payouts.content.decode().split())
    assert show.organizer.display_name in text
    assert "120.00" in text  # gross, in currency units
    assert "114.00" in text  # net after the 5% fee


def test_organizers_see_no_payments_pages(show):
    client = admin_client(show.organizer.user)
    for page in ("payment", "refund", "webhookevent", "payout"):
        assert client.get(f"/admin/orders/{page}/").status_code == 403, page


def test_check_payments_reports_money_taken_for_nothing(show):
    paid_order(show)
    call_command("check_payments", stdout=StringIO())
    order = reserve(show)
    payment = payment_start(order=order)
    Payment.objects.filter(pk=payment.pk).update(
        status=Payment.Status.SUCCEEDED
    )  # the gateway took it; we never settled
    err = StringIO()
    with pytest.raises(CommandError, match="1 payment problems"):
        call_command("check_payments", stdout=StringIO(), stderr=err)
    assert f"payment {payment.pk}: money taken for a reserved order, not refunded" in err.getvalue()


def test_deploy_check_warns_while_the_test_gateway_is_on(settings):
    from orders.checks import payment_provider_configured, test_payments_off_in_production

    assert [w.id for w in test_payments_off_in_production(None)] == ["orders.W001"]
    settings.TEST_PAYMENTS_ENABLED = False
    assert test_payments_off_in_production(None) == []
    settings.PAYMENT_PROVIDER = "stripe"
    assert [e.id for e in payment_provider_configured(None)] == ["orders.E002"]
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    assert [e.id for e in payment_provider_configured(None)] == ["orders.E003"]
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    assert payment_provider_configured(None) == []


def test_my_events_as_attendee_and_as_organizer(show):
    buyer = UserFactory()
    paid_order(show, buyer, quantity=2)
    elsewhere = EventFactory(status=Event.Status.PUBLISHED)
    TicketTypeFactory(event=elsewhere, price_cents=0, capacity=5)
    order_place(buyer=buyer, event_id=elsewhere.pk, lines=[Line(elsewhere.ticket_types.get().pk, 1)])  # free: paid
    reserve(EventFactory(status=Event.Status.PUBLISHED, title="Only held") and show, buyer)  # held, not a ticket
    client = APIClient()
    client.force_authenticate(buyer)
    r = client.get("/api/v1/users/me/events")
    assert r.status_code == 200
    assert [(e["id"], e["tickets_held"]) for e in r.json()["results"]] == sorted(
        [(show.pk, 2), (elsewhere.pk, 1)], key=lambda pair: Event.objects.get(pk=pair[0]).starts_at
    )
    assert client.get("/api/v1/users/me/events?role=organizer").json()["count"] == 0

    organizer = APIClient()
    organizer.force_authenticate(show.organizer.user)
    EventFactory(organizer=show.organizer)  # a draft counts for its organizer
    mine = organizer.get("/api/v1/users/me/events?role=organizer").json()
    assert mine["count"] == 2
    assert {e["tickets_held"] for e in mine["results"]} == {None}
    for wrong in ("owner", ""):
        bad = organizer.get(f"/api/v1/users/me/events?role={wrong}")
        assert bad.status_code == 400, wrong
        assert bad.json()["code"] == "invalid"
        assert "role" in bad.json()["errors"]
    assert APIClient().get("/api/v1/users/me/events").status_code == 401
