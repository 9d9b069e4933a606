"""Hold expiry (beat task, command, inline) and the inventory proof."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, InternalError, transaction
from django.utils import timezone

from accounts.tests.factories import UserFactory
from events.models import TicketType
from orders.models import InventoryEntry, Order
from orders.services import Line, expire_due_holds, order_place
from orders.tasks import expire_reservations

pytestmark = pytest.mark.django_db


def place(event, tier, quantity=1, *, expired=False) -> Order:
    order = order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(tier.pk, quantity)])
    if expired:
        Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return order


def test_sweep_expires_only_due_holds_and_returns_their_stock(event, tier):
    due = place(event, tier, 2, expired=True)
    live = place(event, tier, 3)
    tier.refresh_from_db()
    assert tier.available == 5
    assert expire_reservations() == 1  # the beat task
    due.refresh_from_db()
    live.refresh_from_db()
    tier.refresh_from_db()
    assert (due.status, live.status, tier.available) == ("expired", "reserved", 7)
    assert due.closed_at is not None
    assert expire_due_holds() == 0  # exactly once
    tier.refresh_from_db()
    assert tier.available == 7
    assert InventoryEntry.objects.filter(order=due, kind="release").count() == 1


def test_sweep_works_in_batches(event, tier):
    TicketType.objects.filter(pk=tier.pk).update(capacity=30, available=30, max_per_order=1)
    for _ in range(25):
        place(event, tier, 1, expired=True)
    assert expire_due_holds(batch_size=10) == 25
    tier.refresh_from_db()
    assert tier.available == 30


def test_paid_orders_never_expire(event):
    from events.tests.factories import TicketTypeFactory

    free = TicketTypeFactory(event=event, price_cents=0, capacity=3)
    order = order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(free.pk, 1)])
    assert order.status == "paid"
    assert expire_due_holds(now=timezone.now() + timedelta(days=365)) == 0


def test_the_hold_lasts_order_hold_minutes(event, tier, settings):
    settings.ORDER_HOLD_MINUTES = 3
    order = place(event, tier)
    assert expire_due_holds(now=timezone.now() + timedelta(minutes=2)) == 0
    assert expire_due_holds(now=timezone.now() + timedelta(minutes=3, seconds=1)) == 1
    order.refresh_from_db()
    assert order.status == "expired"


def test_expire_reservations_command(event, tier):
    place(event, tier, expired=True)
    out = StringIO()
    call_command("expire_reservations", stdout=out)
    assert "Expired 1 reservation(s)." in out.getvalue()


def test_beat_runs_the_sweep_every_30_seconds(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["expire-reservations"]
    assert entry["task"] == "orders.tasks.expire_reservations"
    assert entry["schedule"] == timedelta(seconds=30)


def test_check_inventory_is_clean_after_a_mix_of_orders(event, tier):
    place(event, tier, 2)
    place(event, tier, 1, expired=True)
    expire_due_holds()
    out = StringIO()
    call_command("check_inventory", stdout=out)
    assert "Inventory consistent" in out.getvalue()


def test_check_inventory_reports_drift_and_fails(event, tier):
    place(event, tier, 2)
    TicketType.objects.filter(pk=tier.pk).update(available=9)  # stock changed behind the ledger's back
    err = StringIO()
    with pytest.raises(CommandError, match="1 of 1 ticket types drift"):
        call_command("check_inventory", stderr=err)
    assert "capacity 10 != available 9 + held 2 + sold 0" in err.getvalue()


def test_check_inventory_sees_orders_that_disagree_with_the_ledger(event, tier):
    order = place(event, tier, 2)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)  # no release entry, no stock back
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_inventory", stderr=err)
    assert "ledger holds 2 but reserved orders hold 0" in err.getvalue()


def test_check_inventory_exits_non_zero_on_the_command_line(event, tier, capsys):
    from django.core.management import execute_from_command_line

    place(event, tier)
    TicketType.objects.filter(pk=tier.pk).update(available=1)
    with pytest.raises(SystemExit) as exit_info:  # what `manage.py check_inventory` does
        execute_from_command_line(["manage.py", "check_inventory"])
    assert exit_info.value.code == 1
    assert "DRIFT" in capsys.readouterr().err


def test_the_ledger_is_append_only(event, tier):
    place(event, tier)
    entry = InventoryEntry.objects.get()
    with pytest.raises(RuntimeError):
        entry.save()
    with pytest.raises(RuntimeError):
        entry.delete()
    for statement in (
        lambda: InventoryEntry.objects.filter(pk=entry.pk).update(quantity=5),
        lambda: InventoryEntry.objects.filter(pk=entry.pk).delete(),
    ):
        with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
            statement()
    assert InventoryEntry.objects.get().quantity == 1


def test_a_paid_reservation_sells_its_held_tickets_once(event, tier, buyer):
    from django.core.management import call_command

    from orders.errors import OrderNotPayable
    from orders.models import InventoryEntry, Order, Ticket
    from orders.services import Line, order_mark_paid, order_place

    order = order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, 3)])
    paid = order_mark_paid(order=order)
    assert paid.status == Order.Status.PAID
    assert paid.paid_at is not None
    assert Ticket.objects.filter(order=order, holder=buyer, status=Ticket.Status.VALID).count() == 3
    assert list(InventoryEntry.objects.filter(order=order).values_list("kind", "quantity")) == [
        ("hold", 3),
        ("sell", 3),
    ]
    tier.refresh_from_db()
    assert tier.available == tier.capacity - 3  # held tickets became sold ones: stock did not move
    with pytest.raises(OrderNotPayable):
        order_mark_paid(order=order)  # once
    assert Ticket.objects.filter(order=order).count() == 3
    call_command("check_inventory")
