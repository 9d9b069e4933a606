#!/usr/bin/env python
"""Faults during a sale: kill or hang Redis, restart PostgreSQL, kill gunicorn workers, mid-sale.

Run it from the project root, as root (PostgreSQL then runs as the ``postgres``
OS user; started by another user it runs as that user)::

    .venv/bin/python bench/faults.py                        # scenarios a, b, c, d on the work tree
    .venv/bin/python bench/faults.py --ref HEAD             # ... on a commit (git archive, work tree untouched)
    .venv/bin/python bench/faults.py --scenario b --fault 40 --keep
    .venv/bin/python bench/faults.py --scenario a,b --env ORDER_LOCK_TIMEOUT_MS=1000 --json /tmp/faults.json

About 50 s per scenario plus 5 s of start-up. It starts everything it
measures as its own child processes, in one temporary directory, and leaves
the machine's own PostgreSQL and Redis alone:

* a private PostgreSQL 15 (``initdb`` into the temp dir, ``127.0.0.1:55432``,
  TCP only, fsync off) with a database ``eventflow``;
* a private Redis (``127.0.0.1:56379``, no persistence);
* the app, migrated, then ``gunicorn eventflow.wsgi --workers 4 --timeout 30``
  (sync workers, no control socket) on ``127.0.0.1:18811``, with
  ``DEBUG=false``, a random ``SECRET_KEY``, ``CELERY_TASK_ALWAYS_EAGER=true``
  (the broker URL stays the Redis one, as in production, so ``/health``
  checks it), a user throttle of 100000/min, an anonymous throttle of 5/min
  (see the throttle probe), ``JWT_ACCESS_MINUTES=120`` and ``DATA_DIR`` in the
  temp dir; nothing else of the caller's environment reaches the app.
  ``--env KEY=VALUE`` adds or overrides a variable. ``--ref REF`` runs the app
  from ``git archive REF`` in the temp dir instead of the work tree.

Each scenario seeds a fresh published event with one ticket type (price 49.00,
so orders are ``reserved``; ``max_per_order`` 10; capacity ``--capacity``, 8x
that for d) and sells it to 50 buyers (access tokens minted locally, no
login), while it records every request:

* buyers: ``--clients`` threads each sending ``POST /api/v1/orders`` (quantity
  1, a unique ``Idempotency-Key``) in a loop, together paced at ``--rate``/s
  (d runs unpaced, so the worker killed is busy). Time, status, latency,
  problem ``code``, ``Retry-After``. A 503, a 409 ``idempotency_in_progress``
  or no answer is retried with the same key and body after ``Retry-After``
  (else 2 s), up to 3 times, by a separate thread (so the load keeps its pace);
* the health prober: ``GET /api/v1/health`` every 0.5 s on a new connection
  with a 5 s timeout, like a load balancer (a timeout is "no answer"), plus
  one "patient" probe with a 60 s timeout sent as the fault starts;
* the throttle probe: one anonymous client, ``GET /events/<id>/availability``
  every 0.5 s against the 5/min anonymous throttle. 429s show the throttle
  counting in Redis. The documented behaviour while Redis is down is fail-open
  (``IGNORE_EXCEPTIONS``: 200s, never a 500).

The scenarios (``--before`` s of sale, the fault, then ``--after`` s of sale):

a. Redis SIGKILLed, restarted on the same port after ``--fault`` s (10).
b. Redis hung: SIGSTOP for ``--fault`` s (10), then SIGCONT.
c. PostgreSQL stopped (fast shutdown, as ``pg_ctl -m fast``), started again after ``--fault`` s (5).
d. A random gunicorn worker SIGKILLed every ``--kill-every`` s (2) for ``--fault`` s (10).

Per scenario it prints purchases by status per phase ("during" is every
request that overlapped the fault), p50/p99/max latency per phase, 5xx and
whether every 503 carried ``Retry-After``, the retries, the throttle probe, a
timeline of /health answers, the time to recover after the fault ended, the
stock and order checks (sold + held <= capacity, available = capacity - sold
- held, every order has items and a matching ledger hold, every 201 is an
order in the database, orders committed without a 201 seen, keys left
in progress, ``manage.py check_inventory --event`` exits 0) and the
tracebacks gunicorn's log gained (exception, innermost project frame). Then a
summary table, and PASS/FAIL checks: the goals of "Faults during a sale"
(never a 500, 503s with ``Retry-After``, nothing oversold or half-written,
purchases go on while Redis is down with fail-open throttles, no purchase
longer than ``--bound`` s and /health within 1 s while Redis hangs, 503
``down`` from /health while PostgreSQL is down, recovery within
``--recover-within`` s without restarting the app).

Exit status: 0 when every check passed, 1 when one failed, 2 when the harness
could not start, 130 when interrupted. Everything it started is stopped and
the temp dir removed on exit, also on an error, Ctrl-C or SIGTERM (``--keep``
keeps the temp dir with gunicorn.log, postgres.log and redis.log). It writes
nothing in the project tree (``--json FILE`` writes the summaries where you say).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import math
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
PYTHON = PROJECT_DIR / ".venv" / "bin" / "python"
GUNICORN = PROJECT_DIR / ".venv" / "bin" / "gunicorn"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
HOST = "127.0.0.1"
BUYERS = 50
ANON_RATE = "5/min"
RETRIES = 3  # a purchase answered 503 (or not at all) is retried up to this many times, same key
RETRY_GRACE = 12.0  # seconds after the load stops that due retries are still sent


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    fault: float  # default fault length, seconds
    paced: bool = True


SCENARIOS = {
    "a": Scenario("a", "Redis SIGKILLed mid-sale, restarted on the same port", 10.0),
    "b": Scenario("b", "Redis hung (SIGSTOP), then SIGCONT", 10.0),
    "c": Scenario("c", "PostgreSQL stopped (fast shutdown) mid-sale, then started again", 5.0),
    "d": Scenario("d", "gunicorn workers SIGKILLed mid-purchase", 10.0, paced=False),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Faults during a sale, against a private PostgreSQL, Redis and gunicorn.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--scenario", default="a,b,c,d", help="Comma-separated scenarios to run, in order.")
    parser.add_argument("--before", type=float, default=5.0, help="Seconds of sale before the fault.")
    parser.add_argument(
        "--fault",
        "--duration",
        dest="fault",
        type=float,
        help="Seconds the fault lasts (default: 10 for a, b and d, 5 for c).",
    )
    parser.add_argument("--after", type=float, default=20.0, help="Seconds of sale after the fault ended.")
    parser.add_argument("--clients", type=int, default=16, help="Client threads sending POST /orders.")
    parser.add_argument("--rate", type=float, default=30.0, help="Orders/s all clients together (a, b, c).")
    parser.add_argument("--capacity", type=int, default=600, help="Capacity of the ticket type (a, b, c; 8x for d).")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers.")
    parser.add_argument("--kill-every", type=float, default=2.0, help="Scenario d: seconds between worker kills.")
    parser.add_argument("--bound", type=float, default=2.0, help="Check: longest purchase while Redis hangs (s).")
    parser.add_argument("--recover-within", type=float, default=10.0, help="Check: recovery after a fault (s).")
    parser.add_argument("--pg-port", type=int, default=55432)
    parser.add_argument("--redis-port", type=int, default=56379)
    parser.add_argument("--port", type=int, default=18811, help="gunicorn's port.")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="Extra app environment.")
    parser.add_argument(
        "--ref",
        help="Measure this commit (exported with git archive into the temp dir) instead of the work tree.",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the temp dir (logs, data) for inspection.")
    parser.add_argument("--json", metavar="FILE", help="Also write the summaries as JSON to FILE.")
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    if args.json:
        args.json = str(Path(args.json).resolve())  # the run changes directory
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown or not args.scenarios:
        parser.error(f"--scenario takes a comma-separated list of {', '.join(SCENARIOS)}")
    for item in args.env:
        if "=" not in item:
            parser.error(f"--env {item!r}: expected KEY=VALUE")
    if args.clients < 1 or args.workers < 1 or args.capacity < 1:
        parser.error("--clients, --workers and --capacity must be at least 1")
    if args.rate <= 0 or args.kill_every <= 0 or (args.fault is not None and args.fault <= 0):
        parser.error("--rate, --kill-every and --fault must be positive")
    return args


# --- Processes -----------------------------------------------------------------------------------


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) != 0


def wait_until(predicate, timeout: float, what: str, alive=None) -> float:
    """Poll ``predicate`` every 50 ms; returns the time it took, raises when ``timeout`` passes."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if alive is not None and not alive():
            raise RuntimeError(f"{what}: the process exited")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.05)


