"""Writes for orders: placing them without ever overselling, and returning stock exactly once.

Locking discipline (see DESIGN.md): an order row, or a buyer's user row, is
locked before ticket-type rows; ticket-type rows are always locked in ascending primary-key order, with
``FOR NO KEY UPDATE`` so the foreign-key checks of concurrent inserts (which take
``KEY SHARE``) never wait on them. A purchase writes its order, items, tickets
and ledger entries first and takes the stock lock last, so the hot row is held
only for the lock, one UPDATE and the commit. A ticket type split over stock
buckets is taken through events/stock.py instead: one bucket claimed with
``SKIP LOCKED``, its row and every bucket locked only when no bucket suffices;
releases still give stock back to the ticket-type row (the pool).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Case, F, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from eventflow.api.errors import ApplicationError
from eventflow.signals import send_on_commit
from events import cache as catalogue_cache
from events import discounts, stock
from events.models import Event, TicketType
from events.stock import ShortOfStock as _ShortOfStock

from . import seating, sql, waitlist
from .confirmation import order_confirmation_queue
from .errors import (
    Busy,
    LimitExceeded,
    OrderNotCancellable,
    OrderNotPayable,
    SalesClosed,
    SoldOut,
)
from .models import IdempotencyRecord, InventoryEntry, Order, OrderItem, Ticket
from .signals import OrderChange, order_status_changed, stock_changed

logger = logging.getLogger(__name__)

# SQLSTATEs that mean "somebody else holds the lock": lock_timeout, deadlock.
_BUSY_SQLSTATES = {"55P03", "40P01"}


@dataclass(frozen=True)
class Line:
    ticket_type_id: int
    quantity: int


def _is_busy(exc: DatabaseError) -> bool:
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    return connection.vendor == "sqlite" and "locked" in str(exc)


@contextmanager
def stock_transaction(*, set_lock_timeout: bool = True) -> Iterator[None]:
    """One transaction that gives up on a stuck lock after ORDER_LOCK_TIMEOUT_MS with 503 busy.

    ``set_lock_timeout=False``: the caller's first statement sets it (``sql.place_order``)."""
    try:
        with transaction.atomic():
            if set_lock_timeout and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = %s", [f"{int(settings.ORDER_LOCK_TIMEOUT_MS)}ms"])
            yield
    except OperationalError as exc:
        if _is_busy(exc):
            logger.warning("Stock lock not obtained: %s", exc)
            raise Busy() from exc
        raise


def _lock_ticket_types(ids: Sequence[int]) -> tuple[dict[int, int], list[int]]:
    """Lock the rows in ascending primary-key order; returns their current ``available``, and those
    whose waiting list has entries (``waitlisted``: their stock is the list's, orders.waitlist)."""
    rows = TicketType.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
    rows = list(rows.values_list("pk", "available", "waitlisted"))
    return {pk: available for pk, available, _waitlisted in rows}, [pk for pk, _a, waitlisted in rows if waitlisted]


def _move_stock(deltas: dict[int, int]) -> None:
    """Add ``deltas`` to ``available`` in one statement (the rows are already locked)."""
    if len(deltas) == 1:
        ((pk, delta),) = deltas.items()
        TicketType.objects.filter(pk=pk).update(available=F("available") + delta)
        return
    TicketType.objects.filter(pk__in=deltas).update(
        available=Case(*(When(pk=pk, then=F("available") + delta) for pk, delta in deltas.items())),
    )


def _after_stock_moved(event_id: int, before: dict[int, int], deltas: dict[int, int]) -> None:
    """Tell the catalogue cache when a ticket type sold out or came back.

    Other moves leave the availability snapshot alone: it lives AVAILABILITY_CACHE_SECONDS (1 s),
    the staleness the contract allows, and dropping it after every purchase was a Redis round
    trip per purchase, and a rebuild per purchase for every reader during a flash sale."""
    if any((before[pk] == 0) != (before[pk] + delta == 0) for pk, delta in deltas.items()):
        catalogue_cache.catalogue_changed(event_id)
    send_on_commit(stock_changed, TicketType, event_id=event_id, ticket_type_ids=list(deltas))


