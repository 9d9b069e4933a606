"""Project-wide request guards that sit in front of every view, API and admin alike."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from eventflow.api.errors import bad_request_response


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
