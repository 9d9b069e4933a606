"""Setting a password with an emailed code: a forgotten password, or an invited account's first one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import codes
from accounts.models import EmailCode, TokenFamily, User
from accounts.passwords import invite_code, user_invite
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.test_auth import LOGIN, ME, REFRESH, assert_problem
from accounts.tests.test_password_change import issued_earlier

pytestmark = pytest.mark.django_db

RESET = "/api/v1/auth/password/reset"
CONFIRM = "/api/v1/auth/password/reset/confirm"
NEW_PASSWORD = "violet-harbour-lantern-93"


def emailed_code(mail) -> str:
    return re.search(r"Your code: (\S+)", mail.body).group(1)


@pytest.fixture
def post(api_client, django_capture_on_commit_callbacks):
    """POST as JSON; the request's on-commit callbacks (the task that emails a code) run as in production."""

    def send(path: str, body: dict, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            return api_client.post(path, body, format="json", **extra)

    return send


def ask_for_code(post, mailoutbox, email: str = "ada@example.com") -> str:
    before = len(mailoutbox)
    assert post(RESET, {"email": email}).status_code == 202
    assert len(mailoutbox) == before + 1
    return emailed_code(mailoutbox[-1])


def confirm(post, code: str, password: str = NEW_PASSWORD, email: str = "ada@example.com", **extra):
    return post(CONFIRM, {"email": email, "code": code, "new_password": password}, **extra)


def wrong(code: str) -> str:
    """Another well-formed code."""
    return ("B" if code[0] == "A" else "A") + code[1:]


def test_a_forgotten_password_is_reset_with_the_emailed_code_once(post, mailoutbox):
    # given
    user = UserFactory(email="ada@example.com")

    # when
    response = post(RESET, {"email": "ADA@example.com"})

    # then
    assert response.status_code == 202
    (mail,) = mailoutbox
    assert mail.to == ["ada@example.com"]
    assert '"email": "ada@example.com"' in mail.body
    assert "15 minutes" in mail.body
    code = emailed_code(mail)
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{8}", code)
    assert confirm(post, code).status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    # reused: refused, and the password stays
    assert_problem(confirm(post, code, NEW_PASSWORD + "!"), 400, "code_invalid")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_codes_are_stored_only_hashed(post, mailoutbox):
    user = UserFactory(email="ada@example.com")
    code = ask_for_code(post, mailoutbox)
    row = EmailCode.objects.get(user=user)
    assert row.purpose == EmailCode.Purpose.PASSWORD
    assert code not in row.code_hash
    assert code.lower() not in row.code_hash
    assert len(row.code_hash) == 64


def test_a_code_is_typed_in_any_case_with_a_dash_or_spaces(post, mailoutbox):
    UserFactory(email="ada@example.com")
    code = ask_for_code(post, mailoutbox)
    assert confirm(post, f" {code[:4].lower()}-{code[4:]} ").status_code == 204


def test_unknown_addresses_get_the_same_answer_and_nothing_is_sent(post, mailoutbox):
    UserFactory(email="ada@example.com")
    known = post(RESET, {"email": "ada@example.com"})
    unknown = post(RESET, {"email": "nobody@example.com"})
    assert (unknown.status_code, unknown.content, unknown.get("Content-Type")) == (
        known.status_code,
        known.content,
        known.get("Content-Type"),
    )
    assert sorted(h for h in unknown.headers) == sorted(h for h in known.headers)
    assert [m.to for m in mailoutbox] == [["ada@example.com"]]
    assert not EmailCode.objects.filter(user__email="nobody@example.com").exists()


def test_both_answers_queue_the_same_task_and_read_nothing(
    api_client, django_capture_on_commit_callbacks, django_assert_num_queries
):
    """No timing difference worth measuring: the request does the same work for any address (no SQL
    at all; the task looks the account up, in the worker)."""
    UserFactory(email="ada@example.com")
    for email in ("ada@example.com", "nobody@example.com"):
        with django_assert_num_queries(0), django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert api_client.post(RESET, {"email": email}, format="json").status_code == 202
        assert len(callbacks) == 1
        assert callbacks[0].func.__self__.name == "accounts.tasks.send_password_reset"
        assert callbacks[0].args == (email,)


def test_an_expired_code_is_refused(post, mailoutbox, monkeypatch):
    UserFactory(email="ada@example.com")
    code = ask_for_code(post, mailoutbox)
    later = timezone.now() + timedelta(minutes=15, seconds=1)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    assert_problem(confirm(post, code), 400, "code_invalid")


def test_a_code_still_works_just_before_it_expires(post, mailoutbox, monkeypatch):
    UserFactory(email="ada@example.com")
    code = ask_for_code(post, mailoutbox)
    later = timezone.now() + timedelta(minutes=14, seconds=59)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    assert confirm(post, code).status_code == 204


def test_five_wrong_codes_burn_the_code_even_for_the_right_one_after(post, mailoutbox):
    user = UserFactory(email="ada@example.com")
    code = ask_for_code(post, mailoutbox)
    for _ in range(codes.MAX_ATTEMPTS):
        assert_problem(confirm(post, wrong(code)), 400, "code_invalid")
    assert EmailCode.objects.get(user=user).attempts == codes.MAX_ATTEMPTS
    assert_problem(confirm(post, code), 400, "code_invalid")
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    # a new code works again
    assert confirm(post, ask_for_code(post, mailoutbox)).status_code == 204


def test_four_wrong_codes_leave_the_right_one_working(post, mailoutbox):
    UserFactory(email="ada@example.com")
    code = ask_for_code(post, mailoutbox)
    for _ in range(codes.MAX_ATTEMPTS - 1):
        assert_problem(confirm(post, wrong(code)), 400, "code_invalid")
    assert confirm(post, code).status_code == 204


def test_a_newer_code_supersedes_the_older_one(post, mailoutbox):
    UserFactory(email="ada@example.com")
    first = ask_for_code(post, mailoutbox)
    second = ask_for_code(post, mailoutbox)
    assert first != second
    assert_problem(confirm(post, first), 400, "code_invalid")
    assert confirm(post, second).status_code == 204


def test_wrong_codes_and_weak_passwords_are_refused(post, mailoutbox):
    user = UserFactory(email="ada@example.com")
    assert_problem(confirm(post, "1-abc"), 400, "code_invalid")  # before any code was asked for
    code = ask_for_code(post, mailoutbox)
    # an unknown address answers like a wrong code, even with a weak password
    assert_problem(confirm(post, code, "password", email="x@example.com"), 400, "code_invalid")
    assert_problem(confirm(post, wrong(code), "password"), 400, "code_invalid")
    # a right code with a weak password: refused, and the code is not spent
    body = assert_problem(confirm(post, code, "password"), 400, "invalid")
    assert "new_password" in body["errors"]
    body = {"email": "ada@example.com", "code": code, "new_password": NEW_PASSWORD}
    assert_problem(post(CONFIRM, {**body, "extra": 1}), 400, "invalid")
    assert_problem(post(CONFIRM, {**body, "code": "A" * 101}), 400, "invalid")
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    assert confirm(post, code).status_code == 204


def test_a_reset_ends_every_session_and_voids_access_tokens(api_client, post, mailoutbox):
    user = UserFactory(email="ada@example.com")
    with issued_earlier():  # signed in before the reset's second (iat has whole seconds)
        pairs = [api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).json() for _ in range(2)]
    code = ask_for_code(post, mailoutbox)

    assert confirm(post, code).status_code == 204

    for pair in pairs:
        assert_problem(api_client.post(REFRESH, {"refresh": pair["refresh"]}), 401, "token_not_valid")
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
        assert_problem(api_client.get(ME), 401, "token_revoked")
    api_client.credentials()
    assert set(TokenFamily.objects.filter(user=user).values_list("end_reason", flat=True)) == {
        TokenFamily.EndReason.PASSWORD_CHANGED
    }
    assert api_client.post(LOGIN, {"email": user.email, "password": NEW_PASSWORD}).status_code == 200


