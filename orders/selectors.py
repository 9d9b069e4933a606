"""Reads for orders: a buyer's orders and tickets, an event's sales and attendees, staff views."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import Count, F, IntegerField, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from events.models import Event, Seat, StockBucket, TicketType

from . import seating
from .errors import OrderNotPaid, TicketVoid
from .models import InventoryEntry, Order, OrderItem, Payment, Refund, Ticket
from .waitlist import waiting_counts


def _orders() -> QuerySet[Order]:
    return Order.objects.select_related("event", "discount_code").prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.select_related("ticket_type").order_by("ticket_type_id")),
        Prefetch("seats", queryset=Seat.objects.order_by("section", "row_key", "number_key", "pk")),
    )


def orders_of(*, buyer: User) -> QuerySet[Order]:
    """The buyer's orders, newest first."""
    return _orders().filter(buyer=buyer).order_by("-created_at", "-pk")


def order_of(*, buyer: User, order_id) -> Order:
    """One of the buyer's orders; anybody else's is a 404, never a 403."""
    order = _orders().filter(buyer=buyer, pk=order_id).first()
    if order is None:
        raise Http404
    return order


def payment_of(*, buyer: User, payment_id, provider: str) -> Payment:
    """The buyer's payment through ``provider``; anyone else's is a 404."""
    payment = Payment.objects.filter(pk=payment_id, order__buyer=buyer, provider=provider).first()
    if payment is None:
        raise Http404
    return payment


def events_of_user(*, user: User, role: str) -> QuerySet[Event]:
    """``attendee``: events the user holds valid tickets for, with how many; ``organizer``: the
    events of their organizer profile, drafts included (none when they are not an organizer);
    ``checkin``: the published and cancelled events of the organizers the user scans for."""
    events = Event.objects.alive().select_related("organizer").order_by("starts_at", "pk")
    if role == "organizer":
        return events.filter(organizer__user=user).annotate(tickets_held=Value(None, output_field=IntegerField()))
    if role == "checkin":  # events the user may scan tickets of as check-in staff (checkin.CheckInStaff)
        return (
            events.filter(organizer__check_in_staff__user=user)
            .exclude(status=Event.Status.DRAFT)
            .annotate(tickets_held=Value(None, output_field=IntegerField()))
        )
    valid = Q(ticket_types__tickets__holder=user, ticket_types__tickets__status=Ticket.Status.VALID)
    return events.filter(valid).annotate(tickets_held=Count("ticket_types__tickets", filter=valid))


def _tickets() -> QuerySet[Ticket]:
    return Ticket.objects.select_related("ticket_type", "order__event", "check_in", "seat")


def _buyer_may_see(buyer_id) -> Q:
    """The order's buyer sees the tickets they hold or held; not one transferred on to somebody else
    (its code is the recipient's alone)."""
    return Q(holder_id=buyer_id) | Q(transferred_from__isnull=True)


def tickets_of_order(*, order: Order) -> QuerySet[Ticket]:
    return _tickets().filter(_buyer_may_see(order.buyer_id), order=order).order_by("pk")


def valid_tickets_of(*, user: User) -> QuerySet[Ticket]:
    return _tickets().filter(holder=user, status=Ticket.Status.VALID).order_by("order__event__starts_at", "pk")


def ticket_of(*, user: User, ticket_id: int) -> Ticket:
    """A ticket its holder or the buyer of its order may see; anybody else's is a 404, never a 403.

    A void ticket is a 409 for them: its QR code would no longer open the door.
    """
    mine = Q(holder=user) | Q(order__buyer=user, transferred_from__isnull=True)
    ticket = Ticket.objects.filter(mine, pk=ticket_id).only("pk", "code", "status")
    found = ticket.first()
    if found is None:
        raise Http404
    if found.status != Ticket.Status.VALID:
        raise TicketVoid()
    return found