def announce(orders: Sequence[Order], *, status: str, previous: str | None) -> None:
    """Tell the apps that build on orders (realtime, webhooks, metrics) of these orders' move, once
    it commits. The orders' ``event_id`` and ``buyer_id`` must be loaded."""
    changes = [OrderChange(order.pk, order.event_id, order.buyer_id, status, previous) for order in orders]
    send_on_commit(order_status_changed, Order, changes=changes)


# --- Placing an order ----------------------------------------------------------------------


def _validate(event_id: int, lines: Sequence[Line], now: datetime) -> tuple[Event, dict[int, TicketType]]:
    """Everything that can be checked without a lock: the event, the ticket types, windows, limits.

    One query reads the ticket types with their event; ``available`` read here
    is unlocked, good enough to refuse a sale that cannot happen.
    """
    ids = [line.ticket_type_id for line in lines]
    if len(set(ids)) != len(ids):
        raise ApplicationError(_("List each ticket type once."), field="items")
    if connection.vendor == "postgresql":
        types = sql.ticket_types_with_event(ids)
    else:
        types = (
            TicketType.objects.select_related("event")
            .only(*sql.TICKET_TYPE_FIELDS, *(f"event__{name}" for name in sql.EVENT_FIELDS))
            .with_on_sale()
            .in_bulk(ids)
        )
    event = next((tt.event for tt in types.values() if tt.event_id == event_id), None)
    if event is None or not event.is_public:
        event = Event.objects.public().filter(pk=event_id).only("id").first()
        if event is None:
            raise ApplicationError(_("No published event has this id."), field="event")
    if event.ends_at <= now:
        raise SalesClosed(_("The event has ended."))
    for index, line in enumerate(lines):
        ticket_type = types.get(line.ticket_type_id)
        if ticket_type is None or ticket_type.event_id != event.pk:
            raise ApplicationError(_("This event has no such ticket type."), field=f"items.{index}.ticket_type")
        if ticket_type.sales_start and now < ticket_type.sales_start:
            raise SalesClosed(
                _("Sales for %(name)s open at %(start)s.")
                % {"name": ticket_type.name, "start": ticket_type.sales_start},
                extra={"ticket_type": ticket_type.pk},
            )
        if ticket_type.sales_end and now >= ticket_type.sales_end:
            raise SalesClosed(
                _("Sales for %(name)s have ended.") % {"name": ticket_type.name}, extra={"ticket_type": ticket_type.pk}
            )
        if line.quantity > ticket_type.max_per_order:
            raise LimitExceeded(
                ngettext(
                    "At most %(max)d ticket of %(name)s per order.",
                    "At most %(max)d tickets of %(name)s per order.",
                    ticket_type.max_per_order,
                )
                % {"max": ticket_type.max_per_order, "name": ticket_type.name},
                extra={"ticket_type": ticket_type.pk, "max_per_order": ticket_type.max_per_order},
            )
    _check_buyer_limits(event, lines, types, held={})  # an order over a limit on its own: no lock needed
    return event, types


