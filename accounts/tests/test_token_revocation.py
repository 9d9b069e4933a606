"""Access tokens are checked without reading the user's row; what voids them reaches them at once."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from eventflow import rawcache

from .factories import DEFAULT_PASSWORD, UserFactory
from .test_auth import assert_problem

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me"
ORDERS = "/api/v1/orders"


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def test_a_request_with_a_token_reads_no_user_row_until_a_field_is_needed():
    user = UserFactory(name="Ada")
    client = client_for(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ORDERS).status_code == 200
    assert not [q["sql"] for q in queries.captured_queries if '"accounts_user"' in q["sql"]]
    with CaptureQueriesContext(connection) as queries:
        r = client.get(ME)
    assert r.status_code == 200
    assert (r.json()["email"], r.json()["name"]) == (user.email, "Ada")
    # every field the profile shows, loaded by one read
    assert len([q for q in queries.captured_queries if '"accounts_user"' in q["sql"]]) == 1


def test_deactivating_an_account_voids_its_access_tokens_at_once(django_capture_on_commit_callbacks):
    user = UserFactory()
    client = client_for(user)
    assert client.get(ME).status_code == 200
    user.is_active = False
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
    assert_problem(client.get(ME), 401, "token_revoked")
    assert_problem(client.post(ORDERS, {}, format="json"), 401, "token_revoked")


def test_a_password_change_voids_older_access_tokens_but_not_the_next_login(
    api_client, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    user = UserFactory()
    token = AccessToken.for_user(user)
    token.set_iat(at_time=token.current_time - timedelta(seconds=30))  # issued before this second
    old = APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert old.get(ME).status_code == 200
    user.set_password("An0ther-Passphrase-77")
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
    assert_problem(old.get(ME), 401, "token_revoked")
    r = api_client.post("/api/v1/auth/login", {"email": user.email, "password": "An0ther-Passphrase-77"})
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert api_client.get(ME).status_code == 200


def test_a_reactivated_account_signs_in_again_and_its_new_tokens_work(api_client, django_capture_on_commit_callbacks):
    user = UserFactory()
    old = client_for(user)
    user.is_active = False
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
    assert_problem(old.get(ME), 401, "token_revoked")
    user = User.objects.get(pk=user.pk)
    user.is_active = True
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
    r = api_client.post("/api/v1/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD})
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert api_client.get(ME).status_code == 200


def test_a_deleted_account_is_401_not_a_server_error(django_capture_on_commit_callbacks):
    user = UserFactory()
    client = client_for(user)
    with django_capture_on_commit_callbacks(execute=True):
        user.delete()
    assert_problem(client.get(ME), 401, "token_revoked")
    assert_problem(client.post(ORDERS, {"event": 1, "items": []}, format="json"), 401, "token_revoked")


def test_a_deactivation_that_rolls_back_voids_nothing():
    from django.db import transaction

    user = UserFactory()
    client = client_for(user)

    def deactivate_then_fail():
        with transaction.atomic():
            user.is_active = False
            user.save()
            raise RuntimeError("the admin's save failed after the user row")

    with pytest.raises(RuntimeError):
        deactivate_then_fail()
    assert client.get(ME).status_code == 200  # still active, and so are its tokens


class _DeadRedis:
    """A Redis client whose every command fails, as through the open circuit breaker."""

    def _fail(self, *args, **kwargs):
        raise rawcache.RedisError("down")

    get = set = delete = hgetall = hget = hset = hdel = pipeline = _fail

    def register_script(self, script):
        return self._fail


def test_without_the_cache_the_row_decides_as_before(monkeypatch):
    active, gone = UserFactory(), UserFactory()
    active_client, gone_client = client_for(active), client_for(gone)
    User.objects.filter(pk=gone.pk).update(is_active=False)  # no marker: only the row knows
    monkeypatch.setattr(rawcache, "client", lambda: _DeadRedis())
    assert active_client.get(ME).status_code == 200
    assert_problem(gone_client.get(ME), 401, "user_inactive")


def test_a_forged_user_claim_is_401():
    token = AccessToken()
    token["user_id"] = "not-a-number"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_problem(client.get(ME), 401, "token_not_valid")


def test_login_still_works_with_a_password(api_client):
    user = UserFactory()
    r = api_client.post("/api/v1/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD})
    assert r.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert api_client.get(ME).json()["email"] == user.email
