"""Registration, login, token refresh/rotation and logout, over the API."""

from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import User

from .factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
STRONG = "Tr1cky-Passphrase-42"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["title"]
    assert body["detail"]
    return body


def test_register_login_me_refresh_logout_flow(api_client):
    # register
    r = api_client.post(REGISTER, {"email": "Ada@Example.com", "password": STRONG, "name": "Ada"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["role"] == "attendee"
    assert body["access"]
    assert body["refresh"]
    assert User.objects.filter(email="ada@example.com", name="Ada").count() == 1

    # login, with the email in another case
    r = api_client.post(LOGIN, {"email": "ADA@example.com", "password": STRONG})
    assert r.status_code == 200, r.content
    access, refresh = r.json()["access"], r.json()["refresh"]
    assert User.objects.get(email="ada@example.com").last_login is not None

    # me
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    r = api_client.get(ME)
    assert r.status_code == 200
    assert r.json()["email"] == "ada@example.com"
    assert r.json()["name"] == "Ada"

    # refresh rotates: the new pair works (it can rotate again)
    r = api_client.post(REFRESH, {"refresh": refresh})
    assert r.status_code == 200, r.content
    new_access, new_refresh = r.json()["access"], r.json()["refresh"]
    assert new_refresh != refresh
    r = api_client.post(REFRESH, {"refresh": new_refresh})
    assert r.status_code == 200, r.content
    newest_refresh = r.json()["refresh"]

    # logout with the newest refresh token; afterwards it cannot refresh
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_access}")
    r = api_client.post(LOGOUT, {"refresh": newest_refresh})
    assert r.status_code == 204
    assert_problem(api_client.post(REFRESH, {"refresh": newest_refresh}), 401, "token_not_valid")
    # (a rotated token replayed before any logout: accounts/tests/test_sessions.py)


def test_register_duplicate_email_in_another_case(api_client):
    UserFactory(email="taken@example.com")
    r = api_client.post(REGISTER, {"email": "TAKEN@Example.COM", "password": STRONG})
    body = assert_problem(r, 400, "email_taken")
    assert "email" in body["errors"]
    assert User.objects.filter(email="taken@example.com").count() == 1


def test_register_refuses_role_and_staff_flags(api_client):
    r = api_client.post(
        REGISTER,
        {"email": "mallory@example.com", "password": STRONG, "role": "admin", "is_staff": True, "is_superuser": True},
    )
    body = assert_problem(r, 400, "invalid")
    assert set(body["errors"]) == {"role", "is_staff", "is_superuser"}
    assert not User.objects.filter(email="mallory@example.com").exists()

    r = api_client.post(REGISTER, {"email": "mallory@example.com", "password": STRONG})
    assert r.status_code == 201
    user = User.objects.get(email="mallory@example.com")
    assert (user.role, user.is_staff, user.is_superuser) == ("attendee", False, False)


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short1", "too short"), ("password123", "too common"), ("1234567890123", "entirely numeric")],
)
def test_register_rejects_weak_passwords(api_client, password, reason):
    r = api_client.post(REGISTER, {"email": "weak@example.com", "password": password})
    body = assert_problem(r, 400, "invalid")
    assert any(reason in message for message in body["errors"]["password"])
    assert not User.objects.filter(email="weak@example.com").exists()


@pytest.mark.parametrize(
    ("email", "name", "password"),
    [
        ("x@example.com", "", " " * 10),
        ("x@example.com", "", "zzzzzzzzzzzz"),
        ("x@example.com", "", "P@ssw0rd12"),
        ("alice@example.com", "Alice", "alice12345"),
        ("alice@example.com", "Alice Liddell", "Liddell-2026"),
        ("alice@example.com", "Alice Attendee", "aliceattendee1"),
        ("alice@example.com", "Alice Attendee", "AliceAttendee!"),
        ("x@example.com", "", "qwertyuiop123"),
        ("x@example.com", "", "abcdefghijkl"),
    ],
)
def test_register_refuses_passwords_people_call_weak(api_client, email, name, password):
    r = api_client.post(REGISTER, {"email": email, "name": name, "password": password})
    body = assert_problem(r, 400, "invalid")
    messages = body["errors"]["password"]
    assert any("too easy to guess" in m or "too similar to the" in m for m in messages), body
    assert not User.objects.filter(email=email).exists()


@pytest.mark.parametrize("password", [STRONG, "correct-horse-battery-staple", "a-long-passphrase-42"])
def test_register_accepts_strong_passwords(api_client, password):
    assert api_client.post(REGISTER, {"email": "ok@example.com", "password": password}).status_code == 201


