"""Two-factor authentication: TOTP codes from an authenticator app, and single-use recovery codes.

Flow: ``POST /auth/2fa/setup`` makes a pending authenticator (a new secret, its
``otpauth://`` URI and QR code, and ten recovery codes, all shown this once);
``POST /auth/2fa/enable`` with a code from the app turns it on. From then on a login
needs ``otp`` after the password, and so do disabling it, new recovery codes and
deleting the account. A recovery code can stand in for ``otp`` once.

Why it is built this way:

- pyotp, not django-otp: one TOTP device per user and a handful of codes need
  no device registry, plugins or its admin; pyotp is the RFC 6238 arithmetic.
- The secret is encrypted at rest with Fernet (``cryptography``) under a key derived
  from ``SECRET_KEY``; keys from ``SECRET_KEY_FALLBACKS`` still decrypt, so a key
  rotation done the Django way keeps every authenticator working. A database dump
  alone cannot mint codes. The secret is never shown again after setup.
- "Accepted once": the TOTP time step of the newest code accepted is kept on the
  row, and a code is taken only for a later step, checked and written under the
  row's lock, so two logins racing with one code get one session.
- Recovery codes have 60 random bits; they are stored as HMAC-SHA256 (keyed from
  ``SECRET_KEY``, salted by the user id), which is enough for that entropy and
  useless without the key. Used ones are kept, marked used.
- Guessing is limited like passwords are: a wrong code at login is a failed login
  for django-axes (per account and address, ``LOGIN_FAILURE_LIMIT``), and every wrong
  code anywhere counts per account (``OTP_FAILURE_LIMIT`` per ``LOGIN_LOCKOUT_MINUTES``,
  whatever the address: 10^6 codes cannot be walked by rotating addresses) and per
  address (``OTP_FAILURE_RATE_PER_IP``), answered 429 ``throttled`` with ``Retry-After``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.contrib.auth import user_login_failed
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_ratelimit.core import get_usage
from rest_framework.exceptions import Throttled

from .errors import (
    OtpInvalid,
    OtpRejected,
    OtpRequired,
    TwoFactorAlreadyEnabled,
    TwoFactorNotEnabled,
    TwoFactorNotSetUp,
    TwoFactorRequired,
)
from .models import RecoveryCode, TokenFamily, TwoFactor, User
from .revocation import void_tokens

logger = logging.getLogger(__name__)

INTERVAL = 30  # seconds per TOTP step (RFC 6238 default; what every authenticator app uses)
DIGITS = 6
VALID_WINDOW = 1  # one step either side: a phone's clock a little off, a code typed as it rolls over
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_RECOVERY_LENGTH = 12  # 12 of 31 symbols: ~59 bits

_clock = time.time  # the tests set the time through this


# --- Keys --------------------------------------------------------------------------------


def _key_material() -> list[bytes]:
    return [key.encode() for key in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]]


def _derived(purpose: bytes, key: bytes) -> bytes:
    return hashlib.sha256(b"eventflow.accounts.twofactor." + purpose + b"\0" + key).digest()


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(base64.urlsafe_b64encode(_derived(b"secret", key))) for key in _key_material()])


def _encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def _decrypt(token: str) -> str | None:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:  # SECRET_KEY changed without keeping the old one in SECRET_KEY_FALLBACKS
        logger.error("A 2FA secret cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS")
        return None


def _normalized_recovery_code(raw: str) -> str:
    return "".join(raw.split()).replace("-", "").lower()


def _recovery_digests(user_id: int, code: str) -> list[str]:
    """The code's digest under every key in use (the first is the one new codes are stored with)."""
    message = f"{user_id}:{_normalized_recovery_code(code)}".encode()
    return [hmac.new(_derived(b"recovery", key), message, hashlib.sha256).hexdigest() for key in _key_material()]


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4))


def _replace_recovery_codes(user_id: int) -> list[str]:
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user_id=user_id).delete()
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user_id=user_id, digest=_recovery_digests(user_id, code)[0]) for code in codes
    )
    return codes


# --- Limits on guessing ------------------------------------------------------------------


def _account_key(user_id: int):
    return lambda group, request: str(user_id)


def _usages(request: HttpRequest | None, user_id: int, *, increment: bool) -> list[dict]:
    window = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    usages = [
        get_usage(
            request,
            group="2fa-failures:account",
            key=_account_key(user_id),
            rate=f"{settings.OTP_FAILURE_LIMIT}/{window}m",
            increment=increment,
        )
    ]
    if request is not None:
        usages.append(
            get_usage(
                request, group="2fa-failures:ip", key="ip", rate=settings.OTP_FAILURE_RATE_PER_IP, increment=increment
            )
        )
    return [usage for usage in usages if usage]