def _check_buyer_limits(
    event: Event, lines: Sequence[Line], types: dict[int, TicketType], *, held: dict[int, int]
) -> None:
    """Refuse tickets beyond ``max_per_buyer`` (per type) or the event's ``max_tickets_per_buyer``.

    ``held`` is what the buyer's live orders hold per ticket type, this order
    included once it is written; empty, only this order's own quantities count.
    """
    totals = {line.ticket_type_id: held.get(line.ticket_type_id, line.quantity) for line in lines}
    for line in lines:
        ticket_type = types[line.ticket_type_id]
        limit = ticket_type.max_per_buyer
        if limit is not None and totals[line.ticket_type_id] > limit:
            already = totals[line.ticket_type_id] - line.quantity
            raise LimitExceeded(
                ngettext(
                    "One buyer may hold at most %(max)d ticket of %(name)s; you already hold %(already)d.",
                    "One buyer may hold at most %(max)d tickets of %(name)s; you already hold %(already)d.",
                    limit,
                )
                % {"max": limit, "name": ticket_type.name, "already": already},
                extra={"ticket_type": ticket_type.pk, "max_per_buyer": limit, "already_held": already},
            )
    limit = event.max_tickets_per_buyer
    total = sum(held.values()) if held else sum(totals.values())
    if limit is not None and total > limit:
        already = total - sum(line.quantity for line in lines)
        raise LimitExceeded(
            ngettext(
                "One buyer may hold at most %(max)d ticket of this event; you already hold %(already)d.",
                "One buyer may hold at most %(max)d tickets of this event; you already hold %(already)d.",
                limit,
            )
            % {"max": limit, "already": already},
            extra={"max_tickets_per_buyer": limit, "already_held": already},
        )


def _has_buyer_limits(event: Event, lines: Sequence[Line], types: dict[int, TicketType]) -> bool:
    return event.max_tickets_per_buyer is not None or any(
        types[line.ticket_type_id].max_per_buyer is not None for line in lines
    )


def _place(
    buyer: User,
    event: Event,
    lines: Sequence[Line],
    types: dict[int, TicketType],
    now: datetime,
    in_transaction: Callable[[Order], None] | None,
    discount: discounts.Discount | None = None,
    seats: dict[int, list[int]] | None = None,
) -> Order:
    """Write the order, then take its stock; ``seats`` (seat ids per seated ticket type, possibly
    none) makes it a seated order: its seats are held too (orders/seating.py), after the order's writes."""
    total = sum(types[line.ticket_type_id].price_cents * line.quantity for line in lines)
    if discount is not None:
        total -= discount.cents  # never below zero: a discount is capped at what it applies to
    free = total == 0
    lines = sorted(lines, key=lambda line: line.ticket_type_id)
    order = Order(
        id=uuid.uuid4(),
        buyer_id=buyer.pk,
        event=event,
        status=Order.Status.PAID if free else Order.Status.RESERVED,
        total_cents=total,
        currency=event.currency,
        expires_at=None if free else now + timedelta(minutes=settings.ORDER_HOLD_MINUTES),
        paid_at=now if free else None,
        # Given, not defaulted: Model.__init__ raises and catches a KeyError per field left out.
        discount_code_id=discount.code.pk if discount else None,
        discount_cents=discount.cents if discount else 0,
    )
    if discount is not None:  # the code as read, cached as select_related would (no descriptor, no query)
        order._state.fields_cache["discount_code"] = discount.code
    quantities = [(line.ticket_type_id, line.quantity) for line in lines]
    # Hand-written SQL on PostgreSQL (orders/sql.py), seated or not; the ORM on SQLite.
    raw = connection.vendor == "postgresql"
    with stock_transaction(set_lock_timeout=not raw):
        # Write everything first; the stock lock comes last and a shortage rolls it all back.
        if raw:
            sql.place_order(
                order=order,
                lines=[(pk, quantity, types[pk].price_cents) for pk, quantity in quantities],
                lock_timeout_ms=settings.ORDER_LOCK_TIMEOUT_MS,
                now=now,
            )
            hold = []  # written by the same statement
        else:
            order.save(force_insert=True)
            hold = _ledger(order, InventoryEntry.Kind.HOLD, quantities)
        # Hand back the order as a reader would load it, without reading it back.
        items = [
            OrderItem(order=order, ticket_type=types[pk], quantity=quantity, unit_price_cents=types[pk].price_cents)
            for pk, quantity in quantities
        ]
        if not raw:
            OrderItem.objects.bulk_create(items)
        order._prefetched_objects_cache = {"items": items}
        if seats is not None:  # the named seats, and the best available ones for a quantity
            order._prefetched_objects_cache["seats"] = seating.hold_seats(order, event.pk, seats, quantities, types)
        if free:  # held and sold at once
            sell(order, quantities, also=hold, seated=seats is not None)
            order_confirmation_queue(order=order)  # on commit: nothing for a purchase that rolls back
        elif hold:
            InventoryEntry.objects.bulk_create(hold)
        if _has_buyer_limits(event, lines, types):
            # The buyer's row lock serialises their purchases, so two orders racing for the last
            # allowed ticket count each other; holds that ran out do not count. Taken before the
            # stock lock, so the hot row is not held longer.
            held = sql.lock_buyer_and_count_held(buyer_id=buyer.pk, event_id=event.pk, now=now)
            _check_buyer_limits(event, lines, types, held=held)
        if in_transaction is not None:
            in_transaction(order)
        if discount is not None:  # the code's row after the seats', before the ticket types' (events/discounts.py)
            discounts.claim(discount)

        available = _take_stock(quantities, types)
        deltas = {pk: -quantity for pk, quantity in quantities}
        _after_stock_moved(event.pk, available, deltas)
        announce([order], status=order.status, previous=None)
    return order


