"""Sessions are refresh-token families: rotation, reuse detection, logout, password changes."""

import threading

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import TokenFamily, User

from .factories import DEFAULT_PASSWORD, UserFactory
from .test_auth import LOGIN, LOGOUT, ME, REFRESH, assert_problem

pytestmark = pytest.mark.django_db


def sign_in(client: APIClient, user: User) -> dict:
    r = client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, HTTP_USER_AGENT="Firefox/140")
    assert r.status_code == 200, r.content
    return r.json()


def refresh(client: APIClient, token: str):
    return client.post(REFRESH, {"refresh": token})


def test_a_login_starts_a_session(api_client):
    user = UserFactory()
    sign_in(api_client, user)
    family = TokenFamily.objects.get(user=user)
    assert family.ended_at is None
    assert family.user_agent == "Firefox/140"


def test_replaying_a_rotated_refresh_token_ends_the_whole_family(api_client):
    user = UserFactory()
    first = sign_in(api_client, user)["refresh"]
    r = refresh(api_client, first)
    assert r.status_code == 200, r.content
    second = r.json()["refresh"]
    third = refresh(api_client, second).json()["refresh"]  # the owner keeps rotating

    # a thief replays the first token
    assert_problem(refresh(api_client, first), 401, "token_not_valid")
    # the family is over: the owner's newest token no longer works either
    assert_problem(refresh(api_client, third), 401, "token_not_valid")
    family = TokenFamily.objects.get(user=user)
    assert family.end_reason == TokenFamily.EndReason.REUSE
    assert family.ended_at is not None


def test_an_expired_refresh_token_means_signing_in_again_not_refreshing(api_client, monkeypatch):
    """token_expired tells a client to refresh; a refresh token past its lifetime cannot be refreshed,
    so it answers token_not_valid (sign in again), and the session is left as it was."""
    from datetime import timedelta

    from rest_framework_simplejwt import tokens
    from rest_framework_simplejwt.settings import api_settings

    user = UserFactory()
    token = sign_in(api_client, user)["refresh"]
    later = tokens.aware_utcnow() + api_settings.REFRESH_TOKEN_LIFETIME + timedelta(seconds=1)
    monkeypatch.setattr(tokens, "aware_utcnow", lambda: later)
    assert_problem(refresh(api_client, token), 401, "token_not_valid")
    family = TokenFamily.objects.get(user=user)
    assert (family.ended_at, family.end_reason) == (None, "")


def test_other_sessions_survive_a_reuse(api_client):
    user = UserFactory()
    laptop = sign_in(api_client, user)["refresh"]
    phone = sign_in(api_client, user)["refresh"]
    rotated = refresh(api_client, laptop).json()["refresh"]
    assert_problem(refresh(api_client, laptop), 401, "token_not_valid")
    assert_problem(refresh(api_client, rotated), 401, "token_not_valid")
    assert refresh(api_client, phone).status_code == 200


def test_logout_ends_the_session_and_its_successors(api_client, django_capture_on_commit_callbacks):
    user = UserFactory()
    other = sign_in(api_client, user)
    pair = sign_in(api_client, user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.post(LOGOUT, {"refresh": pair["refresh"]}).status_code == 204
    # the signed-out session's access token stops working at once; the other session's goes on
    assert_problem(api_client.get(ME), 401, "token_revoked")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other['access']}")
    assert api_client.get(ME).status_code == 200
    api_client.credentials()
    assert_problem(refresh(api_client, pair["refresh"]), 401, "token_not_valid")
    assert list(TokenFamily.objects.filter(user=user).order_by("created_at").values_list("end_reason", flat=True)) == [
        "",
        TokenFamily.EndReason.LOGOUT,
    ]


def test_changing_the_password_ends_every_session(api_client):
    user = UserFactory()
    tokens = [sign_in(api_client, user)["refresh"] for _ in range(3)]
    user.set_password("another-long-passphrase-7")
    user.save()
    for token in tokens:
        assert_problem(refresh(api_client, token), 401, "token_not_valid")
    assert set(TokenFamily.objects.filter(user=user).values_list("end_reason", flat=True)) == {
        TokenFamily.EndReason.PASSWORD_CHANGED
    }
    # signing in with the new password starts a fresh session
    r = api_client.post(LOGIN, {"email": user.email, "password": "another-long-passphrase-7"})
    assert refresh(api_client, r.json()["refresh"]).status_code == 200


def test_a_password_changed_in_the_admin_ends_every_session(api_client, admin_client):
    user = UserFactory()
    token = sign_in(api_client, user)["refresh"]
    r = admin_client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"password1": "Brand-new-passphrase-31", "password2": "Brand-new-passphrase-31"},
    )
    assert r.status_code == 302, r.content
    assert_problem(refresh(api_client, token), 401, "token_not_valid")


def test_changepassword_command_ends_every_session(api_client, monkeypatch):
    user = UserFactory()
    token = sign_in(api_client, user)["refresh"]
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "Command-line-passphrase-5")
    call_command("changepassword", user.email, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert_problem(refresh(api_client, token), 401, "token_not_valid")


def test_other_saves_and_hash_upgrades_keep_sessions(api_client, settings):
    # A password stored with an older hasher is upgraded (and saved) at login: not a change.
    user = UserFactory(password=make_password(DEFAULT_PASSWORD, hasher="pbkdf2_sha256"))
    token = sign_in(api_client, user)["refresh"]
    user.refresh_from_db()
    assert user.password.startswith("argon2")
    user.name = "Renamed"
    user.save()
    assert refresh(api_client, token).status_code == 200


def test_refresh_of_a_deleted_user_is_401_not_500(api_client):
    user = UserFactory()
    token = sign_in(api_client, user)["refresh"]
    user.delete()
    assert_problem(refresh(api_client, token), 401, "token_not_valid")


def test_refresh_tokens_without_a_session_are_refused(api_client):
    from rest_framework_simplejwt.tokens import RefreshToken

    user = UserFactory()
    assert_problem(refresh(api_client, str(RefreshToken.for_user(user))), 401, "token_not_valid")


def test_the_access_token_of_a_new_pair_works(api_client):
    user = UserFactory()
    pair = refresh(api_client, sign_in(api_client, user)["refresh"]).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert api_client.get(ME).json()["email"] == user.email


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshes_with_one_token_yield_at_most_one_live_session():
    """Two clients racing with the same refresh token: the loser's replay ends the family,
    so no two parties ever hold working tokens of one session."""
    user = UserFactory()
    token = sign_in(APIClient(), user)["refresh"]
    barrier, results = threading.Barrier(2), []

    def rotate():
        try:
            barrier.wait()
            results.append(refresh(APIClient(), token))
        finally:
            connection.close()

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 401]
    winner = next(r for r in results if r.status_code == 200).json()["refresh"]
    assert_problem(refresh(APIClient(), winner), 401, "token_not_valid")  # the replay ended the family
