"""Browser clients: the refresh token in an HttpOnly cookie, and the CSRF check that cookie needs.

A single-page app keeps its access token in memory; where should the refresh token live? In
``localStorage`` any script on the page (an XSS, a compromised dependency) can read it and use it
from anywhere for days. With ``AUTH_REFRESH_COOKIE`` on, a browser gets it as an ``HttpOnly``,
``Secure``, ``SameSite`` cookie scoped to ``AUTH_REFRESH_COOKIE_PATH`` (the auth endpoints): no
script can read it, and the browser sends it to ``/auth/refresh`` and ``/auth/logout`` only.

A browser is recognised by its ``Origin`` header, which browsers send on every POST (the
Fetch standard) and other clients do not: apps and servers keep getting the refresh token in
the body, as before. A refresh answered with the cookie never puts the token in the body, so a
script that can call ``/auth/refresh`` still cannot walk away with a refresh token.

A cookie is sent by the browser whoever asks for it, so the requests that use it pass Django's
CSRF check (``CsrfViewMiddleware`` itself, run for these views only, as DRF does for session
authentication): the ``X-CSRFToken`` header must match the ``csrftoken`` cookie (both from
``GET /auth/csrf``), and the ``Origin`` must be this host, one of ``CSRF_TRUSTED_ORIGINS`` or one
of ``CORS_ALLOWED_ORIGINS``. A refresh token sent in the body needs no CSRF check: a forged
request cannot know it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from rest_framework.request import Request

from .errors import CsrfFailed


def cookie_mode(request: Request | HttpRequest) -> bool:
    """Whether this request's refresh token travels in the cookie: the setting is on and a browser asks."""
    return settings.AUTH_REFRESH_COOKIE and "HTTP_ORIGIN" in request.META


def refresh_cookie(request: Request | HttpRequest) -> str | None:
    """The refresh token the browser sent in the cookie, if the cookie is on and there is one."""
    if not settings.AUTH_REFRESH_COOKIE:
        return None
    return request.COOKIES.get(settings.AUTH_REFRESH_COOKIE_NAME) or None


def set_refresh_cookie(response: HttpResponse, *, request: Request | HttpRequest, refresh: str) -> None:
    """Hand ``refresh`` to the browser in the cookie (lasting as long as the token), and make sure
    it holds a CSRF token for the refresh and logout that will use it."""
    response.set_cookie(
        settings.AUTH_REFRESH_COOKIE_NAME,
        refresh,
        max_age=int(settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].total_seconds()),
        path=settings.AUTH_REFRESH_COOKIE_PATH,
        domain=settings.AUTH_REFRESH_COOKIE_DOMAIN,
        secure=settings.AUTH_REFRESH_COOKIE_SECURE,
        httponly=True,
        samesite=settings.AUTH_REFRESH_COOKIE_SAMESITE,
    )
    get_token(request)  # CsrfViewMiddleware sets the csrftoken cookie on this response if missing


def delete_refresh_cookie(response: HttpResponse) -> None:
    response.delete_cookie(
        settings.AUTH_REFRESH_COOKIE_NAME,
        path=settings.AUTH_REFRESH_COOKIE_PATH,
        domain=settings.AUTH_REFRESH_COOKIE_DOMAIN,
        samesite=settings.AUTH_REFRESH_COOKIE_SAMESITE,
    )


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF middleware as a check: returns the reason of a failure instead of a page."""

    def _reject(self, request: HttpRequest, reason: str) -> str:
        return reason

    def _origin_verified(self, request: HttpRequest) -> bool:
        # The SPA's origin is trusted for these views, not for the admin's forms (CSRF_TRUSTED_ORIGINS).
        return request.META["HTTP_ORIGIN"] in settings.CORS_ALLOWED_ORIGINS or super()._origin_verified(request)


def enforce_csrf(request: Request) -> None:
    """Refuse (403 ``csrf_failed``) a request using the refresh cookie that fails the CSRF check."""
    http_request = request._request
    check = _CsrfCheck(lambda _request: None)
    check.process_request(http_request)  # reads the csrftoken cookie into META, as the middleware does
    reason = check.process_view(http_request, None, (), {})
    if reason:
        raise CsrfFailed(extra={"reason": str(reason)})


@register(Tags.security, deploy=True)
def refresh_cookie_secure(app_configs, **kwargs) -> list:
    """``check --deploy``: a refresh token (days of access) must not cross plain HTTP."""
    if settings.AUTH_REFRESH_COOKIE and not settings.AUTH_REFRESH_COOKIE_SECURE:
        return [
            Warning(
                "AUTH_REFRESH_COOKIE is on but AUTH_REFRESH_COOKIE_SECURE is false: browsers send the refresh "
                "token over plain HTTP.",
                hint="Serve the API over HTTPS and leave AUTH_REFRESH_COOKIE_SECURE at its default (true).",
                id="accounts.W130",
            )
        ]
    return []
