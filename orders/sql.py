"""Hand-written SQL for the purchase transaction, where the ORM's cost was measured (STYLE.md, point 10).

Each statement here replaces an ORM query of ``orders.services`` that a
benchmark showed to be expensive on the hot path; each is parameterised, and
the concurrency tests that covered the ORM version cover it (orders/tests/
test_buyer_limits.py races one buyer's orders against a cap).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from accounts.models import User
from events.models import Event, TicketType
from events.stock import IN_BUCKETS_SQL

from .models import InventoryEntry, Order, OrderItem

# Per-buyer limits: lock the buyer, then add up what their live orders of the event hold.
# bench/purchase_cost.py --callgrind (bench/README.md, "Per-buyer limits"): building the
# same two queries with the ORM cost 4.1 M instructions per purchase (+23 % on a purchase);
# these two statements cost 0.3 M (+1.7 %).
_LOCK_BUYER = 'SELECT 1 FROM "accounts_user" WHERE "id" = %s FOR NO KEY UPDATE'
_HELD_BY_BUYER = """
    SELECT item."ticket_type_id", SUM(item."quantity")
    FROM "orders_orderitem" item
    JOIN "orders_order" o ON o."id" = item."order_id"
    WHERE o."buyer_id" = %s AND o."event_id" = %s
      AND (o."status" = %s OR (o."status" = %s AND o."expires_at" > %s))
    GROUP BY item."ticket_type_id"
"""


# The purchase's validating read: the ticket types with their event, as model instances with only
# these fields loaded (the rest deferred), as the ORM's select_related().only().in_bulk() built them
# at 15-30 % of a purchase's CPU (issue 10).
def _in_model_order(model, names: set[str]) -> tuple[str, ...]:
    # Model.from_db() takes a subset of the fields in the model's own order.
    return tuple(field.attname for field in model._meta.concrete_fields if field.attname in names)


TICKET_TYPE_FIELDS = _in_model_order(
    TicketType,
    {"id", "event_id", "name", "price_cents", "available", "max_per_order", "max_per_buyer"}
    | {"sales_start", "sales_end", "seated", "stock_buckets"}
    | {"waitlisted"},  # the waiting list's gate (orders.waitlist): read with the rest, at no cost
)
EVENT_FIELDS = _in_model_order(
    Event,
    {"id", "status", "deleted_at", "title", "starts_at", "ends_at", "currency", "max_tickets_per_buyer"}
    | {"high_demand"},  # a high-demand event's purchase is queued (orders/queue.py): known without another read
)
# The last column is what a bucketed type's stock buckets hold (events/stock.py), read only for
# those (CASE evaluates the subselect lazily): the sold-out shortcut needs the sum, and a second
# statement for it would cost a bucketed purchase one more round trip.
_TICKET_TYPES = """
    SELECT {}, {}, CASE WHEN t."stock_buckets" > 1 THEN {} ELSE 0 END
    FROM "events_tickettype" t JOIN "events_event" e ON e."id" = t."event_id"
    WHERE t."id" = ANY(%s)
""".format(  # noqa: S608 - the constant column names above, no input
    ", ".join(f't."{name}"' for name in TICKET_TYPE_FIELDS),
    ", ".join(f'e."{name}"' for name in EVENT_FIELDS),
    IN_BUCKETS_SQL,
)


def ticket_types_with_event(ids: Sequence[int]) -> dict[int, TicketType]:
    """The ticket types ``ids`` that exist, each with its event loaded (``tt.event``) and what its
    stock buckets hold (``tt.bucket_stock``, so ``tt.on_sale`` costs no query), by id."""
    with connection.cursor() as cursor:
        cursor.execute(_TICKET_TYPES, [list(ids)])
        rows = cursor.fetchall()
    split = len(TICKET_TYPE_FIELDS)
    events: dict[int, Event] = {}
    types = {}
    for row in rows:
        ticket_type = TicketType.from_db(connection.alias, TICKET_TYPE_FIELDS, row[:split])
        event = events.get(row[split])
        if event is None:
            event = events[row[split]] = Event.from_db(connection.alias, EVENT_FIELDS, row[split:-1])
        ticket_type._state.fields_cache["event"] = event  # what select_related leaves
        ticket_type.bucket_stock = int(row[-1])
        types[ticket_type.pk] = ticket_type
    return types


# The purchase's writes in one round trip (issue 10, bench/README.md "Half the CPU per purchase"):
# the transaction's lock_timeout, the order, its items and its HOLD ledger entries. Built with the
# ORM these were three INSERTs plus a SET, compiled anew for every purchase.
_PLACE = """
    WITH timeout AS MATERIALIZED (SELECT set_config('lock_timeout', %(lock_timeout)s, true) AS value),
    placed AS (
        INSERT INTO "orders_order" (
            "id", "buyer_id", "event_id", "status", "total_cents", "fee_cents", "currency", "expires_at",
            "paid_at", "closed_at", "confirmation_sent_at", "refund_notice_sent_at", "created_at", "updated_at",
            "discount_code_id", "discount_cents"
        )
        VALUES (
            %(id)s, %(buyer)s, %(event)s, %(status)s, %(total)s, 0, %(currency)s, %(expires_at)s,
            %(paid_at)s, NULL, NULL, NULL, %(now)s, %(now)s, %(discount_code)s, %(discount)s
        )
        RETURNING "id"
    ),
    items AS (
        INSERT INTO "orders_orderitem" ("order_id", "ticket_type_id", "quantity", "unit_price_cents")
        SELECT placed."id", line.ticket_type_id, line.quantity, line.unit_price_cents
        FROM placed, unnest(%(types)s::bigint[], %(quantities)s::integer[], %(prices)s::integer[])
            AS line(ticket_type_id, quantity, unit_price_cents)
    ),
    ledger AS (
        INSERT INTO "orders_inventoryentry" ("order_id", "ticket_type_id", "kind", "quantity", "created_at")
        SELECT placed."id", line.ticket_type_id, %(hold)s, line.quantity, %(now)s
        FROM placed, unnest(%(types)s::bigint[], %(quantities)s::integer[]) AS line(ticket_type_id, quantity)
    )
    SELECT value FROM timeout
