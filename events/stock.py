"""A ticket type's stock past the single-row lock: the pool on its row, and its buckets.

One ticket-type row sells one purchase at a time: each holds the row lock from
its ``SELECT ... FOR UPDATE`` to its commit, and measured with raw SQL that
caps one type near 1,000 purchases/s on two cores whatever the concurrency
(bench/README.md, "Stock buckets: past the single-row lock"). A type with
``stock_buckets`` > 1 keeps its stock in that many :class:`StockBucket` rows
instead, and a buyer claims any bucket nobody else holds with ``SKIP LOCKED``,
so that many purchases of one type commit side by side.

Where the tickets are: ``capacity = pool + sum(buckets) + held + sold``, the
pool being ``TicketType.available``. Bucket stock is never copied onto the
ticket-type row (that would bring the hot row back); readers add it up
(``TicketType.on_sale``, ``TicketTypeQuerySet.with_on_sale``). Releases and
refunds give stock back to the pool, on the ticket-type row as before (a row
bucketed buyers do not lock): :func:`take` spreads it over the buckets the next
time a buyer finds no bucket big enough.

Taking stock, per ticket type:
1. the claim: one statement that decrements a bucket with enough stock that no
   other transaction holds, starting at a random bucket so buyers spread out;
2. when none qualifies (all held, or each too small): lock the ticket-type row,
   try the claim once more (a rebalance just ahead of us may have refilled the
   buckets), then lock every bucket in primary-key order, take the quantity
   across the pool and the buckets, and spread what is left evenly. So an order
   is refused only when the *sum* is short, and the last ticket is always sold.

Lock order, for deadlock freedom: ticket types in ascending id; for each, its
row before its buckets, buckets in ascending id. ``SKIP LOCKED`` claims never
wait. Organizer changes (events/services.py) lock the row, then the buckets.

On SQLite (the embedded demo) IMMEDIATE transactions serialise every writer;
the locking clauses are left out and the logic is the same.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

from django.conf import settings
from django.db import connection
from django.db.models import Case, Value, When

from .models import MAX_STOCK_BUCKETS, StockBucket, TicketType


class ShortOfStock(Exception):
    """Fewer tickets on sale than asked for; ``available`` is what the locked rows hold. ``gated``:
    the stock there belongs to the types' waiting lists (``TicketType.waitlisted`` > 0), not to sale."""

    def __init__(self, ticket_type_ids: list[int], available: dict[int, int], *, gated: bool = False) -> None:
        self.ticket_type_ids = ticket_type_ids
        self.available = available
        self.gated = gated


# The claim, as one statement: an UPDATE of a SKIP LOCKED subselect. With pgbench
# (bench/README.md, "Stock buckets") it sells ~4x what one hot row does; SELECT then
# UPDATE (bench/pgbench/buckets_select.sql) measured the same at the database, so one
# statement is kept for the application's sake: one round trip and one query fewer per
# purchase. ``ORDER BY number < start, number`` starts at bucket ``start`` and wraps.
_CLAIM = """
    UPDATE "events_stockbucket" SET "available" = "available" - %(quantity)s
    WHERE "id" = (
        SELECT "id" FROM "events_stockbucket"
        WHERE "ticket_type_id" = %(ticket_type)s AND "available" >= %(quantity)s
        ORDER BY "number" < %(start)s, "number"
        LIMIT 1{lock}
    )
    AND (SELECT "waitlisted" FROM "events_tickettype" WHERE "id" = %(ticket_type)s) = 0
    RETURNING "available"
"""
# What the stock buckets of the ticket type ``t`` hold, for hand-written reads of
# ``events_tickettype t`` (here and in orders/sql.py); ``TicketTypeQuerySet.with_on_sale`` is the ORM's.
IN_BUCKETS_SQL = (
    'COALESCE((SELECT SUM(b."available") FROM "events_stockbucket" b WHERE b."ticket_type_id" = t."id"), 0)'
)
_ON_SALE = f"""
    SELECT t."id", t."available" + {IN_BUCKETS_SQL}
    FROM "events_tickettype" t WHERE t."id" IN ({{ids}})
"""  # noqa: S608 - constant SQL, no input
if (TicketType._meta.db_table, StockBucket._meta.db_table) != ("events_tickettype", "events_stockbucket"):
    raise RuntimeError("events/stock.py names tables the models no longer use")


def _claim(ticket_type_id: int, quantity: int, buckets: int) -> int | None:
    """Take ``quantity`` from one bucket nobody holds; returns what it has left, None when none qualifies."""
    lock = "\n        FOR NO KEY UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    params = {"quantity": quantity, "ticket_type": ticket_type_id, "start": random.randrange(max(buckets, 1))}  # noqa: S311 spreading, not secrecy
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM.format(lock=lock), params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def shares(total: int, buckets: int) -> list[int]:
    """``total`` split as evenly as whole tickets allow; the first buckets get the odd ones."""
    base, odd = divmod(total, buckets)
    return [base + (number < odd) for number in range(buckets)]


def lock_buckets(ticket_type_id: int) -> list[tuple[int, int]]:
    """Lock every bucket of a ticket type (its row already locked by the caller): ``[(id, available)]``."""
    rows = StockBucket.objects.select_for_update(no_key=True).filter(ticket_type_id=ticket_type_id).order_by("pk")
    return list(rows.values_list("pk", "available"))


