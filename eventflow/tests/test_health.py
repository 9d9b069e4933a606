"""GET /api/v1/health against the real database, cache and broker."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

HEALTH = "/api/v1/health"


def test_all_up(api_client):
    r = api_client.get(HEALTH)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "cache": "ok", "broker": "ok"}
    assert r["Cache-Control"] == "no-store"


@pytest.mark.django_db(transaction=True)
def test_database_unreachable_is_503(api_client):
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
    assert r.json() == {"status": "down", "database": "down", "cache": "ok", "broker": "ok"}
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


def test_cache_down_is_degraded_not_fatal(api_client, settings):
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    r = api_client.get(HEALTH)
    assert r.status_code == 200
    assert r.json() == {"status": "degraded", "database": "ok", "cache": "down", "broker": "ok"}


def test_broker_down_is_degraded(api_client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    r = api_client.get(HEALTH)
    assert r.status_code == 200
    assert r.json() == {"status": "degraded", "database": "ok", "cache": "ok", "broker": "down"}
