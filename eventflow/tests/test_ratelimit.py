"""Abuse limits: login lockouts (django-axes), registration per IP (django-ratelimit), DRF throttles,
and the one client-IP rule they all share (NUM_PROXIES)."""

from types import SimpleNamespace

import django_ratelimit.core
import pytest
from axes.models import AccessAttempt
from django.db.models import F
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.test_auth import assert_problem
from eventflow.api.throttling import AnonRateThrottle, UserRateThrottle

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"


def login(client, email, password, ip, **extra):
    return client.post(LOGIN, {"email": email, "password": password}, REMOTE_ADDR=ip, **extra)


def test_a_stranger_cannot_lock_the_owner_out(api_client, settings):
    owner = UserFactory()
    for attempt in range(1, 11):
        r = login(api_client, owner.email.upper(), f"guess-{attempt}", ATTACKER)
        if attempt < settings.AXES_FAILURE_LIMIT:
            assert_problem(r, 401, "invalid_credentials")
        else:  # the limit-th failure and every later one
            body = assert_problem(r, 429, "throttled")
            assert 1 <= int(r["Retry-After"]) <= 15 * 60
            assert body["retry_after"] == int(r["Retry-After"])
    # the attacker's address is locked out of this account, even with the right password
    assert_problem(login(api_client, owner.email, DEFAULT_PASSWORD, ATTACKER), 429, "throttled")
    # the owner, from their own address, signs in as usual
    r = login(api_client, owner.email, DEFAULT_PASSWORD, OWNER)
    assert r.status_code == 200, r.content
    assert r.json()["access"]
    # and the attacker's address can still sign in to its own account
    mallory = UserFactory()
    assert login(api_client, mallory.email, DEFAULT_PASSWORD, ATTACKER).status_code == 200


def test_successful_logins_are_not_limited(api_client):
    user = UserFactory()
    for _ in range(20):
        assert login(api_client, user.email, DEFAULT_PASSWORD, OWNER).status_code == 200


def test_a_correct_password_resets_the_failure_count(api_client, settings):
    user = UserFactory()
    for _round in range(3):
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            assert_problem(login(api_client, user.email, "wrong", OWNER), 401, "invalid_credentials")
        assert login(api_client, user.email, DEFAULT_PASSWORD, OWNER).status_code == 200


def test_a_lockout_ends_after_the_cool_off(api_client, settings):
    user = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(api_client, user.email, "wrong", ATTACKER)
    assert_problem(login(api_client, user.email, DEFAULT_PASSWORD, ATTACKER), 429, "throttled")
    # let the cool-off pass (the clock is not raced: the attempts are moved into the past)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME)
    assert login(api_client, user.email, DEFAULT_PASSWORD, ATTACKER).status_code == 200


