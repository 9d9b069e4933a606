#!/usr/bin/env python
"""Flash-sale load test: N buyers race for C tickets over HTTP against a running EventFlow server.

Run it with the same environment as the server (``DATABASE_URL``, ``REDIS_URL``,
``SECRET_KEY``), because it seeds the event and the buyers straight into the
server's database and signs their access tokens with the server's key::

    .venv/bin/python bench/flash_sale.py --url http://127.0.0.1:18080 --buyers 1000 --capacity 100

What it does:

1. Expires the due holds earlier runs left behind (what Celery beat does
   every 30 s; ``--no-sweep`` skips it), then seeds a fresh published event
   with ``--ticket-types`` K ticket types of ``--capacity`` C tickets each,
   and ``--buyers`` N attendee accounts (bulk-inserted with one precomputed
   password hash), and mints an access token per buyer (no login round trip,
   no login rate limit).
2. Fires one ``POST /api/v1/orders`` of quantity 1 per buyer, buyers spread
   round-robin over the K ticket types, with ``--concurrency`` requests in
   flight (one thread and one persistent ``http.client`` connection each).
3. Prints wall time, purchases/s, requests/s, latency percentiles, counts per
   status and problem ``code``, and the CPU time used on this machine per
   process name during the run (Linux only).
4. Proves nothing was oversold: per ticket type, reserved+paid order items
   ``sold`` must equal min(buyers of that type, C), ``available`` (the row
   plus its stock buckets, ``--buckets``) must equal C - sold, the 201 responses must match sold, and ``manage.py
   check_inventory --event`` must pass. Exits 1 when any check fails, 2 when
   the run could not start (server unreachable, token rejected, ...).

Standard library only (plus the project itself, for seeding and checking).
Each run leaves its event, orders and users behind: use a scratch database.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import secrets
import statistics
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


# --- Arguments --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Flash-sale load test against a running EventFlow server.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL of the running server.")
    parser.add_argument("--buyers", type=int, default=1000, help="Buyers N; each sends one order of quantity 1.")
    parser.add_argument("--capacity", type=int, default=100, help="Capacity C of each ticket type.")
    parser.add_argument(
        "--ticket-types", type=int, default=1, help="Spread the buyers round-robin over K ticket types (K hot rows)."
    )
    parser.add_argument(
        "--buckets",
        type=int,
        help="stock_buckets of each ticket type (1: one hot row; left out: the application's default, which "
        "splits capacities of STOCK_BUCKETS_MIN_CAPACITY or more over STOCK_BUCKETS rows).",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="Requests in flight at once.")
    parser.add_argument(
        "--idempotency-key", action="store_true", help="Send a unique Idempotency-Key header with every order."
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="Per-request socket timeout in seconds.")
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="Skip the warm-up (one authenticated GET per connection before the clock starts).",
    )
    parser.add_argument(
        "--no-sweep",
        action="store_true",
        help="Do not expire the due holds left by earlier runs before starting (what Celery beat would do).",
    )
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM ANALYZE the order, user and ticket-type tables before seeding (for servers run with "
        "autovacuum off, where dead rows from earlier runs slow every run down).",
    )
    parser.add_argument("--json", metavar="FILE", help="Also write the summary as JSON to FILE.")
    args = parser.parse_args(argv)
    if args.buckets is not None and not 1 <= args.buckets <= 64:
        parser.error("--buckets must be between 1 and 64")
    for name in ("buyers", "capacity", "ticket_types", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    url = urllib.parse.urlsplit(args.url)
    if url.scheme not in {"http", "https"} or not url.hostname:
        parser.error("--url must look like http://host:port")
    return args


def setup_django() -> None:
    sys.path.insert(0, str(PROJECT_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")
    import django

    django.setup()


# --- Seeding ----------------------------------------------------------------------------------


@dataclass
class Seed:
    run_id: str
    event_id: int
    ticket_type_ids: list[int]
    capacity: int
    jobs: list[tuple[str, int]]  # (access token, ticket type id), one per buyer
    seconds: float = 0.0


def seed(args: argparse.Namespace) -> Seed:
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken
    from sale import create_sale

    from accounts.models import User

    started = time.perf_counter()
    run_id = time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
    event, ticket_types = create_sale(
        email_prefix=f"bench-{run_id}",
        title=f"Flash sale {run_id}",
        capacity=args.capacity,
        tiers=args.ticket_types,
        buckets=args.buckets,
    )

    # One Argon2 hash shared by every buyer: hashing 1000 passwords one by one takes minutes.
    password_hash = make_password(secrets.token_urlsafe(16))
    now = timezone.now()
    with transaction.atomic():
        buyers = User.objects.bulk_create(
            [
                User(
                    email=f"bench-{run_id}-buyer-{i:06d}@example.com",
                    name=f"Buyer {i}",
                    role=User.Role.ATTENDEE,
                    password=password_hash,
                    date_joined=now,
                )
                for i in range(args.buyers)
            ],
            batch_size=2000,
        )
    # Access tokens are signed locally (no OutstandingToken rows, no login rate limit).
    jobs = [
        (str(AccessToken.for_user(buyer)), ticket_types[i % len(ticket_types)].pk) for i, buyer in enumerate(buyers)
    ]
    return Seed(
        run_id=run_id,
        event_id=event.pk,
        ticket_type_ids=[tt.pk for tt in ticket_types],
        capacity=args.capacity,
        jobs=jobs,
        seconds=time.perf_counter() - started,
    )


def vacuum() -> None:
    from django.db import connection

    from accounts.models import User
    from events.models import Event, TicketType
    from orders.models import InventoryEntry, Order, OrderItem

    if connection.vendor != "postgresql":
        return
    started = time.perf_counter()
    tables = [m._meta.db_table for m in (User, Event, TicketType, Order, OrderItem, InventoryEntry)]
    with connection.cursor() as cursor:  # autocommit: VACUUM cannot run inside a transaction
        cursor.execute("VACUUM (ANALYZE) " + ", ".join(connection.ops.quote_name(t) for t in tables))
    print(f"VACUUM ANALYZE {', '.join(tables)} ({time.perf_counter() - started:.1f} s)")


# --- HTTP -------------------------------------------------------------------------------------


@dataclass
class Result:
    status: int  # 0 when no HTTP response arrived
    code: str  # problem "code", the exception name for transport errors, "" for successes
    started: float  # perf_counter, relative to the start of the run
    latency: float  # seconds


class Target:
    def __init__(self, url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.host_header = parts.netloc
        self.timeout = timeout

    def connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)


def send(
    conn: http.client.HTTPConnection,
    target: Target,
    method: str,
    path: str,
    token: str,
    body: bytes | None = None,
    extra_headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request on a persistent connection.

    A server that closes after each response (gunicorn's sync workers) makes
    http.client reconnect on the next request; the reconnect is part of the
    measured latency, as it would be for a real client.
    """
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "Host": target.host_header}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if extra_headers:
        headers.update(extra_headers)
    try:
        conn.request(method, target.prefix + path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    except Exception:
        conn.close()
        raise
    if response.will_close:
        conn.close()
    return response.status, data


def problem_code(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return "non-json"
    if isinstance(body, dict):
        return str(body.get("code") or body.get("detail") or "?")[:60]
    return "?"


def preflight(target: Target, seed: Seed) -> None:
    """Make sure the server answers, accepts our tokens and sees our database, before timing anything."""
    conn = target.connection()
    token = seed.jobs[0][0]
    try:
        status, data = send(conn, target, "GET", f"/api/v1/events/{seed.event_id}", token)
    except OSError as exc:
        raise SystemExit(f"error: cannot reach the server at {target.host}:{target.port}: {exc}") from exc
    finally:
        conn.close()
    if status == 401:
        raise SystemExit(
            "error: the server rejected the access token (401). Run this script with the same SECRET_KEY "
            "(or JWT_SIGNING_KEY) as the server."
        )
    if status == 404:
        raise SystemExit(
            "error: the server does not know the event just seeded (404). Run this script with the same "
            "DATABASE_URL as the server."
        )
    if status != 200:
        raise SystemExit(f"error: GET /api/v1/events/{seed.event_id} answered {status}: {data[:300]!r}")


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_total: float | None = None


def fire(args: argparse.Namespace, target: Target, seed: Seed) -> Run:
    jobs = seed.jobs
    workers = min(args.concurrency, len(jobs))
    results: list[Result] = []
    lock = threading.Lock()
    next_job = iter(range(len(jobs)))
    clock = {"t0": 0.0}

    def start_clock() -> None:
        clock["t0"] = time.perf_counter()

    warmed = threading.Barrier(workers + 1)
    go = threading.Barrier(workers + 1, action=start_clock)  # the action runs before anyone is released

    def worker(index: int) -> None:
        conn = target.connection()
        try:
            if not args.no_warmup:
                # Every connection (and so every server worker) answers one authenticated request first.
                with contextlib.suppress(Exception):  # best effort; the run itself reports real failures
                    send(conn, target, "GET", "/api/v1/orders", jobs[index][0])
            warmed.wait()
            go.wait()
            t0 = clock["t0"]
            local: list[Result] = []
            while True:
                with lock:
                    i = next(next_job, None)
                if i is None:
                    break
                token, ticket_type_id = jobs[i]
                body = json.dumps({"event": seed.event_id, "items": [{"ticket_type": ticket_type_id, "quantity": 1}]})
                headers = {"Idempotency-Key": f"bench-{seed.run_id}-{i}"} if args.idempotency_key else None
                start = time.perf_counter()
                try:
                    status, data = send(conn, target, "POST", "/api/v1/orders", token, body.encode(), headers)
                    code = "" if status == 201 else problem_code(data)
                except Exception as exc:
                    status, code = 0, type(exc).__name__
                local.append(Result(status, code, start - t0, time.perf_counter() - start))
            with lock:
                results.extend(local)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    warmed.wait()
    cpu_before = cpu_snapshot()
    go.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - clock["t0"]
    cpu_after = cpu_snapshot()
    run = Run(results=sorted(results, key=lambda r: r.started), wall=wall)
    if cpu_before and cpu_after:
        run.cpu, run.cpu_total = cpu_delta(cpu_before, cpu_after)
    return run


# --- CPU accounting (Linux /proc, best effort) ---------------------------------------------------


def cpu_snapshot() -> dict | None:
    """Per-process CPU seconds (user+system) and the machine's busy/total jiffies."""
    proc = Path("/proc")
    if not (proc / "stat").exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    processes = {}
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        label = "this load generator" if int(entry.name) == me else name
        if name == "postgres":
            label = _postgres_label(entry)
        processes[int(entry.name)] = (label, seconds)
    cpu = (proc / "stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in cpu]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return {"processes": processes, "busy": (sum(values) - idle) / ticks, "total": sum(values) / ticks}


def _postgres_label(entry: Path) -> str:
    """PostgreSQL backends name their database in their title ("postgres: 15/main: user db host state")."""
    try:
        title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
    except OSError:
        return "postgres"
    if len(title) >= 5 and title[0] == "postgres:" and ("(" in title[4] or title[4] == "[local]"):
        return f"postgres backend, database {title[3]}"
    return "postgres (server processes)"


def cpu_delta(before: dict, after: dict) -> tuple[dict[str, float], float]:
    """CPU seconds spent during the run per process name, and the machine's busy fraction."""
    per_name: dict[str, float] = defaultdict(float)
    for pid, (label, seconds) in after["processes"].items():
        spent = seconds - before["processes"].get(pid, (label, 0.0))[1]
        if spent > 0:
            per_name[label] += spent
    total = after["total"] - before["total"]
    busy_seconds = after["busy"] - before["busy"]
    # Processes that ended during the run (another test suite, a short-lived command) are seen only here.
    unaccounted = busy_seconds - sum(per_name.values())
    if unaccounted > 0.05 * max(busy_seconds, 1e-9):
        per_name["(processes that exited during the run)"] = unaccounted
    return dict(per_name), (busy_seconds / total if total > 0 else 0.0)


# --- Report -----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), -(-len(sorted_values) * p // 100)))
    return sorted_values[int(rank) - 1]


def latency_summary(latencies: list[float]) -> dict[str, float]:
    values = sorted(latencies)
    if not values:
        return {}
    return {
        "p50_ms": percentile(values, 50) * 1000,
        "p95_ms": percentile(values, 95) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": values[-1] * 1000,
        "mean_ms": statistics.fmean(values) * 1000,
    }


def fmt_latency(summary: dict[str, float]) -> str:
    if not summary:
        return "-"
    return "  ".join(f"{key[:-3]} {summary[key]:7.1f}" for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")) + " ms"


def summarize(args: argparse.Namespace, seed: Seed, run: Run) -> dict:
    ok = [r for r in run.results if r.status == 201]
    last_201 = max((r.started + r.latency for r in ok), default=0.0)
    by_status: dict[str, list[float]] = defaultdict(list)
    for r in run.results:
        by_status[str(r.status)].append(r.latency)
    return {
        "run_id": seed.run_id,
        "event_id": seed.event_id,
        "ticket_type_ids": seed.ticket_type_ids,
        "buyers": args.buyers,
        "capacity_per_ticket_type": args.capacity,
        "ticket_types": args.ticket_types,
        "concurrency": min(args.concurrency, args.buyers),
        "idempotency_key": args.idempotency_key,
        "seed_seconds": seed.seconds,
        "wall_seconds": run.wall,
        "requests": len(run.results),
        "purchases": len(ok),
        "requests_per_second": len(run.results) / run.wall if run.wall else 0.0,
        "purchases_per_second": len(ok) / run.wall if run.wall else 0.0,
        "sell_window_seconds": last_201,
        "purchases_per_second_while_selling": len(ok) / last_201 if last_201 else 0.0,
        "latency": latency_summary([r.latency for r in run.results]),
        "latency_by_status": {status: latency_summary(values) for status, values in sorted(by_status.items())},
        "responses": dict(Counter(f"{r.status} {r.code}".strip() for r in run.results).most_common()),
        "cpu_seconds": dict(sorted(run.cpu.items(), key=lambda item: -item[1])),
        "machine_busy_fraction": run.cpu_total,
    }


def print_summary(summary: dict) -> None:
    print()
    print(
        f"Flash sale: {summary['buyers']} buyers, {summary['ticket_types']} ticket type(s) x capacity "
        f"{summary['capacity_per_ticket_type']}, concurrency {summary['concurrency']}"
        + (", Idempotency-Key on" if summary["idempotency_key"] else "")
    )
    print(f"  wall time            {summary['wall_seconds']:8.2f} s   (seeding took {summary['seed_seconds']:.1f} s)")
    print(f"  requests/s           {summary['requests_per_second']:8.1f}")
    print(
        f"  purchases/s          {summary['purchases_per_second']:8.1f}   (201s over the whole run; "
        f"{summary['purchases_per_second_while_selling']:.1f}/s until the last 201 at "
        f"{summary['sell_window_seconds']:.2f} s)"
    )
    print(f"  latency, all         {fmt_latency(summary['latency'])}")
    for status, lat in summary["latency_by_status"].items():
        print(f"  latency, {status:<11} {fmt_latency(lat)}")
    print("  responses")
    for key, count in summary["responses"].items():
        print(f"    {count:6d}  {key}")
    if summary["cpu_seconds"]:
        wall = summary["wall_seconds"]
        busy = summary["machine_busy_fraction"] or 0.0
        print(f"  CPU during the run   machine busy {busy:.0%} of {os.cpu_count()} cores; CPU seconds by process name:")
        for name, seconds in list(summary["cpu_seconds"].items())[:8]:
            print(f"    {seconds:7.2f} s  ({seconds / wall:4.2f} cores)  {name}")


# --- Oversell check ---------------------------------------------------------------------------


def verify(args: argparse.Namespace, seed: Seed, summary: dict) -> tuple[bool, list[str]]:
    from django.core.management import CommandError, call_command
    from django.db.models import Sum

    from events.models import TicketType
    from orders.models import Order, OrderItem

    lines = []
    passed = True
    buyers_per_type = Counter(ticket_type_id for _token, ticket_type_id in seed.jobs)
    total_sold = 0
    for tt in TicketType.objects.filter(pk__in=seed.ticket_type_ids).order_by("pk"):
        sold = (
            OrderItem.objects.filter(
                ticket_type=tt, order__status__in=[Order.Status.RESERVED, Order.Status.PAID]
            ).aggregate(n=Sum("quantity"))["n"]
            or 0
        )
        total_sold += sold
        expected = min(buyers_per_type[tt.pk], tt.capacity)
        # On sale: the ticket type's row plus its stock buckets (trees without buckets: the row).
        available = getattr(tt, "on_sale", tt.available)
        checks = {
            f"sold {sold} <= capacity {tt.capacity} (no oversell)": sold <= tt.capacity,
            f"sold {sold} == min(buyers {buyers_per_type[tt.pk]}, capacity {tt.capacity}) = {expected}": sold
            == expected,
            f"available {available} == capacity - sold = {tt.capacity - sold}": available == tt.capacity - sold,
        }
        for text, ok in checks.items():
            passed &= ok
            lines.append(f"{'ok  ' if ok else 'FAIL'}  ticket type {tt.pk}: {text}")
    ok = summary["purchases"] == total_sold
    passed &= ok
    mark = "ok  " if ok else "FAIL"
    lines.append(f"{mark}  201 responses {summary['purchases']} == tickets held by orders in the database {total_sold}")

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_inventory", event=seed.event_id, stdout=out, stderr=err)
        lines.append(f"ok    check_inventory --event {seed.event_id}: {out.getvalue().strip()}")
    except CommandError as exc:
        passed = False
        lines.append(f"FAIL  check_inventory --event {seed.event_id}: {exc}")
        lines.extend("      " + line for line in err.getvalue().splitlines())
    return passed, lines


# --- Main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()
    from django.conf import settings
    from django.db import connections

    db = settings.DATABASES["default"]
    print(f"Database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('NAME')} on {db.get('HOST') or 'local'}")
    if db["ENGINE"].endswith("sqlite3"):
        print("warning: seeding the embedded SQLite database; set DATABASE_URL to the server's database.")
    if not args.no_sweep:
        # Earlier runs leave 10-minute holds behind; without Celery beat they pile up as due holds, and
        # every sold-out answer runs an inline expiry query whose cost grows with them (see README).
        from orders.services import expire_due_holds

        started = time.perf_counter()
        swept = expire_due_holds()
        print(f"Expired {swept} due hold(s) left by earlier runs ({time.perf_counter() - started:.1f} s)")
    if args.vacuum:
        vacuum()
    print(f"Seeding {args.ticket_types} ticket type(s) x {args.capacity} and {args.buyers} buyers ...", flush=True)
    data = seed(args)
    print(f"  event {data.event_id}, ticket types {data.ticket_type_ids} ({data.seconds:.1f} s)")
    connections.close_all()  # hold no database connection while the server is under load

    target = Target(args.url, args.timeout)
    try:
        preflight(target, data)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"Firing {args.buyers} orders at {args.url}, {min(args.concurrency, args.buyers)} in flight ...", flush=True)
    run = fire(args, target, data)
    summary = summarize(args, data, run)
    print_summary(summary)

    passed, lines = verify(args, data, summary)
    summary["checks_passed"] = passed
    summary["checks"] = lines
    print("Oversell check")
    for line in lines:
        print("  " + line)
    print("PASS" if passed else "FAIL: see the checks above")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
