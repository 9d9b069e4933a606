#!/usr/bin/env python
"""The raw-SQL ceiling of one hot ticket type: the app's purchase transaction, without the app.

Issue 10 asks for ``POST /orders`` on one hot ticket type at 64 clients to reach at
least half of "the raw-SQL hot-row figure measured in the same run". This script is
that figure. It sends, from ``--clients`` threads with one psycopg 3 connection each,
the statements ``orders.services._place`` sends for a one-line order of quantity 1
(captured from the app with an ``execute_wrapper``), to the app's own tables::

    BEGIN
    SET LOCAL lock_timeout = '3000ms'
    INSERT INTO orders_order (...)                          -- reserved, 10-minute hold
    INSERT INTO orders_orderitem (...) RETURNING id
    INSERT INTO orders_inventoryentry (... 'hold' ...) RETURNING id
    SELECT 1 FROM accounts_user WHERE id = %s FOR NO KEY UPDATE   -- per-buyer limit (orders/sql.py)
    SELECT ticket_type_id, SUM(quantity) ... held by the buyer     -- ditto, checked against max_per_buyer
    SELECT id, available FROM events_tickettype WHERE id IN (%s) ORDER BY 1 FOR NO KEY UPDATE
    UPDATE events_tickettype SET available = available + -1 WHERE id = %s
    COMMIT

Like Django, each connection runs with autocommit off (psycopg opens the transaction)
and client-side parameter binding (``psycopg.ClientCursor``, Django's default), so the
round trips are the app's. What is left out is everything that is not SQL: HTTP,
Django, DRF, JWT, throttles, serializers, Redis.

Variants (``--lock``):

* ``no-key-update`` (default): what the app does, shown above.
* ``for-update``: ``SELECT ... FOR UPDATE`` instead (a stronger lock: the commit-time
  foreign-key checks of other transactions' ``FOR KEY SHARE`` wait on it too).
* ``conditional``: no lock statement; one
  ``UPDATE ... SET available = available - q WHERE id = %s AND available >= q RETURNING available``
  takes the row lock and decrements (one round trip fewer while the row is held).

``--no-buyer-limit`` leaves out the two per-buyer statements (a ticket type without
``max_per_buyer``; the app's default since 1bc7fca is 10 per buyer, so they are on by
default).

Setup: a scratch database migrated with ``manage.py migrate`` (the script creates the
database if needed but does not migrate it). It seeds, with the ORM and the
services like ``flash_sale.py``, one published event with one ticket type of
``--capacity`` and ``--buyers`` attendees; each purchase takes the next buyer
(round-robin, so a buyer buys at most ceil(purchases / buyers) tickets; keep that
under ``max_per_buyer``, 10).

Stops after ``--purchases`` N purchases (attempts: all commit unless the ticket type
sells out or a buyer reaches the limit) or ``--seconds`` S, whichever is given
(``--purchases`` 2000 by default), or at the first sold-out answer. Reports
purchases/s, latency of the whole transaction (p50/p95/p99/max), how long the hot row
was held as the client sees it (from the lock statement's answer to COMMIT's),
errors by kind, and CPU per process name from ``/proc``. Then checks that nothing was
oversold: ``available + held == capacity`` (held: the items of the event's reserved
orders), the ledger's HOLD entries equal held, the committed purchases equal the
orders in the database, and ``manage.py check_inventory --event`` passes. Exits 1 if a
check fails.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventflow_rawsql
    export SECRET_KEY=...   REDIS_URL=redis://127.0.0.1:6379/9
    .venv/bin/python manage.py migrate
    .venv/bin/python bench/raw_sql.py --clients 64 --seconds 10
    .venv/bin/python bench/raw_sql.py --clients 64 --seconds 10 --lock for-update
    .venv/bin/python bench/raw_sql.py --clients 64 --seconds 10 --lock conditional

For pgbench (bench/pgbench/hot_row_*.sql, the same statements from C clients, so the
load generator costs the box less): ``--seed-only`` seeds and prints the pgbench
commands with their ``-D`` values, and ``--check EVENT`` runs the checks above afterwards.

Each run leaves its event, buyers and orders behind (reserved, expiring 10 minutes
later): use a scratch database.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import flash_sale
from common import ensure_database
from flash_sale import cpu_delta, cpu_snapshot, fmt_latency, latency_summary

SET_LOCK_TIMEOUT = "SET LOCAL lock_timeout = %s"
INSERT_ORDER = (
    'INSERT INTO "orders_order" ("id", "buyer_id", "event_id", "status", "total_cents", "fee_cents", "currency", '
    '"expires_at", "paid_at", "confirmation_sent_at", "refund_notice_sent_at", "closed_at", "created_at", '
    '"updated_at") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)'
)
INSERT_ITEM = (
    'INSERT INTO "orders_orderitem" ("order_id", "ticket_type_id", "quantity", "unit_price_cents") '
    'VALUES (%s, %s, %s, %s) RETURNING "orders_orderitem"."id"'
)
INSERT_HOLD = (
    'INSERT INTO "orders_inventoryentry" ("ticket_type_id", "order_id", "kind", "quantity", "created_at") '
    'VALUES (%s, %s, %s, %s, %s) RETURNING "orders_inventoryentry"."id"'
)
LOCK_BUYER = 'SELECT 1 FROM "accounts_user" WHERE "id" = %s FOR NO KEY UPDATE'
HELD_BY_BUYER = """
    SELECT item."ticket_type_id", SUM(item."quantity")
    FROM "orders_orderitem" item
    JOIN "orders_order" o ON o."id" = item."order_id"
    WHERE o."buyer_id" = %s AND o."event_id" = %s
      AND (o."status" = %s OR (o."status" = %s AND o."expires_at" > %s))
    GROUP BY item."ticket_type_id"