def _take_stock(quantities: Sequence[tuple[int, int]], types: dict[int, TicketType]) -> dict[int, int]:
    """Take the stock of an order's lines (sorted by ticket type), or raise ``_ShortOfStock``.

    Returns what each ticket type had available before. One line on PostgreSQL is one
    conditional UPDATE; several lines lock their rows in ascending primary-key order first.
    An order with a ticket type split over stock buckets goes through events/stock.py.
    """
    buckets = {pk: types[pk].stock_buckets for pk, _quantity in quantities if types[pk].stock_buckets > 1}
    if buckets:  # claimed with SKIP LOCKED; the row and every bucket only when no bucket suffices
        return stock.take(quantities, buckets=buckets)
    if len(quantities) == 1 and connection.vendor == "postgresql":
        ((pk, quantity),) = quantities
        taken, available, gated = sql.take_one(ticket_type_id=pk, quantity=quantity)
        if not taken:
            raise _ShortOfStock([pk], {pk: available}, gated=gated)
        return {pk: available}
    available, gated = _lock_ticket_types([pk for pk, _quantity in quantities])
    if gated:  # the waiting list's stock (orders.waitlist)
        raise _ShortOfStock(gated, available, gated=True)
    short = [pk for pk, quantity in quantities if available.get(pk, 0) < quantity]
    if short:
        raise _ShortOfStock(short, available)
    _move_stock({pk: -quantity for pk, quantity in quantities})
    return available


def _ledger(order: Order, kind: str, quantities: Sequence[tuple[int, int]]) -> list[InventoryEntry]:
    return [
        InventoryEntry(order=order, ticket_type_id=ticket_type_id, kind=kind, quantity=quantity)
        for ticket_type_id, quantity in quantities
    ]


def sell(
    order: Order, quantities: Sequence[tuple[int, int]], *, also: Sequence[InventoryEntry] = (), seated: bool = True
) -> None:
    """Held tickets become sold: the ledger's SELL entries (with ``also``, in the same INSERT) and one
    ticket per seat, held by the buyer. For a free order at once, for a paid one when payment arrives.
    The order's held seats are sold and go on its tickets (``seated=False``: it has none, skip the look)."""
    InventoryEntry.objects.bulk_create([*also, *_ledger(order, InventoryEntry.Kind.SELL, quantities)])
    seats = seating.sell_seats(order) if seated else {}
    Ticket.objects.bulk_create(
        Ticket(order=order, ticket_type_id=ticket_type_id, holder_id=order.buyer_id, seat_id=seat)
        for ticket_type_id, quantity in quantities
        for seat in (seats.get(ticket_type_id, []) + [None] * quantity)[:quantity]
    )