class Stack:
    """A private PostgreSQL, Redis and gunicorn, all children of this process, in one temp dir."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="eventflow-faults-"))
        self.tmp.chmod(0o711)  # PostgreSQL's OS user must reach its data dir inside
        self.pg_user = "postgres" if os.geteuid() == 0 else None
        self.pg_data = self.tmp / "pg"
        self.pg_log = self.tmp / "postgres.log"
        self.redis_log = self.tmp / "redis.log"
        self.app_log = self.tmp / "gunicorn.log"
        self.pg: subprocess.Popen | None = None
        self.redis: subprocess.Popen | None = None
        self.gunicorn: subprocess.Popen | None = None
        self.commit: str | None = None
        self.app_dir = self.tmp / "app" if args.ref else PROJECT_DIR
        self.env = self._app_env()

    def _app_env(self) -> dict[str, str]:
        env = {
            "DJANGO_SETTINGS_MODULE": "eventflow.settings",
            "DATABASE_URL": f"postgres://postgres@{HOST}:{self.args.pg_port}/eventflow",
            "REDIS_URL": f"redis://{HOST}:{self.args.redis_port}/0",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "THROTTLE_USER_RATE": "100000/min",
            "THROTTLE_ANON_RATE": ANON_RATE,
            "DATA_DIR": str(self.tmp / "data"),
            "JWT_ACCESS_MINUTES": "120",
            "LOG_LEVEL": "INFO",
        }
        env.update(item.split("=", 1) for item in self.args.env)
        return env

    def child_env(self) -> dict[str, str]:
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ") if k in os.environ}
        return {**base, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", **self.env}

    # PostgreSQL

    def _as_pg_user(self) -> dict:
        if self.pg_user is None:
            return {}
        return {"user": self.pg_user, "group": pwd.getpwnam(self.pg_user).pw_gid, "extra_groups": []}

    def init_pg(self) -> None:
        self.pg_data.mkdir()
        if self.pg_user:
            entry = pwd.getpwnam(self.pg_user)
            os.chown(self.pg_data, entry.pw_uid, entry.pw_gid)
        command = [str(PG_BIN / "initdb"), "-D", str(self.pg_data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        command += ["--no-sync", "--no-instructions"]
        done = subprocess.run(  # noqa: S603 (fixed command)
            command, capture_output=True, text=True, cwd=self.pg_data, check=False, **self._as_pg_user()
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")

    def start_pg(self) -> float:
        settings = {
            "port": self.args.pg_port,
            "listen_addresses": HOST,
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": 100,
        }
        command = [str(PG_BIN / "postgres"), "-D", str(self.pg_data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with open(self.pg_log, "ab") as log:
            self.pg = subprocess.Popen(  # noqa: S603 (fixed command)
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.pg_data,
                start_new_session=True,
                **self._as_pg_user(),
            )
        return wait_until(self.pg_ready, 60, "PostgreSQL", alive=lambda: self.pg.poll() is None)

    def pg_ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(
                host=HOST, port=self.args.pg_port, user="postgres", dbname="postgres", connect_timeout=1
            ):
                return True
        except psycopg.Error:
            return False

    def stop_pg_fast(self) -> float:
        """Fast shutdown (what ``pg_ctl stop -m fast`` sends): sessions are cut, the server exits."""
        started = time.monotonic()
        if self.pg and self.pg.poll() is None:
            self.pg.send_signal(signal.SIGINT)
            self.pg.wait(timeout=60)
        return time.monotonic() - started

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(host=HOST, port=self.args.pg_port, user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute("CREATE DATABASE eventflow")

    # Redis

    def start_redis(self) -> float:
        command = [shutil.which("redis-server") or "redis-server", "--port", str(self.args.redis_port)]
        command += ["--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(self.tmp), "--daemonize", "no"]
        with open(self.redis_log, "ab") as log:
            self.redis = subprocess.Popen(  # noqa: S603 (fixed command)
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return wait_until(self.redis_ready, 30, "Redis", alive=lambda: self.redis.poll() is None)

    def redis_ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.args.redis_port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill_redis(self) -> None:
        if self.redis and self.redis.poll() is None:
            self.redis.send_signal(signal.SIGKILL)
            self.redis.wait(timeout=10)

    def pause_redis(self, pause: bool) -> None:
        if self.redis and self.redis.poll() is None:
            self.redis.send_signal(signal.SIGSTOP if pause else signal.SIGCONT)

    # The app

    def manage(self, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 (fixed command)
            [str(PYTHON), "manage.py", *arguments],
            cwd=self.app_dir,
            env=self.child_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start_gunicorn(self) -> float:
        command = [str(GUNICORN), "eventflow.wsgi", "--bind", f"{HOST}:{self.args.port}"]
        command += ["--workers", str(self.args.workers), "--timeout", "30"]
        command += ["--no-control-socket"]  # gunicorn 27 would otherwise share ~/.gunicorn/gunicorn.ctl
        with open(self.app_log, "ab") as log:
            self.gunicorn = subprocess.Popen(  # noqa: S603 (fixed command)
                command,
                cwd=self.app_dir,
                env=self.child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def healthy() -> bool:
            return get_health(self.args.port, timeout=5).status == 200

        took = wait_until(healthy, 60, "gunicorn", alive=lambda: self.gunicorn.poll() is None)
        wait_until(lambda: len(self.worker_pids()) >= self.args.workers, 30, "gunicorn workers")
        return took

    def worker_pids(self) -> list[int]:
        if not self.gunicorn or self.gunicorn.poll() is not None:
            return []
        master = self.gunicorn.pid
        try:
            return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
        except OSError:
            pids = []
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError, IndexError, ValueError):
                        stat = (entry / "stat").read_text()
                        if int(stat[stat.rindex(")") + 2 :].split()[1]) == master:
                            pids.append(int(entry.name))
            return pids

    def app_log_size(self) -> int:
        return self.app_log.stat().st_size if self.app_log.exists() else 0

    def read_app_log(self, offset: int) -> str:
        with open(self.app_log, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")

    # Everything

    def start(self) -> None:
        for name, port in (("--pg-port", self.args.pg_port), ("--redis-port", self.args.redis_port)):
            if not port_free(port):
                raise RuntimeError(f"port {port} ({name}) is in use; pick another or stop what listens there")
        if not port_free(self.args.port):
            raise RuntimeError(f"port {self.args.port} (--port) is in use")
        if self.args.ref:
            self.commit = export_commit(self.args.ref, self.app_dir)
        print(f"  code: {code_description(self.args, self.commit)}")
        step = time.monotonic()
        self.init_pg()
        self.start_pg()
        self.create_database()
        print(f"  PostgreSQL {HOST}:{self.args.pg_port} up ({time.monotonic() - step:.1f} s, pid {self.pg.pid})")
        self.start_redis()
        print(f"  Redis {HOST}:{self.args.redis_port} up (pid {self.redis.pid})")
        step = time.monotonic()
        done = self.manage("migrate", "--noinput")
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        print(f"  migrated ({time.monotonic() - step:.1f} s)")
        took = self.start_gunicorn()
        pids = self.worker_pids()
        print(f"  gunicorn {HOST}:{self.args.port} up ({took:.1f} s, master {self.gunicorn.pid}, workers {pids})")

    def close(self) -> None:
        """Stop everything this process started, whatever state it is in; never raises."""
        if self.redis and self.redis.poll() is None:
            with contextlib.suppress(OSError):
                self.redis.send_signal(signal.SIGCONT)  # a stopped Redis would hold the workers up
        if self.gunicorn:
            _stop_group(self.gunicorn, signal.SIGTERM, grace=5)
        if self.redis and self.redis.poll() is None:
            with contextlib.suppress(OSError):
                self.redis.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.redis.wait(timeout=5)
        if self.pg:
            _stop_group(self.pg, signal.SIGINT, grace=20)  # SIGINT: PostgreSQL's fast shutdown
        with contextlib.suppress(OSError):
            os.chdir(PROJECT_DIR)
        if self.args.keep:
            print(f"kept {self.tmp} (logs: gunicorn.log, postgres.log, redis.log)")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _stop_group(proc: subprocess.Popen, first: signal.Signals, *, grace: float) -> None:
    """Ask a process that leads its own group to stop, kill it after ``grace`` seconds, and then kill
    whatever of its group is left (gunicorn's workers, PostgreSQL's backends); never raises."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.send_signal(first)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


