"""Browser clients: the refresh token in an HttpOnly cookie, its CSRF check, and CORS (accounts.browser)."""

from __future__ import annotations

import pytest
from django.core import checks
from rest_framework.test import APIClient

from accounts.models import TokenFamily

from .factories import DEFAULT_PASSWORD, UserFactory
from .test_auth import assert_problem

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
CSRF = "/api/v1/auth/csrf"
ME = "/api/v1/users/me"
COOKIE = "eventflow_refresh"
SPA = "https://app.example.com"
EVIL = "https://evil.example.net"


@pytest.fixture
def cookie_mode(settings):
    settings.AUTH_REFRESH_COOKIE = True
    settings.CORS_ALLOWED_ORIGINS = [SPA]
    settings.CORS_ALLOW_CREDENTIALS = True


@pytest.fixture
def user():
    return UserFactory(email="ada@example.com")


def browser() -> APIClient:
    """A browser tab of the SPA: cookies kept, CSRF enforced (Django's test client skips it by default),
    and the SPA's Origin on every request, as browsers send it."""
    client = APIClient(enforce_csrf_checks=True)
    client.defaults["HTTP_ORIGIN"] = SPA
    return client


def sign_in(client: APIClient, user) -> dict:
    r = client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})
    assert r.status_code == 200, r.content
    return r.json()


def csrf_token(client: APIClient) -> str:
    r = client.get(CSRF)
    assert r.status_code == 200, r.content
    assert r["Cache-Control"] == "no-store"
    return r.json()["csrf_token"]


def test_a_browser_sign_in_sets_the_refresh_cookie_and_keeps_the_token_out_of_the_body(cookie_mode, user):
    # when
    r = browser().post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})

    # then
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"access"}
    cookie = r.cookies[COOKIE]
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/api/v1/auth/"
    assert cookie["max-age"] == 7 * 24 * 3600
    family = TokenFamily.objects.get(user=user)
    assert family.current_jti  # the cookie is this session's refresh token
    # the CSRF cookie the refresh will be checked against comes with it (readable by scripts)
    assert r.cookies["csrftoken"].value
    assert not r.cookies["csrftoken"]["httponly"]


def test_registration_from_a_browser_sets_the_cookie_too(cookie_mode):
    r = browser().post(REGISTER, {"email": "new@example.com", "password": "Tr1cky-Passphrase-42"})

    assert r.status_code == 201, r.content
    assert set(r.json()) == {"user", "access"}
    assert r.cookies[COOKIE]["httponly"] is True


def test_refresh_with_the_cookie_and_the_csrf_token_rotates_the_cookie(cookie_mode, user):
    # given
    client = browser()
    sign_in(client, user)
    first = client.cookies[COOKIE].value
    token = csrf_token(client)

    # when
    r = client.post(REFRESH, {}, HTTP_X_CSRFTOKEN=token)

    # then
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"access"}
    second = r.cookies[COOKIE].value
    assert second
    assert second != first
    assert r.cookies[COOKIE]["httponly"] is True
    # the access token works; the rotated-away refresh token is dead (and its reuse ends the session)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert client.get(ME).json()["email"] == user.email
    assert_problem(APIClient().post(REFRESH, {"refresh": first}), 401, "token_not_valid")


def test_refresh_with_the_cookie_but_no_csrf_token_is_refused_and_changes_nothing(cookie_mode, user):
    # given
    client = browser()
    sign_in(client, user)
    before = TokenFamily.objects.get(user=user).current_jti

    # when: a forged request carries the cookie (the browser adds it) but cannot know the token
    r = client.post(REFRESH, {})

    # then
    body = assert_problem(r, 403, "csrf_failed")
    assert "CSRF token" in body["reason"]
    assert COOKIE not in r.cookies  # a forged request must not sign the user out either
    family = TokenFamily.objects.get(user=user)
    assert family.current_jti == before
    assert family.ended_at is None


def test_refresh_with_a_wrong_csrf_token_is_refused(cookie_mode, user):
    client = browser()
    sign_in(client, user)
    csrf_token(client)

    r = client.post(REFRESH, {}, HTTP_X_CSRFTOKEN="x" * 64)

    assert_problem(r, 403, "csrf_failed")


