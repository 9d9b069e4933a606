"""Door endpoints (scan, offline list, offline batch) and the organizer's check-in staff."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import OrganizerProfile
from eventflow.api.errors import flatten_errors
from eventflow.api.ratelimit import enforce_ip_rate_limit
from eventflow.api.schema import problems
from events.errors import NotAnOrganizer
from events.selectors import organizer_profile_id

from . import selectors, services
from .serializers import (
    BatchOutputSerializer,
    CheckInListOutputSerializer,
    CheckInOutputSerializer,
    CheckInStaffInputSerializer,
    CheckInStaffOutputSerializer,
    OfflineScanInputSerializer,
    ScanInputSerializer,
)

DOOR_ERRORS = {403: ["permission_denied"], 404: ["not_found"]}


class CheckInApi(APIView):
    @extend_schema(
        tags=["events"],
        operation_id="events_check_ins_create",
        request=ScanInputSerializer,
        responses={
            201: CheckInOutputSerializer,
            **problems(
                {
                    400: ["invalid"],
                    **DOOR_ERRORS,
                    409: ["already_checked_in", "ticket_void"],
                    503: ["busy"],
                }
            ),
        },
        description="Scan a ticket at the door: `code` is what its QR code holds. 201 the first time, with the "
        "ticket (type, holder, seat). 409 `already_checked_in` carries the first scan's `checked_in_at` and "
        "`gate`; 409 `ticket_void` (with `ticket_status`) a refunded, cancelled or transferred ticket; 404 a code no "
        "ticket of this event has. For the event's organizer, its check-in staff and platform admins; two "
        "scanners on one ticket at once: exactly one 201.",
    )
    def post(self, request: Request, event_id: int) -> Response:
        event = selectors.door_event(event_id=event_id, user=request.user)
        data = ScanInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        check_in = services.ticket_check_in(event=event, scanned_by=request.user, **data.validated_data)
        return Response(CheckInOutputSerializer(check_in).data, status=status.HTTP_201_CREATED)


def _code_of(item) -> str | None:
    code = item.get("code") if isinstance(item, dict) else None
    return code if isinstance(code, str) else None


class CheckInBatchApi(APIView):
    @extend_schema(
        tags=["events"],
        operation_id="events_check_ins_batch",
        request=OfflineScanInputSerializer(many=True),
        responses={
            200: BatchOutputSerializer,
            **problems({400: ["invalid"], **DOOR_ERRORS, 503: ["busy"]}),
        },
        description=f"Upload scans a door device made offline: a JSON array of 1 to {services.MAX_BATCH} "
        "`{code, scanned_at, gate}`. One result per scan, in the same order (a scan that does not validate is "
        "`invalid`, the others are still recorded). The earliest scan of a ticket is its check-in, whether it "
        "came in this batch, an earlier one or online: an uploaded scan earlier than the stored check-in "
        "replaces its time, gate and scanner (source `offline`), and every other scan of the ticket is "
        "`already_checked_in` with the winning scan's time and gate. Sending the same batch again changes "
        "nothing and gets the same results.",
    )
    def post(self, request: Request, event_id: int) -> Response:
        event = selectors.door_event(event_id=event_id, user=request.user)
        items = request.data
        if not isinstance(items, list) or not 1 <= len(items) <= services.MAX_BATCH:
            raise serializers.ValidationError(
                {"non_field_errors": [_("Send a JSON array of 1 to %(max)d scans.") % {"max": services.MAX_BATCH}]}
            )
        scans = []
        for item in items:
            scan = OfflineScanInputSerializer(data=item)
            scans.append(dict(scan.validated_data) if scan.is_valid() else {"errors": flatten_errors(scan.errors)})
        results = services.check_ins_upload(event=event, scans=scans, scanned_by=request.user)
        for index, (item, result) in enumerate(zip(items, results, strict=True)):
            result.update(index=index, code=_code_of(item))
        return Response(BatchOutputSerializer({"results": results}).data)


class CheckInListApi(APIView):
    @extend_schema(
        tags=["events"],
        operation_id="events_check_in_list",
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The `ETag` (the `version`) of the list the device holds: 304 while it is current.",
            )
        ],
        responses={
            200: CheckInListOutputSerializer,
            304: OpenApiResponse(description="The device's list is current. No body."),
            **problems(DOOR_ERRORS),
        },
        description="Everything a door device needs to validate tickets offline, in one body (not paginated; "
        "about 150 bytes a ticket, so 10,000 tickets are ~1.5 MB, less compressed): every ticket of the event, "
        "void ones included, as `code_sha256` (SHA-256 of the code's UTF-8 bytes, lower-case hex: hash what "
        "you scan and look it up), `status` (`valid`, `checked_in`, `void`), ticket type and seat. `version` "
        "changes whenever a ticket is issued, transferred, voided or checked in; it is also the `ETag`, so "
        "polling with `If-None-Match` costs a 304. For the organizer, its check-in staff and platform admins.",
    )
    def get(self, request: Request, event_id: int) -> Response:
        event = selectors.door_event(event_id=event_id, user=request.user)
        version = selectors.check_in_list_version(event=event)
        etag = f'"{version}"'
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        body = selectors.check_in_list(event=event, version=version)
        return Response(CheckInListOutputSerializer(body).data, headers=headers)


# --- The organizer's check-in staff ---------------------------------------------------------


def _my_organizer(request: Request) -> OrganizerProfile:
    profile_id = organizer_profile_id(request.user)
    if profile_id is None:
        raise NotAnOrganizer()
    return OrganizerProfile.objects.get(pk=profile_id)


STAFF_ERRORS = {403: ["not_organizer"]}


class CheckInStaffListApi(GenericAPIView):
    serializer_class = CheckInStaffOutputSerializer

    @extend_schema(
        tags=["organizers"],
        operation_id="organizers_me_check_in_staff_list",
        responses={200: CheckInStaffOutputSerializer(many=True), **problems(STAFF_ERRORS)},
        description="The people who may scan tickets of all the caller's events (and nothing else).",
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.staff_of(organizer=_my_organizer(request)))
        return self.get_paginated_response(CheckInStaffOutputSerializer(page, many=True).data)

    @extend_schema(
        tags=["organizers"],
        operation_id="organizers_me_check_in_staff_create",
        request=CheckInStaffInputSerializer,
        responses={
            201: CheckInStaffOutputSerializer,
            200: CheckInStaffOutputSerializer,
            **problems({400: ["invalid"], **STAFF_ERRORS, 429: ["throttled"]}),
        },
        description="Name a check-in staff member by email: 201, or 200 when they already are. An address "
        "without an account gets one (without a password) and an email with a code to set it "
        "(`POST /auth/password/reset/confirm`). Limited per client address (`INVITE_RATE_PER_IP`).",
    )
    def post(self, request: Request) -> Response:
        organizer = _my_organizer(request)
        enforce_ip_rate_limit(request, group="invite", rate_setting="INVITE_RATE_PER_IP")
        data = CheckInStaffInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        staff, created = services.check_in_staff_add(organizer=organizer, **data.validated_data)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(CheckInStaffOutputSerializer(staff).data, status=code)


class CheckInStaffDetailApi(APIView):
    @extend_schema(
        tags=["organizers"],
        operation_id="organizers_me_check_in_staff_delete",
        responses={204: None, **problems({**STAFF_ERRORS, 404: ["not_found"]})},
        description="Remove a check-in staff member: they can no longer scan the caller's events.",
    )
    def delete(self, request: Request, staff_id: str) -> Response:
        services.check_in_staff_remove(organizer=_my_organizer(request), staff_id=int(staff_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
