"""Catalogue endpoints: events, their ticket types, image and live availability."""

from __future__ import annotations

from dataclasses import astuple
from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import OrganizerProfile
from accounts.twofactor import require_for_organizer
from eventflow.api.schema import problems
from eventflow.api.serializers import NoInputSerializer
from orders import selectors as order_selectors
from orders.serializers import RefundProgressSerializer

from . import cache, images, responses, selectors, services
from . import seats as seat_maps
from .errors import NotAnOrganizer
from .filters import EventCatalogueFilter, StrictBooleanField
from .models import Event, TicketType
from .serializers import (
    AvailabilityOutputSerializer,
    EventDetailOutputSerializer,
    EventImageInputSerializer,
    EventInputSerializer,
    EventListOutputSerializer,
    SeatInputSerializer,
    SeatOutputSerializer,
    TicketTypeInputSerializer,
    TicketTypeOutputSerializer,
)

# Database ids: at most 18 digits, so every id the route accepts fits a bigint and
# parses without Python's long-integer limits; longer ones match no route (404).
ID = "[0-9]{1,18}"
MANAGE_ERRORS = {403: ["permission_denied", "not_organizer", "2fa_required"], 404: ["not_found"]}


def _build_availability(event_id: int) -> dict | None:
    event = Event.objects.alive().filter(pk=event_id).only("id", "status").first()
    if event is None:
        return None
    return {
        "public": event.status != Event.Status.DRAFT,
        "items": selectors.event_availability(event=event),
    }


def _availability_snapshot(event_id: int) -> dict | None:
    """Stock per ticket type plus whether everyone may see it; cached for a second."""
    return cache.availability(event_id, lambda: _build_availability(event_id))


# Conditional GET on the catalogue (events.responses): documented once, used by list and detail.
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The `ETag` of a copy the client holds: 304 without a body while it is still current.",
)
CONDITIONAL_HEADERS = [
    OpenApiParameter(
        "ETag",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="Strong entity tag of this body; it changes with the event, its ticket types and, on the "
        "detail, live availability. Send it back in `If-None-Match`.",
        response=[200, 304],
    ),
    OpenApiParameter(
        "Cache-Control",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="`public, no-cache` for the public catalogue (any cache may keep it but must revalidate "
        "each use: availability moves by the second); `private, no-cache` for a body only the caller may see "
        "(`?mine=true`, an organizer's draft).",
        response=[200, 304],
    ),
]
NOT_MODIFIED = OpenApiResponse(description="Not modified: the `If-None-Match` copy is current. No body.")


def _build_seat_map(event_id: int) -> tuple[bool, bytes, str] | None:
    """Whether everyone may see the event's seat map, the rendered map and its ETag."""
    event = Event.objects.alive().filter(pk=event_id).only("id", "status").first()
    if event is None:
        return None
    body = responses.render(seat_maps.seat_map_rows(event_id=event_id))
    return event.status != Event.Status.DRAFT, body, cache.etag(body)


SEAT_MAP_DESCRIPTION = (
    "The event's whole seat map in one answer, not paginated: a seat map is drawn whole (a "
    "20,000-seat arena is about 1.6 MB of JSON, ~150 KB gzipped), and one cached body serves every "
    "reader. Seats in map order (section, then row and number in natural order: 2 < 10 < 10A). "
    "`status` is `available`, `held` (in someone's reservation) or `sold`; at most a second old. "
    "Public for published events; a draft's map only for its organizer. Conditional GET with `ETag`."
)


class EventCancelOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    cancelled_at = serializers.DateTimeField()
    refund_progress = RefundProgressSerializer()


