"""The real URLs plus probe views that raise each kind of error the handler must render."""

from django.core.exceptions import PermissionDenied
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from eventflow.api.errors import Conflict
from eventflow.urls import urlpatterns as real_urlpatterns


class _Probe(APIView):
    permission_classes = [AllowAny]
    exc: Exception | None = None

    def get(self, request):
        raise self.exc


class _Boom(_Probe):
    def get(self, request):
        return {}["missing"]  # an unexpected bug


urlpatterns = [
    path("api/v1/_probe/forbidden", _Probe.as_view(exc=PermissionDenied())),
    path("api/v1/_probe/conflict", _Probe.as_view(exc=Conflict("Sold out.", code="sold_out", extra={"left": 0}))),
    path("api/v1/_probe/boom", _Boom.as_view()),
    *real_urlpatterns,
]

handler404 = "eventflow.api.errors.page_not_found"
handler500 = "eventflow.api.errors.server_error"
