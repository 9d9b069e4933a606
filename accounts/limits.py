"""Per-account limits on the endpoints that email codes or take them (django-ratelimit, shared cache).

The per-IP limits (``eventflow.api.ratelimit``) stop one address from hammering; these stop
many addresses from taking turns on one account. They are keyed by the normalized email as
sent, whether or not an account has it, so a 429 tells nobody whether it exists.
"""

from __future__ import annotations

import hashlib

from rest_framework.request import Request

from eventflow.api.ratelimit import enforce_rate_limit

from .models import normalize_email


def enforce_account_rate_limit(request: Request, *, group: str, account: str, rate_setting: str) -> None:
    """Count this request against ``group`` for ``account`` (an email or a user id); 429 when over."""
    digest = hashlib.sha256(normalize_email(account).encode()).hexdigest()  # no address in a cache key
    enforce_rate_limit(
        request, group=f"{group}:account", key=lambda _group, _request: digest, rate_setting=rate_setting
    )