def _refuse_if_limited(request: HttpRequest | None, user_id: int) -> None:
    """429 once the account, or the address, used up its wrong codes (counted, not attempts)."""
    for usage in _usages(request, user_id, increment=False):
        if usage["count"] >= usage["limit"]:
            raise Throttled(wait=max(1, usage["time_left"]))


def _count_failure(request: HttpRequest | None, user: User, *, login: bool) -> None:
    _usages(request, user.pk, increment=True)
    logger.warning("Wrong 2FA code for user %s", user.pk)
    if login and request is not None:
        # A failed login for django-axes too (its per account + address lockout, visible in the admin).
        user_login_failed.send(sender=__name__, credentials={"email": user.email}, request=request)


# --- Checking a code ---------------------------------------------------------------------


def _matching_step(secret: str, code: str, after: int | None) -> int | None:
    """The newest time step near now whose code is ``code`` and that is later than ``after``."""
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):  # "١٢٣٤٥٦" is digits too
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    now_step = int(_clock() // INTERVAL)
    found = None
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        if (after is None or step > after) and hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def _consume(user_id: int, code: str, *, pending: bool = False, allow_recovery: bool = False) -> bool:
    """Accept ``code`` once: a TOTP code of a step later than the last accepted, or (with
    ``allow_recovery``) an unused recovery code. Under the authenticator row's lock, so of two
    requests racing with one code only one gets True. With ``pending`` it checks the authenticator
    being set up, and a good code turns it on."""
    code = (code or "").strip()
    now = timezone.now()
    with transaction.atomic():
        device = TwoFactor.objects.select_for_update().filter(user_id=user_id).first()
        if device is None or (device.confirmed_at is None) != pending:
            return False
        secret = _decrypt(device.secret_encrypted)
        step = _matching_step(secret, code, device.last_step) if secret else None
        if step is not None:
            device.last_step = step
            fields = ["last_step"]
            if pending:
                device.confirmed_at = now
                fields.append("confirmed_at")
            device.save(update_fields=fields)
            return True
        if allow_recovery and not pending and len(_normalized_recovery_code(code)) == _RECOVERY_LENGTH:
            used = RecoveryCode.objects.filter(
                user_id=user_id, used_at__isnull=True, digest__in=_recovery_digests(user_id, code)
            ).update(used_at=now)
            if used:
                logger.info("User %s used a 2FA recovery code", user_id)
            return bool(used)
    return False


def is_enabled(user: User) -> bool:
    """Whether ``user`` has 2FA on (one query; remembered on the user object for this request)."""
    if not hasattr(user, "_two_factor_on"):
        user._two_factor_on = TwoFactor.objects.filter(user_id=user.pk, confirmed_at__isnull=False).exists()
    return user._two_factor_on


def login_second_factor(*, request: HttpRequest | None, user: User, otp: str | None) -> None:
    """After a right password: nothing more for an account without 2FA; else ``otp`` must be a
    code from its app (or one of its recovery codes) not used before. 401 ``otp_required`` /
    ``otp_invalid``; 429 ``throttled`` once too many wrong codes were tried."""
    if not is_enabled(user):
        return
    if not otp:
        raise OtpRequired()
    _refuse_if_limited(request, user.pk)
    if not _consume(user.pk, otp, allow_recovery=True):
        _count_failure(request, user, login=True)
        raise OtpInvalid()


def otp_check(*, request: HttpRequest | None, user: User, otp: str, allow_recovery: bool = True) -> None:
    """A signed-in user proves they still hold the second factor (disable, new recovery codes,
    account deletion). 400 ``otp_invalid``; wrong codes count toward the same limits as at login."""
    _refuse_if_limited(request, user.pk)
    if not _consume(user.pk, otp, allow_recovery=allow_recovery):
        _count_failure(request, user, login=False)
        raise OtpRejected()


# --- Services ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    secret: str
    otpauth_uri: str
    qr_code: str  # an SVG data URI of the otpauth URI
    recovery_codes: list[str]


def two_factor_setup(*, user: User) -> Setup:
    """Start (or restart) setting up 2FA: a new secret and new recovery codes, not yet in force.

    The API contract answers ``POST /auth/2fa/enable`` with 204 (no body), so the recovery codes
    are shown here, the only time: they work once the authenticator is enabled. A repeated setup
    replaces the secret and the codes of the one before (which were never in force).
    """
    secret = pyotp.random_base32()  # 32 base32 characters: 160 bits, as RFC 4226 recommends
    with transaction.atomic():
        # One setup at a time per account (the user row: there may be no authenticator row yet), and
        # the authenticator's own lock, so an enable committing meanwhile is seen and not overwritten.
        User.objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk").first()
        device = TwoFactor.objects.select_for_update().filter(user_id=user.pk).first()
        if device is not None and device.confirmed_at is not None:
            raise TwoFactorAlreadyEnabled()
        TwoFactor.objects.update_or_create(
            user_id=user.pk, defaults={"secret_encrypted": _encrypt(secret), "confirmed_at": None, "last_step": None}
        )
        codes = _replace_recovery_codes(user.pk)
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=user.email, issuer_name=settings.TWO_FACTOR_ISSUER
    )
    qr = segno.make(uri, error="m").svg_data_uri(scale=4, border=2)
    return Setup(secret=secret, otpauth_uri=uri, qr_code=qr, recovery_codes=codes)


