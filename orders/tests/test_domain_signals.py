"""The orders and check-in apps tell the apps built on them (realtime, webhooks, metrics) of each
order's move and each stock change once it commits, and never of a change that rolled back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.tests.factories import UserFactory
from checkin.services import ticket_check_in
from checkin.signals import checked_in
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import Order
from orders.payments.services import order_refund
from orders.services import Line, expire_due_holds, order_cancel, order_mark_paid, order_place
from orders.signals import OrderChange, order_status_changed, stock_changed


@pytest.fixture
def heard():
    """What the signals said: ``("order", OrderChange)``, ``("stock", event_id, ids)``, ``("checkin", ...)``."""
    said: list[tuple] = []

    def on_orders(sender, *, changes, **kwargs):
        said.extend(("order", change) for change in changes)

    def on_stock(sender, *, event_id, ticket_type_ids, **kwargs):
        said.append(("stock", event_id, sorted(ticket_type_ids)))

    def on_checkin(sender, *, event_id, check_in_ids, **kwargs):
        said.append(("checkin", event_id, len(check_in_ids)))

    order_status_changed.connect(on_orders, dispatch_uid="test.orders")
    stock_changed.connect(on_stock, dispatch_uid="test.stock")
    checked_in.connect(on_checkin, dispatch_uid="test.checkin")
    yield said
    order_status_changed.disconnect(dispatch_uid="test.orders")
    stock_changed.disconnect(dispatch_uid="test.stock")
    checked_in.disconnect(dispatch_uid="test.checkin")


def _sale(price_cents: int = 2500):
    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=10, price_cents=price_cents, max_per_buyer=None)
    return event, tier, UserFactory()


@pytest.mark.django_db
def test_a_purchase_its_payment_and_its_refund_are_each_told_once_after_commit(
    heard, django_capture_on_commit_callbacks
):
    event, tier, buyer = _sale()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order = order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, 2)])
    assert heard == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert len(heard) == 2
    assert ("stock", event.pk, [tier.pk]) in heard
    assert ("order", OrderChange(order.pk, event.pk, buyer.pk, Order.Status.RESERVED, None)) in heard
    heard.clear()
    with django_capture_on_commit_callbacks(execute=True):
        order_mark_paid(order=order)
    assert heard == [("order", OrderChange(order.pk, event.pk, buyer.pk, Order.Status.PAID, Order.Status.RESERVED))]
    heard.clear()
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=order, by_policy=False)
    assert ("order", OrderChange(order.pk, event.pk, buyer.pk, Order.Status.REFUNDED, Order.Status.PAID)) in heard
    assert ("stock", event.pk, [tier.pk]) in heard


@pytest.mark.django_db
def test_a_free_order_is_new_and_paid(heard, django_capture_on_commit_callbacks):
    event, tier, buyer = _sale(price_cents=0)
    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, 1)])
    assert ("order", OrderChange(order.pk, event.pk, buyer.pk, Order.Status.PAID, None)) in heard


@pytest.mark.django_db
def test_expiry_and_cancellation_name_each_order_with_its_event_and_buyer(heard, django_capture_on_commit_callbacks):
    event, tier, buyer = _sale()
    other = UserFactory()
    first = order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, 1)])
    second = order_place(buyer=other, event_id=event.pk, lines=[Line(tier.pk, 1)])
    kept = order_place(buyer=other, event_id=event.pk, lines=[Line(tier.pk, 1)])
    heard.clear()
    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order=kept)
    assert len(heard) == 2
    assert ("stock", event.pk, [tier.pk]) in heard
    assert ("order", OrderChange(kept.pk, event.pk, other.pk, Order.Status.CANCELLED, Order.Status.RESERVED)) in heard
    heard.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_due_holds(now=timezone.now() + timedelta(hours=1)) == 2
    changes = sorted((said[1] for said in heard if said[0] == "order"), key=lambda c: c.buyer_id)
    assert changes == sorted(
        [
            OrderChange(first.pk, event.pk, buyer.pk, Order.Status.EXPIRED, Order.Status.RESERVED),
            OrderChange(second.pk, event.pk, other.pk, Order.Status.EXPIRED, Order.Status.RESERVED),
        ],
        key=lambda c: c.buyer_id,
    )


@pytest.mark.django_db(transaction=True)
def test_a_purchase_that_rolls_back_tells_nobody(heard):
    event, tier, buyer = _sale()

    def place_then_fail():
        with transaction.atomic():
            order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, 1)])
            raise RuntimeError("the caller's transaction fails after the order was written")

    with pytest.raises(RuntimeError):
        place_then_fail()
    assert heard == []
    assert not Order.objects.exists()
    order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, 1)])  # outside a transaction: at once
    assert sorted(kind for kind, *_ in heard) == ["order", "stock"]


@pytest.mark.django_db
def test_a_check_in_is_told_once(heard, django_capture_on_commit_callbacks):
    event, tier, buyer = _sale(price_cents=0)
    order = order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, 1)])
    ticket = order.tickets.get()
    heard.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_check_in(event=event, code=ticket.code, scanned_by=event.organizer.user)
    assert heard == [("checkin", event.pk, 1)]


@pytest.mark.django_db
def test_a_receiver_that_fails_does_not_break_the_change_or_the_other_receivers(
    heard, django_capture_on_commit_callbacks
):
    def broken(sender, **kwargs):
        raise RuntimeError("a receiver's bug")

    order_status_changed.connect(broken, dispatch_uid="test.broken")
    try:
        event, tier, buyer = _sale()
        with django_capture_on_commit_callbacks(execute=True):
            order = order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, 1)])
    finally:
        order_status_changed.disconnect(dispatch_uid="test.broken")
    assert Order.objects.filter(pk=order.pk, status=Order.Status.RESERVED).exists()
    assert ("order", OrderChange(order.pk, event.pk, buyer.pk, Order.Status.RESERVED, None)) in heard
