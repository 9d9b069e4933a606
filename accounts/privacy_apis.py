"""The caller's personal data as a download (accounts.privacy has the document)."""

from django.conf import settings
from django_ratelimit.core import get_usage
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from eventflow.api.schema import problems

from . import privacy


class PersonalDataExportApi(APIView):
    @extend_schema(
        tags=["users"],
        operation_id="users_me_export",
        responses={200: privacy.PersonalDataSerializer, **problems({429: ["throttled"]})},
        description="Everything EventFlow holds about you, as one JSON document (data portability): profile, "
        "organizer profile, orders with their payments and refunds, tickets (transferred ones included), "
        "check-ins of your tickets, waiting-list entries, queued purchases, sessions and check-in roles. "
        "Sent as an attachment (`Content-Disposition`). It reads your whole history, so it is limited per "
        "account (`DATA_EXPORT_RATE_PER_USER`, 5 an hour): 429 `throttled` with `Retry-After`.",
    )
    def get(self, request: Request) -> Response:
        usage = get_usage(
            request, group="data_export:user", key="user", rate=settings.DATA_EXPORT_RATE_PER_USER, increment=True
        )
        if usage and usage["should_limit"]:
            raise Throttled(wait=max(1, usage["time_left"]))
        data = privacy.PersonalDataSerializer(
            privacy.personal_data(user=request.user), context={"user": request.user}
        ).data
        response = Response(data)
        response["Content-Disposition"] = f'attachment; filename="{privacy.export_filename(request.user)}"'
        response["Cache-Control"] = "no-store"  # personal data: no cache on the way may keep a copy
        return response
