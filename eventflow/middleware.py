"""Project-wide request guards that sit in front of every view, API and admin alike."""

from __future__ import annotations

from collections.abc import Callable

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import request_finished, setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from eventflow.api.errors import bad_request_response
from eventflow.logs import new_request_id, request_id, sane_request_id


class RequestIdMiddleware:
    """Gives each request an id: the caller's ``X-Request-ID`` when it is sane, else a new one.

    First in MIDDLEWARE, so every response carries it back (404s, 429s, 503s and crashes
    included) and every log line of the request has it (eventflow/logs.py). Behind nginx the
    header is nginx's, which keeps or mints it the same way. It logs nothing itself: gunicorn's
    access log already has a line per request, with this id. Per request: a dict lookup, a
    regex match (or a uuid4), a context variable set, a header.

    The id stays set until ``request_finished``, not only while the middleware runs: Django
    logs a 4xx answer ("Not Found", "Conflict": ``django.request``) after the whole
    middleware chain has returned, and those lines need the id most.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = sane_request_id(request.META.get("HTTP_X_REQUEST_ID")) or new_request_id()
        request_id.set(rid)
        response = self.get_response(request)
        response["X-Request-ID"] = rid
        return response


@receiver(request_finished, dispatch_uid="eventflow.request_id")
def _forget_request_id(**kwargs) -> None:
    """The response is sent: lines logged between requests belong to none."""
    request_id.set(None)


class RejectNulCharactersMiddleware:
    """Answer 400 to any request carrying a NUL character in its path, query string or form body.

    PostgreSQL text cannot hold NUL, so a ``%00`` that reaches a query (an admin
    list filter, a search box, a lookup) fails in the database driver. Form
    fields refuse NUL by themselves, but query parameters read directly by a
    view (admin filters and search, pagination, ordering) do not; refusing the
    character at the door covers them all. JSON bodies are checked by the
    API's parser.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._has_nul(request):
            return bad_request_response(request, _("The request contains a NUL character."))
        return self.get_response(request)

    @staticmethod
    def _has_nul(request: HttpRequest) -> bool:
        if "\x00" in request.path:
            return True
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            return True
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            return b"%00" in request.body or b"\x00" in request.body
        return False


class CanonicalPathMiddleware:
    """A GET that 404s only because of a trailing slash is redirected to the path without it.

    The mirror image of Django's APPEND_SLASH (which the admin's slashed URLs keep
    using); it acts on 404s only, so it costs the requests that succeed nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 404:
            from eventflow.views import canonical_redirect

            return canonical_redirect(request) or response
        return response


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the policy of a response that asks for nothing special built once.

    django-csp builds the header from the settings for every response: 0.36 M instructions of
    every API request (bench/README.md), for the same string each time. A response that used a
    nonce or a per-view override (``csp_update``, ``csp_replace``, ``csp_exempt`` and the rest)
    still gets django-csp's own handling.
    """

    _OVERRIDES = (
        *("_csp_config", "_csp_update", "_csp_replace", "_csp_exempt"),
        *("_csp_config_ro", "_csp_update_ro", "_csp_replace_ro", "_csp_exempt_ro"),
    )
    _plain: tuple[str, str] | None = None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        plain = self._plain_headers()
        if (
            plain is None
            or getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in self._OVERRIDES)
            or (response.status_code in (404, 500) and settings.DEBUG)
        ):
            return super().process_response(request, response)
        for header, value in zip((HEADER, HEADER_REPORT_ONLY), plain, strict=True):
            if value and header not in response:
                response[header] = value
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

    @classmethod
    def _plain_headers(cls) -> tuple[str, str] | None:
        """The two headers for a response without overrides; None when URL prefixes are excluded."""
        if cls._plain is None:
            names = ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY")
            if any((getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES") for name in names):
                return None
            cls._plain = (build_policy(), build_policy(report_only=True))
        return cls._plain


@receiver(setting_changed)
def _forget_csp(setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        ContentSecurityPolicyMiddleware._plain = None