@extend_schema_view(
    list=extend_schema(
        operation_id="events_list",
        description="Published events that have not ended, soonest first (or by rank when searching). "
        "Unknown parameters are ignored; malformed ones are a 400 naming the parameter.",
        parameters=[IF_NONE_MATCH, *CONDITIONAL_HEADERS],
        responses={
            200: EventListOutputSerializer(many=True),
            304: NOT_MODIFIED,
            **problems({403: ["not_organizer"]}),
        },
    ),
)
class EventViewSet(viewsets.GenericViewSet):
    queryset = Event.objects.none()  # the catalogue selector builds every queryset
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    filter_backends = [DjangoFilterBackend]
    filterset_class = EventCatalogueFilter
    lookup_value_regex = ID

    def get_serializer_class(self):
        return EventListOutputSerializer if self.action == "list" else EventDetailOutputSerializer

    def _detail(self, event: Event, *, code: int = status.HTTP_200_OK) -> Response:
        event = selectors.event_get_visible(event_id=event.pk, user=self.request.user, with_ticket_types=True)
        return Response(EventDetailOutputSerializer(event, context={"request": self.request}).data, status=code)

    def list(self, request: Request) -> HttpResponse:
        def build() -> dict:
            queryset = self.filter_queryset(self.get_queryset())
            page = self.paginate_queryset(queryset)
            data = EventListOutputSerializer(page, many=True, context={"request": request}).data
            return self.get_paginated_response(data).data

        if request.query_params.get("mine", "").strip().lower() in StrictBooleanField.TRUE:
            if not request.user.is_authenticated:
                raise NotAuthenticated()
            return responses.personal(request, build())  # personal: never cached
        variant = (
            f"{request.scheme}://{request.get_host()}?{urlencode(sorted(request.query_params.lists()), doseq=True)}"
        )
        body, etag = cache.list_body(variant, lambda: responses.render(build()))
        return responses.conditional(request, body, etag, responses.PUBLIC)

    @extend_schema(
        operation_id="events_retrieve",
        parameters=[IF_NONE_MATCH, *CONDITIONAL_HEADERS],
        responses={200: EventDetailOutputSerializer, 304: NOT_MODIFIED},
    )
    def retrieve(self, request: Request, pk: str) -> HttpResponse:
        event_id = int(pk)

        def build() -> tuple | None:
            try:  # only what everyone may see is cached
                event = selectors.event_get_visible(
                    event_id=event_id, user=None, with_ticket_types=True, from_replica=True
                )
            except Http404:
                return None
            data = EventDetailOutputSerializer(event, context={"request": request}).data
            return astuple(responses.DetailTemplate.from_data(data))

        variant = f"{request.scheme}://{request.get_host()}"
        template, snapshot = cache.detail_body(event_id, variant, build, lambda: _build_availability(event_id))
        if template is None:  # a draft: its organizer sees it live, everyone else gets 404
            event = selectors.event_get_visible(event_id=event_id, user=request.user, with_ticket_types=True)
            return responses.personal(request, EventDetailOutputSerializer(event, context={"request": request}).data)
        body, etag = responses.DetailTemplate(*template).fill(snapshot)
        return responses.conditional(request, body, etag, responses.PUBLIC)

    @extend_schema(
        operation_id="events_create",
        request=EventInputSerializer,
        responses={
            201: EventDetailOutputSerializer,
            **problems({400: ["invalid", "slug_taken"], 403: ["not_organizer", "2fa_required"]}),
        },
        description="Create a draft event of the caller's organizer profile.",
    )
    def create(self, request: Request) -> Response:
        profile = OrganizerProfile.objects.filter(user=request.user).first()
        if profile is None:
            raise NotAnOrganizer()
        require_for_organizer(request.user)  # ORGANIZERS_REQUIRE_2FA: 403 `2fa_required` until 2FA is on
        data = EventInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = services.event_create(organizer=profile, **data.validated_data)
        return self._detail(event, code=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="events_update",
        request=EventInputSerializer(partial=True),
        responses={
            200: EventDetailOutputSerializer,
            **problems({400: ["invalid", "slug_taken"], **MANAGE_ERRORS, 409: ["event_cancelled"]}),
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        event = selectors.event_get_manageable(event_id=int(pk), user=request.user)
        data = EventInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        event = services.event_update(event=event, **data.validated_data)
        return self._detail(event)

    @extend_schema(
        operation_id="events_destroy",
        responses={204: None, **problems({**MANAGE_ERRORS, 409: ["event_has_orders"]})},
        description="Delete an event while no ticket of it is sold or held.",
    )
    def destroy(self, request: Request, pk: str) -> Response:
        event = selectors.event_get_manageable(event_id=int(pk), user=request.user)
        services.event_delete(event=event)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="events_publish",
        request=None,
        responses={
            200: EventDetailOutputSerializer,
            **problems(
                {**MANAGE_ERRORS, 409: ["no_ticket_types", "invalid_status_transition", "event_started", "event_ended"]}
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str) -> Response:
        event = selectors.event_get_manageable(event_id=int(pk), user=request.user)
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)
        return self._detail(services.event_publish(event=event))

    @extend_schema(
        operation_id="events_cancel",
        request=None,
        responses={
            202: EventCancelOutputSerializer,
            **problems({**MANAGE_ERRORS, 409: ["invalid_status_transition"]}),
        },
        description="Call the event off: it leaves the catalogue at once, its holds are released, and every "
        "paid order is refunded in the background (whatever the refund policy), each exactly once, and its "
        "buyer notified. `refund_progress` here and in `GET /events/{id}/sales` shows how far that got. "
        "Cancelling again only retries what is left.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        event = selectors.event_get_manageable(event_id=int(pk), user=request.user)
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)
        event = services.event_cancel(event=event)
        body = {"id": event.pk, "status": event.status, "cancelled_at": event.cancelled_at}
        body["refund_progress"] = order_selectors.event_refund_progress(event=event)
        return Response(EventCancelOutputSerializer(body).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="events_image",
        request={"multipart/form-data": EventImageInputSerializer},
        responses={
            200: EventDetailOutputSerializer,
            **problems(
                {400: ["invalid", "file_too_large", "image_too_large"], **MANAGE_ERRORS, 409: ["event_cancelled"]}
            ),
        },
        description="Upload the event's image (multipart field `image`): JPEG, PNG, GIF or WebP, at most "
        "`EVENT_IMAGE_MAX_BYTES` (5 MB) and `EVENT_IMAGE_MAX_PIXELS` (25 megapixels). It is stored re-encoded, "
        "without metadata, under a name with its real format's extension, and replaces any previous image.",
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def image(self, request: Request, pk: str) -> Response:
        event = selectors.event_get_manageable(event_id=int(pk), user=request.user)
        images.guard_upload(request._request)  # before the body is read: the size limit counts as it arrives
        data = EventImageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._detail(services.event_set_image(event=event, image=data.validated_data["image"]))

    @extend_schema(
        operation_id="events_availability",
        responses={200: AvailabilityOutputSerializer(many=True), **problems({404: ["not_found"]})},
        description="Live stock per ticket type, at most a second old.",
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def availability(self, request: Request, pk: str) -> Response:
        snapshot = _availability_snapshot(int(pk))
        if snapshot is None:
            raise Http404
        if not snapshot["public"]:
            event = selectors.event_get_visible(event_id=int(pk), user=request.user)
            return Response(selectors.event_availability(event=event))
        return Response(snapshot["items"])

    @extend_schema(
        methods=["GET"],
        operation_id="events_seats_list",
        parameters=[IF_NONE_MATCH, *CONDITIONAL_HEADERS],
        responses={200: SeatOutputSerializer(many=True), 304: NOT_MODIFIED, **problems({404: ["not_found"]})},
        description=SEAT_MAP_DESCRIPTION,
    )
    @extend_schema(
        methods=["POST"],
        operation_id="events_seats_create",
        request=SeatInputSerializer(many=True),
        responses={
            201: SeatOutputSerializer(many=True),
            **problems({400: ["invalid"], **MANAGE_ERRORS, 409: ["event_cancelled"]}),
        },
        description="Owner: add seats to the event's seated ticket types, all or nothing, at most "
        f"{seat_maps.MAX_SEATS_PER_UPLOAD} per request (`manage.py import_seats` takes any number). Each seat "
        "adds one to its ticket type's `capacity` and `available`. A seat listed twice, one the event "
        "already has (same section, row and number), an unseated or unknown ticket type: 400 with "
        '`errors` per seat by its index (`"3": [...]`). Answers the seats created.',
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def seats(self, request: Request, pk: str) -> HttpResponse:
        event_id = int(pk)
        if request.method == "POST":
            event = selectors.event_get_manageable(event_id=event_id, user=request.user)
            data = SeatInputSerializer(data=request.data, many=True, max_length=seat_maps.MAX_SEATS_PER_UPLOAD)
            data.is_valid(raise_exception=True)
            created = seat_maps.seats_create(event=event, rows=data.validated_data)
            rows = [
                {
                    **{name: getattr(seat, name) for name in seat_maps.SEAT_MAP_FIELDS},
                    "ticket_type": seat.ticket_type_id,
                }
                for seat in created
            ]
            return Response(SeatOutputSerializer(rows, many=True).data, status=status.HTTP_201_CREATED)
        snapshot = seat_maps.seat_map(event_id, lambda: _build_seat_map(event_id))
        if snapshot is None:
            raise Http404
        public, body, etag = snapshot
        if not public:  # a draft: its organizer sees it live, everyone else gets 404
            selectors.event_get_visible(event_id=event_id, user=request.user)
            return responses.personal(request, seat_maps.seat_map_rows(event_id=event_id))
        return responses.conditional(request, body, etag, responses.PUBLIC)


class TicketTypeViewSet(viewsets.GenericViewSet):
    """The tiers of one event: public to read, the owning organizer writes."""

    queryset = TicketType.objects.none()
    serializer_class = TicketTypeOutputSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    lookup_value_regex = ID

    def _event(self, *, manage: bool) -> Event:
        event_id = int(self.kwargs["event_pk"])
        if manage:
            return selectors.event_get_manageable(event_id=event_id, user=self.request.user)
        return selectors.event_get_visible(event_id=event_id, user=self.request.user, from_replica=True)

    @extend_schema(operation_id="ticket_types_list", responses=TicketTypeOutputSerializer(many=True))
    def list(self, request: Request, event_pk: str) -> Response:
        page = self.paginate_queryset(selectors.ticket_types_of(event=self._event(manage=False)))
        return self.get_paginated_response(TicketTypeOutputSerializer(page, many=True).data)

    @extend_schema(operation_id="ticket_types_retrieve", responses=TicketTypeOutputSerializer)
    def retrieve(self, request: Request, event_pk: str, pk: str) -> Response:
        ticket_type = selectors.ticket_type_get(event=self._event(manage=False), ticket_type_id=int(pk))
        return Response(TicketTypeOutputSerializer(ticket_type).data)

    @extend_schema(
        operation_id="ticket_types_create",
        request=TicketTypeInputSerializer,
        responses={201: TicketTypeOutputSerializer, **problems({**MANAGE_ERRORS, 409: ["event_cancelled"]})},
    )
    def create(self, request: Request, event_pk: str) -> Response:
        event = self._event(manage=True)
        data = TicketTypeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ticket_type = services.ticket_type_create(event=event, **data.validated_data)
        return Response(TicketTypeOutputSerializer(ticket_type).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="ticket_types_update",
        request=TicketTypeInputSerializer(partial=True),
        responses={
            200: TicketTypeOutputSerializer,
            **problems({**MANAGE_ERRORS, 409: ["capacity_below_sold", "event_cancelled"]}),
        },
        description="Capacity moves `available` by the same amount and can never drop below sold + held.",
    )
    def partial_update(self, request: Request, event_pk: str, pk: str) -> Response:
        ticket_type = selectors.ticket_type_get(event=self._event(manage=True), ticket_type_id=int(pk))
        data = TicketTypeInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        ticket_type = services.ticket_type_update(ticket_type=ticket_type, **data.validated_data)
        return Response(TicketTypeOutputSerializer(ticket_type).data)

    @extend_schema(
        operation_id="ticket_types_destroy",
        responses={204: None, **problems({**MANAGE_ERRORS, 409: ["ticket_type_has_orders", "last_ticket_type"]})},
    )
    def destroy(self, request: Request, event_pk: str, pk: str) -> Response:
        ticket_type = selectors.ticket_type_get(event=self._event(manage=True), ticket_type_id=int(pk))
        services.ticket_type_delete(ticket_type=ticket_type)
        return Response(status=status.HTTP_204_NO_CONTENT)
