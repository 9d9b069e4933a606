"""Per-client-IP limits on endpoints that create things for anonymous callers (registration).

DRF's throttles limit requests per client overall; these limits, counted by
django-ratelimit in the shared cache, cap what one address may create. The
client IP is ``eventflow.clientip.client_ip`` (``RATELIMIT_IP_META_KEY``).
Password checks are limited differently, by failures (``accounts.security``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.exceptions import Throttled
from rest_framework.request import Request


def enforce_ip_rate_limit(request: Request, *, group: str, rate_setting: str) -> None:
    """Count this request against ``group`` for its client IP; 429 when over the rate.

    ``rate_setting`` names a setting holding a rate such as ``"5/m"``, read at
    call time so deployments (and tests) can change it.
    """
    enforce_rate_limit(request, group=f"{group}:ip", key="ip", rate_setting=rate_setting)


def enforce_rate_limit(request: Request, *, group: str, key: Any, rate_setting: str) -> None:
    """Count this request against ``group`` for ``key`` (django-ratelimit's: ``"ip"``, or a callable
    ``(group, request) -> str``); 429 ``throttled`` with ``Retry-After`` when over the rate."""
    usage = get_usage(request, group=group, key=key, rate=getattr(settings, rate_setting), increment=True)
    if usage and usage["should_limit"]:
        raise Throttled(wait=max(1, usage["time_left"]))