def retake(order: Order, quantities: Sequence[tuple[int, int]]) -> bool:
    """A payment landed after the order's hold was released: take its stock again and sell it, if
    there is enough left (False, and nothing changed, when there is not). Caller holds the order lock."""
    if seating.has_seated(quantities):
        return False  # its seats were freed; they are not re-taken (orders/seating.py)
    try:
        with transaction.atomic():  # a savepoint: a later line short of stock gives back what earlier ones took
            if not discounts.retake(order.pk):  # its code's use, given back with the hold, before the stock
                return False
            available = stock.take(sorted(quantities), buckets={})  # under the locks: pool and buckets
    except _ShortOfStock:
        return False
    deltas = {ticket_type_id: -quantity for ticket_type_id, quantity in quantities}
    sell(order, quantities, also=_ledger(order, InventoryEntry.Kind.HOLD, quantities))
    _after_stock_moved(order.event_id, available, deltas)
    return True


def give_back_sold(order: Order, quantities: Sequence[tuple[int, int]]) -> None:
    """A paid order is refunded: its sold tickets are back on sale. Caller holds the order lock."""
    deltas = {ticket_type_id: quantity for ticket_type_id, quantity in quantities}
    seating.free_seats([order.pk])  # seats before ticket types, the order purchases lock them in
    discounts.give_back([order.pk])  # a refunded order's code use is back too, before the ticket-type locks
    before, waiting = _lock_ticket_types(sorted(deltas))
    _move_stock(deltas)
    InventoryEntry.objects.bulk_create(_ledger(order, InventoryEntry.Kind.REFUND, quantities))
    _after_stock_moved(order.event_id, before, deltas)
    waitlist.offer_on_commit(waiting)


def _due_holds_exist(event_id: int, now: datetime) -> bool:
    return Order.objects.filter(event_id=event_id, status=Order.Status.RESERVED, expires_at__lte=now).exists()


def _buckets_appeared(types: dict[int, TicketType], short: _ShortOfStock) -> bool:
    """A ticket type read as unbucketed was split over buckets since (its organizer changed it), so
    its pool was short while its buckets may not be: note it in ``types`` for a second attempt."""
    unbucketed = [pk for pk in short.ticket_type_ids if types[pk].stock_buckets <= 1]
    appeared = stock.bucketed_now(unbucketed) if unbucketed else {}
    for pk, buckets in appeared.items():
        types[pk].stock_buckets = buckets
    return bool(appeared)


def _stock_may_be_back(event_id: int, wanted: dict[int, int], now: datetime) -> bool:
    """After a shortage our own sweep found nothing to expire: is it worth one more try?

    Yes if due holds remain (another purchase's sweep holds them, and ``SKIP LOCKED``
    passed them by: wait for it to commit), or if the stock read now would do (a release
    committed since the stock was taken). So nobody is told "sold out" while tickets are
    on their way back."""
    due, available = _due_holds_and_on_sale(event_id, wanted, now)
    if due:
        with transaction.atomic():  # wait for the sweep that holds them to commit
            due_holds = Order.objects.filter(event_id=event_id, status=Order.Status.RESERVED, expires_at__lte=now)
            list(due_holds.select_for_update().values_list("pk", flat=True)[:100])
        return True
    return all(available.get(pk, 0) >= quantity for pk, quantity in wanted.items())


def _due_holds_and_on_sale(event_id: int, wanted: dict[int, int], now: datetime) -> tuple[bool, dict[int, int]]:
    """Whether any of the event's holds is due, and what is on sale (pool plus buckets) per ticket
    type: one statement, one snapshot, on PostgreSQL (a release shows its closed hold and its
    returned stock together or not at all)."""
    if connection.vendor == "postgresql":
        return sql.due_holds_and_on_sale(event_id=event_id, ticket_type_ids=list(wanted), now=now)
    return _due_holds_exist(event_id, now), stock.on_sale(wanted)


