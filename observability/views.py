"""``GET /metrics``: Prometheus' text format, for the scraper only (``observability.access``).

Answered by ``RequestMetricsMiddleware`` (no URL pattern, see there), not by DRF: it is not part
of the REST API (not in the OpenAPI schema, no JWT, no throttles), and a scrape costs no query.
Refusals are problem details like the API's: 403 from an address outside
``METRICS_ALLOWED_NETWORKS``, 401 without the right bearer token when ``METRICS_TOKEN`` is set,
405 for another method.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from eventflow.api.errors import PROBLEM_CONTENT_TYPE, problem

from . import metrics
from .access import address_allowed, client_address, parse_networks, token_matches


def _refusal(request: HttpRequest, status: int, code: str, detail: str, headers: dict | None = None) -> JsonResponse:
    body = problem(status_code=status, code=code, detail=detail, instance=request.path)
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _refusal(
            request,
            405,
            "method_not_allowed",
            _("Method %(method)s is not allowed here.") % {"method": request.method[:20]},
            headers={"Allow": "GET, HEAD"},
        )
    address = client_address(request.META, settings.NUM_PROXIES)
    if not address_allowed(address, parse_networks(tuple(settings.METRICS_ALLOWED_NETWORKS))):
        return _refusal(
            request, 403, "permission_denied", _("Metrics are not served to this address (METRICS_ALLOWED_NETWORKS).")
        )
    token = settings.METRICS_TOKEN
    if token and not token_matches(request.META.get("HTTP_AUTHORIZATION", ""), token):
        return _refusal(
            request,
            401,
            "not_authenticated",
            _("Metrics need the bearer token (METRICS_TOKEN)."),
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