def printable_tickets_of(*, order: Order) -> list[Ticket]:
    """The valid tickets of a paid order, with what their pages print (type, holder, the order's event).

    An order without any is a 409 rather than an empty document: a reservation
    has no tickets yet, and a refunded order's are void.
    """
    if order.status != Order.Status.PAID:
        raise OrderNotPaid()
    tickets = list(
        Ticket.objects.filter(_buyer_may_see(order.buyer_id), order=order, status=Ticket.Status.VALID)
        .select_related("ticket_type", "holder", "seat")
        .order_by("pk")
    )
    if not tickets:
        raise OrderNotPaid(_("None of this order's tickets is valid any more."))
    for ticket in tickets:
        ticket.order = order  # already loaded with its event
    return tickets


def order_for_confirmation(*, order_id) -> Order | None:
    """A paid order with what its confirmation email shows: event, buyer, items and their types."""
    return _orders().select_related("buyer").filter(pk=order_id, status=Order.Status.PAID).first()


def order_for_refund_notice(*, order_id) -> Order | None:
    """A refunded order with what its notice shows: event, buyer, items and their types."""
    return _orders().select_related("buyer").filter(pk=order_id, status=Order.Status.REFUNDED).first()


def event_ids_with_orders(*, event_ids: Iterable[int]) -> set[int]:
    """Events with any order at all, whatever its status (orders are kept for accounting)."""
    return set(Order.objects.filter(event_id__in=list(event_ids)).values_list("event_id", flat=True).distinct())


def with_sold_and_held(ticket_types: QuerySet[TicketType]) -> QuerySet[TicketType]:
    """Annotate ``sold`` (in paid orders) and ``held`` (in live reservations), in the same query."""
    quantity = "order_items__quantity"
    return ticket_types.annotate(
        sold=Coalesce(Sum(quantity, filter=Q(order_items__order__status=Order.Status.PAID)), 0),
        held=Coalesce(Sum(quantity, filter=Q(order_items__order__status=Order.Status.RESERVED)), 0),
    )


def event_sales(*, event: Event) -> dict:
    """Totals per ticket type and per day: sold and held tickets, gross, fees, net."""
    paid = Q(order__status=Order.Status.PAID)
    per_type = with_sold_and_held(TicketType.objects.filter(event=event).with_on_sale().order_by("position", "pk"))
    gross_per_type = dict(
        OrderItem.objects.filter(paid, order__event=event)
        .values_list("ticket_type_id")
        .annotate(gross=Sum(F("quantity") * F("unit_price_cents")))
    )
    totals = _money(Order.objects.filter(event=event))
    per_day = (
        Order.objects.filter(event=event, status=Order.Status.PAID)
        .annotate(day=TruncDate("paid_at"))
        .values("day")
        .annotate(
            orders=Count("pk", distinct=True),
            gross=Coalesce(Sum(F("total_cents") + F("discount_cents")), 0),
            discounts=Coalesce(Sum("discount_cents"), 0),
        )
        .order_by("day")
    )
    door = _check_in_counts(event)
    tickets_per_day = dict(
        OrderItem.objects.filter(paid, order__event=event)
        .annotate(day=TruncDate("order__paid_at"))
        .values_list("day")
        .annotate(tickets=Sum("quantity"))
    )
    return {
        "event": event.pk,
        "currency": event.currency,
        "ticket_types": [
            {
                "id": tt.pk,
                "name": tt.name,
                "capacity": tt.capacity,
                "available": tt.on_sale,
                "held": tt.held,
                "sold": tt.sold,
                "gross_cents": gross_per_type.get(tt.pk, 0),
                **door.get(tt.pk, {"checked_in": 0, "issued": 0}),
            }
            for tt in per_type
        ],
        "days": [
            {
                "date": row["day"],
                "orders": row["orders"],
                "tickets": tickets_per_day.get(row["day"], 0),
                "gross_cents": row["gross"],
                "discounts_cents": row["discounts"],
            }
            for row in per_day
        ],
        "orders": totals["orders"],
        "checked_in": sum(row["checked_in"] for row in door.values()),
        "issued": sum(row["issued"] for row in door.values()),
        **{
            name: totals[name]
            for name in ("gross_cents", "discounts_cents", "fees_cents", "refunds_cents", "net_cents")
        },
        "refund_progress": event_refund_progress(event=event),
    }