def test_asking_for_codes_is_limited_per_account_whatever_the_address(post, mailoutbox, settings):
    settings.CODE_EMAIL_RATE_PER_ACCOUNT = "2/h"
    UserFactory(email="ada@example.com")
    for ip in ("10.0.0.1", "10.0.0.2"):
        assert post(RESET, {"email": "ada@example.com"}, REMOTE_ADDR=ip).status_code == 202
    limited = post(RESET, {"email": "ADA@example.com"}, REMOTE_ADDR="10.0.0.3")
    assert_problem(limited, 429, "throttled")
    assert int(limited["Retry-After"]) > 0
    assert len(mailoutbox) == 2
    # an address without an account is limited alike: a 429 tells nothing
    for _ in range(2):
        assert post(RESET, {"email": "nobody@example.com"}).status_code == 202
    assert_problem(post(RESET, {"email": "nobody@example.com"}), 429, "throttled")


def test_using_codes_is_limited_per_account(post, mailoutbox, settings):
    settings.CREDENTIAL_RATE_PER_ACCOUNT = "3/h"
    UserFactory(email="ada@example.com")
    code = ask_for_code(post, mailoutbox)
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert_problem(confirm(post, wrong(code), REMOTE_ADDR=ip), 400, "code_invalid")
    # the fourth try this hour, from yet another address, even with the right code
    limited = confirm(post, code, REMOTE_ADDR="10.0.0.4")
    assert_problem(limited, 429, "throttled")
    assert int(limited["Retry-After"]) > 0