# --- Django, in this process (seeding and checking) ------------------------------------------------


def setup_django(env: dict[str, str], app_dir: Path) -> None:
    """Django in this process, with exactly the app's environment (nothing of the caller's leaks in)."""
    os.environ.clear()
    os.environ.update(env)
    sys.path.insert(0, str(app_dir))
    os.chdir(app_dir)  # Celery's Django fixup puts the working directory first on sys.path
    import django

    django.setup()


def close_db() -> None:
    from django.db import connections

    connections.close_all()


def seed_buyers() -> list[str]:
    """``BUYERS`` attendees, one shared password hash, an access token each (no login)."""
    from django.contrib.auth.hashers import make_password
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    password_hash = make_password(secrets.token_urlsafe(16))
    buyers = User.objects.bulk_create(
        User(
            email=f"faults-buyer-{i:03d}@example.com",
            name=f"Buyer {i}",
            role=User.Role.ATTENDEE,
            password=password_hash,
        )
        for i in range(BUYERS)
    )
    return [str(AccessToken.for_user(buyer)) for buyer in buyers]


@dataclass
class Sale:
    tag: str
    event_id: int
    ticket_type_id: int
    capacity: int


def seed_sale(tag: str, capacity: int) -> Sale:
    from sale import create_sale

    close_db()
    event, (ticket_type,) = create_sale(
        email_prefix=f"faults-{tag}", title=f"Faults during a sale {tag}", capacity=capacity
    )
    return Sale(tag=tag, event_id=event.pk, ticket_type_id=ticket_type.pk, capacity=capacity)


