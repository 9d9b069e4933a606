"""TOTP two-factor authentication: setup, enable, login with codes and recovery codes, disable,
the limits on guessing, the organizer requirement and the admin login."""

from __future__ import annotations

import threading

import pyotp
import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from accounts import twofactor
from accounts.models import RecoveryCode, TwoFactor, User

from .factories import DEFAULT_PASSWORD, OrganizerProfileFactory, UserFactory
from .test_auth import assert_problem

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
SETUP = "/api/v1/auth/2fa/setup"
ENABLE = "/api/v1/auth/2fa/enable"
DISABLE = "/api/v1/auth/2fa/disable"
RECOVERY = "/api/v1/auth/2fa/recovery-codes"
T0 = 1_900_000_020.0  # a step boundary (divisible by 30): each test moves the clock by whole steps


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def step(self, steps: int = 1) -> None:
        self.now += steps * twofactor.INTERVAL


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(T0)
    monkeypatch.setattr(twofactor, "_clock", clock)
    return clock


def code(secret: str, clock: Clock, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.now + steps * twofactor.INTERVAL)


def signed_in(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def enable_2fa(user: User, clock: Clock) -> dict:
    """Set up and enable 2FA for ``user`` through the API; the setup body (secret, recovery codes)."""
    client = signed_in(user)
    setup = client.post(SETUP)
    assert setup.status_code == 200, setup.content
    r = client.post(ENABLE, {"otp": code(setup.json()["secret"], clock)}, format="json")
    assert r.status_code == 204, r.content
    clock.step()  # the enabling code is spent; the next login uses the next one
    return setup.json()


def login(client: APIClient, user: User, **extra):
    return client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD, **extra}, format="json")


def test_setup_then_enable_then_login_needs_the_code(api_client, clock):
    # given an account without 2FA
    user = UserFactory(email="ada@example.com")
    client = signed_in(user)

    # when it starts the setup
    r = client.post(SETUP)

    # then it gets a secret, its otpauth URI and a QR code of it, and ten recovery codes
    assert r.status_code == 200, r.content
    assert r["Cache-Control"] == "no-store"
    body = r.json()
    secret = body["secret"]
    assert len(secret) == 32
    assert body["otpauth_uri"].startswith("otpauth://totp/EventFlow:ada%40example.com?")
    assert f"secret={secret}" in body["otpauth_uri"]
    assert "issuer=EventFlow" in body["otpauth_uri"]
    assert body["qr_code"].startswith("data:image/svg+xml")
    assert len(body["recovery_codes"]) == 10
    assert len(set(body["recovery_codes"])) == 10
    # the secret is stored encrypted, the recovery codes only as digests
    device = TwoFactor.objects.get(user=user)
    assert device.confirmed_at is None
    assert secret not in device.secret_encrypted
    digests = set(RecoveryCode.objects.filter(user=user).values_list("digest", flat=True))
    assert len(digests) == 10
    assert not digests & set(body["recovery_codes"])

    # and a pending setup changes nothing at login
    assert login(api_client, user).status_code == 200

    # when it enables 2FA with a wrong code, then a right one
    assert_problem(client.post(ENABLE, {"otp": "000000"}, format="json"), 400, "otp_invalid")
    r = client.post(ENABLE, {"otp": code(secret, clock)}, format="json")
    assert r.status_code == 204, r.content
    assert TwoFactor.objects.get(user=user).confirmed_at is not None
    clock.step()

    # then a login without a code, or with a wrong one, is refused; with the current code it works
    assert_problem(login(api_client, user), 401, "otp_required")
    assert_problem(login(api_client, user, otp="123456"), 401, "otp_invalid")
    r = login(api_client, user, otp=code(secret, clock))
    assert r.status_code == 200, r.content
    assert r.json()["access"]
    assert r.json()["refresh"]
    # a wrong password is still just that (the code is not even looked at)
    r = api_client.post(LOGIN, {"email": user.email, "password": "nope", "otp": code(secret, clock)}, format="json")
    assert_problem(r, 401, "invalid_credentials")


