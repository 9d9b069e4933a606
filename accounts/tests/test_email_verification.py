"""Email verification: a code emailed at registration; buying can require it (REQUIRE_EMAIL_VERIFICATION_TO_BUY)."""

from __future__ import annotations

import re
from datetime import timedelta

import jwt
import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import codes
from accounts.models import EmailCode, User
from accounts.passwords import user_invite
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import Order

from .factories import UserFactory
from .test_auth import ME, REFRESH, REGISTER, STRONG, assert_problem
from .test_password_change import bearer, sign_in

pytestmark = pytest.mark.django_db

VERIFY = "/api/v1/auth/email/verify"
RESEND = "/api/v1/auth/email/verify/resend"
ORDERS = "/api/v1/orders"


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    """POST as JSON; the request's on-commit callbacks (the task that emails a code) run as in production."""

    def send(path: str, body: dict, client: APIClient | None = None, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            return (client or APIClient()).post(path, body, format="json", **extra)

    return send


def emailed_code(mail) -> str:
    return re.search(r"Your code: (\S+)", mail.body).group(1)


def register(post, email: str = "ada@example.com") -> dict:
    r = post(REGISTER, {"email": email, "password": STRONG, "name": "Ada"})
    assert r.status_code == 201, r.content
    return r.json()


def verify(post, code: str, email: str = "ada@example.com", **extra):
    return post(VERIFY, {"email": email, "code": code}, **extra)


def wrong(code: str) -> str:
    return ("B" if code[0] == "A" else "A") + code[1:]


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_registration_emails_a_code_that_verifies_the_address(post, mailoutbox):
    # given
    registered = register(post)
    assert registered["user"]["email_verified"] is False
    assert "ev" not in claims(registered["access"])
    (mail,) = mailoutbox
    assert mail.to == ["ada@example.com"]
    assert "24 hours" in mail.body

    # when
    response = verify(post, emailed_code(mail))

    # then
    assert response.status_code == 204, response.content
    user = User.objects.get(email="ada@example.com")
    assert user.email_verified_at is not None
    assert bearer(registered["access"]).get(ME).json()["email_verified"] is True
    # the older token does not say so; the next refresh does
    assert "ev" not in claims(registered["access"])
    refreshed = APIClient().post(REFRESH, {"refresh": registered["refresh"]}).json()
    assert claims(refreshed["access"])["ev"] is True
    # reused: refused
    assert_problem(verify(post, emailed_code(mail)), 400, "code_invalid")


def test_a_verification_code_expires_after_a_day(post, mailoutbox, monkeypatch, settings):
    settings.EMAIL_VERIFICATION_CODE_HOURS = 24
    register(post)
    later = timezone.now() + timedelta(hours=24, seconds=1)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    assert_problem(verify(post, emailed_code(mailoutbox[0])), 400, "code_invalid")
    assert User.objects.get(email="ada@example.com").email_verified_at is None


def test_five_wrong_verification_codes_burn_the_code(post, mailoutbox):
    register(post)
    code = emailed_code(mailoutbox[0])
    for _ in range(codes.MAX_ATTEMPTS):
        assert_problem(verify(post, wrong(code)), 400, "code_invalid")
    assert_problem(verify(post, code), 400, "code_invalid")
    assert User.objects.get(email="ada@example.com").email_verified_at is None


def test_a_resent_code_supersedes_the_first(post, mailoutbox):
    register(post)
    assert post(RESEND, {"email": "ada@example.com"}).status_code == 202
    first, second = (emailed_code(m) for m in mailoutbox)
    assert_problem(verify(post, first), 400, "code_invalid")
    assert verify(post, second).status_code == 204


def test_a_signed_in_caller_asks_for_a_new_code_without_naming_the_address(post, mailoutbox):
    registered = register(post)
    response = post(RESEND, {}, client=bearer(registered["access"]))
    assert response.status_code == 202
    assert [m.to for m in mailoutbox] == [["ada@example.com"]] * 2
    assert_problem(post(RESEND, {}), 400, "invalid")  # anonymous: the address is needed


def test_resending_answers_alike_whoever_asks_and_sends_only_to_unverified_accounts(post, mailoutbox):
    UserFactory(email="verified@example.com", email_verified_at=timezone.now())
    UserFactory(email="new@example.com")
    answers = {
        email: post(RESEND, {"email": email})
        for email in ("verified@example.com", "new@example.com", "nobody@example.com")
    }
    assert {(r.status_code, r.content) for r in answers.values()} == {(202, b"")}
    assert [m.to for m in mailoutbox] == [["new@example.com"]]


def test_unknown_addresses_and_wrong_codes_answer_alike(post, mailoutbox):
    register(post)
    code = emailed_code(mailoutbox[0])
    unknown = assert_problem(verify(post, code, email="nobody@example.com"), 400, "code_invalid")
    wrong_code = assert_problem(verify(post, wrong(code)), 400, "code_invalid")
    assert unknown == wrong_code
    assert_problem(post(VERIFY, {"email": "ada@example.com", "code": code, "extra": 1}), 400, "invalid")


def test_verifying_is_limited_per_account(post, mailoutbox, settings):
    settings.CREDENTIAL_RATE_PER_ACCOUNT = "2/h"
    register(post)
    code = emailed_code(mailoutbox[0])
    for ip in ("10.0.0.1", "10.0.0.2"):
        assert_problem(verify(post, wrong(code), REMOTE_ADDR=ip), 400, "code_invalid")
    assert_problem(verify(post, code, REMOTE_ADDR="10.0.0.3"), 429, "throttled")


def test_resending_is_limited_per_account(post, settings):
    settings.CODE_EMAIL_RATE_PER_ACCOUNT = "1/h"
    assert post(RESEND, {"email": "ada@example.com"}).status_code == 202
    assert_problem(post(RESEND, {"email": "ada@example.com"}, REMOTE_ADDR="10.0.0.9"), 429, "throttled")


def test_existing_accounts_count_as_verified_by_the_migration_but_invited_ones_do_not():
    from importlib import import_module

    migration = import_module("accounts.migrations.0004_password_codes_email_verification")
    old = UserFactory(email_verified_at=None)
    invited, _created = user_invite(email="invited@example.com")
    migration.existing_accounts_are_verified(apps, None)
    old.refresh_from_db()
    invited.refresh_from_db()
    assert old.email_verified_at == old.date_joined
    assert invited.email_verified_at is None


# --- Buying with REQUIRE_EMAIL_VERIFICATION_TO_BUY ---------------------------------------------------


@pytest.fixture
def tier():
    return TicketTypeFactory(event=EventFactory(status=Event.Status.PUBLISHED), price_cents=1000, capacity=10)


def buy(client: APIClient, tier):
    return client.post(
        ORDERS, {"event": tier.event_id, "items": [{"ticket_type": tier.pk, "quantity": 1}]}, format="json"
    )


def test_an_unverified_buyer_is_refused_when_the_setting_asks(settings, tier):
    settings.REQUIRE_EMAIL_VERIFICATION_TO_BUY = True
    buyer = UserFactory(email_verified_at=None)
    body = assert_problem(buy(bearer(sign_in(buyer)["access"]), tier), 403, "email_not_verified")
    assert "verify" in body["detail"].lower()
    assert not Order.objects.filter(buyer=buyer).exists()


def test_a_verified_buyer_buys_when_the_setting_asks(settings, tier):
    settings.REQUIRE_EMAIL_VERIFICATION_TO_BUY = True
    buyer = UserFactory(email_verified_at=timezone.now())
    assert buy(bearer(sign_in(buyer)["access"]), tier).status_code == 201


def test_unverified_buyers_buy_when_the_setting_is_off(settings, tier):
    settings.REQUIRE_EMAIL_VERIFICATION_TO_BUY = False
    buyer = UserFactory(email_verified_at=None)
    assert buy(bearer(sign_in(buyer)["access"]), tier).status_code == 201


def test_a_freshly_verified_buyer_refreshes_their_token_to_buy(post, mailoutbox, settings, tier):
    settings.REQUIRE_EMAIL_VERIFICATION_TO_BUY = True
    registered = register(post)
    assert verify(post, emailed_code(mailoutbox[0])).status_code == 204
    assert_problem(buy(bearer(registered["access"]), tier), 403, "email_not_verified")
    refreshed = APIClient().post(REFRESH, {"refresh": registered["refresh"]}).json()
    assert buy(bearer(refreshed["access"]), tier).status_code == 201


def test_the_gate_adds_no_sql_statement_to_a_purchase(settings, tier):
    """The purchase path reads the token's claim, never the user's row."""
    counts = {}
    for required in (False, True):
        settings.REQUIRE_EMAIL_VERIFICATION_TO_BUY = required
        client = bearer(sign_in(UserFactory(email_verified_at=timezone.now()))["access"])
        with CaptureQueriesContext(connection) as queries:
            assert buy(client, tier).status_code == 201
        counts[required] = len(queries.captured_queries)
        assert not [q for q in queries.captured_queries if '"accounts_user"' in q["sql"]]
    assert counts[True] == counts[False]


def test_a_password_set_with_an_emailed_code_verifies_the_address(post, mailoutbox):
    UserFactory(email="ada@example.com", email_verified_at=None)
    assert post("/api/v1/auth/password/reset", {"email": "ada@example.com"}).status_code == 202
    body = {"email": "ada@example.com", "code": emailed_code(mailoutbox[0]), "new_password": "lantern-orchard-71"}
    assert post("/api/v1/auth/password/reset/confirm", body).status_code == 204
    assert User.objects.get(email="ada@example.com").email_verified_at is not None
    assert not EmailCode.objects.filter(user__email="ada@example.com", used_at__isnull=True).exists()