"""

# One line's stock, taken in one statement: the UPDATE locks the row (FOR NO KEY UPDATE, as the
# ORM's SELECT did) and re-checks the condition on the newest version, so the lock is held from
# here to the commit only. It returns what was available before; no row means too little is left,
# or the stock belongs to the type's waiting list ("waitlisted" > 0, orders.waitlist).
_TAKE_ONE = """
    UPDATE "events_tickettype" SET "available" = "available" - %(quantity)s
    WHERE "id" = %(id)s AND "available" >= %(quantity)s AND "waitlisted" = 0
    RETURNING "available" + %(quantity)s
"""
_AVAILABLE = 'SELECT "available", "waitlisted" FROM "events_tickettype" WHERE "id" = %s'

# The tables the statements name, checked against the models at import so a rename cannot go unnoticed.
if (
    User._meta.db_table,
    Order._meta.db_table,
    OrderItem._meta.db_table,
    InventoryEntry._meta.db_table,
    TicketType._meta.db_table,
) != ("accounts_user", "orders_order", "orders_orderitem", "orders_inventoryentry", "events_tickettype"):
    raise RuntimeError("orders/sql.py names tables the models no longer use")


def place_order(*, order: Order, lines: Sequence[tuple[int, int, int]], lock_timeout_ms: int, now: datetime) -> None:
    """Write ``order`` (not saved yet, its id set), its items and their HOLD ledger entries in one
    statement, and set the transaction's ``lock_timeout``. ``lines`` are (ticket type, quantity,
    unit price). PostgreSQL only; the caller has opened the transaction."""
    types, quantities, prices = (list(column) for column in zip(*lines, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            _PLACE,
            {
                "lock_timeout": f"{int(lock_timeout_ms)}ms",
                "id": order.id,
                "buyer": order.buyer_id,
                "event": order.event_id,
                "status": order.status,
                "total": order.total_cents,
                "currency": order.currency,
                "expires_at": order.expires_at,
                "paid_at": order.paid_at,
                "discount_code": order.discount_code_id,
                "discount": order.discount_cents,
                "now": now,
                "types": types,
                "quantities": quantities,
                "prices": prices,
                "hold": InventoryEntry.Kind.HOLD.value,
            },
        )
    order.created_at = order.updated_at = now
    order._state.adding = False


def take_one(*, ticket_type_id: int, quantity: int) -> tuple[bool, int, bool]:
    """Take ``quantity`` of one ticket type's stock: (True, available before, False) or (False,
    available now, whether the waiting list's gate refused it)."""
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_ONE, {"id": ticket_type_id, "quantity": quantity})
        row = cursor.fetchone()
        if row is not None:
            return True, row[0], False
        cursor.execute(_AVAILABLE, [ticket_type_id])
        row = cursor.fetchone()
        return (False, row[0], row[1] > 0) if row else (False, 0, False)


def lock_buyer_and_count_held(
    *, buyer_id: int, event_id: int, now: datetime, wait: bool = True
) -> dict[int, int] | None:
    """Lock the buyer's row (their purchases queue on it), then return tickets held per ticket type.

    ``wait=False``: None at once when another transaction holds the row (``SKIP LOCKED``), for a
    caller that already holds a ticket type's row and must not wait on a buyer's (waiting-list
    offers: a purchase locks the buyer, then the ticket type). On SQLite there is no row lock to
    take: IMMEDIATE transactions already serialise every writer.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_LOCK_BUYER if wait else _LOCK_BUYER + " SKIP LOCKED", [buyer_id])
            if not wait and cursor.fetchone() is None:
                return None
        cursor.execute(_HELD_BY_BUYER, [buyer_id, event_id, Order.Status.PAID.value, Order.Status.RESERVED.value, now])
        return {ticket_type_id: int(held) for ticket_type_id, held in cursor.fetchall()}


# A purchase that validation found short: are holds of the event due (then expire them and buy),
# and what is on sale now (pool plus buckets)? One statement, so one snapshot: a release that
# committed shows both its closed hold and its returned stock, or neither. Was two queries.
_DUE_AND_ON_SALE = f"""
    SELECT EXISTS (
        SELECT 1 FROM "orders_order" o
        WHERE o."event_id" = %s AND o."status" = %s AND o."expires_at" <= %s
    ), t."id", t."available" + {IN_BUCKETS_SQL}
    FROM "events_tickettype" t WHERE t."id" = ANY(%s)
"""  # noqa: S608 - constant SQL, no input


def due_holds_and_on_sale(
    *, event_id: int, ticket_type_ids: Sequence[int], now: datetime
) -> tuple[bool, dict[int, int]]:
    """Whether any of the event's holds is due, and the tickets on sale per ticket type."""
    with connection.cursor() as cursor:
        cursor.execute(_DUE_AND_ON_SALE, [event_id, Order.Status.RESERVED.value, now, list(ticket_type_ids)])
        rows = cursor.fetchall()
    return (bool(rows[0][0]) if rows else False), {pk: int(total) for _due, pk, total in rows}