def test_each_code_is_accepted_once_and_only_near_now(api_client, clock):
    # given an account with 2FA on
    user = UserFactory()
    secret = enable_2fa(user, clock)["secret"]
    current = code(secret, clock)

    # the code that enabled it does not sign in
    assert_problem(login(api_client, user, otp=code(secret, clock, -1)), 401, "otp_invalid")

    # a code works once
    assert login(api_client, user, otp=current).status_code == 200
    assert_problem(login(api_client, user, otp=current), 401, "otp_invalid")

    # the next step's code (a clock a little ahead) works; after it, an older code no longer does
    clock.step(3)
    assert login(api_client, user, otp=code(secret, clock, 1)).status_code == 200
    assert_problem(login(api_client, user, otp=code(secret, clock)), 401, "otp_invalid")

    # an expired code (two steps old) is refused, one step old is still taken
    clock.step(5)
    assert_problem(login(api_client, user, otp=code(secret, clock, -2)), 401, "otp_invalid")
    assert login(api_client, user, otp=code(secret, clock, -1)).status_code == 200


def test_recovery_codes_stand_in_once_and_can_be_replaced(api_client, clock):
    # given an account with 2FA on and its recovery codes
    user = UserFactory()
    setup = enable_2fa(user, clock)
    first, second = setup["recovery_codes"][:2]

    # a recovery code signs in once (typed in capitals, without its dashes)
    assert login(api_client, user, otp=first.replace("-", "").upper()).status_code == 200
    assert_problem(login(api_client, user, otp=first), 401, "otp_invalid")
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1

    # new codes need a code from the app: a recovery code is not enough
    client = signed_in(user)
    assert_problem(client.post(RECOVERY, {"otp": second}, format="json"), 400, "otp_invalid")
    r = client.post(RECOVERY, {"otp": code(setup["secret"], clock)}, format="json")
    assert r.status_code == 200, r.content
    new_codes = r.json()["recovery_codes"]
    assert len(new_codes) == 10
    assert not set(new_codes) & set(setup["recovery_codes"])

    # the old codes stopped working; the new ones work
    assert_problem(login(api_client, user, otp=second), 401, "otp_invalid")
    assert login(api_client, user, otp=new_codes[0]).status_code == 200


def test_disable_needs_a_valid_code(api_client, clock):
    user = UserFactory()
    setup = enable_2fa(user, clock)
    client = signed_in(user)

    assert_problem(client.post(DISABLE, {"otp": "999999"}, format="json"), 400, "otp_invalid")
    assert_problem(client.post(DISABLE, {}, format="json"), 400, "invalid")
    assert_problem(client.post(DISABLE, {"otp": "1", "extra": 1}, format="json"), 400, "invalid")
    assert TwoFactor.objects.filter(user=user, confirmed_at__isnull=False).exists()

    r = client.post(DISABLE, {"otp": code(setup["secret"], clock)}, format="json")
    assert r.status_code == 204, r.content
    assert not TwoFactor.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    assert login(api_client, user).status_code == 200  # no code needed any more
    assert_problem(signed_in(user).post(DISABLE, {"otp": "123456"}, format="json"), 409, "2fa_not_enabled")


def test_setup_and_enable_out_of_order_are_conflicts(clock):
    user = UserFactory()
    client = signed_in(user)
    assert_problem(client.post(ENABLE, {"otp": "123456"}, format="json"), 409, "2fa_not_set_up")
    enable_2fa(user, clock)
    assert_problem(signed_in(user).post(SETUP), 409, "2fa_already_enabled")
    assert_problem(signed_in(user).post(ENABLE, {"otp": "123456"}, format="json"), 409, "2fa_already_enabled")
    assert_problem(APIClient().post(SETUP), 401, "not_authenticated")


def test_a_new_setup_replaces_the_pending_secret(clock):
    user = UserFactory()
    client = signed_in(user)
    old = client.post(SETUP).json()
    new = client.post(SETUP).json()
    assert old["secret"] != new["secret"]
    assert_problem(client.post(ENABLE, {"otp": code(old["secret"], clock)}, format="json"), 400, "otp_invalid")
    assert client.post(ENABLE, {"otp": code(new["secret"], clock)}, format="json").status_code == 204


def test_wrong_codes_lock_the_account_and_address_like_wrong_passwords(api_client, clock, settings):
    # given an account with 2FA on
    user = UserFactory()
    secret = enable_2fa(user, clock)["secret"]

    # when one address sends LOGIN_FAILURE_LIMIT wrong codes with the right password
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert_problem(login(api_client, user, otp="000000"), 401, "otp_invalid")
    r = login(api_client, user, otp="000000")

    # then it is locked out like after wrong passwords, even with the right code
    assert_problem(r, 429, "throttled")
    r = login(api_client, user, otp=code(secret, clock))
    assert_problem(r, 429, "throttled")
    assert int(r["Retry-After"]) > 0