def test_unknown_accounts_are_counted_too(api_client, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(api_client, "nobody@example.com", "guess", ATTACKER)
    assert_problem(login(api_client, "nobody@example.com", "guess", ATTACKER), 429, "throttled")


def test_admin_login_is_limited_like_the_api(client, settings):
    admin = UserFactory(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        r = client.post("/admin/login/", {"username": admin.email, "password": "wrong"}, REMOTE_ADDR=ATTACKER)
        assert r.status_code in (200, 429)
    r = client.post("/admin/login/", {"username": admin.email, "password": DEFAULT_PASSWORD}, REMOTE_ADDR=ATTACKER)
    assert r.status_code == 429
    assert int(r["Retry-After"]) >= 1
    assert "Too many failed sign-in attempts" in r.content.decode()
    assert "_auth_user_id" not in client.session  # the right password did not sign the attacker in

    # the same failures also lock the API login for that pair: one count for every password check
    assert_problem(login(APIClient(), admin.email, DEFAULT_PASSWORD, ATTACKER), 429, "throttled")

    # the admin, from their own address, signs in
    r = client.post(
        "/admin/login/?next=/admin/", {"username": admin.email, "password": DEFAULT_PASSWORD}, REMOTE_ADDR=OWNER
    )
    assert r.status_code == 302
    assert client.session["_auth_user_id"] == str(admin.pk)


def test_failures_are_stored_per_account_and_address(api_client):
    user = UserFactory()
    login(api_client, user.email, "wrong", ATTACKER)
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == (user.email, ATTACKER, 1)


# --- One client IP for every limit ---------------------------------------------------------


def test_forwarded_for_is_ignored_without_trusted_proxies(api_client, settings):
    settings.NUM_PROXIES = 0
    user = UserFactory()
    for i in range(settings.AXES_FAILURE_LIMIT):
        login(api_client, user.email, "wrong", ATTACKER, HTTP_X_FORWARDED_FOR=f"10.9.0.{i}")
    r = login(api_client, user.email, DEFAULT_PASSWORD, ATTACKER, HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert_problem(r, 429, "throttled")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_one_trusted_proxy_takes_the_address_it_appended(api_client, settings):
    settings.NUM_PROXIES = 1
    user = UserFactory()
    proxy = "10.0.0.2"
    for i in range(settings.AXES_FAILURE_LIMIT):  # the client forges the left part; the proxy appends the truth
        login(api_client, user.email, "wrong", proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, {ATTACKER}")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}
    assert_problem(
        login(api_client, user.email, DEFAULT_PASSWORD, proxy, HTTP_X_FORWARDED_FOR=ATTACKER), 429, "throttled"
    )
    r = login(api_client, user.email, DEFAULT_PASSWORD, proxy, HTTP_X_FORWARDED_FOR=f"{ATTACKER}, {OWNER}")
    assert r.status_code == 200


@pytest.mark.parametrize(("proxies", "forged_per_request"), [(0, True), (1, False)])
def test_drf_throttle_uses_the_same_client_ip(api_client, settings, monkeypatch, proxies, forged_per_request):
    settings.NUM_PROXIES = proxies
    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "3/min")
    for i in range(3):
        xff = f"10.7.0.{i}" if forged_per_request else f"10.7.0.{i}, {ATTACKER}"
        r = api_client.post("/api/v1/auth/refresh", {"refresh": "x"}, HTTP_X_FORWARDED_FOR=xff)
        assert r.status_code == 401
    xff = "10.7.1.1" if forged_per_request else f"10.7.1.1, {ATTACKER}"
    r = api_client.post("/api/v1/auth/refresh", {"refresh": "x"}, HTTP_X_FORWARDED_FOR=xff)
    assert_problem(r, 429, "throttled")
    assert int(r["Retry-After"]) >= 1


def _throttle_keys(kind: str) -> list[bytes]:
    """This run's throttle counters of ``kind`` (other runs may share the Redis database)."""
    from django.core.cache import cache
    from django_redis import get_redis_connection

    return get_redis_connection("default").keys(cache.make_key(f"throttle_{kind}_") + "*")


def test_anonymous_requests_are_counted_once_by_the_stricter_anonymous_throttle(api_client, monkeypatch):
    """The user throttle would count them too, by IP, at a looser rate that can never decide."""
    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "2/min")
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "600/min")
    assert api_client.get("/api/v1/events").status_code == 200
    assert _throttle_keys("anon")
    assert not _throttle_keys("user")
    assert api_client.get("/api/v1/events").status_code == 200
    assert_problem(api_client.get("/api/v1/events"), 429, "throttled")


def test_a_looser_anonymous_rate_leaves_anonymous_callers_to_the_user_rate_as_well(api_client, monkeypatch):
    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "600/min")
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "2/min")
    for _ in range(2):
        assert api_client.get("/api/v1/events").status_code == 200
    assert _throttle_keys("user")
    assert_problem(api_client.get("/api/v1/events"), 429, "throttled")


def test_signed_in_callers_are_still_counted_by_user(monkeypatch):
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "2/min")
    client = APIClient()
    client.force_authenticate(UserFactory())
    for _ in range(2):
        assert client.get("/api/v1/users/me").status_code == 200
    assert not _throttle_keys("anon")
    assert_problem(client.get("/api/v1/users/me"), 429, "throttled")


# --- Registration -------------------------------------------------------------------------


@pytest.fixture
def frozen_ratelimit_clock(monkeypatch):
    """django-ratelimit counts in fixed windows of wall-clock time: pin the clock, so a window
    never rolls over in the middle of a test."""
    clock = SimpleNamespace(now=1_800_000_000.0)
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: clock.now))
    return clock


def test_register_is_limited_per_ip(api_client, frozen_ratelimit_clock):
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
    # another address is not affected, and the window passes
    r = api_client.post(
        "/api/v1/auth/register", {"email": "r9@example.com", "password": "Tr1cky-Passphrase-42"}, REMOTE_ADDR="10.2.0.2"
    )
    assert r.status_code == 201
    frozen_ratelimit_clock.now += 61
    r = api_client.post(
        "/api/v1/auth/register",
        {"email": "r10@example.com", "password": "Tr1cky-Passphrase-42"},
        REMOTE_ADDR="10.2.0.1",
    )
    assert r.status_code == 201


def test_rate_limit_counters_live_in_redis(api_client, frozen_ratelimit_clock, settings):
    from django_redis import get_redis_connection

    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    redis = get_redis_connection("default")
    assert not list(redis.scan_iter(f"{prefix}:*:rl:*"))
    api_client.post("/api/v1/auth/register", {"email": "c@example.com", "password": "Tr1cky-Passphrase-42"})
    # django-ratelimit's own counter ("rl:" keys), not only DRF's throttle history beside it
    assert list(redis.scan_iter(f"{prefix}:*:rl:*"))


def test_an_ipv6_client_is_one_client_per_64_block(api_client):
    user = UserFactory()
    for i in range(5):  # each guess from another address of the same /64
        login(api_client, user.email, "wrong", f"2001:db8:1:2::{i + 1:x}")
    assert_problem(login(api_client, user.email, DEFAULT_PASSWORD, "2001:db8:1:2:ffff::9"), 429, "throttled")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"2001:db8:1:2::"}
    assert login(api_client, user.email, DEFAULT_PASSWORD, "2001:db8:1:3::1").status_code == 200  # another block
