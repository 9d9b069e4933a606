"""Hand-written SQL for the purchase transaction, where the ORM's cost was measured (STYLE.md, point 10).

Each statement here replaces an ORM query of ``orders.services`` that a
benchmark showed to be expensive on the hot path; each is parameterised, and
the concurrency tests that covered the ORM version cover it (orders/tests/
test_buyer_limits.py races one buyer's orders against a cap).
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from accounts.models import User

from .models import Order, OrderItem

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
# The tables the statements name, checked against the models at import so a rename cannot go unnoticed.
if (User._meta.db_table, Order._meta.db_table, OrderItem._meta.db_table) != (
    "accounts_user",
    "orders_order",
    "orders_orderitem",
):
    raise RuntimeError("orders/sql.py names tables the models no longer use")


def lock_buyer_and_count_held(*, buyer_id: int, event_id: int, now: datetime) -> dict[int, int]:
    """Lock the buyer's row (their purchases queue on it), then return tickets held per ticket type.

    On SQLite there is no row lock to take: IMMEDIATE transactions already
    serialise every writer.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_LOCK_BUYER, [buyer_id])
        cursor.execute(_HELD_BY_BUYER, [buyer_id, event_id, Order.Status.PAID.value, Order.Status.RESERVED.value, now])
        return {ticket_type_id: int(held) for ticket_type_id, held in cursor.fetchall()}