def test_refresh_with_the_cookie_from_another_origin_is_refused(cookie_mode, user):
    # given: a valid cookie and CSRF token, but the request comes from a page of another origin
    client = browser()
    sign_in(client, user)
    token = csrf_token(client)
    before = TokenFamily.objects.get(user=user).current_jti

    # when
    r = client.post(REFRESH, {}, HTTP_X_CSRFTOKEN=token, HTTP_ORIGIN=EVIL)

    # then
    body = assert_problem(r, 403, "csrf_failed")
    assert EVIL in body["reason"]
    assert TokenFamily.objects.get(user=user).current_jti == before


def test_the_api_s_own_origin_is_trusted_without_being_listed(cookie_mode, settings, user):
    settings.CORS_ALLOWED_ORIGINS = []
    client = browser()
    client.defaults["HTTP_ORIGIN"] = "http://testserver"
    sign_in(client, user)

    r = client.post(REFRESH, {}, HTTP_X_CSRFTOKEN=csrf_token(client))

    assert r.status_code == 200, r.content


def test_logout_with_the_cookie_ends_the_session_and_clears_the_cookie(cookie_mode, user):
    # given
    client = browser()
    access = sign_in(client, user)["access"]
    token = csrf_token(client)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    # when
    r = client.post(LOGOUT, {}, HTTP_X_CSRFTOKEN=token)

    # then
    assert r.status_code == 204, r.content
    assert r.cookies[COOKIE].value == ""
    assert r.cookies[COOKIE]["max-age"] == 0
    assert r.cookies[COOKIE]["path"] == "/api/v1/auth/"
    family = TokenFamily.objects.get(user=user)
    assert family.ended_at is not None
    assert family.end_reason == TokenFamily.EndReason.LOGOUT
    # and the next refresh has no cookie: sign in again
    assert_problem(client.post(REFRESH, {}, HTTP_X_CSRFTOKEN=token), 401, "token_not_valid")


def test_logout_with_the_cookie_needs_the_csrf_token(cookie_mode, user):
    client = browser()
    access = sign_in(client, user)["access"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    r = client.post(LOGOUT, {})

    assert_problem(r, 403, "csrf_failed")
    assert TokenFamily.objects.get(user=user).ended_at is None


def test_a_dead_cookie_is_cleared_when_the_refresh_fails(cookie_mode, user):
    # given: the session ended elsewhere (a password change, staff, the sessions page)
    client = browser()
    sign_in(client, user)
    token = csrf_token(client)
    TokenFamily.objects.filter(user=user).update(ended_at="2026-01-01T00:00:00Z")

    # when
    r = client.post(REFRESH, {}, HTTP_X_CSRFTOKEN=token)

    # then
    assert_problem(r, 401, "token_not_valid")
    assert r.cookies[COOKIE].value == ""
    assert r.cookies[COOKIE]["max-age"] == 0


def test_a_browser_without_the_cookie_is_told_to_sign_in_and_others_to_send_the_token(cookie_mode):
    assert_problem(browser().post(REFRESH, {}, HTTP_X_CSRFTOKEN="x" * 32), 401, "token_not_valid")
    body = assert_problem(APIClient().post(REFRESH, {}), 400, "invalid")
    assert "refresh" in body["errors"]


def test_clients_without_an_origin_keep_the_token_in_the_body_and_need_no_csrf(cookie_mode, user):
    # given: an app or a server, with the cookie mode on
    client = APIClient(enforce_csrf_checks=True)

    # when
    r = client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})

    # then
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"access", "refresh"}
    assert COOKIE not in r.cookies
    r = client.post(REFRESH, {"refresh": r.json()["refresh"]})
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"access", "refresh"}
    assert COOKIE not in r.cookies


def test_a_body_token_from_a_browser_needs_no_csrf(cookie_mode, user):
    # a forged request cannot know a refresh token: the token itself is the proof
    refresh = APIClient().post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).json()["refresh"]

    r = browser().post(REFRESH, {"refresh": refresh})

    assert r.status_code == 200, r.content
    assert set(r.json()) == {"access", "refresh"}