def _check_in_counts(event: Event) -> dict[int, dict[str, int]]:
    """Per ticket type: valid tickets issued, and how many of them were checked in at the door."""
    rows = (
        Ticket.objects.filter(ticket_type__event=event, status=Ticket.Status.VALID)
        .values_list("ticket_type_id")
        .annotate(issued=Count("pk"), checked_in=Count("check_in"))
        .order_by()
    )
    return {pk: {"checked_in": checked_in, "issued": issued} for pk, issued, checked_in in rows}


def _money_columns() -> dict:
    """Gross is every order that was sold (paid, or paid and then refunded) at list price; discount
    codes took ``discounts`` off it (gross - discounts is what buyers paid); the platform keeps its
    fee only on orders that stay paid; refunds give back what was paid; so ``net = gross - discounts
    - fees - refunds`` is what the organizer is owed. One definition for an event's sales, the staff
    stats and the payouts."""
    sold = Q(status__in=[Order.Status.PAID, Order.Status.REFUNDED])
    return {
        "gross_cents": Coalesce(Sum(F("total_cents") + F("discount_cents"), filter=sold), 0),
        "discounts_cents": Coalesce(Sum("discount_cents", filter=sold), 0),
        "fees_cents": Coalesce(Sum("fee_cents", filter=Q(status=Order.Status.PAID)), 0),
        "refunds_cents": Coalesce(Sum("total_cents", filter=Q(status=Order.Status.REFUNDED)), 0),
    }


def _net(row: dict) -> dict:
    row["net_cents"] = row["gross_cents"] - row["discounts_cents"] - row["fees_cents"] - row["refunds_cents"]
    return row


def _money(orders: QuerySet[Order]) -> dict[str, int]:
    return _net(orders.aggregate(orders=Count("pk", filter=Q(status=Order.Status.PAID)), **_money_columns()))


def payouts() -> list[dict]:
    """Net revenue owed per organizer and currency (never added up across currencies)."""
    rows = (
        Order.objects.values("event__organizer_id", "event__organizer__display_name", "currency")
        .annotate(paid_orders=Count("pk", filter=Q(status=Order.Status.PAID)), **_money_columns())
        .filter(gross_cents__gt=0)
        .order_by("event__organizer__display_name", "event__organizer_id", "currency")
    )
    return [
        _net(
            {
                "organizer": row.pop("event__organizer_id"),
                "organizer_name": row.pop("event__organizer__display_name"),
                **row,
            }
        )
        for row in rows
    ]


def event_order_counts(*, event: Event) -> dict[str, int]:
    """How many of the event's orders are paid, reserved (holding stock) and closed (cancelled, expired,
    refunded)."""
    by_status = dict(Order.objects.filter(event=event).values_list("status").annotate(n=Count("pk")).order_by())
    closed = sum(by_status.get(s, 0) for s in (Order.Status.CANCELLED, Order.Status.EXPIRED, Order.Status.REFUNDED))
    return {
        "paid": by_status.get(Order.Status.PAID, 0),
        "reserved": by_status.get(Order.Status.RESERVED, 0),
        "closed": closed,
    }


def event_attendees(*, event: Event) -> QuerySet[Ticket]:
    """Valid tickets of the event with their holders, for the door list."""
    return (
        Ticket.objects.filter(order__event=event, status=Ticket.Status.VALID)
        .select_related("holder", "ticket_type", "order", "seat")
        .order_by("holder__name", "holder__email", "pk")
    )


def staff_orders(
    *, status: str | None = None, event_id: int | None = None, user_id: int | None = None
) -> QuerySet[Order]:
    qs = _orders().select_related("buyer").order_by("-created_at", "-pk")
    if status:
        qs = qs.filter(status=status)
    if event_id:
        qs = qs.filter(event_id=event_id)
    if user_id:
        qs = qs.filter(buyer_id=user_id)
    return qs


