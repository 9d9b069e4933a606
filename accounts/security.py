"""Brute-force protection for every password check, API and admin alike (django-axes).

Policy: failures, not attempts, are counted, per account *and* client IP
(``AXES_LOCKOUT_PARAMETERS``): after ``LOGIN_FAILURE_LIMIT`` wrong passwords for
one account from one address, that address may not try that account for
``LOGIN_LOCKOUT_MINUTES``. A correct password resets the count. Because the
key includes the IP, somebody guessing another person's password locks only
themselves out: the owner, from their own address, signs in as usual.

Axes hooks into ``django.contrib.auth.authenticate`` (its backend refuses a
locked pair before any password is checked; its signal handlers count
failures), so the admin login, ``POST /auth/login`` and any later credential
endpoint that calls ``authenticate(request, ...)`` share the same counts.
The functions below adapt axes to EventFlow: the login is an email address,
and a lockout is a 429 problem under /api/ and a page in the admin.
"""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.exceptions import Throttled
from rest_framework.renderers import JSONRenderer

from eventflow.api.errors import problem_response

from .models import normalize_email


def login_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The account a login attempt is for: ``email`` from the API, ``username`` from the admin form."""
    credentials = credentials or {}
    raw = credentials.get("email") or credentials.get("username")
    if raw is None and request is not None and request.method == "POST":
        raw = request.POST.get("username")
    return normalize_email(raw) if isinstance(raw, str) and raw else None


def seconds_until_unlocked(request: HttpRequest, credentials: dict | None) -> int:
    """How long this account + address pair stays locked (the cool-off after its latest failure)."""
    cool_off = get_cool_off(request)
    latest = (
        AccessAttempt.objects.filter(
            username=login_username(request, credentials), ip_address=getattr(request, "axes_ip_address", None)
        )
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    if cool_off is None:
        return 3600
    if latest is None:
        return math.ceil(cool_off.total_seconds())
    return max(1, math.ceil((latest + cool_off - timezone.now()).total_seconds()))


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None):
    """429 for a locked account + address: problem details for the API, a page for the admin."""
    wait = seconds_until_unlocked(request, credentials)
    if request.path.startswith("/api/"):
        detail = _("Too many failed sign-in attempts for this account from your address. Try again later.")
        response = problem_response(Throttled(wait=wait, detail=detail), request)
        # axes swaps the view's response for this one in its middleware, after DRF rendered: render it here.
        response.accepted_renderer = JSONRenderer()
        response.accepted_media_type = response.content_type
        response.renderer_context = {}
        response.render()
        return response
    response = render(
        request,
        "accounts/locked_out.html",
        {"minutes": math.ceil(wait / 60), "title": _("Too many failed sign-in attempts")},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response