def verify_sale(stack: Stack, sale: Sale, seen_order_ids: set[str]) -> dict:
    """Oversell and half-written orders, from the database, plus ``check_inventory``."""
    from events.models import TicketType
    from orders.models import IdempotencyRecord, InventoryEntry, Order, OrderItem

    close_db()
    ticket_type = TicketType.objects.get(pk=sale.ticket_type_id)
    orders = {
        str(pk): status for pk, status in Order.objects.filter(event_id=sale.event_id).values_list("pk", "status")
    }
    items: dict[str, dict[int, int]] = defaultdict(dict)
    for order_id, tt, quantity in OrderItem.objects.filter(order__event_id=sale.event_id).values_list(
        "order_id", "ticket_type_id", "quantity"
    ):
        items[str(order_id)][tt] = quantity
    holds: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    other_entries = 0
    for order_id, tt, kind, quantity in InventoryEntry.objects.filter(order__event_id=sale.event_id).values_list(
        "order_id", "ticket_type_id", "kind", "quantity"
    ):
        if kind == InventoryEntry.Kind.HOLD:
            holds[str(order_id)][tt] += quantity
        else:
            other_entries += 1
    held = sum(sum(items[o].values()) for o, status in orders.items() if status == Order.Status.RESERVED)
    sold = sum(sum(items[o].values()) for o, status in orders.items() if status == Order.Status.PAID)
    without_items = [o for o in orders if not items.get(o)]
    ledger_mismatch = [o for o in orders if dict(holds.get(o, {})) != items.get(o, {})]
    stuck_keys = IdempotencyRecord.objects.filter(
        key__startswith=f"faults-{sale.tag}-", state=IdempotencyRecord.State.IN_PROGRESS
    ).count()
    done = stack.manage("check_inventory", "--event", str(sale.event_id), timeout=120)
    return {
        "capacity": ticket_type.capacity,
        "available": getattr(ticket_type, "on_sale", ticket_type.available),  # row + stock buckets
        "held": held,
        "sold": sold,
        "orders": len(orders),
        "orders_by_status": dict(Counter(orders.values())),
        "oversold": held + sold > ticket_type.capacity,
        "stock_consistent": getattr(ticket_type, "on_sale", ticket_type.available)
        == ticket_type.capacity - held - sold,
        "orders_without_items": len(without_items),
        "ledger_mismatch": len(ledger_mismatch),
        "ledger_other_entries": other_entries,
        "created_unseen": len(set(orders) - seen_order_ids),  # committed, but the client never saw its 201
        "seen_missing": len(seen_order_ids - set(orders)),  # a 201 whose order is not in the database
        "idempotency_in_progress": stuck_keys,
        "check_inventory_exit": done.returncode,
        "check_inventory_output": (done.stdout if done.returncode == 0 else done.stdout + done.stderr).strip()[-800:],
    }


# --- HTTP ------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int  # 0: no HTTP answer
    latency: float
    body: bytes = b""
    retry_after: str | None = None
    error: str = ""  # exception name when there was no answer
    replayed: bool = False  # Idempotent-Replayed: true