def staff_stats() -> dict:
    by_status = dict(Order.objects.values_list("status").annotate(n=Count("pk")))
    # Money is only ever added up within one currency.
    money = Order.objects.values("currency").annotate(**_money_columns()).order_by("currency")
    return {
        "users": User.objects.count(),
        "events": Event.objects.alive().count(),
        "events_published": Event.objects.public().count(),
        "orders_by_status": {status: by_status.get(status, 0) for status in Order.Status.values},
        "tickets_sold": Ticket.objects.filter(status=Ticket.Status.VALID).count(),
        "revenue": [_net(row) for row in money],
    }


def inventory_report(*, event_id: int | None = None) -> list[dict]:
    """Per ticket type, the stock as three independent records tell it, and any drift between them.

    ``capacity = available + held + sold`` must hold with held and sold taken
    from the ledger (``available`` being the pool plus the stock buckets), the
    ledger must agree with the orders (reserved items are held, paid items are
    sold) and with the valid tickets issued, and a type must have exactly its
    ``stock_buckets`` bucket rows (none when it is 1), and its ``waitlisted`` counter must be the
    number of its waiting list's waiting entries.
    """
    types = TicketType.objects.order_by("pk")
    if event_id is not None:
        types = types.filter(event_id=event_id)
    scope = {"ticket_type__in": types} if event_id is not None else {}

    ledger: dict[int, dict[str, int]] = {}
    for ticket_type_id, kind, quantity in (
        InventoryEntry.objects.filter(**scope).values_list("ticket_type_id", "kind").annotate(q=Sum("quantity"))
    ):
        ledger.setdefault(ticket_type_id, {})[kind] = quantity
    in_orders: dict[int, dict[str, int]] = {}
    for ticket_type_id, order_status, quantity in (
        OrderItem.objects.filter(**scope, order__status__in=[Order.Status.RESERVED, Order.Status.PAID])
        .values_list("ticket_type_id", "order__status")
        .annotate(q=Sum("quantity"))
    ):
        in_orders.setdefault(ticket_type_id, {})[order_status] = quantity
    tickets = dict(
        Ticket.objects.filter(**scope, status=Ticket.Status.VALID).values_list("ticket_type_id").annotate(n=Count("pk"))
    )

    buckets = {
        ticket_type_id: (count, total)
        for ticket_type_id, count, total in StockBucket.objects.filter(**scope)
        .order_by()
        .values_list("ticket_type_id")
        .annotate(n=Count("pk"), total=Sum("available"))
    }

    waiting = waiting_counts(ticket_type_ids=types.values_list("pk", flat=True))
    seats = seating.seat_counts(types.values("pk"))
    report = []
    for tt in types.values("pk", "event_id", "name", "capacity", "available", "stock_buckets", "waitlisted", "seated"):
        bucket_rows, in_buckets = buckets.get(tt["pk"], (0, 0))
        pool, tt["available"] = tt["available"], tt["available"] + in_buckets
        moves = ledger.get(tt["pk"], {})
        kinds = InventoryEntry.Kind
        held = moves.get(kinds.HOLD, 0) - moves.get(kinds.RELEASE, 0) - moves.get(kinds.SELL, 0)
        sold = moves.get(kinds.SELL, 0) - moves.get(kinds.REFUND, 0)
        held_in_orders = in_orders.get(tt["pk"], {}).get(Order.Status.RESERVED, 0)
        sold_in_orders = in_orders.get(tt["pk"], {}).get(Order.Status.PAID, 0)
        problems = []
        if tt["capacity"] != tt["available"] + held + sold:
            problems.append(
                f"capacity {tt['capacity']} != available {tt['available']} + held {held} + sold {sold} (ledger)"
            )
        if bucket_rows != (tt["stock_buckets"] if tt["stock_buckets"] > 1 else 0):
            problems.append(f"{bucket_rows} stock buckets for stock_buckets = {tt['stock_buckets']}")
        if held != held_in_orders:
            problems.append(f"ledger holds {held} but reserved orders hold {held_in_orders}")
        if sold != sold_in_orders:
            problems.append(f"ledger sold {sold} but paid orders have {sold_in_orders}")
        if tickets.get(tt["pk"], 0) != sold_in_orders:
            problems.append(f"{tickets.get(tt['pk'], 0)} valid tickets for {sold_in_orders} sold")
        if tt["waitlisted"] != waiting.get(tt["pk"], 0):
            problems.append(f"waitlisted {tt['waitlisted']} but {waiting.get(tt['pk'], 0)} waiting list entries wait")
        problems += seating.inventory_problems(tt, seats.get(tt["pk"], {}), held=held, sold=sold)
        report.append(
            {
                "ticket_type": tt["pk"],
                "event": tt["event_id"],
                "name": tt["name"],
                "capacity": tt["capacity"],
                "available": tt["available"],
                "in_buckets": in_buckets,
                "pool": pool,
                "held": held,
                "sold": sold,
                "problems": problems,
            }
        )
    return report


