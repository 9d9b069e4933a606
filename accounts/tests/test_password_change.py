"""Changing the password with the old one: the caller stays signed in, every other session ends."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime
from unittest import mock

import pytest
from rest_framework.test import APIClient

from accounts.models import TokenFamily, User

from .factories import DEFAULT_PASSWORD, UserFactory
from .test_auth import LOGIN, ME, REFRESH, assert_problem

pytestmark = pytest.mark.django_db

CHANGE = "/api/v1/auth/password/change"
NEW_PASSWORD = "quiet-meadow-compass-58"


@contextmanager
def issued_earlier(seconds: int = 30):
    """Tokens issued in here carry an ``iat`` before this second: a revocation marker written now
    (whole seconds) voids them, with no race against the clock."""
    at = datetime.fromtimestamp(time.time() - seconds, UTC)
    with mock.patch("rest_framework_simplejwt.tokens.aware_utcnow", return_value=at):
        yield


def sign_in(user: User, agent: str = "Firefox/140") -> dict:
    with issued_earlier():
        r = APIClient().post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, HTTP_USER_AGENT=agent)
    assert r.status_code == 200, r.content
    return r.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def change(client: APIClient, old: str = DEFAULT_PASSWORD, new: str = NEW_PASSWORD, **extra):
    return client.post(CHANGE, {"old_password": old, "new_password": new}, format="json", **extra)


def test_changing_the_password_keeps_the_caller_and_ends_every_other_session(django_capture_on_commit_callbacks):
    # given: signed in on a laptop and a phone
    user = UserFactory()
    laptop, phone = sign_in(user, "Laptop"), sign_in(user, "Phone")
    me = bearer(laptop["access"])

    # when: the laptop changes the password
    with django_capture_on_commit_callbacks(execute=True):
        response = change(me)

    # then
    assert response.status_code == 204, response.content
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert me.get(ME).status_code == 200  # the caller's access token still works...
    rotated = APIClient().post(REFRESH, {"refresh": laptop["refresh"]})
    assert rotated.status_code == 200  # ...and so does its session
    assert bearer(rotated.json()["access"]).get(ME).status_code == 200
    # the phone is signed out: its refresh token is refused, its access token revoked at once
    assert_problem(APIClient().post(REFRESH, {"refresh": phone["refresh"]}), 401, "token_not_valid")
    assert_problem(bearer(phone["access"]).get(ME), 401, "token_revoked")
    ended = TokenFamily.objects.get(user=user, user_agent="Phone")
    assert ended.end_reason == TokenFamily.EndReason.PASSWORD_CHANGED
    assert TokenFamily.objects.get(user=user, user_agent="Laptop").ended_at is None
    # the old password no longer signs in; the new one does
    assert APIClient().post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).status_code == 401
    assert APIClient().post(LOGIN, {"email": user.email, "password": NEW_PASSWORD}).status_code == 200


def test_a_wrong_old_password_changes_nothing():
    user = UserFactory()
    pair, other = sign_in(user), sign_in(user)
    body = assert_problem(change(bearer(pair["access"]), old="not-my-password"), 400, "invalid_password")
    assert "old_password" in body["errors"]
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    assert APIClient().post(REFRESH, {"refresh": other["refresh"]}).status_code == 200


def test_wrong_old_passwords_count_towards_the_login_lockout(settings):
    settings.AXES_FAILURE_LIMIT = 3
    user = UserFactory()
    me = bearer(sign_in(user)["access"])
    for _ in range(2):
        assert_problem(change(me, old="guess-one-two"), 400, "invalid_password")
    # the third failure locks this account for this address: 429 from then on, even with the right password
    assert_problem(change(me, old="guess-three"), 429, "throttled")
    locked = change(me)
    assert_problem(locked, 429, "throttled")
    assert int(locked["Retry-After"]) > 0
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    # and the login from this address too
    login = APIClient().post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})
    assert_problem(login, 429, "throttled")


def test_password_changes_are_limited_per_account(settings):
    settings.CREDENTIAL_RATE_PER_ACCOUNT = "2/h"
    user = UserFactory()
    me = bearer(sign_in(user)["access"])
    for ip in ("10.0.0.1", "10.0.0.2"):
        assert_problem(change(me, old="wrong-one", REMOTE_ADDR=ip), 400, "invalid_password")
    assert_problem(change(me, REMOTE_ADDR="10.0.0.3"), 429, "throttled")


def test_a_weak_new_password_is_refused_and_nothing_changes():
    user = UserFactory(email="ada@example.com")
    pair = sign_in(user)
    body = assert_problem(change(bearer(pair["access"]), new="password"), 400, "invalid")
    assert "new_password" in body["errors"]
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_the_change_needs_a_signed_in_caller_and_only_its_fields():
    assert_problem(change(APIClient()), 401, "not_authenticated")
    me = bearer(sign_in(UserFactory())["access"])
    r = me.post(CHANGE, {"old_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD, "email": "x@example.com"})
    body = assert_problem(r, 400, "invalid")
    assert "email" in body["errors"]
    assert_problem(me.post(CHANGE, {"old_password": DEFAULT_PASSWORD}, format="json"), 400, "invalid")