def test_admin_forms_refuse_weak_passwords_too(admin_client):
    r = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "weak@example.com",
            "name": "",
            "password1": "P@ssw0rd12",
            "password2": "P@ssw0rd12",
            "usable_password": "true",
        },
    )
    assert r.status_code == 200  # the form again, with the error
    assert "too easy to guess" in r.content.decode()
    assert not User.objects.filter(email="weak@example.com").exists()


def test_register_rejects_password_like_the_email(api_client):
    r = api_client.post(REGISTER, {"email": "grace.hopper@example.com", "password": "grace.hopper.example"})
    body = assert_problem(r, 400, "invalid")
    assert "password" in body["errors"]


def test_register_missing_fields(api_client):
    body = assert_problem(api_client.post(REGISTER, {}), 400, "invalid")
    assert set(body["errors"]) == {"email", "password"}


def test_login_wrong_password(api_client):
    UserFactory(email="bob@example.com")
    r = api_client.post(LOGIN, {"email": "bob@example.com", "password": "not-the-password"})
    assert_problem(r, 401, "invalid_credentials")
    assert "WWW-Authenticate" in r


def test_login_unknown_email_and_inactive_user_look_alike(api_client):
    UserFactory(email="gone@example.com", is_active=False)
    assert_problem(
        api_client.post(LOGIN, {"email": "gone@example.com", "password": DEFAULT_PASSWORD}), 401, "invalid_credentials"
    )
    assert_problem(
        api_client.post(LOGIN, {"email": "nobody@example.com", "password": DEFAULT_PASSWORD}),
        401,
        "invalid_credentials",
    )


def test_login_ignores_a_stale_bearer_token(api_client):
    UserFactory(email="carol@example.com")
    api_client.credentials(HTTP_AUTHORIZATION="Bearer garbage")
    r = api_client.post(LOGIN, {"email": "carol@example.com", "password": DEFAULT_PASSWORD})
    assert r.status_code == 200


def _access_for(user, *, key=None, lifetime=timedelta(minutes=5)) -> str:
    now = timezone.now()
    claims = {
        "token_type": "access",
        "user_id": str(user.pk),
        "jti": "x" * 32,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode(claims, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def test_hand_made_valid_token_is_accepted(api_client):
    """Control for the rejections below: the same construction with the right key works."""
    user = UserFactory()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {_access_for(user)}")
    assert api_client.get(ME).status_code == 200


def test_an_expired_access_token_has_its_own_code(api_client):
    """The client should refresh, not sign in again."""
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {_access_for(UserFactory(), lifetime=timedelta(seconds=-10))}")
    r = api_client.get(ME)
    body = assert_problem(r, 401, "token_expired")
    assert "refresh" in body["detail"]
    assert r["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("kind", ["garbage", "expired_and_forged", "wrong_key", "refresh_as_access"])
def test_bad_access_tokens_are_401(api_client, kind):
    user = UserFactory()
    token = {
        "garbage": lambda: "not.a.jwt",
        # expiry is only believed once the signature checks out
        "expired_and_forged": lambda: _access_for(user, key="another-key-" * 4, lifetime=timedelta(seconds=-10)),
        "wrong_key": lambda: _access_for(user, key="another-key-" * 4),
        "refresh_as_access": lambda: api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).json()[
            "refresh"
        ],
    }[kind]()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    r = api_client.get(ME)
    assert_problem(r, 401, "token_not_valid")
    assert r["WWW-Authenticate"].startswith("Bearer")


def test_no_token_is_401_not_authenticated(api_client):
    assert_problem(api_client.get(ME), 401, "not_authenticated")


def test_refresh_with_garbage_is_401(api_client):
    assert_problem(api_client.post(REFRESH, {"refresh": "nope"}), 401, "token_not_valid")
    assert_problem(api_client.post(REFRESH, {}), 400, "invalid")


def test_logout_requires_auth_and_own_token(api_client):
    alice, bob = UserFactory(), UserFactory()
    assert_problem(api_client.post(LOGOUT, {"refresh": "x"}), 401, "not_authenticated")

    bob_refresh = api_client.post(LOGIN, {"email": bob.email, "password": DEFAULT_PASSWORD}).json()["refresh"]
    alice_access = api_client.post(LOGIN, {"email": alice.email, "password": DEFAULT_PASSWORD}).json()["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice_access}")
    body = assert_problem(api_client.post(LOGOUT, {"refresh": bob_refresh}), 400, "token_not_valid")
    assert "refresh" in body["errors"]
    # Bob's session survives Alice's attempt
    api_client.credentials()
    assert api_client.post(REFRESH, {"refresh": bob_refresh}).status_code == 200


def test_deactivated_user_cannot_refresh(api_client):
    user = UserFactory()
    refresh = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).json()["refresh"]
    User.objects.filter(pk=user.pk).update(is_active=False)
    r = api_client.post(REFRESH, {"refresh": refresh})
    assert_problem(r, 401, "token_not_valid")
