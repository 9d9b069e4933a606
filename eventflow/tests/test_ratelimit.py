"""Login and registration limits (django-ratelimit) and DRF throttles, counted in Redis."""

import pytest
from rest_framework.throttling import AnonRateThrottle

from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.test_auth import assert_problem

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"


def test_sixth_rapid_login_from_one_ip_is_429(api_client):
    user = UserFactory()
    for _ in range(5):
        r = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, REMOTE_ADDR="10.0.0.1")
        assert r.status_code == 200
    r = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, REMOTE_ADDR="10.0.0.1")
    body = assert_problem(r, 429, "throttled")
    assert 1 <= int(r["Retry-After"]) <= 60
    assert body["retry_after"] == int(r["Retry-After"])
    # another client is not affected
    r = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, REMOTE_ADDR="10.0.0.2")
    assert r.status_code == 200


def test_wrong_passwords_count_too(api_client):
    user = UserFactory()
    for _ in range(5):
        assert (
            api_client.post(LOGIN, {"email": user.email, "password": "wrong"}, REMOTE_ADDR="10.0.0.3").status_code
            == 401
        )
    r = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, REMOTE_ADDR="10.0.0.3")
    assert_problem(r, 429, "throttled")


def test_one_email_guessed_from_many_ips_is_limited(api_client, settings):
    user = UserFactory()
    for i in range(10):
        r = api_client.post(LOGIN, {"email": user.email.upper(), "password": "guess"}, REMOTE_ADDR=f"10.1.0.{i}")
        assert r.status_code == 401
    r = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, REMOTE_ADDR="10.1.1.1")
    assert_problem(r, 429, "throttled")
    assert int(r["Retry-After"]) > 60  # an hourly window


def test_register_is_limited_per_ip(api_client):
    for i in range(5):
        r = api_client.post(
            "/api/v1/auth/register",
            {"email": f"r{i}@example.com", "password": "Tr1cky-Passphrase-42"},
            REMOTE_ADDR="10.2.0.1",
        )
        assert r.status_code == 201
    r = api_client.post(
        "/api/v1/auth/register", {"email": "r9@example.com", "password": "Tr1cky-Passphrase-42"}, REMOTE_ADDR="10.2.0.1"
    )
    assert_problem(r, 429, "throttled")
    assert not User.objects.filter(email="r9@example.com").exists()


def test_rate_limit_counters_live_in_redis(api_client):
    from django_redis import get_redis_connection

    user = UserFactory()
    api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, REMOTE_ADDR="10.3.0.1")
    assert get_redis_connection("default").dbsize() > 0


def test_drf_anon_throttle_is_429_with_retry_after(api_client, monkeypatch):
    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "3/min")
    for _ in range(3):
        assert api_client.post("/api/v1/auth/refresh", {"refresh": "x"}).status_code == 401
    r = api_client.post("/api/v1/auth/refresh", {"refresh": "x"})
    assert_problem(r, 429, "throttled")
    assert int(r["Retry-After"]) >= 1