def refuse_if_sold_out(*, event_id: int, wanted: dict[int, int], types: dict[int, TicketType], now: datetime) -> bool:
    """The sold-out shortcut: 409 ``sold_out`` without writing or locking anything when the stock
    is short and none of the event's holds is due; True when holds are due (the caller expires
    them, or leaves that to the queue's worker). ``types`` as validation read them.

    Stock is read again with the due holds (``_due_holds_and_on_sale``): a release that was under
    way when validation read it has committed by now, so a sold-out answer is never stale.
    A ticket type whose waiting list has entries is sold out to newcomers (orders.waitlist)."""
    waitlist.refuse_if_gated(types, wanted)
    if all(types[pk].on_sale >= quantity for pk, quantity in wanted.items()):  # the pool + any stock buckets
        return False
    due, available = _due_holds_and_on_sale(event_id, wanted, now)
    if due:
        return True
    short = [pk for pk, quantity in wanted.items() if available.get(pk, 0) < quantity]
    if short:
        raise _sold_out(types, _ShortOfStock(short, available))
    return False


def _sold_out(types: dict[int, TicketType], short: _ShortOfStock) -> SoldOut:
    first = short.ticket_type_ids[0]
    if short.gated:
        return waitlist.gate_refusal(types[first])
    left = short.available.get(first, 0)
    name = types[first].name
    if left == 0:
        detail = _("%(name)s is sold out.") % {"name": name}
    else:
        detail = ngettext(
            "Only %(left)d ticket of %(name)s is left.", "Only %(left)d tickets of %(name)s are left.", left
        ) % {"left": left, "name": name}
    return SoldOut(
        detail,
        extra={"ticket_type": first, "available": left},
    )


def order_place(
    *,
    buyer: User,
    event_id: int,
    lines: Sequence[Line],
    in_transaction: Callable[[Order], None] | None = None,
    queue: Callable[[Event, dict[int, TicketType], datetime], None] | None = None,
    seats: Sequence[int] | None = None,
    discount_code: str | None = None,
) -> Order | None:
    """Reserve tickets (or, when they are free, sell them at once) without ever overselling.

    All or nothing: on any failure nothing is held. When stock is short, the
    event's due holds are expired first, so correctness never waits for the
    beat sweep; when it is short and nothing is due, the answer is sold out
    without writing or locking anything, which keeps a sold-out flash sale cheap.

    ``in_transaction(order)`` runs inside the order's transaction once the order
    is written and before stock is locked: what it writes (an idempotency
    record's response) commits or rolls back with the order, and costs the hot
    row nothing.

    ``queue(event, types, now)``: for an event marked ``high_demand``, the
    validated purchase is handed to it instead (``orders.queue`` puts it in
    line) and None is returned; the flag comes with the validating read, so a
    normal purchase pays nothing for it. The queue's workers call this without
    ``queue``.

    ``seats``: seat ids to buy; they and any quantity of a seated ticket type (best available
    seats) make a seated order, placed by orders/seating.py, directly even for a high-demand event.

    ``discount_code``: checked with the rest (events/discounts.py: 400 ``invalid`` on
    ``discount_code``, 409 ``discount_code_exhausted``); its use is claimed in the order's
    transaction and given back with the order's stock.
    """
    now = timezone.now()
    seats_by_type = {}
    if seats:
        lines, seats_by_type = seating.lines_with_seats(event_id=event_id, lines=lines, seat_ids=seats)
    event, types = _validate(event_id, lines, now)
    discount = None
    if discount_code:
        discount = discounts.discount_for_order(
            event_id=event.pk,
            text=discount_code,
            lines=[(line.ticket_type_id, line.quantity, types[line.ticket_type_id].price_cents) for line in lines],
            now=now,
        )
    if seats_by_type or seating.is_seated(lines, types):
        if queue is not None and event.high_demand and not all(types[line.ticket_type_id].seated for line in lines):
            # Seats are placed at once (orders/seating.py); unseated tickets of a high-demand
            # event wait in line: one order may not carry them past it.
            raise ApplicationError(
                _("For this high-demand event, order seats and other tickets separately."), field="items"
            )
        return seating.place(
            buyer=buyer,
            event=event,
            lines=lines,
            types=types,
            seats_by_type=seats_by_type,
            now=now,
            in_transaction=in_transaction,
            discount=discount,
        )
    if queue is not None and event.high_demand:
        queue(event, types, now)
        return None
    wanted = {line.ticket_type_id: line.quantity for line in lines}
    if refuse_if_sold_out(event_id=event.pk, wanted=wanted, types=types, now=now):
        expire_due_holds(event_id=event.pk, now=now)  # then buy under the lock, whoever released them
    try:
        return _place(buyer, event, lines, types, now, in_transaction, discount)
    except _ShortOfStock as short:  # others bought in between
        if short.gated:  # the waiting list's stock (orders.waitlist): nothing to wait or retry for
            raise _sold_out(types, short) from None
        if (
            not expire_due_holds(event_id=event.pk, now=now)
            and not _buckets_appeared(types, short)
            and not _stock_may_be_back(event.pk, wanted, now)
        ):
            raise _sold_out(types, short) from None
    try:
        return _place(buyer, event, lines, types, now, in_transaction, discount)
    except _ShortOfStock as short:
        raise _sold_out(types, short) from None