def test_with_the_cookie_off_browsers_get_the_body_as_before(user):
    client = browser()

    r = client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})

    assert r.status_code == 200, r.content
    assert set(r.json()) == {"access", "refresh"}
    assert COOKIE not in r.cookies
    # a cookie planted by hand is ignored: without the setting, only the body counts
    client.cookies[COOKIE] = r.json()["refresh"]
    body = assert_problem(client.post(REFRESH, {}), 400, "invalid")
    assert "refresh" in body["errors"]


def test_the_cookie_flags_follow_the_settings(cookie_mode, settings, user):
    settings.AUTH_REFRESH_COOKIE_SAMESITE = "Lax"
    settings.AUTH_REFRESH_COOKIE_SECURE = False
    settings.AUTH_REFRESH_COOKIE_NAME = "rt"
    settings.AUTH_REFRESH_COOKIE_PATH = "/api/v1/auth/refresh"

    r = browser().post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})

    cookie = r.cookies["rt"]
    assert (cookie["samesite"], cookie["secure"], cookie["path"], cookie["httponly"]) == (
        "Lax",
        "",
        "/api/v1/auth/refresh",
        True,
    )


# --- CORS ------------------------------------------------------------------------------------


def preflight(origin: str, path: str = REFRESH):
    return APIClient().options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-csrftoken",
    )


def test_a_preflight_from_an_allowed_origin_is_answered_and_cached(cookie_mode):
    r = preflight(SPA)

    assert r.status_code == 200
    assert r["Access-Control-Allow-Origin"] == SPA
    assert r["Access-Control-Allow-Credentials"] == "true"
    allowed = {h.strip() for h in r["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-csrftoken", "idempotency-key", "if-none-match"} <= allowed
    assert "POST" in r["Access-Control-Allow-Methods"]
    assert r["Access-Control-Max-Age"] == "7200"


def test_a_preflight_from_another_origin_gets_no_cors_headers(cookie_mode):
    r = preflight(EVIL)

    assert "Access-Control-Allow-Origin" not in r
    assert "Access-Control-Allow-Credentials" not in r


def test_responses_to_an_allowed_origin_expose_the_headers_clients_need(cookie_mode):
    r = APIClient().get("/api/v1/events", HTTP_ORIGIN=SPA)

    assert r.status_code == 200
    assert r["Access-Control-Allow-Origin"] == SPA
    exposed = {h.strip() for h in r["Access-Control-Expose-Headers"].split(",")}
    assert {"Retry-After", "ETag", "Location", "X-Request-ID", "Content-Disposition"} <= exposed
    assert "origin" in r["Vary"].lower()


def test_credentials_cross_origins_only_with_the_cookie_on(settings):
    settings.CORS_ALLOWED_ORIGINS = [SPA]

    r = preflight(SPA)

    assert r["Access-Control-Allow-Origin"] == SPA
    assert "Access-Control-Allow-Credentials" not in r


def test_no_origin_is_allowed_by_default():
    assert "Access-Control-Allow-Origin" not in preflight(SPA)


def test_with_no_origin_allowed_cors_stays_out_of_the_way(settings):
    # the default: the middleware steps aside (not even Vary: Origin), whatever the request says
    r = APIClient().get("/api/v1/events", HTTP_ORIGIN=SPA)

    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r
    assert "origin" not in r.get("Vary", "").lower()
    settings.CORS_ALLOWED_ORIGINS = [SPA]
    # once an origin is allowed, every response varies by Origin (a shared cache must not mix them)
    assert "origin" in APIClient().get("/api/v1/events")["Vary"].lower()


def test_check_deploy_warns_of_a_refresh_cookie_without_secure(cookie_mode, settings):
    def deploy_check_ids() -> set[str]:
        return {m.id for m in checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])}

    assert "accounts.W130" not in deploy_check_ids()
    settings.AUTH_REFRESH_COOKIE_SECURE = False
    assert "accounts.W130" in deploy_check_ids()
