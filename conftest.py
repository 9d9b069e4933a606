"""Suite-wide fixtures. The suite runs against real PostgreSQL and Redis.

Each run owns its namespace, so two checkouts (or two runs) on one machine never
touch each other's data: its own test database (``test_<name>_<pid>``), its own
cache key prefix in Redis (the suite empties only its own keys) and its own
Celery queue. Databases left by runs that were killed are dropped at the start
of the next run.
"""

from __future__ import annotations

import os
import re
import sys

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

RUN_ID = str(os.getpid())


def _test_database_name() -> str:
    return f"test_{settings.DATABASES['default']['NAME']}_{RUN_ID}"


def pytest_configure(config: pytest.Config) -> None:
    """Give this run its own Redis namespace and Celery queues before anything uses them."""
    from django.test.signals import setting_changed

    if "default" in settings.CACHES and "redis" in settings.CACHES["default"]["BACKEND"].lower():
        settings.CACHES["default"]["KEY_PREFIX"] = f"test-{RUN_ID}"
        setting_changed.send(sender=None, setting="CACHES", value=settings.CACHES, enter=True)
    # The channel layer's keys and groups likewise (realtime; Channels resets its layers on the signal).
    if "CONFIG" in settings.CHANNEL_LAYERS["default"]:
        settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"test-{RUN_ID}-ws"
        setting_changed.send(sender=None, setting="CHANNEL_LAYERS", value=settings.CHANNEL_LAYERS, enter=True)
    # Realtime pushes are recorded only in realtime's own tests (realtime/tests), which send them.
    from realtime.publish import publisher

    publisher.enabled = False
    settings.CELERY_TASK_DEFAULT_QUEUE = f"eventflow-test-{RUN_ID}"
    settings.CELERY_QUEUE_PREFIX = f"eventflow-test-{RUN_ID}-"  # the named queues: ...-expiry, ...-email
    # Every test client builds its own middleware, and WhiteNoise (serving from the finders) scans
    # every static file when it starts: 0.1-0.3 s per client, which the concurrency tests (a
    # client per buyer) paid hundreds of times. Looked up per request instead, as in development.
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """This run's own test database (pytest-django creates it, and drops it at the end)."""
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = _test_database_name()


def _connect_admin_database():
    import psycopg

    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        dbname="postgres",
        connect_timeout=3,
        autocommit=True,
    )


def _services_problem() -> str | None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] not in {"django.db.backends.postgresql", "eventflow.db.postgresql"}:
        return "TEST_DATABASE_URL must point at PostgreSQL (the suite never runs on SQLite)."
    if not settings.REDIS_URL:
        return "TEST_REDIS_URL must point at Redis."
    import psycopg
    import redis

    try:
        _connect_admin_database().close()
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {db['HOST']}:{db['PORT']} (TEST_DATABASE_URL): {exc}".strip()
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {settings.REDIS_URL} (TEST_REDIS_URL): {exc}"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop_databases_of_dead_runs() -> None:
    """A run that was killed leaves its test database behind; drop those whose process is gone."""
    pattern = re.compile(rf"^test_{re.escape(settings.DATABASES['default']['NAME'])}_(\d+)$")
    with _connect_admin_database() as conn:
        for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'").fetchall():
            match = pattern.match(name)
            if match and match.group(1) != RUN_ID and not _pid_alive(int(match.group(1))):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = _services_problem()
    if problem:
        # One message, naming what `make test` reads; exit code 3 (an interrupted run, not failed tests).
        sys.stderr.write(
            f"\n{problem}\nThe tests need PostgreSQL and Redis. Start them, or point `make test` elsewhere: "
            "make test TEST_DATABASE_URL=postgres://USER@HOST:5432/eventflow TEST_REDIS_URL=redis://HOST:6379/15\n"
        )
        pytest.exit("PostgreSQL or Redis unreachable", returncode=3)
    _drop_databases_of_dead_runs()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache and a closed Redis breaker: no throttle counts, cached
    pages or a Redis outage simulated by another test leak between tests. Only this run's keys go:
    another run sharing the Redis database keeps its own."""
    from eventflow.redis_breaker import BREAKER

    BREAKER.reset()
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")  # the key prefix is this run's
    else:
        cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzz run's coverage, when it ran (eventflow/tests/test_fuzz.py)."""
    fuzz = sys.modules.get("eventflow.tests.test_fuzz")
    line = fuzz.summary() if fuzz is not None else None
    if line:
        terminalreporter.write_line(line)