# --- Returning stock -------------------------------------------------------------------------


def _release(orders: Sequence[Order], *, to_status: str, now: datetime) -> None:
    """Move locked ``reserved`` orders to ``to_status`` and give their stock back, in one go."""
    if not orders:
        return
    order_ids = [order.pk for order in orders]
    items = list(OrderItem.objects.filter(order_id__in=order_ids).values_list("order_id", "ticket_type_id", "quantity"))
    deltas: dict[int, int] = defaultdict(int)
    for _order_id, ticket_type_id, quantity in items:
        deltas[ticket_type_id] += quantity
    seating.free_seats(order_ids)  # seats before ticket types, the order purchases lock them in
    discounts.give_back(order_ids)  # before the ticket-type locks (events/discounts.py)
    before, waiting = _lock_ticket_types(sorted(deltas))
    _move_stock(deltas)
    InventoryEntry.objects.bulk_create(
        InventoryEntry(
            order_id=order_id, ticket_type_id=ticket_type_id, kind=InventoryEntry.Kind.RELEASE, quantity=quantity
        )
        for order_id, ticket_type_id, quantity in items
    )
    Order.objects.filter(pk__in=order_ids).update(status=to_status, closed_at=now, updated_at=now)
    announce(orders, status=to_status, previous=Order.Status.RESERVED)
    waitlist.stock_released(order_ids=order_ids, to_status=to_status, waiting=waiting, now=now)
    by_event: dict[int, dict[int, int]] = defaultdict(dict)
    event_of = dict(TicketType.objects.filter(pk__in=deltas).values_list("pk", "event_id"))
    for ticket_type_id, delta in deltas.items():
        by_event[event_of[ticket_type_id]][ticket_type_id] = delta
    for event_id, event_deltas in by_event.items():
        _after_stock_moved(event_id, before, event_deltas)


def release_held(order: Order, *, to_status: str) -> None:
    """Give back the stock of one reserved order whose lock the caller holds."""
    _release([order], to_status=to_status, now=timezone.now())
    order.status = to_status


