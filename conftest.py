"""Suite-wide fixtures. The suite runs against real PostgreSQL and Redis."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient


def _services_problem() -> str | None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return "DATABASE_URL must point at PostgreSQL (the suite never runs on SQLite)."
    if not settings.REDIS_URL:
        return "REDIS_URL must point at Redis."
    import psycopg
    import redis

    try:
        psycopg.connect(
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {db['HOST']}:{db['PORT']} ({exc})."
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {settings.REDIS_URL} ({exc})."
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = _services_problem()
    if problem:
        pytest.exit(
            f"{problem}\nThe tests need PostgreSQL and Redis: start them, or set DATABASE_URL and REDIS_URL "
            "(`make test` uses postgres://postgres@127.0.0.1:5432/eventflow and redis://127.0.0.1:6379/15).",
            returncode=3,
        )


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache and a closed Redis breaker: no throttle counts, cached
    pages or a Redis outage simulated by another test leak between tests."""
    from eventflow.redis_breaker import BREAKER

    BREAKER.reset()
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzz run's coverage, when it ran (eventflow/tests/test_fuzz.py)."""
    import sys

    fuzz = sys.modules.get("eventflow.tests.test_fuzz")
    line = fuzz.summary() if fuzz is not None else None
    if line:
        terminalreporter.write_line(line)
