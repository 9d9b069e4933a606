"""What one purchase costs the application: CPU, SQL statements and cache commands per POST /orders.

The purchase path calls the whole Django stack in process (middleware, JWT
authentication, throttling, parsing, the order service, the response), through
Django's test client, N times, each order by a different buyer, and reports per
purchase:

- CPU: this process's CPU time (``time.process_time``), so the database's own
  work is not included, and neither is any network or HTTP server cost;
- SQL statements sent (counted by a connection execute wrapper);
- cache commands (calls into Django's cache API, which is Redis in production).

It needs PostgreSQL and Redis and uses its own database (created if missing)
and Redis db, so it can run beside anything:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventflow_cost REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/purchase_cost.py [--orders 2000] [--max-per-buyer N] [--repeat 3]

``--max-per-buyer`` sets a per-buyer limit on the ticket type (commits that have
the field only), to measure what enforcing it adds. The first 10% of orders are
a warm-up and not counted. Results are written down in bench/README.md.

CPU time on a shared virtual machine varies by 20% or more between identical
runs. For a repeatable number, count instructions instead: under valgrind,
``--callgrind`` switches instrumentation on for the timed purchases only, and
callgrind's total divided by the purchases is instructions per purchase (the
same for the same code and inputs, whatever else the machine does)::

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \
        .venv/bin/python bench/purchase_cost.py --orders 300 --repeat 1 --callgrind
    callgrind_annotate /tmp/cg.out | grep 'PROGRAM TOTALS'    # then divide by the purchases timed
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("THROTTLE_USER_RATE", "1000000/min")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")


def _ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _instrument(state: str) -> None:
    """Switch valgrind's instrumentation of this process on or off (callgrind_control)."""
    control = shutil.which("callgrind_control")
    if control is None:
        raise SystemExit("--callgrind needs valgrind's callgrind_control on PATH (and to run under valgrind)")
    subprocess.run([control, "-i", state, str(os.getpid())], check=True, capture_output=True)  # noqa: S603


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--max-per-buyer", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="independent runs; the report gives each")
    parser.add_argument("--callgrind", action="store_true", help="toggle valgrind's instrumentation around them")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        print("Set DATABASE_URL to a scratch PostgreSQL database (and REDIS_URL).", file=sys.stderr)
        return 2
    _ensure_database(url)

    import django

    django.setup()
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import OrganizerProfile, User
    from events.models import Event, TicketType

    call_command("migrate", verbosity=0)

    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    cache_calls = 0
    originals = {}
    for name in ("get", "set", "add", "delete", "incr", "get_many", "set_many", "delete_many", "touch", "has_key"):
        original = getattr(cache, name)
        originals[name] = original

        def wrapper(*a, _original=original, **kw):
            nonlocal cache_calls
            cache_calls += 1
            return _original(*a, **kw)

        setattr(cache, name, wrapper)

    results = []
    for run in range(args.repeat):
        tag = uuid.uuid4().hex[:8]
        owner = User.objects.create_user(email=f"org-{tag}@example.com", password=None, role="organizer")
        profile = OrganizerProfile.objects.create(
            user=owner, display_name=f"Cost {tag}", slug=f"cost-{tag}", contact_email=owner.email
        )
        now = timezone.now()
        event = Event.objects.create(
            organizer=profile,
            title=f"Cost {tag}",
            slug=f"cost-{tag}",
            starts_at=now + timezone.timedelta(days=30),
            ends_at=now + timezone.timedelta(days=30, hours=3),
            status=Event.Status.PUBLISHED,
            published_at=now,
        )
        fields = {"max_per_buyer": args.max_per_buyer} if args.max_per_buyer else {}
        tier = TicketType.objects.create(
            event=event, name="GA", price_cents=4900, capacity=args.orders, available=args.orders, **fields
        )
        buyers = User.objects.bulk_create(
            User(email=f"b{i}-{tag}@example.com", password=UNUSABLE_PASSWORD_PREFIX, role="attendee")
            for i in range(args.orders)
        )
        tokens = [f"Bearer {AccessToken.for_user(buyer)}" for buyer in buyers]
        body = {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}]}
        client = Client()
        warmup = max(1, args.orders // 10)
        cpu = sql = calls = 0.0
        timed = 0
        with connection.execute_wrapper(count):
            for i, token in enumerate(tokens):
                if args.callgrind and i == warmup:
                    _instrument("on")
                statements = cache_calls = 0
                started = time.process_time()
                response = client.post(
                    "/api/v1/orders", body, content_type="application/json", HTTP_AUTHORIZATION=token
                )
                elapsed = time.process_time() - started
                if response.status_code != 201:
                    print(f"order {i}: {response.status_code} {response.content[:200]!r}", file=sys.stderr)
                    return 1
                if i >= warmup:
                    cpu, sql, calls, timed = cpu + elapsed, sql + statements, calls + cache_calls, timed + 1
        if args.callgrind:
            _instrument("off")
        results.append((cpu / timed * 1000, sql / timed, calls / timed))
        print(
            f"run {run + 1}: {timed} purchases, CPU {cpu / timed * 1000:.2f} ms, "
            f"SQL {sql / timed:.1f} statements, cache {calls / timed:.1f} commands per purchase"
        )
    cpus = [r[0] for r in results]
    print(f"CPU per purchase: median {statistics.median(cpus):.2f} ms (runs: {', '.join(f'{c:.2f}' for c in cpus)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
