"""GET /api/v1/health against the real database, cache and broker, and beat's heartbeat.

The suite runs tasks eagerly (``CELERY_TASK_ALWAYS_EAGER``), where there is no beat by design:
``beat`` is ``off``. The heartbeat's tests act as a deployment with workers (``deployed``)."""

import pytest
from django.core.cache import cache
from django.db import connection

from eventflow import heartbeat
from eventflow.api import health

pytestmark = pytest.mark.django_db

HEALTH = "/api/v1/health"
NOW = 1_800_000_000.0  # the clock /health reads, fixed: no test races a real one
FRESH = {"beat": "ok", "beat_age_seconds": 5}
OFF = {"beat": "off", "beat_age_seconds": None}


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(health, "_clock", lambda: NOW)
    return NOW


@pytest.fixture
def deployed(settings):
    """A deployment with a broker and workers (tasks are queued, not run eagerly): beat runs."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.EXPIRY_SWEEP_IN_PROCESS = False


@pytest.fixture
def fresh_beat(clock, deployed):
    """A worker ran beat's heartbeat 5 s ago."""
    heartbeat.record(now=clock - 5)


def test_all_up(api_client, fresh_beat):
    r = api_client.get(HEALTH)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "cache": "ok", "broker": "ok", **FRESH}
    assert r["Cache-Control"] == "no-store"


def test_with_tasks_run_eagerly_there_is_no_beat_and_health_stays_ok(api_client, settings, clock):
    """A broker configured but tasks run in-process (as this suite runs): no worker, so no beat by design."""
    cache.delete(heartbeat.CACHE_KEY)
    assert settings.CELERY_TASK_ALWAYS_EAGER
    assert not settings.EXPIRY_SWEEP_IN_PROCESS
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    r = api_client.get(HEALTH)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "cache": "ok", "broker": "ok", **OFF}


@pytest.mark.django_db(transaction=True)
def test_database_unreachable_is_503(api_client, fresh_beat):
    """Point the live connection at a port where no PostgreSQL listens."""
    connection.close()
    real_port = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = "1"
    try:
        r = api_client.get(HEALTH)
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port
    assert r.status_code == 503
    assert r.json() == {"status": "down", "database": "down", "cache": "ok", "broker": "ok", **FRESH}
    # and it recovers once the database is back
    assert api_client.get(HEALTH).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_api_endpoints_answer_503_problem_when_database_is_down(api_client):
    connection.close()
    real_port = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = "1"
    try:
        r = api_client.post("/api/v1/auth/login", {"email": "a@example.com", "password": "whatever-it-is"})
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port
    assert r.status_code == 503
    assert r["Content-Type"] == "application/problem+json"
    assert r.json()["code"] == "database_unavailable"
    assert "Retry-After" in r


def test_cache_down_is_degraded_not_fatal(api_client, settings, fresh_beat):
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    r = api_client.get(HEALTH)
    assert r.status_code == 200
    # the heartbeat lives in the cache: unreadable, so beat counts as down too
    assert r.json() == {
        "status": "degraded",
        "database": "ok",
        "cache": "down",
        "broker": "ok",
        "beat": "down",
        "beat_age_seconds": None,
    }


def test_broker_down_is_degraded(api_client, settings, fresh_beat):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    r = api_client.get(HEALTH)
    assert r.status_code == 200
    assert r.json() == {"status": "degraded", "database": "ok", "cache": "ok", "broker": "down", **FRESH}


# --- Beat's heartbeat ---------------------------------------------------------------------


@pytest.mark.parametrize(("age", "beat", "status"), [(0, "ok", "ok"), (90, "ok", "ok"), (91, "stale", "degraded")])
def test_the_heartbeats_age_against_the_stale_limit(api_client, settings, clock, deployed, age, beat, status):
    settings.HEALTH_BEAT_STALE_SECONDS = 90
    heartbeat.record(now=clock - age)
    r = api_client.get(HEALTH)
    assert r.status_code == 200  # a stale beat does not take the node out of the load balancer
    body = r.json()
    assert (body["status"], body["beat"], body["beat_age_seconds"]) == (status, beat, age)
    assert (body["database"], body["cache"], body["broker"]) == ("ok", "ok", "ok")


def test_a_heartbeat_never_recorded_is_down_and_degraded(api_client, clock, deployed):
    """A deployment (broker, workers) whose beat never ran: down, degraded."""
    cache.delete(heartbeat.CACHE_KEY)
    r = api_client.get(HEALTH)
    assert r.status_code == 200
    assert r.json() == {
        "status": "degraded",
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
        "beat": "down",
        "beat_age_seconds": None,
    }


def test_a_heartbeat_from_a_clock_ahead_is_age_zero(api_client, clock, deployed):
    heartbeat.record(now=clock + 3)  # the worker's host runs 3 s ahead of this one
    r = api_client.get(HEALTH)
    assert (r.json()["beat"], r.json()["beat_age_seconds"]) == ("ok", 0)


def test_without_a_broker_there_is_no_beat_and_health_stays_ok(api_client, settings, clock):
    """The embedded default (`make run`): tasks run in-process and the server sweeps holds itself."""
    cache.delete(heartbeat.CACHE_KEY)
    settings.EXPIRY_SWEEP_IN_PROCESS = True
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the sweep in process is enough on its own
    r = api_client.get(HEALTH)
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
        "beat": "off",
        "beat_age_seconds": None,
    }


def test_the_heartbeat_task_records_when_it_ran(monkeypatch, clock):
    cache.delete(heartbeat.CACHE_KEY)
    monkeypatch.setattr(heartbeat, "_clock", lambda: NOW - 7)
    heartbeat.beat_heartbeat.delay()  # eager: run here, as a worker would
    assert heartbeat.last_run() == NOW - 7
    assert health.beat_status() == ("ok", 7)


def test_beat_sends_the_heartbeat_on_the_expiry_queue(settings):
    from eventflow.celery import app, queue_name, route_task

    entry = app.conf.beat_schedule["health-heartbeat"]
    assert entry["task"] == "eventflow.heartbeat.beat_heartbeat"
    assert entry["schedule"].total_seconds() == settings.HEALTH_BEAT_SECONDS
    assert entry["options"]["expires"] == settings.HEALTH_BEAT_SECONDS
    assert route_task(entry["task"], (), {}, {}) == {"queue": queue_name("expiry")}
    assert settings.HEALTH_BEAT_STALE_SECONDS == 3 * settings.HEALTH_BEAT_SECONDS
