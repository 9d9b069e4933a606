"""What a catalogue GET costs the application, served from the cache and rebuilt: CPU per request.

Calls Django's WSGI handler in process (the whole middleware stack, URL
routing, DRF's authentication and anonymous throttling, the view, the
renderer), with an environ like a WSGI server's, for anonymous requests to

- ``GET /api/v1/events`` (a page of 20),
- ``GET /api/v1/events?city=...&ordering=price&page_size=10`` (filters and pagination),
- ``GET /api/v1/events/{id}`` (detail with 3 ticket types and live availability),

in two states, alternating in blocks in the same run:

- cached: the body is in the cache (the first request of a block warms it);
- uncached: the catalogue's cache versions are bumped before every request
  (outside the timed window), as any change to an event does, so every
  request rebuilds its body from PostgreSQL and stores it again.

It reports this process's CPU time (``time.process_time``) per request, so the
work of PostgreSQL and Redis is not counted, nor any HTTP server's; and the
ratio uncached / cached (issue 10's target: at least 5). When the responses
carry an ``ETag``, it also times a revalidation (``If-None-Match`` → 304).

It needs PostgreSQL and Redis and uses its own database (created if missing)
and Redis db, so it can run beside anything; it seeds 60 published events once::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventflow_catalogue REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/catalogue.py [--requests 300] [--rounds 3]

The throttles stay on at their configured rates (their Redis bookkeeping is
part of every request); each request comes from another client address, as a
catalogue's many anonymous visitors do, so none is throttled. Results are in bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import statistics
import sys
import time
import urllib.parse
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

EVENTS = 60
SEED_SLUG = "bench-catalogue"

from common import ensure_database  # noqa: E402  (bench/, beside this script)


def _seed() -> list[int]:
    """60 published events a month or more ahead in three cities, 3 ticket types each; once per database."""
    from django.utils import timezone

    from accounts.models import OrganizerProfile, User
    from events.models import Category, Event, TicketType

    profile = OrganizerProfile.objects.filter(slug=SEED_SLUG).first()
    if profile is None:
        owner = User.objects.create_user(email=f"{SEED_SLUG}@example.com", password=None, role="organizer")
        profile = OrganizerProfile.objects.create(
            user=owner, display_name="Catalogue bench", slug=SEED_SLUG, contact_email=owner.email
        )
        now = timezone.now()
        cities = ["Berlin", "Lisbon", "Nairobi"]
        for i in range(EVENTS):
            starts = now + timedelta(days=30 + i)
            event = Event.objects.create(
                organizer=profile,
                title=f"Catalogue show {i}",
                slug=f"catalogue-show-{i}",
                description="An evening of music and more, with a long enough description to be realistic. " * 3,
                category=Category.MUSIC,
                venue_name="Main Hall",
                address="1 Example Street",
                city=cities[i % 3],
                country="DE",
                starts_at=starts,
                ends_at=starts + timedelta(hours=3),
                status=Event.Status.PUBLISHED,
                published_at=now,
            )
            TicketType.objects.bulk_create(
                TicketType(event=event, name=name, price_cents=price, capacity=500, available=500, max_per_order=10)
                for name, price in (("Early bird", 1900 + i), ("General admission", 2900 + i), ("VIP", 9900 + i))
            )
    events = Event.objects.filter(organizer=profile).order_by("starts_at")
    return list(events.values_list("pk", flat=True))


def _server_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and all its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # a worker that exited; its CPU is gone with it
    return total


_clients = iter(range(1, 1 << 24))


def _environ(path: str, query: str, extra: dict[str, str] | None = None) -> dict:
    client = next(_clients)
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": f"10.{client >> 16}.{(client >> 8) & 255}.{client & 255}",
        "HTTP_HOST": "testserver",
        "HTTP_ACCEPT": "application/json",
        "HTTP_USER_AGENT": "bench/catalogue",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    environ.update(extra or {})
    return environ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per endpoint, state and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating cached/uncached rounds")
    parser.add_argument("--url", help="measure a running server over HTTP instead (e.g. http://127.0.0.1:18090)")
    parser.add_argument("--server-pid", type=int, help="with --url: the server's (gunicorn master's) process id")
    args = parser.parse_args()
    if args.url and not args.server_pid:
        parser.error("--url needs --server-pid: the server's CPU is what is measured")

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        print("Set DATABASE_URL to a scratch PostgreSQL database and REDIS_URL to a Redis db.", file=sys.stderr)
        return 2
    ensure_database(url)

    import django

    django.setup()
    from django.core.cache import cache
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    from events import cache as catalogue_cache

    call_command("migrate", verbosity=0)
    event_ids = _seed()
    app = WSGIHandler()

    def call_in_process(path: str, query: str = "", extra: dict | None = None) -> tuple[str, dict, bytes]:
        seen = {}

        def start_response(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, dict(headers)

        result = app(_environ(path, query, extra), start_response)
        try:
            body = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        return seen["status"], seen["headers"], body

    def call_over_http(path: str, query: str = "", extra: dict | None = None) -> tuple[str, dict, bytes]:
        client = _environ(path, query)["REMOTE_ADDR"]  # the next client address, sent as the proxy would
        headers = {"Accept": "application/json", "X-Forwarded-For": client, "Connection": "close"}
        if extra and "HTTP_IF_NONE_MATCH" in extra:
            headers["If-None-Match"] = extra["HTTP_IF_NONE_MATCH"]
        connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        try:
            connection.request("GET", f"{path}?{query}" if query else path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            return f"{response.status} {response.reason}", dict(response.getheaders()), body
        finally:
            connection.close()

    if args.url:
        target = urllib.parse.urlsplit(args.url)
        call, cpu = call_over_http, lambda: _server_cpu(args.server_pid)
    else:
        call, cpu = call_in_process, time.process_time

    commands = 0
    for name in ("get", "set", "add", "delete", "get_many", "set_many", "delete_many", "incr", "touch", "has_key"):
        original = getattr(cache, name)

        def counted(*a, _original=original, **kw):
            nonlocal commands
            commands += 1
            return _original(*a, **kw)

        setattr(cache, name, counted)

    def invalidate(event_id: int) -> None:
        catalogue_cache.catalogue_changed(event_id)  # outside a transaction: bumps at once

    detail_id = event_ids[5]
    endpoints = {
        "list": ("/api/v1/events", ""),
        "list+filters": ("/api/v1/events", "city=Lisbon&ordering=price&page_size=10&page=2"),
        "detail": (f"/api/v1/events/{detail_id}", ""),
    }
    for name, (path, query) in endpoints.items():
        status, headers, body = call(path, query)
        if not status.startswith("200"):
            print(f"{name}: {status} {body[:300]!r}", file=sys.stderr)
            return 1
        print(
            f"{name}: {len(body)} bytes, ETag {headers.get('ETag', '-')}, "
            f"Cache-Control {headers.get('Cache-Control', '-')}"
        )

    def timed(name: str, state: str) -> float:
        path, query = endpoints[name]
        used = 0.0
        etag = None
        if state in ("cached", "304"):
            _, headers, _ = call(path, query)  # warm
            etag = headers.get("ETag")
            if state == "304" and etag is None:
                return float("nan")
        extra = {"HTTP_IF_NONE_MATCH": etag} if state == "304" else None
        expected = "304" if state == "304" else "200"
        sent = 0
        for _ in range(args.requests):
            if state == "uncached":
                invalidate(detail_id)
            mark = commands
            started = cpu()
            status, _, body = call(path, query, extra)
            used += cpu() - started
            sent += commands - mark
            if not status.startswith(expected):
                raise SystemExit(f"{name} {state}: {status} {body[:300]!r}")
        if not args.url:
            cache_commands[name, state] = sent
        return used / args.requests * 1000

    cache_commands = {}
    states = ("uncached", "cached", "304")
    samples = {(name, state): [] for name in endpoints for state in states}
    for round_ in range(args.rounds):
        for name in endpoints:
            for state in states if round_ % 2 == 0 else reversed(states):
                samples[name, state].append(timed(name, state))
        print(
            f"round {round_ + 1}: "
            + "; ".join(
                f"{name} uncached {samples[name, 'uncached'][-1]:.2f} ms, cached {samples[name, 'cached'][-1]:.2f} ms"
                + (
                    f", 304 {samples[name, '304'][-1]:.2f} ms"
                    if samples[name, "304"][-1] == samples[name, "304"][-1]
                    else ""
                )
                for name in endpoints
            )
        )
    print()
    print(f"{'endpoint':<14} {'uncached ms':>12} {'cached ms':>10} {'304 ms':>8} {'uncached/cached':>16}")
    for name in endpoints:
        uncached = statistics.median(samples[name, "uncached"])
        cached = statistics.median(samples[name, "cached"])
        revalidated = statistics.median(samples[name, "304"])
        ratios = [u / c for u, c in zip(samples[name, "uncached"], samples[name, "cached"], strict=True)]
        spread = f"{min(ratios):.1f}-{max(ratios):.1f}"
        shown_304 = f"{revalidated:.2f}" if revalidated == revalidated else "-"
        print(f"{name:<14} {uncached:>12.2f} {cached:>10.2f} {shown_304:>8} {uncached / cached:>9.1f}x ({spread})")
    if cache_commands:
        print(
            "cache commands per request (in process): "
            + "; ".join(
                f"{name} "
                + ", ".join(
                    f"{state} {cache_commands[name, state] / args.requests:.0f}"
                    for state in states
                    if (name, state) in cache_commands
                )
                for name in endpoints
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
