"""Password strength beyond length and the common-password list: zxcvbn's estimate.

Django's validators refuse short, all-numeric, very common passwords and ones
close to the user's attributes. They let through what a person would still
call weak: ten spaces, ``zzzzzzzzzzzz``, ``P@ssw0rd12`` (a common password in
l33t), ``alice12345`` for Alice. zxcvbn estimates how many guesses a password
takes, knowing keyboard patterns, repeats, sequences, dates, l33t substitutions,
dictionaries of common passwords, names and words, and the user's own details.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from zxcvbn import zxcvbn

# zxcvbn's cost grows with length; it scores at most this many characters (its own cap).
SCORED_LENGTH = 72


class PasswordStrengthValidator:
    """Refuse passwords zxcvbn scores below ``min_score`` (0-4; 3 = "safely unguessable" online)."""

    def __init__(self, min_score: int = 3) -> None:
        self.min_score = min_score

    @staticmethod
    def _user_inputs(user) -> list[str]:
        if user is None:
            return []
        values = [getattr(user, "email", "") or "", getattr(user, "name", "") or ""]
        words = [part for value in values for part in re.split(r"[\W_]+", value.lower()) if len(part) >= 3]
        return [value for value in values if value] + words

    def validate(self, password: str, user=None) -> None:
        result = zxcvbn(password[:SCORED_LENGTH], user_inputs=self._user_inputs(user))
        if result["score"] >= self.min_score:
            return
        feedback = result.get("feedback") or {}
        hints = [feedback.get("warning") or "", *(feedback.get("suggestions") or [])]
        hint = " ".join(h for h in hints if h)
        message = _("This password is too easy to guess.")
        raise ValidationError(f"{message} {hint}".strip(), code="password_too_weak")

    def get_help_text(self) -> str:
        return _(
            "Your password must be hard to guess: avoid repeated or sequential characters, common words "
            "and passwords (also with symbols for letters), and your own name or email address."
        )
