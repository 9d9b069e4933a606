"""Payment webhooks over HTTP: N distinct ``payment.succeeded`` deliveries, then the same N again.

What it does, on its own PostgreSQL database (created if missing, migrated) and Redis db:

1. Seeds a published event with one ticket type (49.00 EUR, no per-buyer limit) and N buyers,
   and for each buyer places a reserved order through ``orders.services.order_place`` (quantity
   1, 2, 3, 1, 2, 3 ..., so the ticket count is checked against varying quantities) and opens its
   test-provider payment with ``orders.payments.services.payment_start``. Setup, not measured.
2. Starts ``gunicorn eventflow.wsgi`` (``--workers`` sync workers, no control socket) on a free
   port of 127.0.0.1 with this process's environment plus ``DEBUG=false``,
   ``ALLOWED_HOSTS=127.0.0.1`` and ``EMAIL_URL=dummymail://`` (the confirmation email and its
   PDF are still built, only not printed). Its output goes to ``--server-log``.
   ``--tasks eager`` (the default) sets ``CELERY_TASK_ALWAYS_EAGER=true``: the confirmation
   email of a paid order is built and sent inside the webhook request, after its commit, as
   in the embedded deployment without a worker. ``--tasks queued`` sets it false with
   private queues that nobody consumes: a webhook only queues the email, as it does with a
   Celery worker in production; the script counts the queued tasks (one per paid order) and
   deletes the queue at the end.
3. Signs one webhook body per payment with the simulated gateway
   (``orders.payments.test.signed_event``; the signing secret is derived from ``SECRET_KEY``,
   which the server shares) and signs each again just before it is sent (a signature is good
   for 5 minutes and a slow run takes longer; a gateway re-signs its retries too), warms
   every worker up, then POSTs them to
   ``/api/v1/payments/webhooks/test`` from ``--concurrency`` threads, a new connection per
   request (gunicorn's sync workers close it after each response anyway):
   (a) the N distinct deliveries, then (b) the same N bodies again, all duplicates.
4. Reports per phase deliveries/s, latency p50/p90/p99/max, status codes and outcomes, and the
   CPU seconds the gunicorn workers and this database's PostgreSQL backends used (from /proc).
5. Checks: every response 2xx; every distinct delivery answered ``paid``, every repeat
   ``duplicate``; every order ``paid`` with its payment ``succeeded`` and as many valid tickets
   as its quantity; one ``WebhookEvent`` row per event id; one confirmation per order (eager:
   ``confirmation_sent_at`` set; queued: exactly N tasks queued); ``check_inventory`` and
   ``check_payments`` clean. Prints PASS or FAIL (exit 1).

How to run it (PostgreSQL and Redis running; any 50+ character SECRET_KEY)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventflow_bench_webhooks REDIS_URL=redis://127.0.0.1:6379/10 \\
    SECRET_KEY=bench-webhooks-secret-key-0123456789-0123456789-0123456789 \\
        .venv/bin/python bench/webhooks.py [--orders 1000] [--workers 4] [--concurrency 16] [--tasks eager|queued]

It needs only the project's virtualenv (gunicorn is in it). Every run adds its orders to the
database, so use a scratch one.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import attendees, ensure_database, event_on_sale  # noqa: E402  (bench/, beside this script)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("EMAIL_URL", "dummymail://")

WEBHOOK_PATH = "/api/v1/payments/webhooks/test"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process, 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _pg_backends(database: str, exclude: tuple[int, ...] = ()) -> list[int]:
    """The PostgreSQL backends of ``database`` but this thread's and ``exclude``'s (this script's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database])
        return [row[0] for row in cursor.fetchall() if row[0] not in exclude]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _post(port: int, body: bytes, headers: dict | None, timeout: float) -> tuple[int, float, dict | None, str]:
    from orders.payments import test as gateway

    if headers is None:  # signed just before sending, as a gateway (re)signs each attempt
        headers = {gateway.SIGNATURE_HEADER: gateway.signature_header(body)}
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("POST", WEBHOOK_PATH, body=body, headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        raw = response.read()
        conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return 0, time.perf_counter() - started, None, type(exc).__name__
    elapsed = time.perf_counter() - started
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    return response.status, elapsed, payload, raw[:200].decode(errors="replace")


class CpuMeter:
    """CPU seconds a changing set of processes used since ``start`` (a pid first seen later counts from 0)."""

    def __init__(self, pids: list[int]) -> None:
        self.base = {pid: _cpu_seconds(pid) for pid in pids}
        self.last = dict(self.base)

    def sample(self, pids: list[int]) -> None:
        for pid in pids:
            seconds = _cpu_seconds(pid)
            if seconds:
                self.last[pid] = seconds

    def used(self) -> float:
        return sum(seconds - self.base.get(pid, 0.0) for pid, seconds in self.last.items())


def _fire(
    port: int, deliveries: list[dict], concurrency: int, timeout: float, server_pid: int, database: str
) -> tuple[float, list[tuple], dict[str, float]]:
    """Send them all; meanwhile sample the CPU of the workers and of this database's backends
    (Django's connections are closed and reopened by CONN_MAX_AGE, so backends come and go)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        mine = (cursor.fetchone()[0],)  # this thread's backend did the seeding: not the server's CPU
    workers, pg = CpuMeter(_children(server_pid)), CpuMeter(_pg_backends(database, mine))
    done = threading.Event()

    def sampler() -> None:
        while not done.wait(0.5):
            workers.sample(_children(server_pid))
            pg.sample(_pg_backends(database, mine))
        connection.close()

    thread = threading.Thread(target=sampler)
    thread.start()
    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        results = list(pool.map(lambda d: _post(port, d["body"], d["headers"], timeout), deliveries))
        wall = time.perf_counter() - started
    done.set()
    thread.join()
    workers.sample(_children(server_pid))
    pg.sample(_pg_backends(database, mine))
    return wall, results, {"gunicorn workers": workers.used(), "postgres backends": pg.used()}


def _report(name: str, wall: float, results: list[tuple], cpu: dict[str, float]) -> None:
    n = len(results)
    latencies = [r[1] * 1000 for r in results]
    print(f"{name}: {n} deliveries in {wall:.2f} s = {n / wall:.1f} deliveries/s")
    print(
        f"  latency ms  p50 {_percentile(latencies, 0.5):7.1f}  p90 {_percentile(latencies, 0.9):7.1f}  "
        f"p99 {_percentile(latencies, 0.99):7.1f}  max {max(latencies):7.1f}  mean {statistics.mean(latencies):6.1f}"
    )
    statuses = Counter(r[0] for r in results)
    outcomes = Counter((r[2] or {}).get("outcome", "?") for r in results)
    print(f"  statuses {dict(sorted(statuses.items()))}  outcomes {dict(outcomes.most_common())}")
    for who, seconds in cpu.items():
        print(f"  CPU {who:<28} {seconds:6.2f} s = {seconds / n * 1000:5.2f} ms per delivery")
    for r in results:
        if not 200 <= r[0] < 300:
            print(f"  non-2xx: {r[0]} {r[3]}")
            break


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--concurrency", type=int, default=16, help="deliveries in flight")
    parser.add_argument("--tasks", choices=["eager", "queued"], default="eager")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--server-log", default="/tmp/bench-webhooks-gunicorn.log")  # noqa: S108
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL") or len(os.environ.get("SECRET_KEY", "")) < 50:
        print("Set DATABASE_URL (scratch PostgreSQL), REDIS_URL and SECRET_KEY (50+ chars).", file=sys.stderr)
        return 2
    ensure_database(url)
    queue = f"bench-webhooks-{uuid.uuid4().hex[:8]}"
    if args.tasks == "queued":
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
        os.environ["CELERY_TASK_DEFAULT_QUEUE"] = queue
        os.environ["CELERY_QUEUE_PREFIX"] = f"{queue}-"  # confirmation emails go to <queue>-email

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db.models import Count, Sum

    from orders.models import Order, OrderItem, Payment, Ticket, WebhookEvent
    from orders.payments import services as payment_services
    from orders.payments import test as gateway
    from orders.services import Line, order_place

    call_command("migrate", verbosity=0)
    database = settings.DATABASES["default"]["NAME"]

    # 1. Seed
    started = time.perf_counter()
    tag = uuid.uuid4().hex[:8]
    quantities = [1 + i % 3 for i in range(args.orders)]
    event, tier = event_on_sale(tag, "Webhooks", price_cents=4900, tickets=sum(quantities), max_per_order=10)
    buyers = attendees(tag, "w", args.orders)
    payments = []
    for buyer, quantity in zip(buyers, quantities, strict=True):
        order = order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, quantity)])
        payments.append(payment_services.payment_start(order=order))
    print(
        f"Seeded event {event.pk}: {args.orders} reserved orders, {sum(quantities)} tickets, "
        f"pending payments, in {time.perf_counter() - started:.1f} s"
    )

    # 2. The server
    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_URL": os.environ["EMAIL_URL"],
    }
    log = open(args.server_log, "ab")  # noqa: SIM115  (closed at the end)
    server = subprocess.Popen(  # noqa: S603  (our own virtualenv's gunicorn)
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "eventflow.wsgi",
            "--workers",
            str(args.workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--no-control-socket",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ok = True
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/v1/health")
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print(f"The server did not start; see {args.server_log}", file=sys.stderr)
                    return 2
                time.sleep(0.2)

        # Warm every worker up (imports, database connection): a refused (unsigned) webhook, then /health.
        def warm(_i: int) -> None:
            _post(port, b"{}", {}, args.timeout)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=args.timeout)
            conn.request("GET", "/api/v1/health")
            conn.getresponse().read()

        with ThreadPoolExecutor(args.workers * 2) as pool:
            list(pool.map(warm, range(args.workers * 8)))

        # 3. Sign, then fire
        # The bodies are built here; each is signed when it is sent (the signature is good for
        # PAYMENT_WEBHOOK_TOLERANCE_SECONDS, 5 minutes, and a slow run takes longer than that).
        deliveries = [{"body": gateway.signed_event(payment, True)["body"], "headers": None} for payment in payments]
        event_ids = [json.loads(d["body"])["id"] for d in deliveries]
        phases = {}
        for name in ("(a) distinct", "(b) duplicates"):
            wall, results, cpu = _fire(port, deliveries, args.concurrency, args.timeout, server.pid, database)
            phases[name] = results
            _report(name, wall, results, cpu)
    finally:
        server.terminate()
        server.wait(30)
        log.close()

    # 5. Checks
    checks: list[tuple[bool, str]] = []

    def check(condition: bool, what: str) -> None:
        nonlocal ok
        ok = ok and condition
        checks.append((condition, what))

    all_results = [r for results in phases.values() for r in results]
    bad = [r for r in all_results if not 200 <= r[0] < 300]
    check(not bad, f"non-2xx responses: {len(bad)}")
    distinct_outcomes = Counter((r[2] or {}).get("outcome") for r in phases["(a) distinct"])
    check(distinct_outcomes == Counter({"paid": args.orders}), f"distinct deliveries: {dict(distinct_outcomes)}")
    repeats = Counter(((r[2] or {}).get("outcome"), (r[2] or {}).get("duplicate")) for r in phases["(b) duplicates"])
    check(repeats == Counter({("duplicate", True): args.orders}), f"repeated deliveries answered {dict(repeats)}")
    orders = Order.objects.filter(event=event)
    statuses = dict(orders.values_list("status").annotate(n=Count("pk")).order_by())
    check(statuses == {Order.Status.PAID: args.orders}, f"order statuses {statuses}")
    succeeded = Payment.objects.filter(order__event=event, status=Payment.Status.SUCCEEDED).count()
    check(succeeded == args.orders, f"succeeded payments {succeeded} (one per order)")
    held = dict(
        Ticket.objects.filter(order__event=event, status=Ticket.Status.VALID)
        .values_list("order_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    wanted = dict(
        OrderItem.objects.filter(order__event=event).values_list("order_id").annotate(n=Sum("quantity")).order_by()
    )
    wrong = sum(1 for order_id, quantity in wanted.items() if held.get(order_id, 0) != quantity)
    tickets = Ticket.objects.filter(order__event=event, status=Ticket.Status.VALID).count()
    check(
        tickets == sum(quantities) and wrong == 0,
        f"valid tickets {tickets} == quantities {sum(quantities)}; orders whose ticket count differs: {wrong}",
    )
    stored = WebhookEvent.objects.filter(provider="test", event_id__in=event_ids)
    per_id = stored.values("event_id").annotate(n=Count("pk")).filter(n__gt=1).count()
    stored_outcomes = dict(stored.values_list("outcome").annotate(n=Count("pk")).order_by())
    check(
        stored.count() == args.orders and per_id == 0 and stored_outcomes == {"paid": args.orders},
        f"WebhookEvent rows {stored.count()} for {args.orders} event ids, ids stored twice {per_id}, "
        f"outcomes {stored_outcomes}",
    )
    if args.tasks == "eager":
        confirmed = orders.filter(confirmation_sent_at__isnull=False).count()
        check(confirmed == args.orders, f"orders with confirmation_sent_at set: {confirmed} (one email each)")
    else:
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        email_queue = f"{queue}-email"
        queued = client.llen(email_queue)
        client.delete(queue, f"_kombu.binding.{queue}", email_queue, f"_kombu.binding.{email_queue}")
        check(queued == args.orders, f"confirmation tasks queued: {queued} (one per paid order; queue deleted)")
    for command in ("check_inventory", "check_payments"):
        try:
            out = _call_quiet(call_command, command)
            check(True, f"{command}: {out}")
        except Exception as exc:  # CommandError: reported as a failed check
            check(False, f"{command}: {exc}")
    print("Checks")
    for passed, what in checks:
        print(f"  {'ok  ' if passed else 'FAIL'}  {what}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def _call_quiet(call_command, command: str) -> str:
    import io

    out = io.StringIO()
    call_command(command, stdout=out, stderr=out)
    return out.getvalue().strip()


if __name__ == "__main__":
    sys.exit(main())
