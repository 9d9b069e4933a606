"""The organizer's outbound webhook endpoints: register, list, edit, remove, ping, deliveries, replay."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import OrganizerProfile
from eventflow.api.schema import problems
from eventflow.api.serializers import NoInputSerializer
from events.errors import NotAnOrganizer
from events.selectors import organizer_profile_id

from . import selectors, services
from .serializers import (
    DeliveryOutputSerializer,
    EndpointDetailOutputSerializer,
    EndpointInputSerializer,
    EndpointOutputSerializer,
    EndpointUpdateInputSerializer,
    EndpointWithSecretOutputSerializer,
)

ERRORS = {403: ["not_organizer"]}
ONE_ERRORS = {403: ["not_organizer"], 404: ["not_found"]}
URL_ERRORS = ["invalid", "webhook_url_not_allowed"]
TAGS = ["organizers"]


def _my_organizer(request: Request) -> OrganizerProfile:
    profile_id = organizer_profile_id(request.user)
    if profile_id is None:
        raise NotAnOrganizer()
    return OrganizerProfile.objects.get(pk=profile_id)


def _my_endpoint(request: Request, endpoint_id: str):
    return selectors.endpoint_of(organizer=_my_organizer(request), endpoint_id=int(endpoint_id))


def _detail(endpoint) -> dict:
    endpoint.recent_deliveries = selectors.recent_deliveries(endpoint=endpoint)
    return EndpointDetailOutputSerializer(endpoint).data


class EndpointListApi(GenericAPIView):
    serializer_class = EndpointOutputSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="organizers_me_webhooks_list",
        summary="Your webhook endpoints",
        responses={200: EndpointOutputSerializer(many=True), **problems(ERRORS)},
        description="The caller's outbound webhook endpoints (never their secrets).",
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.endpoints_of(organizer=_my_organizer(request)))
        return self.get_paginated_response(EndpointOutputSerializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        operation_id="organizers_me_webhooks_create",
        summary="Register a webhook endpoint",
        request=EndpointInputSerializer,
        responses={
            201: EndpointWithSecretOutputSerializer,
            **problems({400: URL_ERRORS, **ERRORS, 409: ["too_many_webhook_endpoints"]}),
        },
        description="Register an endpoint for some event types. The response carries the signing `secret` "
        "(also on the endpoint's own page, never in the list; rotate it if it leaked). Each delivery is a POST "
        "of JSON `{id, type, created_at, data}` signed in `EventFlow-Signature: t=<unix time>,"
        'v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>`, '
        "with `EventFlow-Event` (the event id, the same for every endpoint and every retry: deduplicate on it), "
        "`EventFlow-Event-Type` and `EventFlow-Delivery`. A 2xx answer is a success; anything else, a timeout or "
        "no answer is retried with exponential backoff (about 1 min, 5 min, 30 min, 2 h, 8 h, 24 h); an endpoint "
        "whose deliveries fail every attempt several times in a row is disabled and its organizer emailed. "
        "400 `webhook_url_not_allowed`: not https, credentials in the URL, or a private, loopback or link-local "
        "address (host names are checked again at each send).",
    )
    def post(self, request: Request) -> Response:
        organizer = _my_organizer(request)
        data = EndpointInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(organizer=organizer, **data.validated_data)
        return Response(EndpointWithSecretOutputSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailApi(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="organizers_me_webhooks_retrieve",
        summary="A webhook endpoint and its latest deliveries",
        responses={200: EndpointDetailOutputSerializer, **problems(ONE_ERRORS)},
        description="One endpoint with its signing `secret` and its 10 latest deliveries. Another organizer's "
        "endpoint is a 404.",
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        return Response(_detail(_my_endpoint(request, endpoint_id)))

    @extend_schema(
        tags=TAGS,
        operation_id="organizers_me_webhooks_partial_update",
        summary="Edit, pause or re-enable a webhook endpoint",
        request=EndpointUpdateInputSerializer,
        responses={200: EndpointDetailOutputSerializer, **problems({400: URL_ERRORS, **ONE_ERRORS})},
        description="Change the URL, event types or description; `active: true` re-enables a disabled "
        "endpoint (pending retries resume), `active: false` pauses it.",
    )
    def patch(self, request: Request, endpoint_id: str) -> Response:
        endpoint = _my_endpoint(request, endpoint_id)
        data = EndpointUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, **data.validated_data)
        return Response(_detail(endpoint))

    @extend_schema(
        tags=TAGS,
        operation_id="organizers_me_webhooks_destroy",
        summary="Remove a webhook endpoint",
        responses={204: None, **problems(ONE_ERRORS)},
        description="Remove an endpoint and its delivery log; nothing more is sent to it.",
    )
    def delete(self, request: Request, endpoint_id: str) -> Response:
        services.endpoint_delete(endpoint=_my_endpoint(request, endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateSecretApi(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="organizers_me_webhooks_rotate_secret",
        summary="Rotate a webhook endpoint's signing secret",
        request=NoInputSerializer,
        responses={200: EndpointWithSecretOutputSerializer, **problems(ONE_ERRORS)},
        description="A new signing secret; deliveries are signed with it from now on and the old one stops "
        "verifying at once.",
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)
        endpoint = services.endpoint_rotate_secret(endpoint=_my_endpoint(request, endpoint_id))
        return Response(EndpointWithSecretOutputSerializer(endpoint).data)


class EndpointPingApi(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="organizers_me_webhooks_ping",
        summary="Send a test ping to a webhook endpoint",
        request=NoInputSerializer,
        responses={
            202: DeliveryOutputSerializer,
            **problems({**ONE_ERRORS, 409: ["webhook_endpoint_disabled"]}),
        },
        description="Send a signed `ping` event to this endpoint now, to try a receiver out; it is not retried. "
        "Its outcome is in the endpoint's deliveries.",
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)
        delivery = services.endpoint_ping(endpoint=_my_endpoint(request, endpoint_id))
        delivery.refresh_from_db()
        return Response(DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryListApi(GenericAPIView):
    serializer_class = DeliveryOutputSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="organizers_me_webhooks_deliveries",
        summary="A webhook endpoint's deliveries",
        responses={200: DeliveryOutputSerializer(many=True), **problems(ONE_ERRORS)},
        description="The endpoint's deliveries, newest first, with each one's outcome and body.",
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        page = self.paginate_queryset(selectors.deliveries_of(endpoint=_my_endpoint(request, endpoint_id)))
        return self.get_paginated_response(DeliveryOutputSerializer(page, many=True).data)


class DeliveryReplayApi(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="organizers_me_webhooks_deliveries_replay",
        summary="Replay a webhook delivery",
        request=NoInputSerializer,
        responses={
            202: DeliveryOutputSerializer,
            **problems({**ONE_ERRORS, 409: ["webhook_endpoint_disabled"]}),
        },
        description="Send a delivery again, the same event (same `id` and body, a fresh signature), whatever "
        "became of it; its attempts start again.",
    )
    def post(self, request: Request, endpoint_id: str, delivery_id: str) -> Response:
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)
        endpoint = _my_endpoint(request, endpoint_id)
        delivery = services.delivery_replay(delivery=selectors.delivery_of(endpoint=endpoint, delivery_id=delivery_id))
        delivery.refresh_from_db()
        return Response(DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
