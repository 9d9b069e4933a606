"""What one purchase costs the application: CPU, SQL statements and Redis round trips per POST /orders.

The purchase calls the whole Django stack in process through the project's WSGI
handler, as gunicorn would (request signals and the per-request connection
handling included; middleware, JWT authentication, throttling, parsing, the
idempotency record, the order service, rendering), N times, each order by a
different buyer, and reports per purchase:

- CPU: this process's CPU time (``time.process_time``), so the database's own
  work is not included, and neither is any network or HTTP server cost;
- SQL statements sent (a connection execute wrapper), plus Django's connection
  health checks (``SELECT 1`` sent outside the wrapper) and transactions committed;
- Redis round trips (calls that write a command or a pipeline to a Redis connection).

It needs PostgreSQL and Redis and uses its own database (created if missing)
and Redis db, so it can run beside anything:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventflow_cost REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/purchase_cost.py [--orders 2000] [--max-per-buyer N] [--repeat 3] \\
        [--idempotency-key] [--discount-code] [--app /path/to/another/checkout]

``--idempotency-key`` sends a unique ``Idempotency-Key`` with each order (the
full-featured purchase of issue 10). ``--app`` measures another checkout of the
project (e.g. a worktree of an older commit) with this same script.
``--max-per-buyer`` sets a per-buyer limit on the ticket type. ``--seats id`` makes the ticket type
seated (rows of 20 seats, one per order) and each order names its seat (``"seats": [id]``);
``--seats best`` asks for a quantity of 1 and gets the best available seat (orders/seating.py).
``--webhook other`` registers an outbound webhook endpoint (order.placed, order.paid) for another
organizer, ``--webhook own`` for the event's own organizer: then each purchase queues one task, so run
it with ``CELERY_TASK_ALWAYS_EAGER=false CELERY_QUEUE_PREFIX=cost-`` (nobody consumes that queue;
``redis-cli -n 11 del cost-webhooks`` afterwards).
``--discount-code`` buys with a 10 % discount code limited to as many uses as there are orders
(issue 11), so each purchase looks the code up and claims a use. The first 10% of
orders are a warm-up and not counted. Results are written down in bench/README.md.

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
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if "--app" in sys.argv:  # measure another checkout with this script
    ROOT = Path(sys.argv[sys.argv.index("--app") + 1]).resolve()
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
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


def _environ(body: bytes, token: str, key: str | None) -> dict:
    """What gunicorn hands the WSGI application for ``POST /api/v1/orders``."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/orders",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "HTTP_AUTHORIZATION": token,
        "HTTP_ACCEPT": "application/json",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if key:
        environ["HTTP_IDEMPOTENCY_KEY"] = key
    return environ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--max-per-buyer", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="independent runs; the report gives each")
    parser.add_argument("--idempotency-key", action="store_true", help="send a unique Idempotency-Key per order")
    parser.add_argument("--discount-code", action="store_true", help="buy with a limited 10 %% discount code")
    parser.add_argument("--app", help="the checkout to measure (default: this one)")
    parser.add_argument("--callgrind", action="store_true", help="toggle valgrind's instrumentation around them")
    parser.add_argument(
        "--seats", choices=["id", "best"], help="a seated ticket type: buy by seat id, or best available"
    )
    parser.add_argument(
        "--webhook",
        choices=["other", "own"],
        help="an endpoint subscribed to order.placed/order.paid: another organizer's (the purchase only asks "
        "the memo), or this event's organizer's (each purchase queues a task; needs CELERY_TASK_ALWAYS_EAGER=false)",
    )
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        print("Set DATABASE_URL to a scratch PostgreSQL database (and REDIS_URL).", file=sys.stderr)
        return 2
    _ensure_database(url)

    import django

    django.setup()
    import redis.connection
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import OrganizerProfile, User
    from events.models import Event, TicketType

    call_command("migrate", verbosity=0)
    application = WSGIHandler()

    counts = {"sql": 0, "health": 0, "commit": 0, "redis": 0}

    def count(execute, sql, params, many, context):
        counts["sql"] += 1
        return execute(sql, params, many, context)

    def counting(name, original):
        def wrapper(*a, **kw):
            counts[name] += 1
            return original(*a, **kw)

        return wrapper

    connection.is_usable = counting("health", connection.is_usable)
    connection._commit = counting("commit", connection._commit)
    # One call writes one command, or a whole pipeline: a round trip.
    redis.connection.AbstractConnection.send_packed_command = counting(
        "redis", redis.connection.AbstractConnection.send_packed_command
    )

    def start_response(status, headers, exc_info=None):
        start_response.status = status

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
        if args.webhook:
            from webhooks.services import endpoint_create  # outbound webhooks (issue 12)

            hooked = profile
            if args.webhook == "other":
                other = User.objects.create_user(email=f"hook-{tag}@example.com", password=None, role="organizer")
                hooked = OrganizerProfile.objects.create(
                    user=other, display_name=f"Hook {tag}", slug=f"hook-{tag}", contact_email=other.email
                )
            endpoint_create(
                organizer=hooked, url="https://hooks.example.com/bench", events=["order.placed", "order.paid"]
            )
        fields = {"max_per_buyer": args.max_per_buyer} if args.max_per_buyer else {}
        capacity = 0 if args.seats else args.orders
        tier = TicketType.objects.create(
            event=event,
            name="GA",
            price_cents=4900,
            capacity=capacity,
            available=capacity,
            seated=bool(args.seats),
            **fields,
        )
        seat_ids = []
        if args.seats:
            from events.seats import seats_create  # this checkout's seating, not --app's

            rows = [
                {"row": f"R{n // 20}", "number": str(n % 20 + 1), "ticket_type": tier.pk} for n in range(args.orders)
            ]
            seat_ids = [seat.pk for seat in seats_create(event=event, rows=rows, limit=None)]
        buyers = User.objects.bulk_create(
            User(email=f"b{i}-{tag}@example.com", password=UNUSABLE_PASSWORD_PREFIX, role="attendee")
            for i in range(args.orders)
        )
        tokens = [f"Bearer {AccessToken.for_user(buyer)}" for buyer in buyers]
        order = {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}]}
        if args.discount_code:
            from events.models import DiscountCode

            DiscountCode.objects.create(event=event, code="BENCH10", percent_off=10, max_uses=args.orders)
            order["discount_code"] = "bench10"
        body = json.dumps(order).encode()
        warmup = max(1, args.orders // 10)
        cpu = 0.0
        totals = dict.fromkeys(counts, 0)
        timed = 0
        with connection.execute_wrapper(count):
            for i, token in enumerate(tokens):
                if args.callgrind and i == warmup:
                    _instrument("on")
                counts.update(dict.fromkeys(counts, 0))
                if args.seats == "id":
                    body = json.dumps({"event": event.pk, "seats": [seat_ids[i]]}).encode()
                environ = _environ(body, token, f"{tag}-{i}" if args.idempotency_key else None)
                started = time.process_time()
                response = application(environ, start_response)
                content = b"".join(response)
                response.close()  # request_finished: what gunicorn does after writing the response
                elapsed = time.process_time() - started
                if not start_response.status.startswith("201"):
                    print(f"order {i}: {start_response.status} {content[:200]!r}", file=sys.stderr)
                    return 1
                if i >= warmup:
                    cpu += elapsed
                    timed += 1
                    for name, value in counts.items():
                        totals[name] += value
        if args.callgrind:
            _instrument("off")
        per = {name: value / timed for name, value in totals.items()}
        results.append(cpu / timed * 1000)
        print(
            f"run {run + 1}: {timed} purchases, CPU {cpu / timed * 1000:.2f} ms, SQL {per['sql']:.1f} statements "
            f"+ {per['health']:.1f} health checks in {per['commit']:.1f} transactions, "
            f"Redis {per['redis']:.1f} round trips per purchase"
        )
    print(
        f"CPU per purchase: median {statistics.median(results):.2f} ms (runs: {', '.join(f'{c:.2f}' for c in results)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