def test_wrong_codes_are_limited_per_account_whatever_the_address(clock, settings):
    # given an account with 2FA on, whose password an attacker knows
    user = UserFactory()
    secret = enable_2fa(user, clock)["secret"]

    # when OTP_FAILURE_LIMIT wrong codes come, each from another address
    for n in range(settings.OTP_FAILURE_LIMIT):
        r = login(APIClient(REMOTE_ADDR=f"198.51.100.{n + 1}"), user, otp="000000")
        assert_problem(r, 401, "otp_invalid")

    # then a further try is 429 from any address, even with the right code, until the window passes
    r = login(APIClient(REMOTE_ADDR="203.0.113.9"), user, otp=code(secret, clock))
    assert_problem(r, 429, "throttled")
    assert int(r["Retry-After"]) > 0
    # and a signed-in request with a code is limited too
    assert_problem(signed_in(user).post(DISABLE, {"otp": code(secret, clock)}, format="json"), 429, "throttled")
    # other accounts are not affected
    other = UserFactory()
    assert login(APIClient(REMOTE_ADDR="203.0.113.9"), other).status_code == 200


def test_wrong_codes_are_limited_per_address_across_accounts(clock, settings):
    settings.OTP_FAILURE_RATE_PER_IP = "3/15m"
    users = [UserFactory() for _ in range(4)]
    for user in users:
        enable_2fa(user, clock)
    client = APIClient(REMOTE_ADDR="198.51.100.7")
    for user in users[:3]:
        assert_problem(login(client, user, otp="000000"), 401, "otp_invalid")
    assert_problem(login(client, users[3], otp="000000"), 429, "throttled")


