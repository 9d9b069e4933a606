"""Per-IP and per-email limits for sensitive endpoints (login, registration).

DRF's throttles limit requests per client overall; these limits, counted by
django-ratelimit in the shared cache, slow down password guessing against one
address from many IPs and from one IP against many addresses.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.exceptions import Throttled
from rest_framework.request import Request


def email_from_body(request: Request) -> str:
    data = request.data
    email = data.get("email") if isinstance(data, dict) else None
    return email.strip().lower() if isinstance(email, str) else ""


def enforce_rate_limits(request: Request, *, group: str, per_ip: str, per_email: str) -> None:
    """Count this request against ``group`` and raise 429 when a limit is exceeded.

    ``per_ip`` and ``per_email`` name settings holding rates such as ``"5/m"``,
    read at call time so deployments (and tests) can change them.
    """
    email = email_from_body(request)
    rules: list[tuple[str | Callable, str]] = [("ip", getattr(settings, per_ip))]
    if email:
        rules.append((lambda _group, _request: email, getattr(settings, per_email)))
    waits = []
    for key, rate in rules:
        usage = get_usage(
            request, group=f"{group}:{'ip' if key == 'ip' else 'email'}", key=key, rate=rate, increment=True
        )
        if usage and usage["should_limit"]:
            waits.append(max(1, usage["time_left"]))
    if waits:
        raise Throttled(wait=max(waits))
