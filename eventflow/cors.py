"""CORS (django-cors-headers), at no cost while no origin is allowed.

Every request passes the CORS middleware, each purchase included. With no origin configured
(the default: no single-page app on another origin) it could only add ``Vary: Origin`` to
every response and never an ``Access-Control-Allow-Origin``: 5-10 µs per request for
nothing. So it steps aside until ``CORS_ALLOWED_ORIGINS`` (or the regexes) name an origin,
read per request so settings overridden in tests take effect.
"""

from __future__ import annotations

from urllib.parse import SplitResult

from corsheaders.middleware import CorsMiddleware as _CorsMiddleware
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class CorsMiddleware(_CorsMiddleware):
    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        # settings, not corsheaders' conf: its getattr with a default costs an exception per unset name
        if self.async_mode or settings.CORS_ALLOWED_ORIGINS or settings.CORS_ALLOWED_ORIGIN_REGEXES:
            return super().__call__(request)
        return self.get_response(request)

    def origin_found_in_white_lists(self, origin: str, url: SplitResult) -> bool:
        # An exact match first: django-cors-headers parses every allowed origin on every request.
        return origin in settings.CORS_ALLOWED_ORIGINS or super().origin_found_in_white_lists(origin, url)