def test_secret_survives_a_secret_key_rotation_with_fallbacks(api_client, clock, settings):
    user = UserFactory()
    setup = enable_2fa(user, clock)
    old_key = settings.SECRET_KEY
    with override_settings(SECRET_KEY="a-brand-new-secret-key-" + "x" * 40, SECRET_KEY_FALLBACKS=[old_key]):
        assert login(api_client, user, otp=code(setup["secret"], clock)).status_code == 200
        assert login(api_client, user, otp=setup["recovery_codes"][0]).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_logins_racing_with_one_code_get_one_session(clock):
    # given an account with 2FA on and one valid code
    user = UserFactory()
    secret = enable_2fa(user, clock)["secret"]
    otp = code(secret, clock)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def attempt(n: int) -> None:
        try:
            client = APIClient(REMOTE_ADDR=f"198.51.100.{n}")
            barrier.wait()
            results.append(login(client, user, otp=otp).status_code)
        finally:
            connection.close()

    # when two logins send it at the same moment
    threads = [threading.Thread(target=attempt, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly one gets tokens
    assert sorted(results) == [200, 401]
    assert user.token_families.count() == 1


# --- Organizers required to use 2FA ------------------------------------------------------------


@override_settings(ORGANIZERS_REQUIRE_2FA=True)
def test_organizers_must_turn_on_2fa_when_required(clock):
    # given an organizer without 2FA while the platform requires it
    organizer = OrganizerProfileFactory().user
    client = signed_in(organizer)
    event = {
        "title": "Show",
        "starts_at": "2031-05-01T20:00:00+02:00",
        "ends_at": "2031-05-01T23:00:00+02:00",
        "venue_name": "Hall",
        "city": "Berlin",
        "country": "DE",
        "category": "music",
    }

    # then organizer endpoints refuse them with a stable code
    assert_problem(client.post("/api/v1/events", event, format="json"), 403, "2fa_required")
    assert_problem(client.get("/api/v1/events?mine=true"), 403, "2fa_required")
    # an attendee's endpoints and the 2FA ones still work for them
    assert client.get("/api/v1/users/me").status_code == 200
    enable_2fa(organizer, clock)

    # once 2FA is on, they act as organizers again
    client = signed_in(organizer)
    assert client.get("/api/v1/events?mine=true").status_code == 200
    r = client.post("/api/v1/events", event, format="json")
    assert r.status_code == 201, r.content


def test_organizers_without_2fa_are_fine_when_not_required():
    organizer = OrganizerProfileFactory().user
    assert signed_in(organizer).get("/api/v1/events?mine=true").status_code == 200


# --- The admin login -----------------------------------------------------------------------------

ADMIN_LOGIN = "/admin/login/?next=/admin/"


def admin_login(client, user, otp: str | None = None):
    data = {"username": user.email, "password": DEFAULT_PASSWORD, "next": "/admin/"}
    if otp is not None:
        data["otp"] = otp
    return client.post(ADMIN_LOGIN, data)


def test_admin_login_without_2fa_needs_no_code(client):
    admin_user = UserFactory(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
    page = client.get(ADMIN_LOGIN)
    assert page.status_code == 200
    assert b'name="otp"' in page.content
    r = admin_login(client, admin_user)
    assert r.status_code == 302
    assert r["Location"] == "/admin/"


def test_admin_login_asks_for_the_code_of_an_account_with_2fa(client, clock):
    admin_user = UserFactory(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
    secret = enable_2fa(admin_user, clock)["secret"]

    r = admin_login(client, admin_user)
    assert r.status_code == 200
    assert b"Enter the code from your authenticator app" in r.content
    r = admin_login(client, admin_user, otp="000000")
    assert r.status_code == 200
    assert b"wrong, expired or already used" in r.content
    assert client.get("/admin/").status_code == 302  # still signed out

    r = admin_login(client, admin_user, otp=code(secret, clock))
    assert r.status_code == 302
    assert r["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@override_settings(ORGANIZERS_REQUIRE_2FA=True)
def test_admin_turns_away_organizers_without_2fa_when_required(client, clock):
    organizer = OrganizerProfileFactory(user__is_staff=True).user
    r = admin_login(client, organizer)
    assert r.status_code == 200
    assert b"must turn on two-factor authentication" in r.content
    assert client.get("/admin/").status_code == 302

    secret = enable_2fa(organizer, clock)["secret"]
    r = admin_login(client, organizer, otp=code(secret, clock))
    assert r.status_code == 302
    assert r["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_an_admin_session_from_before_the_requirement_ends_at_the_login_page(client, settings):
    organizer = OrganizerProfileFactory(user__is_staff=True).user
    client.force_login(organizer)
    assert client.get("/admin/").status_code == 200
    settings.ORGANIZERS_REQUIRE_2FA = True
    r = client.get("/admin/")
    assert r.status_code == 302
    assert r["Location"].startswith("/admin/login/")


def test_staff_turn_off_2fa_for_a_lost_phone(client, clock, django_capture_on_commit_callbacks):
    # given an account with 2FA on and a session, and a platform admin
    user = UserFactory()
    secret = enable_2fa(user, clock)["secret"]
    session = login(APIClient(), user, otp=code(secret, clock)).json()
    admin_user = UserFactory(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
    client.force_login(admin_user)

    # when staff turn its 2FA off
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            "/admin/accounts/user/", {"action": "turn_off_two_factor", "_selected_action": [user.pk]}, follow=True
        )

    # then the authenticator and codes are gone, the sessions ended, and the password alone signs in
    assert r.status_code == 200
    assert "Two-factor authentication turned off for 1 account." in [str(m) for m in r.context["messages"]]
    assert not TwoFactor.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    assert APIClient().post("/api/v1/auth/refresh", {"refresh": session["refresh"]}, format="json").status_code == 401
    assert login(APIClient(), user).status_code == 200


@pytest.mark.parametrize("otp", ["١٢٣٤٥٦", "²³⁴⁵⁶⁷", "\uff11\uff12\uff13\uff14\uff15\uff16"])  # full-width last
def test_digits_of_other_scripts_are_a_wrong_code_not_an_error(api_client, clock, otp):
    # given an account with 2FA on
    user = UserFactory()
    enable_2fa(user, clock)
    # a code in Arabic-Indic, superscript or full-width digits is refused like any wrong code
    assert_problem(login(api_client, user, otp=otp), 401, "otp_invalid")
    r = signed_in(user).post(DISABLE, {"otp": otp}, format="json")
    assert_problem(r, 400, "otp_invalid")
    assert TwoFactor.objects.get(user=user).confirmed_at is not None