def event_refund_progress(*, event: Event) -> dict:
    """What the organizer watches after cancelling: paid orders still to refund, refunds done,
    waiting for the gateway, and failed (for staff to retry)."""
    status = Refund.Status
    refunds = Refund.objects.filter(payment__order__event=event).aggregate(
        succeeded=Count("pk", filter=Q(status=status.SUCCEEDED)),
        pending=Count("pk", filter=Q(status=status.PENDING)),
        failed=Count("pk", filter=Q(status=status.FAILED)),
        refunded_cents=Coalesce(Sum("amount_cents", filter=Q(status=status.SUCCEEDED)), 0),
    )
    return {
        "paid_orders_to_refund": Order.objects.filter(event=event, status=Order.Status.PAID).count(),
        "refunds_succeeded": refunds["succeeded"],
        "refunds_pending": refunds["pending"],
        "refunds_failed": refunds["failed"],
        "refunded_cents": refunds["refunded_cents"],
    }


def payments_report(*, stale_after: timedelta = timedelta(hours=24)) -> list[str]:
    """Where the money trail and the orders disagree; empty when every cent is accounted for.

    A paid order has exactly one kept payment of its total; a refunded one has a refund for each
    of its payments; money taken for an order that is neither (late, duplicate, flagged) is being
    refunded or waits for staff; refunds do not fail or hang.
    """
    problems: list[str] = []
    succeeded = Payment.Status.SUCCEEDED
    kept = Count("payments", filter=Q(payments__status=succeeded, payments__refund__isnull=True))
    kept_amount = Sum("payments__amount_cents", filter=Q(payments__status=succeeded, payments__refund__isnull=True))
    for order_id, count, amount, total in (
        Order.objects.filter(status=Order.Status.PAID, total_cents__gt=0)
        .annotate(kept=kept, kept_amount=kept_amount)
        .exclude(kept=1, kept_amount=F("total_cents"))
        .values_list("pk", "kept", "kept_amount", "total_cents")
    ):
        problems.append(f"paid order {order_id}: {count} kept payments of {amount or 0} for a total of {total}")
    for order_id in (
        Order.objects.filter(status=Order.Status.REFUNDED, payments__status=succeeded, payments__refund__isnull=True)
        .values_list("pk", flat=True)
        .distinct()
    ):
        problems.append(f"refunded order {order_id}: a succeeded payment has no refund")
    for payment_id, order_status, flagged in (
        Payment.objects.filter(status=succeeded, refund__isnull=True)
        .exclude(order__status=Order.Status.PAID)
        .values_list("pk", "order__status", "needs_review")
    ):
        why = "flagged for review" if flagged else "not refunded"
        problems.append(f"payment {payment_id}: money taken for a {order_status} order, {why}")
    for refund_id, status in Refund.objects.filter(
        Q(status=Refund.Status.FAILED) | Q(status=Refund.Status.PENDING, created_at__lte=timezone.now() - stale_after)
    ).values_list("pk", "status"):
        problems.append(f"refund {refund_id}: {status}")
    return problems
