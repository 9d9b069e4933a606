"""The waiting list over the API (``orders.waitlist``): buyers join, watch and leave; organizers
see and edit their events' lists."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from eventflow.api.filters import StrictFilterSet
from eventflow.api.schema import problems
from eventflow.api.serializers import StrictInputSerializer
from events import selectors as event_selectors

from . import waitlist
from .models import WaitlistEntry

_ID = {"min_value": 1, "max_value": 2**62}
EVENT_ID = OpenApiParameter("event_id", OpenApiTypes.INT, OpenApiParameter.PATH)
ENTRY_ID = OpenApiParameter("entry_id", OpenApiTypes.INT, OpenApiParameter.PATH)

JOIN_ERRORS = {
    400: ["invalid", "seated_not_supported"],
    404: ["not_found"],
    409: ["not_sold_out", "already_on_waitlist", "sales_closed", "limit_exceeded", "event_cancelled"],
    503: ["busy"],
}


class WaitlistJoinInputSerializer(StrictInputSerializer):
    ticket_type = serializers.IntegerField(**_ID)
    quantity = serializers.IntegerField(min_value=1, max_value=100)


class WaitlistAddInputSerializer(WaitlistJoinInputSerializer):
    email = serializers.EmailField(max_length=254, help_text="The email of one of the organizer's buyers.")


class WaitlistRemoveInputSerializer(StrictInputSerializer):
    id = serializers.IntegerField(**_ID, help_text="The entry to take off the list.")


class OfferSerializer(serializers.Serializer):
    order = serializers.UUIDField(source="order_id", help_text="The reserved order: pay it with `/orders/{id}/pay`.")
    status = serializers.CharField(source="order.status", help_text="The order's status.")
    expires_at = serializers.DateTimeField(source="order.expires_at", allow_null=True)
    total_cents = serializers.IntegerField(source="order.total_cents")


class WaitlistEntryOutputSerializer(serializers.ModelSerializer):
    event = serializers.IntegerField(source="event_id")
    ticket_type = serializers.IntegerField(source="ticket_type_id")
    ticket_type_name = serializers.CharField(source="ticket_type.name")
    position = serializers.IntegerField(
        allow_null=True, help_text="1 for the first in line of its ticket type; null once no longer waiting."
    )
    offer = serializers.SerializerMethodField(help_text="Once offered: the reserved order made for the entry.")

    class Meta:
        model = WaitlistEntry
        fields = [
            "id",
            "event",
            "ticket_type",
            "ticket_type_name",
            "quantity",
            "status",
            "position",
            "offer",
            "created_at",
            "offered_at",
            "closed_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OfferSerializer(allow_null=True))
    def get_offer(self, obj: WaitlistEntry) -> dict | None:
        return OfferSerializer(obj).data if obj.order_id else None


class OrganizerWaitlistEntryOutputSerializer(WaitlistEntryOutputSerializer):
    user_email = serializers.EmailField(source="user.email")

    class Meta(WaitlistEntryOutputSerializer.Meta):
        fields = [
            *WaitlistEntryOutputSerializer.Meta.fields[:4],
            "user_email",
            *WaitlistEntryOutputSerializer.Meta.fields[4:],
        ]
        read_only_fields = fields


def _fresh(entry: WaitlistEntry, user) -> WaitlistEntry:
    return waitlist.entry_of(user=user, entry_id=entry.pk)


# --- Buyers ------------------------------------------------------------------------------------


class EventWaitlistJoinApi(GenericAPIView):
    serializer_class = WaitlistEntryOutputSerializer

    @extend_schema(
        tags=["orders"],
        operation_id="events_waitlist_join",
        parameters=[EVENT_ID],
        request=WaitlistJoinInputSerializer,
        responses={201: WaitlistEntryOutputSerializer, **problems(JOIN_ERRORS)},
        description="Join the waiting list of a sold-out ticket type for `quantity` tickets. Only while it is sold "
        "out for a newcomer (fewer than `quantity` on sale, or others already wait), else 409 `not_sold_out`; "
        "one live entry per buyer and ticket type (409 `already_on_waitlist`). When tickets come back, the "
        "earliest entries they fit get an offer: a `reserved` order held `WAITLIST_OFFER_MINUTES`, announced by "
        "email. Seated ticket types have no waiting list yet (400 `seated_not_supported`).",
    )
    def post(self, request: Request, event_id: str) -> Response:
        data = WaitlistJoinInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = waitlist.waitlist_join(
            user=request.user,
            event_id=int(event_id),
            ticket_type_id=data.validated_data["ticket_type"],
            quantity=data.validated_data["quantity"],
        )
        body = WaitlistEntryOutputSerializer(_fresh(entry, request.user)).data
        return Response(body, status=status.HTTP_201_CREATED)


class MyWaitlistApi(ListAPIView):
    serializer_class = WaitlistEntryOutputSerializer

    def get_queryset(self):
        return waitlist.entries_of(user=self.request.user)

    @extend_schema(
        tags=["orders"],
        operation_id="waitlist_list",
        description="The caller's waiting list entries, newest first, with their place in line and any offer.",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class MyWaitlistEntryApi(GenericAPIView):
    serializer_class = WaitlistEntryOutputSerializer

    @extend_schema(
        tags=["orders"],
        operation_id="waitlist_retrieve",
        parameters=[ENTRY_ID],
        responses={200: WaitlistEntryOutputSerializer},
    )
    def get(self, request: Request, entry_id: str) -> Response:
        return Response(
            WaitlistEntryOutputSerializer(waitlist.entry_of(user=request.user, entry_id=int(entry_id))).data
        )

    @extend_schema(
        tags=["orders"],
        operation_id="waitlist_leave",
        parameters=[ENTRY_ID],
        request=None,
        responses={
            204: OpenApiResponse(description="Off the list."),
            **problems({404: ["not_found"], 409: ["waitlist_entry_closed"], 503: ["busy"]}),
        },
        description="Leave the waiting list. An entry with an open offer gives it up: the offer's reserved order "
        "is cancelled and its tickets go to the next in line. 409 `waitlist_entry_closed` once the entry is "
        "no longer waiting or offered.",
    )
    def delete(self, request: Request, entry_id: str) -> Response:
        entry = waitlist.entry_of(user=request.user, entry_id=int(entry_id))
        waitlist.waitlist_leave(entry=entry)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Organizers --------------------------------------------------------------------------------

MANAGE_ERRORS = {403: ["permission_denied"], 404: ["not_found"]}


class EntryFilter(StrictFilterSet):
    status = filters.ChoiceFilter(choices=WaitlistEntry.Status.choices)


class EventWaitlistEntriesApi(GenericAPIView):
    serializer_class = OrganizerWaitlistEntryOutputSerializer
    queryset = WaitlistEntry.objects.none()
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = EntryFilter

    def _event(self):
        return event_selectors.event_get_manageable(event_id=int(self.kwargs["event_id"]), user=self.request.user)

    def get_queryset(self):
        return waitlist.entries_of_event(event=self._event())

    @extend_schema(
        tags=["events"],
        operation_id="events_waitlist_entries_list",
        parameters=[EVENT_ID],
        responses={200: OrganizerWaitlistEntryOutputSerializer(many=True), **problems(MANAGE_ERRORS)},
        description="Owner or admin: the event's waiting list entries in line order (first come first), with the "
        "buyer's email, quantity, status, place in line (`position`, while waiting) and any offer. `?status=` "
        "filters (e.g. `waiting`).",
    )
    def get(self, request: Request, event_id: str) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(OrganizerWaitlistEntryOutputSerializer(page, many=True).data)

    @extend_schema(
        tags=["events"],
        operation_id="events_waitlist_entries_create",
        parameters=[EVENT_ID],
        request=WaitlistAddInputSerializer,
        responses={201: OrganizerWaitlistEntryOutputSerializer, **problems({**JOIN_ERRORS, **MANAGE_ERRORS})},
        description="Owner or admin: put one of the organizer's buyers (by `email`: an account with an order for "
        "any of the organizer's events) on the list, under the rules of joining (`POST /events/{id}/waitlist`). "
        "Any other address gets the same 400 on `email`, whether or not it has an account.",
    )
    def post(self, request: Request, event_id: str) -> Response:
        event = self._event()
        data = WaitlistAddInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = waitlist.waitlist_add(
            event=event,
            email=data.validated_data["email"],
            ticket_type_id=data.validated_data["ticket_type"],
            quantity=data.validated_data["quantity"],
        )
        body = OrganizerWaitlistEntryOutputSerializer(waitlist.entry_of_event(event=event, entry_id=entry.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=["events"],
        operation_id="events_waitlist_entries_remove",
        parameters=[EVENT_ID],
        request=WaitlistRemoveInputSerializer,
        responses={
            204: OpenApiResponse(description="Taken off the list."),
            **problems({400: ["invalid"], **MANAGE_ERRORS, 409: ["waitlist_entry_closed"], 503: ["busy"]}),
        },
        description="Owner or admin: take the entry `{id}` off the list (`removed`); same as `DELETE "
        "/events/{id}/waitlist-entries/{entry}`.",
    )
    def delete(self, request: Request, event_id: str) -> Response:
        event = self._event()
        data = WaitlistRemoveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        waitlist.waitlist_remove(entry=waitlist.entry_of_event(event=event, entry_id=data.validated_data["id"]))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventWaitlistEntryApi(GenericAPIView):
    serializer_class = OrganizerWaitlistEntryOutputSerializer

    def _entry(self) -> WaitlistEntry:
        event = event_selectors.event_get_manageable(event_id=int(self.kwargs["event_id"]), user=self.request.user)
        return waitlist.entry_of_event(event=event, entry_id=int(self.kwargs["entry_id"]))

    @extend_schema(
        tags=["events"],
        operation_id="events_waitlist_entries_retrieve",
        parameters=[EVENT_ID, ENTRY_ID],
        responses={200: OrganizerWaitlistEntryOutputSerializer, **problems(MANAGE_ERRORS)},
    )
    def get(self, request: Request, event_id: str, entry_id: str) -> Response:
        return Response(OrganizerWaitlistEntryOutputSerializer(self._entry()).data)

    @extend_schema(
        tags=["events"],
        operation_id="events_waitlist_entries_destroy",
        parameters=[EVENT_ID, ENTRY_ID],
        request=None,
        responses={
            204: OpenApiResponse(description="Taken off the list."),
            **problems({**MANAGE_ERRORS, 409: ["waitlist_entry_closed"], 503: ["busy"]}),
        },
        description="Owner or admin: take an entry off the list (`removed`). An entry with an open offer loses it: "
        "the offer's reserved order is cancelled and its tickets go to the next in line.",
    )
    def delete(self, request: Request, event_id: str, entry_id: str) -> Response:
        waitlist.waitlist_remove(entry=self._entry())
        return Response(status=status.HTTP_204_NO_CONTENT)
