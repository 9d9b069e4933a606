"""Setting a password with an emailed code: a forgotten password, or an invited account's first one."""

from __future__ import annotations

import re

import pytest

from accounts.models import User
from accounts.passwords import user_invite
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.test_auth import assert_problem

pytestmark = pytest.mark.django_db

RESET = "/api/v1/auth/password/reset"
CONFIRM = "/api/v1/auth/password/reset/confirm"
NEW_PASSWORD = "violet-harbour-lantern-93"


def emailed_code(mail) -> str:
    return re.search(r"Your code: (\S+)", mail.body).group(1)


def test_a_forgotten_password_is_reset_with_the_emailed_code_once(
    api_client, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    user = UserFactory(email="ada@example.com")

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(RESET, {"email": "ADA@example.com"}, format="json")

    # then
    assert response.status_code == 202
    (mail,) = mailoutbox
    assert mail.to == ["ada@example.com"]
    assert '"email": "ada@example.com"' in mail.body
    body = {"email": "ada@example.com", "code": emailed_code(mail), "new_password": NEW_PASSWORD}
    assert api_client.post(CONFIRM, body, format="json").status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert_problem(
        api_client.post(CONFIRM, {**body, "new_password": NEW_PASSWORD + "!"}, format="json"), 400, "code_invalid"
    )


def test_unknown_addresses_look_the_same_and_send_nothing(api_client, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(RESET, {"email": "nobody@example.com"}, format="json")
    assert response.status_code == 202
    assert mailoutbox == []


def test_wrong_codes_and_weak_passwords_are_refused(api_client):
    user = UserFactory(email="ada@example.com")
    wrong = {"email": "ada@example.com", "code": "1-abc", "new_password": NEW_PASSWORD}
    assert_problem(api_client.post(CONFIRM, wrong, format="json"), 400, "code_invalid")
    assert_problem(api_client.post(CONFIRM, {**wrong, "email": "x@example.com"}, format="json"), 400, "code_invalid")
    from accounts.passwords import password_code

    weak = {"email": "ada@example.com", "code": password_code(user), "new_password": "password"}
    body = assert_problem(api_client.post(CONFIRM, weak, format="json"), 400, "invalid")
    assert "new_password" in body["errors"]
    assert_problem(api_client.post(CONFIRM, {**wrong, "extra": 1}, format="json"), 400, "invalid")
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_an_invited_account_has_no_password_until_it_sets_one(api_client):
    user, created = user_invite(email="New@Example.com")
    assert created
    assert user.email == "new@example.com"
    assert not user.has_usable_password()
    assert user_invite(email="new@example.com") == (user, False)
    login = api_client.post("/api/v1/auth/login", {"email": "new@example.com", "password": ""}, format="json")
    assert login.status_code in (400, 401)
    assert User.objects.filter(email="new@example.com").count() == 1