def request(
    port: int, method: str, path: str, *, timeout: float, headers: dict | None = None, body: bytes | None = None
) -> Answer:
    """One request on a new connection (sync gunicorn workers close after every response anyway)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Host": f"{HOST}:{port}", **(headers or {})})
        response = conn.getresponse()
        data = response.read()
        return Answer(
            response.status,
            time.monotonic() - started,
            data,
            response.getheader("Retry-After"),
            replayed=response.getheader("Idempotent-Replayed") == "true",
        )
    except (OSError, http.client.HTTPException) as exc:
        name = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return Answer(0, time.monotonic() - started, error=name)
    finally:
        conn.close()


def get_health(port: int, timeout: float) -> Answer:
    return request(port, "GET", "/api/v1/health", timeout=timeout, headers={"Accept": "application/json"})


def problem_code(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return "non-json"
    return str(body.get("code") or "?") if isinstance(body, dict) else "?"


def health_label(answer: Answer) -> str:
    if answer.status == 0:
        return f"no answer ({answer.error})"
    try:
        body = json.loads(answer.body)
        down = [part for part in ("database", "cache", "broker") if body.get(part) != "ok"]
        return f"{answer.status} {body.get('status')}" + (f" ({', '.join(down)} down)" if down else "")
    except (ValueError, AttributeError):
        return f"{answer.status} non-json"


# --- Load ------------------------------------------------------------------------------------------


@dataclass
class Sample:
    kind: str  # "order" (first try), "retry", "health" (prober), "patient" (one slow probe), "anon" (throttle)
    t: float  # start, seconds since the scenario's t0
    latency: float
    status: int
    label: str  # problem code / health summary / exception name
    retry_after: str | None = None
    key: str = ""  # Idempotency-Key of a purchase

    @property
    def end(self) -> float:
        return self.t + self.latency


class Load:
    """Buyers, the health prober and the throttle probe, all recording into one list."""

    def __init__(self, args: argparse.Namespace, sale: Sale, tokens: list[str], paced: bool) -> None:
        self.args = args
        self.sale = sale
        self.tokens = tokens
        self.paced = paced
        self.samples: list[Sample] = []
        self.order_ids: set[str] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.t0 = 0.0
        self.stopped_at = 0.0
        self.threads: list[threading.Thread] = []
        self.retries: list[tuple[float, dict, bytes, int]] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def record(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)

    def start(self) -> None:
        self.t0 = time.monotonic()
        targets = [(self.buyer, (i,)) for i in range(self.args.clients)]
        targets += [(self.prober, ()), (self.throttle_probe, ()), (self.retrier, ())]
        self.threads = [threading.Thread(target=fn, args=a, daemon=True) for fn, a in targets]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopped_at = self.now()
        self.stopping.set()
        deadline = time.monotonic() + 70  # a request may still be waiting for its 60 s timeout
        for thread in self.threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))

    def buyer(self, index: int) -> None:
        interval = self.args.clients / self.args.rate if self.paced else 0.0
        next_at = index * interval / self.args.clients
        n = 0
        body = json.dumps(
            {"event": self.sale.event_id, "items": [{"ticket_type": self.sale.ticket_type_id, "quantity": 1}]}
        ).encode()
        while not self.stopping.is_set():
            wait = next_at - self.now()
            if wait > 0 and self.stopping.wait(wait):
                break
            next_at = max(next_at + interval, self.now())
            token = self.tokens[(index + n * self.args.clients) % len(self.tokens)]
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Idempotency-Key": f"faults-{self.sale.tag}-{index}-{n}-{secrets.token_hex(4)}",
            }
            n += 1
            self.purchase("order", headers, body, attempt=0)

    def purchase(self, kind: str, headers: dict, body: bytes, attempt: int) -> None:
        """One POST /orders; a 503 or a lost answer is retried later with the same key (by ``retrier``)."""
        t = self.now()
        answer = request(self.args.port, "POST", "/api/v1/orders", timeout=60, headers=headers, body=body)
        if answer.status == 201:
            label = "replayed" if answer.replayed else ""
            with contextlib.suppress(ValueError, TypeError, KeyError):
                order_id = str(json.loads(answer.body)["id"])
                with self.lock:
                    self.order_ids.add(order_id)
        else:
            label = answer.error or problem_code(answer.body)
        self.record(
            Sample(kind, t, answer.latency, answer.status, label, answer.retry_after, headers["Idempotency-Key"])
        )
        retry = answer.status in {0, 503} or label == "idempotency_in_progress"
        if retry and attempt < RETRIES:
            delay = float(answer.retry_after) if (answer.retry_after or "").isdigit() else 2.0
            with self.lock:
                self.retries.append((self.now() + delay, headers, body, attempt + 1))

    def retrier(self) -> None:
        """Like a well-behaved client: after Retry-After (or 2 s), the same request with the same key."""
        while True:
            with self.lock:
                due = sorted((r for r in self.retries if r[0] <= self.now()), key=lambda r: r[0])
                for item in due:
                    self.retries.remove(item)
                pending = bool(self.retries)
            for _due, headers, body, attempt in due:
                self.purchase("retry", headers, body, attempt)
            if self.stopping.is_set() and (not pending or self.now() > self.stopped_at + RETRY_GRACE):
                break
            time.sleep(0.05)

    def patient_probe(self) -> None:
        """One /health request with a 60 s timeout: how long does it really take to answer?"""

        def probe() -> None:
            t = self.now()
            answer = get_health(self.args.port, timeout=60)
            self.record(Sample("patient", t, answer.latency, answer.status, health_label(answer)))

        thread = threading.Thread(target=probe, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _every(self, seconds: float, probe) -> None:
        next_at = 0.0
        while not self.stopping.is_set():
            wait = next_at - self.now()
            if wait > 0 and self.stopping.wait(wait):
                break
            next_at = max(next_at + seconds, self.now())
            probe()

    def prober(self) -> None:
        def probe() -> None:
            t = self.now()
            answer = get_health(self.args.port, timeout=5)
            self.record(Sample("health", t, answer.latency, answer.status, health_label(answer)))

        self._every(0.5, probe)

    def throttle_probe(self) -> None:
        path = f"/api/v1/events/{self.sale.event_id}/availability"

        def probe() -> None:
            t = self.now()
            answer = request(self.args.port, "GET", path, timeout=10, headers={"Accept": "application/json"})
            label = answer.error or ("" if answer.status == 200 else problem_code(answer.body))
            self.record(Sample("anon", t, answer.latency, answer.status, label, answer.retry_after))

        self._every(0.5, probe)


# --- Scenarios -------------------------------------------------------------------------------------


@dataclass
class Fault:
    start: float = 0.0
    end: float = 0.0
    notes: list[str] = field(default_factory=list)


def inject(key: str, stack: Stack, load: Load, seconds: float, args: argparse.Namespace) -> Fault:
    """Run the fault; ``start``/``end`` are when it began and when the dependency was back."""
    fault = Fault(start=load.now())
    if key == "a":
        stack.kill_redis()
        load.patient_probe()
        time.sleep(max(0.0, seconds - (load.now() - fault.start)))
        took = stack.start_redis()
        fault.end = load.now()
        fault.notes.append(f"Redis SIGKILLed at {fault.start:.1f} s; new Redis answered PING at {fault.end:.1f} s")
        fault.notes.append(f"(started in {took:.2f} s)")
    elif key == "b":
        stack.pause_redis(True)
        load.patient_probe()
        time.sleep(seconds)
        stack.pause_redis(False)
        fault.end = load.now()
        fault.notes.append(f"Redis SIGSTOPped at {fault.start:.1f} s, SIGCONTed at {fault.end:.1f} s")
    elif key == "c":
        shutdown = stack.stop_pg_fast()
        down_at = load.now()
        load.patient_probe()
        time.sleep(max(0.0, seconds - (load.now() - fault.start)))
        stack.start_pg()
        fault.end = load.now()
        fault.notes.append(
            f"PostgreSQL fast shutdown at {fault.start:.1f} s (took {shutdown:.2f} s), down from {down_at:.1f} s, "
            f"accepting connections again at {fault.end:.1f} s"
        )
    elif key == "d":
        kills = []
        while load.now() - fault.start < seconds - 1e-3:
            pids = stack.worker_pids()
            if pids:
                pid = secrets.choice(pids)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    kills.append((round(load.now(), 1), pid))
                if len(kills) == 1:
                    load.patient_probe()
            time.sleep(min(args.kill_every, max(0.0, seconds - (load.now() - fault.start))))
        fault.end = load.now()
        fault.notes.append(f"{len(kills)} workers SIGKILLed: " + ", ".join(f"pid {p} at {t} s" for t, p in kills))
    return fault


def preflight(args: argparse.Namespace, tokens: list[str]) -> None:
    """The tokens minted here must be accepted by the server (same SECRET_KEY, same database)."""
    headers = {"Authorization": f"Bearer {tokens[0]}", "Accept": "application/json"}
    answer = request(args.port, "GET", "/api/v1/orders", timeout=30, headers=headers)
    if answer.status != 200:
        raise RuntimeError(f"GET /api/v1/orders with a minted token answered {answer.status}: {answer.body[:300]!r}")


def warm_up(args: argparse.Namespace, sale: Sale, tokens: list[str]) -> None:
    """A few rounds of authenticated reads on every worker, so cold workers do not count as "before"."""
    paths = ["/api/v1/orders", f"/api/v1/events/{sale.event_id}/availability", f"/api/v1/events/{sale.event_id}"]

    def reads(i: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}", "Accept": "application/json"}
        for path in paths:
            request(args.port, "GET", path, timeout=30, headers=headers)

    for _round in range(3):
        threads = [threading.Thread(target=reads, args=(i,)) for i in range(2 * args.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def run_scenario(scenario: Scenario, stack: Stack, tokens: list[str], args: argparse.Namespace) -> dict:
    seconds = args.fault if args.fault is not None else scenario.fault
    capacity = args.capacity if scenario.paced else 8 * args.capacity
    tag = f"{scenario.key}-{secrets.token_hex(3)}"
    sale = seed_sale(tag, capacity)
    wait_until(lambda: get_health(args.port, timeout=5).status == 200, 60, "health before the scenario")
    wait_until(lambda: len(stack.worker_pids()) >= args.workers, 30, "gunicorn workers")
    warm_up(args, sale, tokens)
    master = stack.gunicorn.pid
    log_offset = stack.app_log_size()
    print(f"\n== Scenario {scenario.key}: {scenario.title} ==", flush=True)

    load = Load(args, sale, tokens, paced=scenario.paced)
    load.start()
    time.sleep(args.before)
    fault = inject(scenario.key, stack, load, seconds, args)
    time.sleep(args.after)
    t_stop = load.now()
    load.stop()
    time.sleep(1.0)  # let the server log what it answered last
    checks = verify_sale(stack, sale, load.order_ids)
    log = analyse_log(stack.read_app_log(log_offset), stack.app_dir)
    result = summarize(scenario, args, load, fault, t_stop, checks, log)
    result.update(
        {
            "sale": asdict(sale),
            "fault_seconds": seconds,
            "master_restarted": stack.gunicorn.pid != master or stack.gunicorn.poll() is not None,
        }
    )
    result["checks"] = expectations(scenario.key, result, args)
    print_scenario(result)
    return result


# --- Analysis --------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def phase_of(sample: Sample, fault: Fault) -> str:
    """ "during" is every request that overlapped the fault (started before it ended, ended after it began)."""
    if sample.t < fault.end and sample.end > fault.start:
        return "during"
    return "before" if sample.end <= fault.start else "after"


PHASES = ("before", "during", "after")


def status_label(sample: Sample) -> str:
    if sample.status == 0:
        return f"no answer: {sample.label}"
    return f"{sample.status} {sample.label}".strip()


def summarize(
    scenario: Scenario, args: argparse.Namespace, load: Load, fault: Fault, t_stop: float, checks: dict, log: dict
) -> dict:
    orders = [s for s in load.samples if s.kind == "order"]
    health = sorted((s for s in load.samples if s.kind == "health"), key=lambda s: s.t)
    anon = [s for s in load.samples if s.kind == "anon"]
    retries = sorted((s for s in load.samples if s.kind == "retry"), key=lambda s: s.t)
    final: dict[str, Sample] = {}
    for s in retries:
        final[s.key] = s
    phases: dict[str, dict] = {}
    for phase in PHASES:
        mine = [s for s in orders if phase_of(s, fault) == phase]
        latencies = [s.latency for s in mine]
        phases[phase] = {
            "requests": len(mine),
            "by_status": dict(Counter(status_label(s) for s in mine)),
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            "max": max(latencies, default=None),
            "anon": dict(Counter(status_label(s) for s in anon if phase_of(s, fault) == phase)),
        }
    fivexx = [s for s in orders if s.status >= 500]
    anon_5xx = [s for s in anon if s.status >= 500]
    no_answer = [s for s in orders if s.status == 0]

    # Recovery: a purchase is normal when it got an HTTP answer below 500, in less than
    # max(1 s, 5 x the p99 before the fault).
    threshold = max(1.0, 5 * (phases["before"]["p99"] or 0.0))

    def normal(s: Sample) -> bool:
        return 0 < s.status < 500 and s.latency < threshold

    after = [s for s in orders if s.t >= fault.end]
    first_good = min((s.end for s in after if normal(s)), default=None)
    bad_since_fault = [s for s in orders if s.t >= fault.start and not normal(s)]
    last_bad = max((s.end for s in bad_since_fault), default=None)
    baseline = Counter(s.label for s in health if s.t < fault.start).most_common(1)
    baseline_label = baseline[0][0] if baseline else "200 ok"
    health_after = [s for s in health if s.t >= fault.end]
    health_first_ok = min((s.end for s in health_after if s.label == baseline_label and s.latency < 1), default=None)
    health_bad = [s for s in health if s.t >= fault.start and (s.label != baseline_label or s.latency >= 1)]
    health_last_bad = max((s.end for s in health_bad), default=None)
    during_health = [s for s in health if phase_of(s, fault) == "during"]
    patient = [s for s in load.samples if s.kind == "patient"]

    def since_end(value: float | None) -> float | None:
        return None if value is None else max(0.0, value - fault.end)

    return {
        "scenario": scenario.key,
        "title": scenario.title,
        "fault": {"start": fault.start, "end": fault.end, "notes": fault.notes},
        "duration": t_stop,
        "load": {"clients": args.clients, "rate": args.rate if scenario.paced else None},
        "phases": phases,
        "orders": len(orders),
        "created": sum(1 for s in orders if s.status == 201),
        "status_total": dict(Counter(status_label(s) for s in orders)),
        "5xx": len(fivexx),
        "500": sum(1 for s in fivexx if s.status == 500),
        "503": sum(1 for s in fivexx if s.status == 503),
        "503_without_retry_after": sum(1 for s in fivexx if s.status == 503 and not s.retry_after),
        "retry_after_values": dict(Counter(s.retry_after for s in fivexx if s.status == 503)),
        "anon_5xx": len(anon_5xx),
        "500_other": sum(1 for s in anon + health + retries + patient if s.status == 500),
        "retries": {
            "attempts": dict(Counter(status_label(s) for s in retries)),
            "final": dict(Counter(status_label(s) for s in final.values())),
            "keys": len(final),
        },
        "order_ids_seen": len(load.order_ids),
        "no_answer": len(no_answer),
        "recovery": {
            "threshold": threshold,
            "first_good_purchase_after_end": since_end(first_good),
            "last_bad_purchase_after_end": since_end(last_bad),
            "health_first_ok_after_end": since_end(health_first_ok),
            "health_last_bad_after_end": since_end(health_last_bad),
            "health_baseline": baseline_label,
        },
        "health": {
            "timeline": health_timeline(health),
            "patient": [{"t": s.t, "latency": s.latency, "label": s.label} for s in patient],
            "during": {
                "probes": len(during_health),
                "answered_within_1s": sum(1 for s in during_health if s.status and s.latency < 1),
                "answered": sum(1 for s in during_health if s.status),
                "max_latency": max((s.latency for s in during_health), default=None),
                "p50_latency": percentile([s.latency for s in during_health], 50),
                "labels": dict(Counter(s.label for s in during_health)),
            },
        },
        "db": checks,
        "log": log,
    }


def health_timeline(health: list[Sample]) -> list[dict]:
    """Runs of consecutive probes with the same answer: from, to, count, max latency."""
    runs: list[dict] = []
    for s in health:
        if runs and runs[-1]["label"] == s.label:
            run = runs[-1]
            run["to"], run["n"], run["max"] = s.t, run["n"] + 1, max(run["max"], s.latency)
        else:
            runs.append({"label": s.label, "from": s.t, "to": s.t, "n": 1, "max": s.latency})
    return runs


LOG_RECORD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+) (\S+) (.*)|\[[^\]]+\] \[\d+\] \[(\w+)\] (.*))$")
FRAME = re.compile(r'^\s+File "([^"]+)", line (\d+), in (\S+)')
EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Timeout|Warning)?\w*)(?::\s?(.*))?$")


def analyse_log(text: str, app_dir: Path) -> dict:
    """Group the tracebacks of gunicorn's log by the record that logged them, exception and location."""
    records: list[tuple[str, list[str]]] = []  # (record line, following lines)
    for line in text.splitlines():
        if LOG_RECORD.match(line):
            records.append((line, []))
        elif records:
            records[-1][1].append(line)
        else:
            records.append(("(start)", [line]))
    groups: Counter = Counter()
    examples: dict[tuple, str] = {}
    counters: Counter = Counter()
    for head, body in records:
        match = LOG_RECORD.match(head)
        logger, message = "", head
        if match and match.group(2):
            logger, message = match.group(3), match.group(4)
        elif match:
            logger, message = "gunicorn", match.group(6)
        for needle in ("WORKER TIMEOUT", "was sent SIGKILL", "was sent SIGABRT", "Booting worker", "Worker exiting"):
            if needle in message:
                counters[needle] += 1
        if logger == "django.request":
            counters["django.request " + re.sub(r": /.*", "", message)] += 1
        if logger == "eventflow.api" and message.startswith("Database unavailable"):
            counters["eventflow.api Database unavailable"] += 1
        if not any(line.startswith("Traceback (most recent call last)") for line in body):
            continue
        frames = [FRAME.match(line) for line in body]
        frames = [f for f in frames if f]
        project = [f for f in frames if f.group(1).startswith(f"{app_dir}/") and "/.venv/" not in f.group(1)]
        where = project[-1] if project else (frames[-1] if frames else None)
        location = "?"
        if where:
            path = where.group(1)
            path = str(Path(path).relative_to(app_dir)) if project else path.split("site-packages/")[-1]
            location = f"{path}:{where.group(2)} in {where.group(3)}"
        innermost = f"{frames[-1].group(1).split('site-packages/')[-1]}:{frames[-1].group(2)}" if frames else "?"
        exception_lines = [line for line in body if line and not line[0].isspace() and EXCEPTION.match(line)]
        exception_lines = [
            line for line in exception_lines if not line.startswith(("Traceback", "During", "The above"))
        ]
        exception = exception_lines[-1][:160] if exception_lines else "?"
        kind = "500" if logger in {"django.request", "eventflow.api", "gunicorn"} else "logged"
        if logger == "django.request" and "Internal Server Error" not in message:
            kind = "logged"
        key = (kind, logger, exception.split(":")[0], location)
        groups[key] += 1
        examples.setdefault(key, f"{message[:100]} | {exception} | innermost {innermost}")
    return {
        "counters": dict(counters),
        "tracebacks": [
            {"kind": k[0], "logger": k[1], "exception": k[2], "where": k[3], "count": n, "example": examples[k]}
            for k, n in groups.most_common()
        ],
    }


