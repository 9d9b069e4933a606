"""Request latency by URL pattern: one histogram observation per request, no query, no I/O.

The route label is the URL pattern that matched (``api/v1/orders/<uuid:pk>``), never the raw path,
so an order id or a scanner's garbage cannot grow the number of series; a request that matched
no pattern (a 404, a static file) is ``unmatched``. A regex pattern reads like a path pattern
(``api/v1/events/(?P<pk>[0-9]{1,18})$`` is ``api/v1/events/<pk>``). Methods outside the usual ones are ``other``
for the same reason. The labelled child is looked up once per (route, method, status class) and
kept, which spares prometheus_client's label checks and lock on every request.

``/metrics`` itself is answered here, before the other middleware but the request id's (outermost,
so the scrape's answer carries ``X-Request-ID`` like any other): Prometheus addresses each
container by its IP (``Host: 172.18.0.5:8000``), which ``ALLOWED_HOSTS`` rightly refuses for
the site, and the scrape needs no session, CSRF or lockout check. The view builds no URL from
the Host header, so skipping that check there opens nothing (``observability.access`` decides).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from time import perf_counter

from django.http import HttpRequest, HttpResponse

from .metrics import HTTP_DURATION
from .views import metrics_view

METRICS_PATH = "/metrics"

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)")


def route_label(route: str) -> str:
    """A URL pattern as a label: a regex's named groups as ``<name>``, without its anchors."""
    return _GROUP.sub(r"<\1>", route).replace("^", "").replace("$", "").replace("\\.", ".")


class RequestMetricsMiddleware:
    """Right inside the request id middleware, so the time includes every other middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._children: dict[tuple[str, str, str], object] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = perf_counter()
        if request.path_info == METRICS_PATH:
            response, route = metrics_view(request), "metrics"
        else:
            response = self.get_response(request)
            match = request.resolver_match
            route = match.route if match is not None else "unmatched"
        elapsed = perf_counter() - started
        method = request.method if request.method in _METHODS else "other"
        status = response.status_code
        status_class = _CLASSES[status // 100] if 0 <= status < 600 else "other"
        key = (route, method, status_class)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = HTTP_DURATION.labels(route_label(route), method, status_class)
        child.observe(elapsed)
        return response