def test_codes_are_limited_per_client_address(post, settings):
    settings.PASSWORD_RESET_RATE_PER_IP = "2/m"
    for _ in range(2):
        assert_problem(confirm(post, "ABCDEFGH", email="a@example.com"), 400, "code_invalid")
    assert_problem(confirm(post, "ABCDEFGH", email="b@example.com"), 429, "throttled")


def test_an_invited_account_has_no_password_until_it_sets_one(api_client, post):
    user, created = user_invite(email="New@Example.com")
    assert created
    assert user.email == "new@example.com"
    assert not user.has_usable_password()
    assert user_invite(email="new@example.com") == (user, False)
    login = api_client.post("/api/v1/auth/login", {"email": "new@example.com", "password": ""}, format="json")
    assert login.status_code in (400, 401)
    assert User.objects.filter(email="new@example.com").count() == 1


def test_an_invitation_code_lasts_invite_code_hours_and_verifies_the_address(post, monkeypatch, settings):
    settings.INVITE_CODE_HOURS = 72
    user, _created = user_invite(email="new@example.com")
    code = invite_code(user)
    later = timezone.now() + timedelta(hours=71)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    assert confirm(post, code, email="new@example.com").status_code == 204
    user.refresh_from_db()
    assert user.has_usable_password()
    assert user.email_verified_at == later


def test_an_invitation_code_expires_after_invite_code_hours(post, monkeypatch, settings):
    settings.INVITE_CODE_HOURS = 72
    user, _created = user_invite(email="new@example.com")
    code = invite_code(user)
    later = timezone.now() + timedelta(hours=72, seconds=1)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    assert_problem(confirm(post, code, email="new@example.com"), 400, "code_invalid")


def test_an_invited_account_can_ask_for_a_fresh_code(post, mailoutbox):
    user_invite(email="new@example.com")
    code = ask_for_code(post, mailoutbox, "new@example.com")
    assert "An EventFlow account was created" in mailoutbox[-1].body
    assert confirm(post, code, email="new@example.com").status_code == 204


def test_a_deactivated_account_gets_no_code_and_cannot_use_one(post, mailoutbox):
    user = UserFactory(email="ada@example.com")
    code = ask_for_code(post, mailoutbox)
    user.is_active = False
    user.save()
    assert_problem(confirm(post, code), 400, "code_invalid")
    assert post(RESET, {"email": "ada@example.com"}).status_code == 202
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_confirms_with_one_code_set_one_password():
    """The code's row is locked while it is spent: of two simultaneous uses exactly one wins."""
    import threading

    from django.db import connection
    from rest_framework.test import APIClient

    user = UserFactory(email="ada@example.com")
    code = codes.code_issue(user=user, purpose=EmailCode.Purpose.PASSWORD, valid_for=timedelta(minutes=15))
    barrier, results = threading.Barrier(2), []

    def use(password: str) -> None:
        try:
            barrier.wait()
            body = {"email": "ada@example.com", "code": code, "new_password": password}
            results.append((password, APIClient().post(CONFIRM, body, format="json").status_code))
        finally:
            connection.close()

    threads = [threading.Thread(target=use, args=(p,)) for p in (NEW_PASSWORD, NEW_PASSWORD + "-other")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for _password, status in results) == [204, 400]
    (winner,) = [password for password, status in results if status == 204]
    user.refresh_from_db()
    assert user.check_password(winner)
