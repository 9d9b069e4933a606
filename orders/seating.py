"""Buying seats: by seat id, or the best available adjacent seats; and seats following their order.

A seated ticket type keeps its stock on its row like any other (``available`` =
its available seats), so a seated order takes stock as every purchase does and
the ledger and ``check_inventory`` hold; on top of that its seats move:
``available → held`` when the order is placed, ``held → sold`` when it is paid,
and back to ``available`` when it expires, is cancelled or is refunded. Every
move after placing happens under the order's row lock (orders/services.py:
``sell``, ``_release``, ``give_back_sold``), so it happens exactly once.

Seated orders go through :func:`place`, then the one ``services._place`` with
``seats``: the same statements as any purchase, plus the seats' lock and update
after the order is written. A plain purchase pays nothing for seats.

Locking, in this order: the seats a buyer names, ``FOR NO KEY UPDATE`` in
ascending id (the buyer waits for a seat another purchase is deciding on); then
best-available blocks, claimed with ``SKIP LOCKED`` (never waiting, so never a
deadlock: a contended block is passed over for the next best); then the buyer
row and the ticket-type rows as every purchase takes them. Releases free seats
before they lock ticket types, in the same order.

A high-demand (queued) event's seat orders are placed directly, not queued:
each locks only its own seats and one ticket-type row, and a buyer picking seats
needs the answer (``seat_taken``) at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from eventflow.api.errors import ApplicationError, Conflict
from events.models import Event, Seat, TicketType
from events.stock import ShortOfStock

from . import services
from .errors import SoldOut
from .models import Order

MAX_SEATS_PER_ORDER = 10
BEST_AVAILABLE_ATTEMPTS = 5  # blocks tried when buyers race for the same best seats


class SeatTaken(Conflict):
    default_code = "seat_taken"
    default_detail = _("Some of these seats are no longer available.")


def _seat_taken(gone: Sequence[int]) -> SeatTaken:
    gone = sorted(gone)
    return SeatTaken(
        ngettext("Seat %(seats)s is no longer available.", "Seats %(seats)s are no longer available.", len(gone))
        % {"seats": ", ".join(map(str, gone))},
        extra={"seats": gone},
    )


# --- Before validation: seats become order lines ---------------------------------------------


def lines_with_seats(*, event_id: int, lines: Sequence, seat_ids: Sequence[int]) -> tuple[list, dict[int, list[int]]]:
    """The order's lines with one line per ticket type of ``seat_ids`` (quantity: its seats), and
    the seat ids per ticket type. Seats not of this event are a 400 naming them. One query."""
    if len(set(seat_ids)) != len(seat_ids):
        raise ApplicationError(_("List each seat once."), field="seats")
    if not 1 <= len(seat_ids) <= MAX_SEATS_PER_ORDER:
        raise ApplicationError(_("Choose 1 to %(max)d seats per order.") % {"max": MAX_SEATS_PER_ORDER}, field="seats")
    found = dict(Seat.objects.filter(pk__in=seat_ids, event_id=event_id).values_list("pk", "ticket_type_id"))
    unknown = sorted(set(seat_ids) - set(found))
    if unknown:
        raise ApplicationError(
            _("This event has no seats %(seats)s.") % {"seats": ", ".join(map(str, unknown))},
            field="seats",
            extra={"seats": unknown},
        )
    by_type: dict[int, list[int]] = defaultdict(list)
    for seat_id in sorted(seat_ids):
        by_type[found[seat_id]].append(seat_id)
    named = {line.ticket_type_id for line in lines}
    for index, line in enumerate(lines):
        if line.ticket_type_id in by_type:
            raise ApplicationError(
                _("Give either seats or a quantity for a seated ticket type, not both."),
                field=f"items.{index}.ticket_type",
            )
    extra = [services.Line(pk, len(ids)) for pk, ids in sorted(by_type.items()) if pk not in named]
    return [*lines, *extra], dict(by_type)


def is_seated(lines: Sequence, types: dict[int, TicketType]) -> bool:
    return any(types[line.ticket_type_id].seated for line in lines)


# --- Placing ---------------------------------------------------------------------------------


def place(
    *,
    buyer: User,
    event: Event,
    lines: Sequence,
    types: dict[int, TicketType],
    seats_by_type: dict[int, list[int]],
    now: datetime,
    in_transaction: Callable[[Order], None] | None,
    discount=None,
) -> Order:
    """Place a validated order with seats: the named ones, and for a seated line without seat ids
    the best available adjacent seats. All or nothing. Seats or stock held by holds that ran out
    are freed once (the event's due holds expire) and the purchase tried again."""
    try:
        return services._place(buyer, event, lines, types, now, in_transaction, discount, seats=seats_by_type)
    except (SeatTaken, SoldOut, ShortOfStock) as exc:
        if not services.expire_due_holds(event_id=event.pk, now=now):
            if isinstance(exc, ShortOfStock):
                raise services._sold_out(types, exc) from None
            raise
    try:
        return services._place(buyer, event, lines, types, now, in_transaction, discount, seats=seats_by_type)
    except ShortOfStock as short:
        raise services._sold_out(types, short) from None


_SEAT_FIELDS = ("pk", "ticket_type_id", "section", "row", "number", "row_key", "number_key", "status")


def _lock(seat_ids: Sequence[int], *, skip_locked: bool = False) -> dict[int, Seat]:
    """Lock these seats (ascending ids) and return those available, as read under the lock."""
    rows = Seat.objects.select_for_update(no_key=True, skip_locked=skip_locked).filter(pk__in=seat_ids).order_by("pk")
    return {
        values[0]: Seat(**dict(zip(_SEAT_FIELDS, values, strict=True)))
        for values in rows.values_list(*_SEAT_FIELDS)
        if values[-1] == Seat.Status.AVAILABLE
    }


def hold_seats(
    order: Order,
    event_id: int,
    seats_by_type: dict[int, list[int]],
    quantities: Sequence[tuple[int, int]],
    types: dict[int, TicketType],
) -> list[Seat]:
    """Hold an order's seats as it is placed (orders/services.py ``_place``): the seats named per
    ticket type, and for a seated line without seat ids the best available ones; 409 ``seat_taken``
    or ``sold_out`` when they are not to be had. Returns them as the rows now are."""
    picks = [(pk, quantity) for pk, quantity in quantities if types[pk].seated and pk not in seats_by_type]
    named = sorted(seat_id for ids in seats_by_type.values() for seat_id in ids)
    chosen: dict[int, Seat] = {}
    if named:
        chosen = _lock(named)
        gone = [seat_id for seat_id in named if seat_id not in chosen]
        if gone:
            raise _seat_taken(gone)
    for ticket_type_id, quantity in picks:
        chosen.update(_claim_best(event_id, ticket_type_id, quantity, types[ticket_type_id], taken=set(chosen)))
    Seat.objects.filter(pk__in=list(chosen)).update(status=Seat.Status.HELD, order=order)
    held = sorted(chosen.values(), key=lambda seat: (seat.section, seat.row_key, seat.number_key, seat.pk))
    for seat in held:  # as the rows now are, for the 201 body (no read back)
        seat.status, seat.order, seat.event_id = Seat.Status.HELD, order, event_id
    return held


def _claim_best(
    event_id: int, ticket_type_id: int, quantity: int, ticket_type: TicketType, taken: set[int]
) -> dict[int, Seat]:
    """Lock the best block of ``quantity`` adjacent available seats of the type, or raise sold out.

    The block is chosen from an unlocked read, then claimed with ``SKIP LOCKED`` and checked
    again under the lock; a block another buyer got first is passed over for the next best."""
    passed: set[int] = set(taken)
    for _attempt in range(BEST_AVAILABLE_ATTEMPTS):
        block = best_block(event_id=event_id, ticket_type_id=ticket_type_id, quantity=quantity, exclude=passed)
        if block is None:
            break
        got = _lock(block, skip_locked=connection.vendor == "postgresql")
        if len(got) == len(block):
            return got
        passed.update(seat_id for seat_id in block if seat_id not in got)
    free = Seat.objects.filter(ticket_type_id=ticket_type_id, status=Seat.Status.AVAILABLE).count()
    if free >= quantity:
        detail = ngettext(
            "No row has %(n)d adjacent seat of %(name)s left.",
            "No row has %(n)d adjacent seats of %(name)s left; choose seats by id.",
            quantity,
        ) % {"n": quantity, "name": ticket_type.name}
    elif free == 0:
        detail = _("%(name)s is sold out.") % {"name": ticket_type.name}
    else:
        detail = ngettext(
            "Only %(left)d seat of %(name)s is left.", "Only %(left)d seats of %(name)s are left.", free
        ) % {"left": free, "name": ticket_type.name}
    raise SoldOut(detail, extra={"ticket_type": ticket_type_id, "available": free, "adjacent": False})


def best_block(
    *, event_id: int, ticket_type_id: int, quantity: int, exclude: set[int] = frozenset()
) -> list[int] | None:
    """The ids of the best ``quantity`` adjacent available seats of a ticket type, or None.

    Adjacent: next to each other in one row (section and row), in the row's natural number
    order, counting every seat of the row whatever its type or state. Best: the front-most
    row of its section (rows in natural order, the first is the front), then the block whose
    middle is closest to the section's centre (by ``x`` when every seat of the section has one,
    else by position in the row); every section is considered. Ties: section, row, seat order.
    """
    rows: dict[tuple[str, str], list[tuple[int, int, str, float | None]]] = defaultdict(list)
    sections: dict[str, set[str]] = defaultdict(set)
    in_sections = Seat.objects.filter(ticket_type_id=ticket_type_id).values("section").distinct()
    seats = (
        Seat.objects.filter(event_id=event_id, section__in=in_sections)
        .order_by("section", "row_key", "number_key", "pk")
        .values_list("pk", "section", "row_key", "ticket_type_id", "status", "x")
    )
    for pk, section, row_key, seat_type, status, x in seats:
        usable = seat_type == ticket_type_id and status == Seat.Status.AVAILABLE and pk not in exclude
        rows[(section, row_key)].append((pk, usable, row_key, x))
        sections[section].add(row_key)
    centres: dict[str, float | None] = {}
    for section in sections:
        xs = [x for (sec, _row), seats_ in rows.items() if sec == section for _pk, _u, _r, x in seats_]
        centres[section] = (min(xs) + max(xs)) / 2 if xs and all(x is not None for x in xs) else None
    rank = {section: {row: index for index, row in enumerate(sorted(keys))} for section, keys in sections.items()}
    best: tuple | None = None
    for (section, row_key), seats_ in rows.items():
        usable = [seat[1] for seat in seats_]
        run = 0
        for end, ok in enumerate(usable):
            run = run + 1 if ok else 0
            if run < quantity:
                continue
            start = end - quantity + 1
            block = seats_[start : end + 1]
            if centres[section] is not None:
                distance = abs(sum(seat[3] for seat in block) / quantity - centres[section])
            else:
                distance = abs((start + end) / 2 - (len(seats_) - 1) / 2)
            score = (rank[section][row_key], distance, section, row_key, start)
            if best is None or score < best[0]:
                best = (score, [seat[0] for seat in block])
    return None if best is None else sorted(best[1])


# --- Seats following their order (called under the order's row lock) -------------------------


def sell_seats(order: Order) -> dict[int, list[int]]:
    """The order is paid: its held seats are sold. Returns its seat ids per ticket type, in map
    order, for the tickets (one statement when the order has no seats)."""
    rows = list(
        Seat.objects.filter(order_id=order.pk, status=Seat.Status.HELD)
        .order_by("section", "row_key", "number_key", "pk")
        .values_list("pk", "ticket_type_id")
    )
    if not rows:
        return {}
    Seat.objects.filter(pk__in=[pk for pk, _type in rows]).update(status=Seat.Status.SOLD)
    by_type: dict[int, list[int]] = defaultdict(list)
    for pk, ticket_type_id in rows:
        by_type[ticket_type_id].append(pk)
    return by_type


def free_seats(order_ids: Sequence) -> int:
    """Expired, cancelled or refunded orders give their seats back (held or sold → available).
    Their rows are locked in ascending id first, the order a purchase naming seats locks them in,
    so a sweep freeing several holds' seats and such a purchase never deadlock."""
    seats = Seat.objects.filter(order_id__in=list(order_ids))
    ids = list(seats.select_for_update(no_key=True).order_by("pk").values_list("pk", flat=True))
    return Seat.objects.filter(pk__in=ids).update(status=Seat.Status.AVAILABLE, order=None) if ids else 0


def has_seated(quantities: Sequence[tuple[int, int]]) -> bool:
    """A late payment cannot re-take seats freed when its hold expired (another buyer may sit
    there now, and nothing records which they were): such an order is refunded instead."""
    return TicketType.objects.filter(pk__in=[pk for pk, _quantity in quantities], seated=True).exists()


def seats_of(order: Order) -> list[Seat]:
    """The order's seats as the purchase left them (no query), else none were loaded: empty."""
    return list(getattr(order, "_prefetched_objects_cache", {}).get("seats", ()))


# --- check_inventory --------------------------------------------------------------------------


def seat_counts(ticket_type_ids) -> dict[int, dict[str, int]]:
    """Seats per ticket type and state."""
    from django.db.models import Count

    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for ticket_type_id, status, n in (
        Seat.objects.filter(ticket_type_id__in=ticket_type_ids)
        .order_by()
        .values_list("ticket_type_id", "status")
        .annotate(n=Count("pk"))
    ):
        counts[ticket_type_id][status] = n
    return counts


def inventory_problems(row: dict, counts: dict[str, int], *, held: int, sold: int) -> list[str]:
    """What is wrong with a ticket type's seats: their number must be its capacity, and the
    seats held, sold and available must be what the ledger holds, sells and has on sale."""
    total = sum(counts.values())
    if not row["seated"]:
        return [f"{total} seats for an unseated ticket type"] if total else []
    problems = []
    if total != row["capacity"]:
        problems.append(f"{total} seats for capacity {row['capacity']}")
    for status, expected, what in (
        (Seat.Status.HELD, held, "ledger holds"),
        (Seat.Status.SOLD, sold, "ledger sold"),
        (Seat.Status.AVAILABLE, row["available"], "available"),
    ):
        if counts.get(status, 0) != expected:
            problems.append(f"{counts.get(status, 0)} seats {status} but {what} {expected}")
    return problems
