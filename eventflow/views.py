"""Front doors: the site root, the API root, and canonical paths for GETs with a trailing slash."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.urls import Resolver404, resolve, reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def home(request: HttpRequest) -> HttpResponse:
    """A small landing page with links: what a person opening the server's address wants first."""
    return render(request, "eventflow/home.html")


# The collections a client starts from; everything else is reached from them (the schema has it all).
RESOURCES = {
    "events": "event-list",
    "orders": "order-list",
    "my_tickets": "users-me-tickets",
    "me": "users-me",
    "my_organizer_profile": "organizers-me",
    "register": "auth-register",
    "login": "auth-login",
    "refresh": "auth-refresh",
    "logout": "auth-logout",
    "health": "health",
    "schema": "schema",
}


class ApiRootApi(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        tags=["system"],
        operation_id="api_root",
        description="Absolute URLs of the collections and endpoints a client starts from, plus the docs. "
        "The OpenAPI schema describes every operation.",
        responses=inline_serializer(
            "ApiRoot",
            {
                **{name: serializers.URLField() for name in RESOURCES},
                "docs": serializers.URLField(),
                "redoc": serializers.URLField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        links = {name: request.build_absolute_uri(reverse(url_name)) for name, url_name in RESOURCES.items()}
        links["docs"] = request.build_absolute_uri(reverse("swagger-ui"))
        links["redoc"] = request.build_absolute_uri(reverse("redoc"))
        return Response(links)


def canonical_redirect(request: HttpRequest) -> HttpResponse | None:
    """``GET /api/v1/events/`` -> 301 to ``/api/v1/events`` (query kept), when that path exists.

    EventFlow's canonical paths have no trailing slash; clients and people add one by
    habit. Only reads are redirected: a client must not have a write silently turned
    into a GET. Called for 404s only (``eventflow.middleware.CanonicalPathMiddleware``).
    """
    path = request.path_info
    if request.method not in ("GET", "HEAD") or not path.endswith("/") or path == "/":
        return None
    canonical = "/" + path.strip("/")  # never "//host": no open redirect
    try:
        resolve(canonical)
    except Resolver404:
        return None
    query = request.META.get("QUERY_STRING", "")
    return HttpResponsePermanentRedirect(f"{canonical}?{query}" if query else canonical)