def release_event_holds(*, event_id: int, batch_size: int = 500) -> int:
    """Cancel every reserved order of a cancelled event, returning its stock.

    No ``SKIP LOCKED`` here: an order a webhook is paying right now is waited
    for, and then it is paid and found by the refunds that follow."""
    released = 0
    while True:
        with stock_transaction():
            batch = list(
                Order.objects.filter(event_id=event_id, status=Order.Status.RESERVED)
                .select_for_update()
                .order_by("pk")
                .only("pk", "event_id", "buyer_id")[:batch_size]
            )
            _release(batch, to_status=Order.Status.CANCELLED, now=timezone.now())
        released += len(batch)
        if len(batch) < batch_size:
            return released


def expire_due_holds(*, now: datetime | None = None, event_id: int | None = None, batch_size: int = 500) -> int:
    """Expire reserved orders whose hold ran out and return their stock, exactly once.

    Orders are taken in ``SKIP LOCKED`` batches, so several sweeps (beat, a
    purchase short of stock, the management command) share the work instead
    of queuing, and an order being cancelled right now is left to its canceller.
    """
    now = now or timezone.now()
    expired = 0
    while True:
        with stock_transaction():
            due = Order.objects.filter(status=Order.Status.RESERVED, expires_at__lte=now)
            if event_id is not None:  # a purchase short of stock: only its event's holds (index on event, status)
                due = due.filter(event_id=event_id)
            batch = list(
                due.select_for_update(skip_locked=True)
                .order_by("expires_at")
                .only("pk", "event_id", "buyer_id")[:batch_size]
            )
            _release(batch, to_status=Order.Status.EXPIRED, now=now)
        expired += len(batch)
        if len(batch) < batch_size:
            break
    if expired:
        logger.info("Expired %d reserved orders", expired)
    return expired


def mark_paid(order: Order, *, paid_at: datetime, fee_cents: int = 0) -> None:
    """Record a locked order as paid (its tickets already sold) and queue its confirmation email."""
    announce([order], status=Order.Status.PAID, previous=order.status)
    order.status, order.paid_at, order.closed_at, order.fee_cents = Order.Status.PAID, paid_at, None, fee_cents
    order.save(update_fields=["status", "paid_at", "closed_at", "fee_cents", "updated_at"])
    waitlist.offer_paid(order=order)
    order_confirmation_queue(order=order)


def order_mark_paid(*, order: Order, paid_at: datetime | None = None, fee_cents: int = 0) -> Order:
    """A reservation's payment arrived: it becomes ``paid``, its held tickets ``sold``, and its
    tickets are issued, once (under a row lock on the order, like every move out of ``reserved``).

    ``orders.payments`` calls it when a gateway confirms a payment (``fee_cents`` is the
    platform's fee on it). Stock does not move: held tickets become sold ones.
    """
    with stock_transaction():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != Order.Status.RESERVED:
            raise OrderNotPayable()
        sell(locked, list(OrderItem.objects.filter(order=locked).values_list("ticket_type_id", "quantity")))
        mark_paid(locked, paid_at=paid_at or timezone.now(), fee_cents=fee_cents)
    order.status, order.paid_at, order.fee_cents = locked.status, locked.paid_at, locked.fee_cents
    return locked


def order_cancel(*, order: Order) -> Order:
    """The buyer gives up an order: a reservation's stock is back on sale at once; a paid order is
    refunded when the event's refund policy allows it (409 ``not_refundable`` otherwise)."""
    now = timezone.now()
    with stock_transaction():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        paid = locked.status == Order.Status.PAID
        if paid:
            pass  # refunded below, by the one refund service, under its own lock
        elif locked.status != Order.Status.RESERVED:
            raise OrderNotCancellable(
                _("This order is %(status)s and can no longer be cancelled.")
                % {"status": locked.get_status_display().lower()}
            )
        else:
            _release([locked], to_status=Order.Status.CANCELLED, now=now)
    if paid:
        from .payments.services import order_refund

        return order_refund(order=locked)
    locked.refresh_from_db()
    return locked


def purge_expired_idempotency_records(*, now: datetime | None = None) -> int:
    deleted, _per_model = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