def expectations(key: str, r: dict, args: argparse.Namespace) -> list[tuple[bool, str]]:
    """The goals of "Faults during a sale", as checks."""
    db, rec, during = r["db"], r["recovery"], r["phases"]["during"]
    checks = [
        (r["500"] == 0 and r["500_other"] == 0, "no 500, to purchases, /health or the throttle probe"),
        (r["503_without_retry_after"] == 0, "every 503 carries Retry-After"),
        (not db["oversold"] and db["stock_consistent"], "nothing oversold; available == capacity - sold - held"),
        (db["orders_without_items"] == 0 and db["ledger_mismatch"] == 0, "no half-written order (items == ledger)"),
        (db["seen_missing"] == 0, "every 201 is an order in the database"),
        (db["check_inventory_exit"] == 0, "check_inventory --event exits 0"),
        (not r["master_restarted"], "the app was never restarted"),
    ]
    h = r["health"]["during"]
    if key in {"a", "b", "c"}:
        good = rec["first_good_purchase_after_end"]
        checks.append(
            (
                good is not None and good <= args.recover_within,
                f"purchases normal again within {args.recover_within:.0f} s of the fault's end",
            )
        )
        ok = rec["health_first_ok_after_end"]
        checks.append((ok is not None and ok <= args.recover_within, "/health ok again within the same time"))
    if key == "a":
        created = during["by_status"].get("201", 0)
        checks.append((created > 0, "purchases go on while Redis is down (201s during the fault)"))
        anon_before, anon_during = r["phases"]["before"]["anon"], during["anon"]
        throttled_before = any(k.startswith("429") for k in anon_before)
        checks.append(
            (
                throttled_before and anon_during.get("200", 0) > 0 and r["anon_5xx"] == 0,
                "throttle probe: 429 before the fault, let through (200) while Redis is down, never a 5xx (fail-open)",
            )
        )
        degraded = [label for label in h["labels"] if "degraded" in label and "cache" in label]
        checks.append((bool(degraded), "/health says degraded, cache down, during the fault"))
    if key == "b":
        longest = during["max"]
        checks.append((longest is not None and longest <= args.bound, f"no purchase held longer than {args.bound:g} s"))
        checks.append(
            (h["probes"] > 0 and h["answered_within_1s"] == h["probes"], "/health answers every probe within 1 s")
        )
        degraded = [label for label in h["labels"] if "cache" in label]
        checks.append((bool(degraded), "/health says the cache is down during the fault"))
    if key == "c":
        problems = [k for k in r["status_total"] if not k.startswith(("201", "409", "503"))]
        checks.append((not problems, "during the outage purchases get 503 (or 201/409), nothing else"))
        checks.append((r["503"] > 0, "503s seen during the outage"))
        checks.append((any("503 down" in label for label in h["labels"]), "/health answers 503 down during it"))
    return checks