def lay_out(ticket_type_id: int, locked: Sequence[tuple[int, int]], *, on_sale: int, buckets: int) -> int:
    """Spread ``on_sale`` tickets over ``buckets`` rows, creating or deleting bucket rows as needed,
    and return what the pool must hold (0, or everything when ``buckets`` is 1). The caller holds
    the ticket-type row and every bucket (``locked``, from :func:`lock_buckets`) and writes the pool."""
    if buckets <= 1:
        if locked:
            StockBucket.objects.filter(pk__in=[pk for pk, _available in locked]).delete()
        return on_sale
    keep, drop = list(locked[:buckets]), locked[buckets:]
    if drop:
        StockBucket.objects.filter(pk__in=[pk for pk, _available in drop]).delete()
    wanted = shares(on_sale, buckets)
    changed = [(pk, share) for (pk, available), share in zip(keep, wanted, strict=False) if available != share]
    if changed:
        StockBucket.objects.filter(pk__in=[pk for pk, _share in changed]).update(
            available=Case(*(When(pk=pk, then=Value(share)) for pk, share in changed))
        )
    if len(keep) < buckets:
        kept = StockBucket.objects.filter(pk__in=[pk for pk, _available in keep])
        numbers = set(kept.values_list("number", flat=True))
        free = (number for number in range(buckets + len(numbers)) if number not in numbers)
        StockBucket.objects.bulk_create(
            StockBucket(ticket_type_id=ticket_type_id, number=next(free), available=share)
            for share in wanted[len(keep) :]
        )
    return 0


def _take_under_lock(ticket_type_id: int, quantity: int) -> int:
    """Take ``quantity`` holding the ticket-type row (and, if need be, every bucket); returns what
    was on sale before. The exact path: for unbucketed types, and when no bucket can be claimed."""
    pool, buckets, waitlisted = (
        TicketType.objects.select_for_update(no_key=True)
        .filter(pk=ticket_type_id)
        .values_list("available", "stock_buckets", "waitlisted")
        .get()
    )
    if waitlisted:  # the stock belongs to the waiting list (orders.waitlist offers it, past this gate)
        raise ShortOfStock([ticket_type_id], {ticket_type_id: 0}, gated=True)
    locked: list[tuple[int, int]] = []
    if buckets > 1:
        left = _claim(ticket_type_id, quantity, buckets)  # a rebalance ahead of us may have refilled them
        if left is not None:
            return left + quantity
        locked = lock_buckets(ticket_type_id)
    total = pool + sum(available for _pk, available in locked)
    if total < quantity:
        raise ShortOfStock([ticket_type_id], {ticket_type_id: total})
    new_pool = lay_out(ticket_type_id, locked, on_sale=total - quantity, buckets=buckets if locked else 1)
    if new_pool != pool:
        TicketType.objects.filter(pk=ticket_type_id).update(available=new_pool)
    return total


def take(lines: Sequence[tuple[int, int]], *, buckets: Mapping[int, int]) -> dict[int, int]:
    """Take ``(ticket_type_id, quantity)`` lines (ascending ids) or raise :class:`ShortOfStock`
    (the caller's transaction then rolls back whatever earlier lines took).

    ``buckets`` is each type's ``stock_buckets`` as the caller last read it, unlocked: a hint
    choosing the claim or the exact path; the locked rows decide. Returns, per ticket type, what
    was on sale before as far as this call saw it: the exact sum on the exact path, the claimed
    bucket's stock on a claim (a lower bound, enough to tell a cache whether the type may have
    sold out).
    """
    before: dict[int, int] = {}
    for ticket_type_id, quantity in lines:
        hint = buckets.get(ticket_type_id, 1)
        if hint > 1:
            left = _claim(ticket_type_id, quantity, hint)
            if left is not None:
                before[ticket_type_id] = left + quantity
                continue
        before[ticket_type_id] = _take_under_lock(ticket_type_id, quantity)
    return before


def on_sale(ticket_type_ids: Iterable[int]) -> dict[int, int]:
    """Tickets on sale per ticket type, pool plus buckets, read without a lock (one statement)."""
    ids = list(ticket_type_ids)
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_ON_SALE.format(ids=", ".join(["%s"] * len(ids))), ids)
        return {pk: int(total) for pk, total in cursor.fetchall()}


def bucketed_now(ticket_type_ids: Iterable[int]) -> dict[int, int]:
    """``stock_buckets`` of the ticket types that have buckets now (a hint read again)."""
    return dict(
        TicketType.objects.filter(pk__in=list(ticket_type_ids), stock_buckets__gt=1).values_list("pk", "stock_buckets")
    )


def buckets_for(capacity: int, *, seated: bool = False) -> int:
    """How many buckets a new ticket type gets when its organizer does not say (STOCK_BUCKETS_MIN_CAPACITY)."""
    threshold, count = settings.STOCK_BUCKETS_MIN_CAPACITY, settings.STOCK_BUCKETS
    if seated or not threshold or count <= 1 or capacity < threshold:
        return 1
    return min(count, MAX_STOCK_BUCKETS)
