"""One-time codes emailed to an account (``EmailCode``): issued, stored hashed, used once.

A code is 8 characters of an alphabet without look-alikes (32 symbols: 40 bits), short
enough to type from a phone. Its guessing is bounded three ways: ``MAX_ATTEMPTS`` wrong
tries burn it (even the right code fails afterwards), it expires, and the endpoints that
take codes are rate limited per client address and per account (``accounts.limits``).

What is stored is an HMAC of the code under ``SECRET_KEY`` (bound to the user and the
purpose), not the code: 40 bits would fall to a brute force of a plain hash, an HMAC
needs the key too. Comparison is constant-time.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from .models import EmailCode, User

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0, 1: nothing to misread
LENGTH = 8
MAX_ATTEMPTS = 5
MAX_INPUT_LENGTH = 100  # longer input is not a code: refused before any hashing


def _hash(*, user_id: int, purpose: str, code: str) -> str:
    return salted_hmac("accounts.EmailCode", f"{user_id}:{purpose}:{code}", algorithm="sha256").hexdigest()


def normalize(code: str) -> str:
    """What a person types: any case, with spaces or a dash as in ``ABCD-EFGH``."""
    return "".join(code.split()).replace("-", "").upper()


def code_issue(*, user: User, purpose: str, valid_for: timedelta) -> str:
    """A new code for ``user`` and ``purpose``, valid for ``valid_for``; older ones stop working.

    Returns the code itself, to email at once: it is stored only hashed."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    now = timezone.now()
    with transaction.atomic():
        # Only the newest code counts anyway (code_use); deleting the others keeps one row per purpose.
        EmailCode.objects.filter(user=user, purpose=purpose).delete()
        EmailCode.objects.create(
            user=user,
            purpose=purpose,
            code_hash=_hash(user_id=user.pk, purpose=purpose, code=code),
            created_at=now,
            expires_at=now + valid_for,
        )
    return code


def dummy_check(code: str) -> None:
    """The work a check does, for a request about no account: its time tells nothing."""
    constant_time_compare(_hash(user_id=0, purpose="", code=normalize(code)), "0" * 64)


def code_use(*, user: User, purpose: str, code: str) -> bool:
    """Spend the newest code of ``user`` for ``purpose`` if ``code`` is it: True once, False otherwise.

    Call it inside the transaction that does what the code allows, so that both happen or
    neither; a wrong code counts an attempt, which must be kept even though the caller then
    refuses the request: the caller raises only after that transaction has committed."""
    if len(code) > MAX_INPUT_LENGTH:
        return False
    row = (
        EmailCode.objects.select_for_update().filter(user=user, purpose=purpose).order_by("-created_at", "-pk").first()
    )
    if row is None:
        dummy_check(code)
        return False
    right = constant_time_compare(row.code_hash, _hash(user_id=user.pk, purpose=purpose, code=normalize(code)))
    if row.used_at is not None or row.attempts >= MAX_ATTEMPTS or row.expires_at <= timezone.now():
        return False
    if not right:
        row.attempts += 1
        row.save(update_fields=["attempts"])
        return False
    row.used_at = timezone.now()
    row.save(update_fields=["used_at"])
    return True
