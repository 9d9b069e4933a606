"""Does ``POST /auth/password/reset`` take longer for an address with an account than without?

It must not (issue 13: no account enumeration, no timing difference worth measuring). The
request queues the same task for any address (``accounts.passwords.password_reset_request``):
the account is looked up by the worker, so the request itself does no SQL either way. This
script measures the two answers through the whole Django stack in process (as gunicorn would
call it; the task is really sent to the Celery broker, Redis, not run eagerly), alternating
known and unknown addresses, and reports their wall-time distributions side by side.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventflow_cost REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/reset_timing.py [--requests 2000]

It uses a scratch database (created and migrated if missing) and Redis db, and deletes the
queued messages afterwards. Results are noted in bench/README.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"  # the request sends the task, as in production
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("THROTTLE_ANON_RATE", "1000000/min")
os.environ.setdefault("PASSWORD_RESET_RATE_PER_IP", "1000000/m")
os.environ.setdefault("CODE_EMAIL_RATE_PER_ACCOUNT", "1000000/h")


def _environ(body: bytes) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/auth/password/reset",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "HTTP_ACCEPT": "application/json",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[int(q * (len(ordered) - 1))] * 1000  # noqa: E731
    return f"median {p(0.5):.3f} ms, p10 {p(0.1):.3f}, p90 {p(0.9):.3f}, mean {statistics.fmean(samples) * 1000:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="per kind of address")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        print("Set DATABASE_URL to a scratch PostgreSQL database (and REDIS_URL).", file=sys.stderr)
        return 2
    from purchase_cost import _ensure_database

    _ensure_database(url)

    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    from accounts.models import User
    from eventflow.celery import app as celery_app

    call_command("migrate", verbosity=0)
    known = "timing-known@example.com"
    if not User.objects.filter(email=known).exists():
        User.objects.create_user(email=known, password=None)
    handler = WSGIHandler()
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    statuses = set()

    def call(email: str) -> float:
        body = json.dumps({"email": email}).encode()
        start = time.perf_counter()
        chunks = handler(_environ(body), lambda status, headers: statuses.add(status))
        b"".join(chunks)
        return time.perf_counter() - start

    for _ in range(50):  # warm-up
        call(known)
        call("timing-nobody@example.com")
    for n in range(args.requests):
        # alternate which goes first, so neither always follows the other
        order = (("known", known), ("unknown", f"timing-nobody-{n}@example.com"))
        for kind, email in order if n % 2 else order[::-1]:
            times[kind].append(call(email))
    celery_app.control.purge()  # the queued reset emails are not to be sent
    print(f"statuses: {sorted(statuses)}")
    for kind, samples in times.items():
        print(f"{kind:8} {len(samples)} requests: {_summary(samples)}")
    a, b = times["known"], times["unknown"]
    diff = statistics.median(a) - statistics.median(b)
    print(f"median difference (known - unknown): {diff * 1e6:+.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