# --- Report ----------------------------------------------------------------------------------------


def sec(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def last_line(text: str) -> str:
    return text.splitlines()[-1] if text else ""


def print_scenario(r: dict) -> None:
    f = r["fault"]
    for note in f["notes"]:
        print(f"  {note}")
    rate = f"paced at {r['load']['rate']:g}/s" if r["load"]["rate"] else "unpaced"
    print(
        f"  load: {r['load']['clients']} clients {rate}, {r['orders']} purchases in {r['duration']:.1f} s; "
        f"fault window {f['start']:.1f}-{f['end']:.1f} s"
    )
    phases = r["phases"]
    labels = sorted({label for p in PHASES for label in phases[p]["by_status"]})
    print(f"  {'POST /orders':<44}{'before':>10}{'during':>10}{'after':>10}")
    print(f"  {'requests':<44}" + "".join(f"{phases[p]['requests']:>10}" for p in PHASES))
    for label in labels:
        print(f"  {label[:44]:<44}" + "".join(f"{phases[p]['by_status'].get(label, 0):>10}" for p in PHASES))
    for stat in ("p50", "p99", "max"):
        print(f"  {'latency ' + stat + ' ms':<44}" + "".join(f"{ms(phases[p][stat]):>10}" for p in PHASES))
    anon_labels = sorted({label for p in PHASES for label in phases[p]["anon"]})
    for label in anon_labels:
        print(f"  {'throttle probe ' + label:<44}" + "".join(f"{phases[p]['anon'].get(label, 0):>10}" for p in PHASES))
    ra = ", ".join(f"{k}: {v}" for k, v in r["retry_after_values"].items()) or "-"
    print(
        f"  5xx: {r['5xx']} (500: {r['500']}, 503: {r['503']}, 503 without Retry-After: "
        f"{r['503_without_retry_after']}; Retry-After values {ra}); no HTTP answer: {r['no_answer']}"
    )
    rt = r["retries"]
    if rt["keys"]:
        attempts = ", ".join(f"{k} x{v}" for k, v in sorted(rt["attempts"].items()))
        final = ", ".join(f"{k} x{v}" for k, v in sorted(rt["final"].items()))
        print(f"  retries with the same Idempotency-Key (after Retry-After, else 2 s; up to {RETRIES}):")
        print(f"    {rt['keys']} keys retried; attempts: {attempts}; last answer per key: {final}")
    h = r["health"]["during"]
    print(
        f"  /health during the fault: {h['probes']} probes, {h['answered']} answered, {h['answered_within_1s']} "
        f"within 1 s; p50 {ms(h['p50_latency'])} ms, max {ms(h['max_latency'])} ms"
    )
    for p in r["health"]["patient"]:
        print(
            f"  one /health probe with a 60 s timeout, sent at {p['t']:.1f} s: {p['label']} after {p['latency']:.1f} s"
        )
    print("  /health timeline (from-to s, probes, answer, max latency):")
    for run in r["health"]["timeline"]:
        print(f"    {run['from']:6.1f}-{run['to']:6.1f}  x{run['n']:<3} {run['label']:<42} max {ms(run['max'])} ms")
    rec = r["recovery"]
    print(
        f"  recovery after the fault ended: first normal purchase (<{rec['threshold']:.1f} s, no 5xx) "
        f"+{sec(rec['first_good_purchase_after_end'])}, last abnormal one +{sec(rec['last_bad_purchase_after_end'])}; "
        f"/health '{rec['health_baseline']}' again +{sec(rec['health_first_ok_after_end'])}, last other answer "
        f"+{sec(rec['health_last_bad_after_end'])}"
    )
    db = r["db"]
    print(
        f"  stock: capacity {db['capacity']}, sold {db['sold']} + held {db['held']} = {db['sold'] + db['held']}, "
        f"available {db['available']}; orders {db['orders']} {db['orders_by_status']}; "
        f"orders seen in 201s {r['order_ids_seen']}"
    )
    print(
        f"  orders without items {db['orders_without_items']}, ledger != items {db['ledger_mismatch']}, "
        f"committed but no 201 seen {db['created_unseen']}, 201 but not in the database {db['seen_missing']}, "
        f"Idempotency-Keys left in progress {db['idempotency_in_progress']}; check_inventory exit "
        f"{db['check_inventory_exit']}: {last_line(db['check_inventory_output'])}"
    )
    counters = ", ".join(f"{k} x{v}" for k, v in sorted(r["log"]["counters"].items())) or "-"
    print(f"  server log: {counters}")
    for tb in r["log"]["tracebacks"]:
        print(f"    traceback x{tb['count']} [{tb['kind']}] {tb['logger']}: {tb['exception']} at {tb['where']}")
        print(f"        e.g. {tb['example'][:220]}")
    for ok, text in r["checks"]:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")


def print_summary(results: list[dict]) -> None:
    print("\n== Summary ==")
    head = (
        "| scenario | purchases | 201 / orders in DB | 500 (any request) | 503 (no Retry-After) | no answer "
        "| p99 / max ms before | p99 / max ms during | /health during: <1 s / probes, max ms | one patient /health "
        "| purchases normal again | /health ok again | oversold / half-written | check_inventory |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in results:
        b, d, h, db, rec = r["phases"]["before"], r["phases"]["during"], r["health"]["during"], r["db"], r["recovery"]
        patient = "; ".join(f"{p['label']} after {p['latency']:.1f} s" for p in r["health"]["patient"]) or "-"
        half = db["orders_without_items"] + db["ledger_mismatch"]
        print(
            f"| {r['scenario']}: {r['title']} | {r['orders']} | {r['created']} / {db['orders']} | "
            f"{r['500'] + r['500_other']} | {r['503']} ({r['503_without_retry_after']}) | {r['no_answer']} | "
            f"{ms(b['p99'])} / {ms(b['max'])} | {ms(d['p99'])} / {ms(d['max'])} | "
            f"{h['answered_within_1s']} / {h['probes']}, {ms(h['max_latency'])} | {patient} | "
            f"+{sec(rec['first_good_purchase_after_end'])} | +{sec(rec['health_first_ok_after_end'])} | "
            f"{'YES' if db['oversold'] else 'no'} / {half} | exit {db['check_inventory_exit']} |"
        )


def git(*arguments: str, text: bool = True) -> subprocess.CompletedProcess:
    """A read-only git command in the project (no index refresh, no lock)."""
    return subprocess.run(  # noqa: S603 (read-only git commands)
        ["git", "--no-optional-locks", *arguments],  # noqa: S607
        cwd=PROJECT_DIR,
        capture_output=True,
        text=text,
        check=False,
    )


def export_commit(ref: str, into: Path) -> str:
    """``git archive`` of ``ref`` into ``into`` (the repository and its work tree are left alone)."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}").stdout.strip()
    if not commit:
        raise RuntimeError(f"--ref {ref!r} names no commit")
    archive = git("archive", "--format=tar", commit, text=False)
    if archive.returncode != 0:
        raise RuntimeError(f"git archive {commit} failed: {archive.stderr.decode(errors='replace')}")
    into.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")  # our own repository's archive
    return commit


def code_description(args: argparse.Namespace, commit: str | None) -> str:
    if commit:
        return f"commit {commit[:10]} (exported with git archive, --ref {args.ref})"
    head = git("rev-parse", "--short", "HEAD").stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return f"the work tree at {head}" + (" with uncommitted changes" if dirty else "")


# --- Main ------------------------------------------------------------------------------------------


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    print(f"Faults during a sale, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}")
    stack = Stack(args)
    print(f"  temp dir {stack.tmp}")
    results = []
    try:
        try:
            stack.start()
            setup_django(stack.child_env(), stack.app_dir)
            tokens = seed_buyers()
            preflight(args, tokens)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"error: could not start: {exc}", file=sys.stderr)
            if stack.app_log.exists():
                print(stack.read_app_log(max(0, stack.app_log_size() - 3000)), file=sys.stderr)
            return 2
        for key in args.scenarios:
            results.append(run_scenario(SCENARIOS[key], stack, tokens, args))
        print_summary(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything this run started", file=sys.stderr)
        return 130
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        with contextlib.suppress(Exception):
            close_db()
        stack.close()
    failed = [(r["scenario"], text) for r in results for ok, text in r["checks"] if not ok]
    print(f"\n{len(failed)} check(s) failed" + (": " + "; ".join(f"{s}: {t}" for s, t in failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