def two_factor_enable(*, request: HttpRequest | None, user: User, otp: str) -> None:
    """Turn on the authenticator being set up, with a code from it (proof the app has the secret)."""
    device = TwoFactor.objects.filter(user_id=user.pk).only("confirmed_at").first()
    if device is None:
        raise TwoFactorNotSetUp()
    if device.confirmed_at is not None:
        raise TwoFactorAlreadyEnabled()
    _refuse_if_limited(request, user.pk)
    if not _consume(user.pk, otp, pending=True):
        _count_failure(request, user, login=False)
        raise OtpRejected()
    user._two_factor_on = True
    logger.info("User %s turned on two-factor authentication", user.pk)


def two_factor_disable(*, request: HttpRequest | None, user: User, otp: str) -> None:
    """Turn 2FA off, with a code from the app or a recovery code; the secret and codes are deleted."""
    if not is_enabled(user):
        raise TwoFactorNotEnabled()
    otp_check(request=request, user=user, otp=otp)
    two_factor_remove(user_id=user.pk)
    user._two_factor_on = False
    logger.info("User %s turned off two-factor authentication", user.pk)


def two_factor_remove(*, user_id: int) -> None:
    """Forget the authenticator and recovery codes (disable, account deletion, staff reset)."""
    TwoFactor.objects.filter(user_id=user_id).delete()
    RecoveryCode.objects.filter(user_id=user_id).delete()


def two_factor_reset(*, user: User, acting_user: User | None = None) -> bool:
    """Staff turn 2FA off for an owner who lost both the phone and the recovery codes (after
    checking who they are): every session ends too, whoever holds one. False if it was not on."""
    with transaction.atomic():
        if not TwoFactor.objects.filter(user_id=user.pk, confirmed_at__isnull=False).exists():
            return False
        two_factor_remove(user_id=user.pk)
        TokenFamily.objects.end_all(user=user, reason=TokenFamily.EndReason.REVOKED)
        transaction.on_commit(lambda: void_tokens(user.pk))
    logger.warning(
        "Two-factor authentication of user %s turned off by staff user %s",
        user.pk,
        acting_user.pk if acting_user else None,
    )
    return True


def recovery_codes_regenerate(*, request: HttpRequest | None, user: User, otp: str) -> list[str]:
    """Ten new recovery codes for a code from the app (not a recovery code); the old ones stop working."""
    if not is_enabled(user):
        raise TwoFactorNotEnabled()
    otp_check(request=request, user=user, otp=otp, allow_recovery=False)
    with transaction.atomic():
        return _replace_recovery_codes(user.pk)


def recovery_codes_left(*, user: User) -> int:
    return RecoveryCode.objects.filter(user_id=user.pk, used_at__isnull=True).count()


# --- Organizers must use it (ORGANIZERS_REQUIRE_2FA) -------------------------------------


def organizer_needs_two_factor(user: User) -> bool:
    """True when organizers must use 2FA and this one has not turned it on yet."""
    return bool(settings.ORGANIZERS_REQUIRE_2FA) and not is_enabled(user)


def require_for_organizer(user: User) -> None:
    """403 ``2fa_required`` on organizer endpoints, until the organizer turns 2FA on (the
    /auth/2fa/* endpoints stay open to them: that is how they do it)."""
    if organizer_needs_two_factor(user):
        raise TwoFactorRequired()
