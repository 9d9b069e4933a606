"""The caller's sessions: listed, ended one by one, or all at once ("log out everywhere")."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from accounts.models import TokenFamily

from .factories import UserFactory
from .test_auth import ME, REFRESH, assert_problem
from .test_password_change import bearer, sign_in

pytestmark = pytest.mark.django_db

SESSIONS = "/api/v1/users/me/sessions"


def test_the_caller_sees_their_live_sessions_and_which_is_theirs(django_assert_max_num_queries):
    # given: three sign-ins, one of them since signed out, and somebody else's
    user = UserFactory()
    laptop, phone = sign_in(user, "Laptop"), sign_in(user, "Phone")
    gone = sign_in(user, "Old tablet")
    bearer(gone["access"]).post("/api/v1/auth/logout", {"refresh": gone["refresh"]})
    sign_in(UserFactory(), "Not mine")
    APIClient().post(REFRESH, {"refresh": phone["refresh"]})  # the phone was used last

    # when
    with django_assert_max_num_queries(3):
        r = bearer(laptop["access"]).get(SESSIONS)

    # then
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["count"] == 2
    assert [(s["user_agent"], s["current"]) for s in body["results"]] == [("Phone", False), ("Laptop", True)]
    laptop_row = TokenFamily.objects.get(user_agent="Laptop")
    listed = body["results"][1]
    assert listed["id"] == str(laptop_row.pk)
    assert set(listed) == {"id", "user_agent", "created_at", "last_used_at", "expires_at", "current"}


def test_sessions_are_paginated():
    user = UserFactory()
    pairs = [sign_in(user, f"Browser {n}") for n in range(3)]
    r = bearer(pairs[0]["access"]).get(SESSIONS, {"page_size": 2})
    assert r.status_code == 200
    assert (r.json()["count"], len(r.json()["results"]), bool(r.json()["next"])) == (3, 2, True)


def test_ending_one_session_stops_its_tokens_only(django_capture_on_commit_callbacks):
    user = UserFactory()
    laptop, phone = sign_in(user, "Laptop"), sign_in(user, "Phone")
    me = bearer(laptop["access"])
    phone_id = TokenFamily.objects.get(user_agent="Phone").pk

    with django_capture_on_commit_callbacks(execute=True):
        assert me.delete(f"{SESSIONS}/{phone_id}").status_code == 204

    assert_problem(APIClient().post(REFRESH, {"refresh": phone["refresh"]}), 401, "token_not_valid")
    assert_problem(bearer(phone["access"]).get(ME), 401, "token_revoked")  # at once, not in 15 minutes
    assert me.get(ME).status_code == 200
    assert TokenFamily.objects.get(pk=phone_id).end_reason == TokenFamily.EndReason.REVOKED
    assert APIClient().post(REFRESH, {"refresh": laptop["refresh"]}).status_code == 200
    assert [s["user_agent"] for s in me.get(SESSIONS).json()["results"]] == ["Laptop"]
    # already over: 404
    assert_problem(me.delete(f"{SESSIONS}/{phone_id}"), 404, "not_found")


def test_another_users_session_is_a_404_and_stays_alive():
    mine, theirs = UserFactory(), UserFactory()
    me = bearer(sign_in(mine)["access"])
    their_pair = sign_in(theirs, "Theirs")
    their_id = TokenFamily.objects.get(user=theirs).pk
    assert_problem(me.delete(f"{SESSIONS}/{their_id}"), 404, "not_found")
    assert_problem(me.delete(f"{SESSIONS}/{uuid.uuid4()}"), 404, "not_found")
    assert me.delete(f"{SESSIONS}/not-a-uuid").status_code == 404
    assert APIClient().post(REFRESH, {"refresh": their_pair["refresh"]}).status_code == 200


def test_log_out_everywhere_ends_every_session_and_voids_every_access_token(django_capture_on_commit_callbacks):
    user = UserFactory()
    other_user_pair = sign_in(UserFactory())
    pairs = [sign_in(user, agent) for agent in ("Laptop", "Phone")]
    me = bearer(pairs[0]["access"])

    with django_capture_on_commit_callbacks(execute=True):
        assert me.delete(SESSIONS).status_code == 204

    for pair in pairs:
        assert_problem(APIClient().post(REFRESH, {"refresh": pair["refresh"]}), 401, "token_not_valid")
        assert_problem(bearer(pair["access"]).get(ME), 401, "token_revoked")  # the caller's own too
    assert not TokenFamily.objects.filter(user=user, ended_at__isnull=True).exists()
    # nobody else is touched
    assert bearer(other_user_pair["access"]).get(ME).status_code == 200
    assert APIClient().post(REFRESH, {"refresh": other_user_pair["refresh"]}).status_code == 200


def test_sessions_need_a_signed_in_caller():
    assert_problem(APIClient().get(SESSIONS), 401, "not_authenticated")
    assert_problem(APIClient().delete(SESSIONS), 401, "not_authenticated")


def test_ending_the_callers_own_session_signs_it_out(django_capture_on_commit_callbacks):
    user = UserFactory()
    pair = sign_in(user)
    me = bearer(pair["access"])
    own = TokenFamily.objects.get(user=user).pk
    with django_capture_on_commit_callbacks(execute=True):
        assert me.delete(f"{SESSIONS}/{own}").status_code == 204
    assert_problem(me.get(ME), 401, "token_revoked")
    assert_problem(APIClient().post(REFRESH, {"refresh": pair["refresh"]}), 401, "token_not_valid")


def test_ended_sessions_and_a_kept_one_live_side_by_side_in_the_marker(django_capture_on_commit_callbacks):
    """A password change keeps the caller's session; a session ended afterwards is still void."""
    from .test_password_change import change

    user = UserFactory()
    laptop, phone = sign_in(user, "Laptop"), sign_in(user, "Phone")
    me = bearer(laptop["access"])
    with django_capture_on_commit_callbacks(execute=True):
        assert change(me).status_code == 204
    laptop_id = TokenFamily.objects.get(user_agent="Laptop").pk
    assert me.get(ME).status_code == 200
    assert_problem(bearer(phone["access"]).get(ME), 401, "token_revoked")
    with django_capture_on_commit_callbacks(execute=True):
        assert me.delete(f"{SESSIONS}/{laptop_id}").status_code == 204
    assert_problem(me.get(ME), 401, "token_revoked")


