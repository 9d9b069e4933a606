"""Reads for orders: a buyer's orders and tickets, an event's sales and attendees, staff views."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404
from django.utils.translation import gettext as _

from accounts.models import User
from events.models import Event, TicketType

from .errors import OrderNotPaid, TicketVoid
from .models import InventoryEntry, Order, OrderItem, Ticket


def _orders() -> QuerySet[Order]:
    return Order.objects.select_related("event").prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.select_related("ticket_type").order_by("ticket_type_id"))
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


def _tickets() -> QuerySet[Ticket]:
    return Ticket.objects.select_related("ticket_type", "order__event")


def tickets_of_order(*, order: Order) -> QuerySet[Ticket]:
    return _tickets().filter(order=order).order_by("pk")


def valid_tickets_of(*, user: User) -> QuerySet[Ticket]:
    return _tickets().filter(holder=user, status=Ticket.Status.VALID).order_by("order__event__starts_at", "pk")


def ticket_of(*, user: User, ticket_id: int) -> Ticket:
    """A ticket its holder or the buyer of its order may see; anybody else's is a 404, never a 403.

    A void ticket is a 409 for them: its QR code would no longer open the door.
    """
    ticket = Ticket.objects.filter(Q(holder=user) | Q(order__buyer=user), pk=ticket_id).only("pk", "code", "status")
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
        Ticket.objects.filter(order=order, status=Ticket.Status.VALID)
        .select_related("ticket_type", "holder")
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
    per_type = with_sold_and_held(TicketType.objects.filter(event=event).order_by("position", "pk"))
    gross_per_type = dict(
        OrderItem.objects.filter(paid, order__event=event)
        .values_list("ticket_type_id")
        .annotate(gross=Sum(F("quantity") * F("unit_price_cents")))
    )
    totals = Order.objects.filter(event=event, status=Order.Status.PAID).aggregate(
        orders=Count("pk"), gross=Coalesce(Sum("total_cents"), 0), fees=Coalesce(Sum("fee_cents"), 0)
    )
    refunded = Order.objects.filter(event=event, status=Order.Status.REFUNDED).aggregate(
        refunds=Coalesce(Sum("total_cents"), 0)
    )["refunds"]
    per_day = (
        Order.objects.filter(event=event, status=Order.Status.PAID)
        .annotate(day=TruncDate("paid_at"))
        .values("day")
        .annotate(orders=Count("pk", distinct=True), gross=Coalesce(Sum("total_cents"), 0))
        .order_by("day")
    )
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
                "available": tt.available,
                "held": tt.held,
                "sold": tt.sold,
                "gross_cents": gross_per_type.get(tt.pk, 0),
            }
            for tt in per_type
        ],
        "days": [
            {
                "date": row["day"],
                "orders": row["orders"],
                "tickets": tickets_per_day.get(row["day"], 0),
                "gross_cents": row["gross"],
            }
            for row in per_day
        ],
        "orders": totals["orders"],
        "gross_cents": totals["gross"],
        "fees_cents": totals["fees"],
        "refunds_cents": refunded,
        "net_cents": totals["gross"] - totals["fees"],
    }


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
        .select_related("holder", "ticket_type", "order")
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
    money = (
        Order.objects.values("currency")
        .annotate(
            gross_cents=Coalesce(Sum("total_cents", filter=Q(status=Order.Status.PAID)), 0),
            fees_cents=Coalesce(Sum("fee_cents", filter=Q(status=Order.Status.PAID)), 0),
            refunds_cents=Coalesce(Sum("total_cents", filter=Q(status=Order.Status.REFUNDED)), 0),
        )
        .order_by("currency")
    )
    return {
        "users": User.objects.count(),
        "events": Event.objects.alive().count(),
        "events_published": Event.objects.public().count(),
        "orders_by_status": {status: by_status.get(status, 0) for status in Order.Status.values},
        "tickets_sold": Ticket.objects.filter(status=Ticket.Status.VALID).count(),
        "revenue": list(money),
    }


def inventory_report(*, event_id: int | None = None) -> list[dict]:
    """Per ticket type, the stock as three independent records tell it, and any drift between them.

    ``capacity = available + held + sold`` must hold with held and sold taken
    from the ledger, and the ledger must agree with the orders (reserved items
    are held, paid items are sold) and with the valid tickets issued.
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

    report = []
    for tt in types.values("pk", "event_id", "name", "capacity", "available"):
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
        if held != held_in_orders:
            problems.append(f"ledger holds {held} but reserved orders hold {held_in_orders}")
        if sold != sold_in_orders:
            problems.append(f"ledger sold {sold} but paid orders have {sold_in_orders}")
        if tickets.get(tt["pk"], 0) != sold_in_orders:
            problems.append(f"{tickets.get(tt['pk'], 0)} valid tickets for {sold_in_orders} sold")
        report.append(
            {
                "ticket_type": tt["pk"],
                "event": tt["event_id"],
                "name": tt["name"],
                "capacity": tt["capacity"],
                "available": tt["available"],
                "held": held,
                "sold": sold,
                "problems": problems,
            }
        )
    return report