"""
LOCK_STOCK = {
    "no-key-update": 'SELECT "events_tickettype"."id" AS "pk", "events_tickettype"."available" AS "available" '
    'FROM "events_tickettype" WHERE "events_tickettype"."id" IN (%s) ORDER BY 1 ASC FOR NO KEY UPDATE',
    "for-update": 'SELECT "events_tickettype"."id" AS "pk", "events_tickettype"."available" AS "available" '
    'FROM "events_tickettype" WHERE "events_tickettype"."id" IN (%s) ORDER BY 1 ASC FOR UPDATE',
}
MOVE_STOCK = (
    'UPDATE "events_tickettype" SET "available" = ("events_tickettype"."available" + %s) '
    'WHERE "events_tickettype"."id" = %s'
)
CONDITIONAL_TAKE = (
    'UPDATE "events_tickettype" SET "available" = "events_tickettype"."available" - %s '
    'WHERE "events_tickettype"."id" = %s AND "events_tickettype"."available" >= %s '
    'RETURNING "events_tickettype"."available"'
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The app's purchase transaction as raw SQL on one hot ticket type, from N clients.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/eventflow_rawsql"),
        help="A migrated scratch database (default: $DATABASE_URL). Sets DATABASE_URL for the seeding too.",
    )
    parser.add_argument("--clients", type=int, default=64, help="Client threads, one connection each.")
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--purchases", type=int, help="Stop after this many committed purchases (default 2000).")
    stop.add_argument("--seconds", type=float, help="Stop after this many seconds.")
    parser.add_argument(
        "--capacity", type=int, default=1_000_000, help="Capacity of the ticket type (small: a sell-out)."
    )
    parser.add_argument("--buyers", type=int, default=5000, help="Buyers, taken round-robin by the purchases.")
    parser.add_argument(
        "--lock",
        choices=["no-key-update", "for-update", "conditional"],
        default="no-key-update",
        help="How the hot row is locked and decremented (no-key-update is the app's).",
    )
    parser.add_argument(
        "--no-buyer-limit",
        action="store_true",
        help="Leave out the per-buyer lock and count (a ticket type without max_per_buyer).",
    )
    parser.add_argument("--lock-timeout-ms", type=int, default=3000, help="SET LOCAL lock_timeout, as the app.")
    parser.add_argument("--vacuum", action="store_true", help="VACUUM ANALYZE the touched tables before seeding.")
    parser.add_argument("--json", metavar="FILE", help="Also write the summary as JSON to FILE.")
    parser.add_argument(
        "--seed-only",
        action="store_true",
        help="Only seed, and print the pgbench commands for bench/pgbench/hot_row_*.sql on that seed.",
    )
    parser.add_argument(
        "--check", type=int, metavar="EVENT", help="Only run the oversell checks on EVENT (e.g. after pgbench)."
    )
    args = parser.parse_args(argv)
    if args.purchases is None and args.seconds is None:
        args.purchases = 2000
    for name in ("clients", "capacity", "buyers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


# --- Seeding (ORM and services, as flash_sale.py) --------------------------------------------------


@dataclass
class Seed:
    event_id: int
    ticket_type_id: int
    price_cents: int
    currency: str
    max_per_buyer: int | None
    buyer_ids: list[int]
    seconds: float


def seed(args: argparse.Namespace) -> Seed:
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
    from sale import create_sale

    from accounts.models import User
    from events.models import TicketType

    started = time.perf_counter()
    run_id = time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
    event, (ticket_type,) = create_sale(
        email_prefix=f"rawsql-{run_id}", title=f"Raw SQL {run_id}", capacity=args.capacity, buckets=1
    )
    if args.no_buyer_limit:
        TicketType.objects.filter(pk=ticket_type.pk).update(max_per_buyer=None)
        ticket_type.max_per_buyer = None
    buyers = User.objects.bulk_create(
        [
            User(
                email=f"rawsql-{run_id}-buyer-{i:06d}@example.com",
                role=User.Role.ATTENDEE,
                password=UNUSABLE_PASSWORD_PREFIX,
            )
            for i in range(args.buyers)
        ],
        batch_size=2000,
    )
    return Seed(
        event_id=event.pk,
        ticket_type_id=ticket_type.pk,
        price_cents=ticket_type.price_cents,
        currency=event.currency,
        max_per_buyer=ticket_type.max_per_buyer,
        buyer_ids=[buyer.pk for buyer in buyers],
        seconds=time.perf_counter() - started,
    )


# --- The purchase ----------------------------------------------------------------------------------


class SoldOut(Exception):
    pass


class OverBuyerLimit(Exception):
    pass


def purchase(cursor, args: argparse.Namespace, seed: Seed, buyer_id: int, hold_minutes: int) -> float:
    """One order of quantity 1, as ``_place`` sends it; returns the seconds the hot row was held."""
    now = datetime.now(UTC)
    order_id = uuid.uuid4()
    cursor.execute(SET_LOCK_TIMEOUT, [f"{args.lock_timeout_ms}ms"])
    cursor.execute(
        INSERT_ORDER,
        [
            *(order_id, buyer_id, seed.event_id, "reserved", seed.price_cents, 0, seed.currency),
            *(now + timedelta(minutes=hold_minutes), None, None, None, None, now, now),
        ],
    )
    cursor.execute(INSERT_ITEM, [order_id, seed.ticket_type_id, 1, seed.price_cents])
    cursor.execute(INSERT_HOLD, [seed.ticket_type_id, order_id, "hold", 1, now])
    if seed.max_per_buyer is not None:
        cursor.execute(LOCK_BUYER, [buyer_id])
        cursor.execute(HELD_BY_BUYER, [buyer_id, seed.event_id, "paid", "reserved", now])
        held = {ticket_type_id: int(quantity) for ticket_type_id, quantity in cursor.fetchall()}
        if held.get(seed.ticket_type_id, 1) > seed.max_per_buyer:  # held counts this order (written above)
            raise OverBuyerLimit
    if args.lock == "conditional":
        cursor.execute(CONDITIONAL_TAKE, [1, seed.ticket_type_id, 1])
        locked = time.perf_counter()
        if cursor.fetchone() is None:
            raise SoldOut
    else:
        cursor.execute(LOCK_STOCK[args.lock], [seed.ticket_type_id])
        locked = time.perf_counter()
        (_pk, available) = cursor.fetchone()
        if available < 1:
            raise SoldOut
        cursor.execute(MOVE_STOCK, [-1, seed.ticket_type_id])
    cursor.connection.commit()
    return time.perf_counter() - locked


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    holds: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    busy: float = 0.0


def fire(args: argparse.Namespace, seed: Seed) -> Run:
    import psycopg
    from django.conf import settings

    hold_minutes = settings.ORDER_HOLD_MINUTES
    run = Run()
    lock = threading.Lock()
    state = {"next": 0, "committed": 0, "stop": False}
    ready = threading.Barrier(args.clients + 1)
    finished = threading.Barrier(args.clients + 1)
    go = threading.Event()
    deadline: list[float] = [0.0]

    def next_buyer() -> int | None:
        with lock:
            if state["stop"]:
                return None
            if args.purchases is not None and state["next"] >= args.purchases:
                return None
            index = state["next"]
            state["next"] += 1
        return seed.buyer_ids[index % len(seed.buyer_ids)]

    def worker() -> None:
        latencies, holds, outcomes = [], [], Counter()
        try:
            conn = psycopg.connect(args.database_url, autocommit=False, cursor_factory=psycopg.ClientCursor)
            conn.execute("SELECT 1")
            conn.rollback()
        except BaseException:
            ready.abort()
            raise
        try:
            cursor = conn.cursor()
            ready.wait()
            go.wait()
            while True:
                if args.seconds is not None and time.perf_counter() >= deadline[0]:
                    break
                buyer_id = next_buyer()
                if buyer_id is None:
                    break
                started = time.perf_counter()
                try:
                    holds.append(purchase(cursor, args, seed, buyer_id, hold_minutes))
                    latencies.append(time.perf_counter() - started)
                    outcomes["committed"] += 1
                except (SoldOut, OverBuyerLimit) as exc:
                    conn.rollback()
                    outcomes["sold out" if isinstance(exc, SoldOut) else "over the per-buyer limit"] += 1
                    if isinstance(exc, SoldOut):
                        with lock:
                            state["stop"] = True
                except psycopg.Error as exc:
                    conn.rollback()
                    outcomes[f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"] += 1
            with lock:
                run.latencies.extend(latencies)
                run.holds.extend(holds)
                run.outcomes.update(outcomes)
            finished.wait()  # keep the backend alive until the main thread has read its CPU time
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()  # every connection is open before the clock starts
    except threading.BrokenBarrierError:
        raise SystemExit("could not open the client connections (see the traceback above)") from None
    before = cpu_snapshot()
    started = time.perf_counter()
    if args.seconds is not None:
        deadline[0] = started + args.seconds
    go.set()
    finished.wait()
    run.wall = time.perf_counter() - started
    after = cpu_snapshot()
    for thread in threads:
        thread.join()
    if before and after:
        run.cpu, run.busy = cpu_delta(before, after)
    return run


# --- Checks ----------------------------------------------------------------------------------------


def verify(seed: Seed, capacity: int, committed: int | None) -> tuple[bool, list[str]]:
    from django.core.management import CommandError, call_command
    from django.db.models import Sum

    from events.models import TicketType
    from orders.models import InventoryEntry, Order, OrderItem

    tt = TicketType.objects.get(pk=seed.ticket_type_id)
    held = (
        OrderItem.objects.filter(ticket_type=tt, order__status=Order.Status.RESERVED).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    sold = (
        OrderItem.objects.filter(ticket_type=tt, order__status=Order.Status.PAID).aggregate(n=Sum("quantity"))["n"] or 0
    )
    ledger_holds = (
        InventoryEntry.objects.filter(ticket_type=tt, kind=InventoryEntry.Kind.HOLD).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    orders = Order.objects.filter(event_id=seed.event_id).count()
    checks = {
        f"available {tt.available} + held {held} + sold {sold} == capacity {capacity}": tt.available + held + sold
        == capacity,
        f"held {held} <= capacity {capacity} (no oversell)": held + sold <= capacity,
        f"ledger HOLD entries {ledger_holds} == held {held}": ledger_holds == held,
    }
    if committed is None:  # --check after pgbench: every order of the event holds one ticket
        checks[f"orders in the database {orders} == held {held}"] = orders == held
    else:
        checks[f"committed purchases {committed} == orders in the database {orders} == held {held}"] = (
            committed == orders == held
        )
    lines = [f"{'ok  ' if ok else 'FAIL'}  {text}" for text, ok in checks.items()]
    passed = all(checks.values())
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_inventory", event=seed.event_id, stdout=out, stderr=err)
        lines.append(f"ok    check_inventory --event {seed.event_id}: {out.getvalue().strip()}")
    except CommandError as exc:
        passed = False
        lines.append(f"FAIL  check_inventory --event {seed.event_id}: {exc}")
        lines.extend("      " + line for line in err.getvalue().splitlines())
    return passed, lines


def check_only(event_id: int) -> int:
    from events.models import TicketType

    ticket_types = list(TicketType.objects.filter(event_id=event_id))
    if len(ticket_types) != 1:
        print(f"error: event {event_id} has {len(ticket_types)} ticket types; this checks one", file=sys.stderr)
        return 2
    (tt,) = ticket_types
    data = Seed(event_id, tt.pk, tt.price_cents, "", tt.max_per_buyer, [], 0.0)
    passed, lines = verify(data, tt.capacity, None)
    print("Oversell check")
    for line in lines:
        print("  " + line)
    print("PASS" if passed else "FAIL: see the checks above")
    return 0 if passed else 1


def print_pgbench(args: argparse.Namespace, data: Seed) -> int:
    """The pgbench commands for this seed (its scripts need a contiguous range of buyer ids)."""
    first, last = min(data.buyer_ids), max(data.buyer_ids)
    if last - first + 1 != len(data.buyer_ids):
        print("error: the buyers' ids are not contiguous (another writer?); seed again", file=sys.stderr)
        return 1
    defines = (
        f"-D tt={data.ticket_type_id} -D event={data.event_id} -D first_buyer={first} -D buyers={len(data.buyer_ids)} "
        f"-D buyer_limit={0 if data.max_per_buyer is None else 1} -D max_per_buyer={data.max_per_buyer or 0}"
    )
    url = args.database_url
    print("pgbench, one of (then count what was sold with the --check command below):")
    for variant in ("no_key_update", "for_update", "conditional"):
        print(f"  pgbench -n -c {args.clients} -j 2 -T 10 {defines} -f bench/pgbench/hot_row_{variant}.sql '{url}'")
    print(f"  .venv/bin/python bench/raw_sql.py --database-url '{url}' --check {data.event_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["DATABASE_URL"] = args.database_url
    ensure_database(args.database_url)
    flash_sale.setup_django()
    from django.db import connections

    if args.check is not None:
        return check_only(args.check)
    if args.vacuum:
        flash_sale.vacuum()
    print(f"Seeding one ticket type of {args.capacity} and {args.buyers} buyers ...", flush=True)
    data = seed(args)
    connections.close_all()
    print(
        f"  event {data.event_id}, ticket type {data.ticket_type_id}, max_per_buyer {data.max_per_buyer} "
        f"({data.seconds:.1f} s)"
    )
    if args.seed_only:
        return print_pgbench(args, data)
    limit = f"{args.purchases} purchases" if args.purchases is not None else f"{args.seconds:g} s"
    print(f"Running {limit} from {args.clients} clients, lock {args.lock} ...", flush=True)
    run = fire(args, data)

    committed = run.outcomes["committed"]
    summary = {
        "lock": args.lock,
        "buyer_limit": data.max_per_buyer is not None,
        "clients": args.clients,
        "capacity": args.capacity,
        "event_id": data.event_id,
        "ticket_type_id": data.ticket_type_id,
        "wall_seconds": run.wall,
        "purchases": committed,
        "purchases_per_second": committed / run.wall if run.wall else 0.0,
        "latency": latency_summary(run.latencies),
        "row_held": latency_summary(run.holds),
        "outcomes": dict(run.outcomes.most_common()),
        "cpu_seconds": dict(sorted(run.cpu.items(), key=lambda item: -item[1])),
        "machine_busy_fraction": run.busy,
    }
    statements = 7 + (2 if summary["buyer_limit"] else 0) + (0 if args.lock == "conditional" else 1)
    print()
    print(
        f"Raw SQL purchase on one hot row: lock {args.lock}, per-buyer limit "
        f"{'on' if summary['buyer_limit'] else 'off'} ({statements} statements with BEGIN and COMMIT), "
        f"{args.clients} clients"
    )
    print(f"  wall time            {run.wall:8.2f} s")
    print(f"  purchases/s          {summary['purchases_per_second']:8.1f}   ({committed} committed)")
    print(f"  latency, purchase    {fmt_latency(summary['latency'])}")
    print(f"  hot row held         {fmt_latency(summary['row_held'])}   (lock answered -> COMMIT answered)")
    print("  outcomes")
    for key, count in summary["outcomes"].items():
        print(f"    {count:7d}  {key}")
    if run.cpu:
        print(f"  CPU during the run   machine busy {run.busy:.0%} of {os.cpu_count()} cores; CPU seconds by name:")
        for name, seconds in list(summary["cpu_seconds"].items())[:6]:
            print(f"    {seconds:7.2f} s  ({seconds / run.wall:4.2f} cores)  {name}")

    passed, lines = verify(data, args.capacity, committed)
    summary["checks_passed"], summary["checks"] = passed, lines
    print("Oversell check")
    for line in lines:
        print("  " + line)
    print("PASS" if passed else "FAIL: see the checks above")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