def test_the_marker_works_through_the_cache_api_too(monkeypatch):
    """Without a raw Redis client (the embedded in-process cache), the marker is a dict in the cache."""
    import time

    from accounts import revocation
    from eventflow import rawcache

    monkeypatch.setattr(rawcache, "client", lambda: None)
    now = int(time.time())
    assert revocation.is_void(7, issued_at=now - 60, family="a") is False
    revocation.void_tokens(7, keep_family="a")
    assert revocation.is_void(7, issued_at=now - 60, family="a") is False
    assert revocation.is_void(7, issued_at=now - 60, family="b") is True
    assert revocation.is_void(7, issued_at=now + 5, family="b") is False
    revocation.void_session(7, "a")
    assert revocation.is_void(7, issued_at=now + 5, family="a") is True
    revocation.void_tokens(7, every=True)
    assert revocation.void_before(7) == float("inf")
    revocation.account_reactivated(7)
    assert revocation.void_before(7) is None
    assert revocation.is_void(7, issued_at=now + 5, family="a") is True  # the ended session stays ended


def test_staff_ending_a_session_in_the_admin_voids_its_access_tokens(admin_client, django_capture_on_commit_callbacks):
    user = UserFactory()
    lost, kept = sign_in(user, "Lost phone"), sign_in(user, "Laptop")
    lost_id = TokenFamily.objects.get(user_agent="Lost phone").pk
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client.post(
            "/admin/accounts/tokenfamily/", {"action": "end_sessions", "_selected_action": [str(lost_id)]}
        )
    assert r.status_code == 302, r.content
    assert_problem(bearer(lost["access"]).get(ME), 401, "token_revoked")
    assert_problem(APIClient().post(REFRESH, {"refresh": lost["refresh"]}), 401, "token_not_valid")
    assert bearer(kept["access"]).get(ME).status_code == 200


def test_one_session_is_read_by_its_owner_only():
    mine, theirs = UserFactory(), UserFactory()
    me = bearer(sign_in(mine, "Laptop")["access"])
    sign_in(theirs, "Theirs")
    my_id = TokenFamily.objects.get(user=mine).pk
    r = me.get(f"{SESSIONS}/{my_id}")
    assert r.status_code == 200, r.content
    assert (r.json()["id"], r.json()["user_agent"], r.json()["current"]) == (str(my_id), "Laptop", True)
    assert_problem(me.get(f"{SESSIONS}/{TokenFamily.objects.get(user=theirs).pk}"), 404, "not_found")
