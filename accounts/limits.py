"""Per-account limits on the endpoints that email codes or take them (django-ratelimit, shared cache).

The per-IP limits (``eventflow.api.ratelimit``) stop one address from hammering; these stop
many addresses from taking turns on one account. They are keyed by the normalized email as
sent, whether or not an account has it, so a 429 tells nobody whether it exists.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.exceptions import Throttled
from rest_framework.request import Request

from .models import normalize_email


def enforce_account_rate_limit(request: Request, *, group: str, account: str, rate_setting: str) -> None:
    """Count this request against ``group`` for ``account`` (an email or a user id); 429 when over."""
    digest = hashlib.sha256(normalize_email(account).encode()).hexdigest()  # no address in a cache key
    usage = get_usage(
        request,
        group=f"{group}:account",
        key=lambda _group, _request: digest,
        rate=getattr(settings, rate_setting),
        increment=True,
    )
    if usage and usage["should_limit"]:
        raise Throttled(wait=max(1, usage["time_left"]))
