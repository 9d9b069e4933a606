"""Refunds after an event is cancelled: how fast a real Celery worker refunds every paid order.

What it does, on its own PostgreSQL database (created if missing, migrated) and Redis db:

1. Setup (not measured): a published event with one ticket type (15.00 EUR, capacity
   ``--orders`` x ``--quantity``, no per-buyer limit) and ``--orders`` buyers, each with one
   paid order of ``--quantity`` tickets, made through the services a real purchase goes
   through: ``orders.services.order_place``, ``orders.payments.services.payment_start`` and
   the simulated gateway's signed ``payment.succeeded`` webhook (``orders.payments.test.deliver``),
   inside ``confirmations_suppressed()`` so no confirmation email is queued. About 25 ms per
   order on an idle 2-core machine.
2. Starts a Celery worker subprocess (``python -m celery -A eventflow worker``, ``--pool solo``
   or ``--pool prefork --concurrency N``) on a private queue, with ``CELERY_TASK_ALWAYS_EAGER=false``,
   this process's ``DATABASE_URL``/``REDIS_URL``, a private ``CACHE_KEY_PREFIX`` and
   ``EMAIL_URL=dummymail://`` (the refund notices are built and "sent", not printed); waits
   until it is ready. Its log (INFO, one line per task) goes to ``--worker-log``.
3. Measured: ``events.services.event_cancel`` inside ``transaction.atomic()``. On commit it
   queues ``refund_cancelled_event``, which refunds each paid order (one transaction each,
   queueing its ``refund_send`` and refund-notice tasks on commit). The script polls the
   database every 0.2 s and reports when every order was ``refunded``, when every Refund had
   ``succeeded`` (the headline: orders refunded per second), when every refund notice was
   sent, and when the queue was empty; plus the CPU seconds of the worker processes and of
   this database's PostgreSQL backends (from /proc), and the tasks the worker ran, by name.
4. Checks: every order refunded, one Refund per payment, all succeeded, the amounts add up,
   no valid ticket left, the ticket type's ``available`` back to its capacity, one refund
   notice per order, ``check_inventory`` and ``check_payments`` clean; it also prints how
   many times the simulated gateway was asked for each refund (its idempotency key keeps a
   repeat harmless, but it shows repeated work). Prints PASS or FAIL (exit 1).

How to run it (PostgreSQL and Redis running)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventflow_bench_refunds REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/cancel_refunds.py [--orders 5000] [--quantity 1] \\
        [--pool solo | --pool prefork --concurrency 2]

It needs only the project's virtualenv. Each run adds its event to the database, so use a
scratch one; the private queue is deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import attendees, ensure_database, event_on_sale  # noqa: E402  (bench/, beside this script)

TAG = uuid.uuid4().hex[:8]
QUEUE = f"bench-refunds-{TAG}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE
os.environ["CELERY_QUEUE_PREFIX"] = f"{QUEUE}-"  # refunds go to <QUEUE>-payments, emails to <QUEUE>-email
QUEUES = [QUEUE, *(f"{QUEUE}-{name}" for name in ("expiry", "payments", "email"))]  # settings.TASK_QUEUES
os.environ.setdefault("CACHE_KEY_PREFIX", f"bench-refunds-{TAG}")
os.environ.setdefault("EMAIL_URL", "dummymail://")
os.environ.setdefault("SECRET_KEY", f"bench-refunds-{uuid.uuid4().hex}{uuid.uuid4().hex}")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _queued(broker) -> int:
    """Tasks waiting in this run's queues (the worker reads them all: it is started without -Q)."""
    return sum(broker.llen(queue) for queue in QUEUES)


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            todo += [int(p) for p in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
    return pids


class CpuMeter:
    """CPU seconds used since ``start`` by a changing set of processes (last value seen per pid)."""

    def __init__(self) -> None:
        self.base: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def start(self, pids: list[int]) -> None:
        self.base = {pid: _cpu_seconds(pid) or 0.0 for pid in pids}

    def sample(self, pids: list[int]) -> None:
        for pid in pids:
            seconds = _cpu_seconds(pid)
            if seconds is not None:
                self.last[pid] = seconds

    def used(self) -> float:
        return sum(seconds - self.base.get(pid, 0.0) for pid, seconds in self.last.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--quantity", type=int, default=1, help="tickets per order")
    parser.add_argument("--pool", choices=["solo", "prefork"], default="solo")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork processes")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    parser.add_argument("--worker-log", default="/tmp/bench-refunds-worker.log")  # noqa: S108
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        print("Set DATABASE_URL (a scratch PostgreSQL database) and REDIS_URL.", file=sys.stderr)
        return 2
    ensure_database(url)

    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Count, Sum

    from events.services import event_cancel
    from orders.confirmation import confirmations_suppressed
    from orders.models import Order, Payment, Refund, Ticket
    from orders.payments import services as payment_services
    from orders.payments import test as gateway
    from orders.services import Line, order_place

    call_command("migrate", verbosity=0)
    database = settings.DATABASES["default"]["NAME"]
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    # 1. Setup (the webhook code logs every payment at INFO; not here)
    logging.getLogger("orders.payments").setLevel(logging.WARNING)
    started = time.perf_counter()
    tickets = args.orders * args.quantity
    event, tier = event_on_sale(TAG, "Refunds", price_cents=1500, tickets=tickets, max_per_order=max(10, args.quantity))
    buyers = attendees(TAG, "r", args.orders)
    with confirmations_suppressed():
        for i, buyer in enumerate(buyers, 1):
            order = order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, args.quantity)])
            gateway.deliver(payment_services.payment_start(order=order), succeeded=True)
            if i % 1000 == 0:
                print(f"  setup: {i} paid orders, {time.perf_counter() - started:.0f} s", flush=True)
    paid = Order.objects.filter(event=event, status=Order.Status.PAID).count()
    print(
        f"Setup: event {event.pk}, {paid} paid orders of {args.quantity} ticket(s) = {tickets} tickets, "
        f"in {time.perf_counter() - started:.0f} s; queues {QUEUE}* hold {_queued(broker)} tasks"
    )
    if paid != args.orders:
        print("Setup failed: not every order is paid.", file=sys.stderr)
        return 1

    # 2. The worker
    pool = ["--pool", "solo"] if args.pool == "solo" else ["--pool", "prefork", "--concurrency", str(args.concurrency)]
    log_path = Path(args.worker_log)
    log_path.write_text("")
    log = log_path.open("ab")
    worker = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
        [
            sys.executable,
            *("-m", "celery", "-A", "eventflow", "worker", *pool, "--loglevel", "INFO"),  # every queue of QUEUE's
            *("--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"{QUEUE}@%h"),
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ok = True
    try:
        deadline = time.monotonic() + 120
        while "ready." not in log_path.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                print(f"The worker did not start; see {log_path}", file=sys.stderr)
                return 2
            time.sleep(0.2)
        time.sleep(1.0)  # prefork children finish starting

        # 3. Cancel, then watch
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [database])
            backends = [row[0] for row in cursor.fetchall()]
        worker_cpu, pg_cpu = CpuMeter(), CpuMeter()
        worker_cpu.start(_tree(worker.pid))
        pg_cpu.start(backends)
        mine = connection.cursor()
        mine.execute("SELECT pg_backend_pid()")
        my_backend = mine.fetchone()[0]

        t0 = time.perf_counter()
        with transaction.atomic():
            event_cancel(event=event)
        marks: dict[str, float] = {}
        next_print = 5.0
        orders = Order.objects.filter(event=event)
        refunds = Refund.objects.filter(payment__order__event=event)
        while True:
            elapsed = time.perf_counter() - t0
            refunded = orders.filter(status=Order.Status.REFUNDED).count()
            succeeded = refunds.filter(status=Refund.Status.SUCCEEDED).count()
            noticed = orders.filter(refund_notice_sent_at__isnull=False).count()
            queued = _queued(broker)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [database])
                pg_cpu.sample([row[0] for row in cursor.fetchall() if row[0] != my_backend])
            worker_cpu.sample(_tree(worker.pid))
            if refunded and "first refunded" not in marks:
                marks["first refunded"] = elapsed
            for name, done in (
                ("all orders refunded", refunded == args.orders),
                ("all refunds succeeded", succeeded == args.orders),
                ("all refund notices sent", noticed == args.orders),
            ):
                if done and name not in marks:
                    marks[name] = elapsed
            if len(marks) == 4 and queued == 0:
                marks.setdefault("queue empty", elapsed)
                break
            if elapsed >= next_print:
                print(
                    f"  {elapsed:6.1f} s: refunded {refunded}, refunds succeeded {succeeded}, "
                    f"notices {noticed}, queue {queued}",
                    flush=True,
                )
                next_print += 5.0
            if elapsed > args.timeout:
                print(f"Timed out after {elapsed:.0f} s", file=sys.stderr)
                ok = False
                break
            time.sleep(0.2)
        time.sleep(1.0)  # anything repeated shows up in the log and the checks now
        worker_cpu.sample(_tree(worker.pid))
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        log.close()
        broker.delete(*QUEUES, *(f"_kombu.binding.{queue}" for queue in QUEUES))

    # Report
    done = marks.get("all refunds succeeded")
    pool_name = "solo" if args.pool == "solo" else f"prefork x{args.concurrency}"
    print(f"Cancelled event {event.pk}: {args.orders} paid orders, {tickets} tickets, worker pool {pool_name}")
    for name, at in marks.items():
        print(f"  {name:<26} {at:7.1f} s")
    if done:
        print(f"  orders refunded per second   {args.orders / done:7.1f}  (to every refund succeeded)")
        print(f"  during refund_cancelled_event {args.orders / marks['all orders refunded']:6.1f} orders/s")
    worker_seconds, pg_seconds = worker_cpu.used(), pg_cpu.used()
    print(f"  CPU worker processes {worker_seconds:7.1f} s = {worker_seconds / args.orders * 1000:5.1f} ms per order")
    print(f"  CPU postgres         {pg_seconds:7.1f} s = {pg_seconds / args.orders * 1000:5.1f} ms per order")
    ran = Counter(re.findall(r"Task (\S+)\[[0-9a-f-]+\] succeeded", log_path.read_text(errors="replace")))
    print(f"  tasks run: {dict(ran.most_common())}")
    problems = [
        line for line in log_path.read_text(errors="replace").splitlines() if "ERROR" in line or "Traceback" in line
    ]
    if problems:
        print(f"  worker log: {len(problems)} ERROR/Traceback lines, the first: {problems[0][:200]}")

    # 4. Checks
    checks: list[tuple[bool, str]] = []

    def check(condition: bool, what: str) -> None:
        nonlocal ok
        ok = ok and condition
        checks.append((condition, what))

    statuses = dict(orders.values_list("status").annotate(n=Count("pk")).order_by())
    check(statuses == {Order.Status.REFUNDED: args.orders}, f"order statuses {statuses}")
    payments = Payment.objects.filter(order__event=event, status=Payment.Status.SUCCEEDED).count()
    refund_statuses = dict(refunds.values_list("status").annotate(n=Count("pk")).order_by())
    check(
        refund_statuses == {Refund.Status.SUCCEEDED: args.orders} and payments == args.orders,
        f"refunds {refund_statuses} for {payments} succeeded payments",
    )
    amount = refunds.aggregate(total=Sum("amount_cents"))["total"]
    check(amount == tickets * 1500, f"refunded {amount} cents == {tickets} tickets x 1500")
    valid = Ticket.objects.filter(order__event=event, status=Ticket.Status.VALID).count()
    tier.refresh_from_db()
    available = getattr(tier, "on_sale", tier.available)  # the row plus any stock buckets
    check(valid == 0 and available == tier.capacity, f"valid tickets {valid}; available {available}")
    noticed = orders.filter(refund_notice_sent_at__isnull=False).count()
    check(noticed == args.orders, f"refund notices sent {noticed} (one per order)")
    attempts = Counter(refunds.values_list("attempts", flat=True))
    keys = [f"payments:test:refund:{pk}:calls" for pk in refunds.values_list("pk", flat=True)]
    calls = Counter(cache.get_many(keys).values())
    print(f"  Refund.attempts per refund: {dict(sorted(attempts.items()))}")
    print(f"  gateway refund calls per refund: {dict(sorted(calls.items()))}")
    for command in ("check_inventory", "check_payments"):
        out = io.StringIO()
        try:
            call_command(command, stdout=out, stderr=out)
            check(True, f"{command}: {out.getvalue().strip()}")
        except Exception as exc:  # CommandError: reported as a failed check
            check(False, f"{command}: {exc} {out.getvalue().strip()[:500]}")
    print("Checks")
    for passed, what in checks:
        print(f"  {'ok  ' if passed else 'FAIL'}  {what}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
