"""The queued on-sale over the API: the 202 of ``POST /orders`` for a high-demand event, and
``GET /orders/queue/{id}``, where the buyer polls for the outcome (``orders.queue``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from eventflow.api.schema import problems
from events.models import Event, TicketType

from . import queue, services
from .models import PurchaseRequest
from .serializers import OrderOutputSerializer


def status_url(request: Request, purchase_request: PurchaseRequest) -> str:
    return request.build_absolute_uri(reverse("purchase-request-detail", args=[purchase_request.pk]))


class PurchaseRequestAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The queued purchase; poll `status_url` for its outcome.")
    status = serializers.ChoiceField(choices=[PurchaseRequest.Status.QUEUED.value])
    event = serializers.IntegerField()
    position = serializers.IntegerField(help_text="How many purchases of this event are ahead in line.")
    status_url = serializers.URLField(help_text="`GET` it for the outcome; also sent as `Location`.")


class PurchaseRequestErrorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="The problem code a direct purchase would have answered: `sold_out`, `limit_exceeded`, "
        "`sales_closed`, `invalid` ...; `queue_expired` when it waited too long, `purchase_failed` when it "
        "could not be processed. Further members as in that problem (e.g. `ticket_type`, `available`)."
    )
    detail = serializers.CharField()


class PurchaseRequestOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=PurchaseRequest.Status.choices,
        help_text="`queued` → `placed` (see `order`) | `refused` (see `error`) | `expired` (waited too long).",
    )
    event = serializers.IntegerField(source="event_id")
    position = serializers.SerializerMethodField(help_text="While queued: how many purchases are ahead; else null.")
    order = serializers.SerializerMethodField(help_text="Once placed: the order, as `GET /orders/{id}` shows it.")
    error = serializers.SerializerMethodField(help_text="Once refused or expired: why.")
    created_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_position(self, obj: PurchaseRequest) -> int | None:
        return self.context["position"]

    @extend_schema_field(OrderOutputSerializer(allow_null=True))
    def get_order(self, obj: PurchaseRequest) -> dict | None:
        order = getattr(obj, "placed_order", None)
        return OrderOutputSerializer(order).data if order is not None else None

    @extend_schema_field(PurchaseRequestErrorSerializer(allow_null=True))
    def get_error(self, obj: PurchaseRequest) -> dict | None:
        if not obj.error_code:
            return None
        return {**(obj.error_extra or {}), "code": obj.error_code, "detail": obj.error_detail}


class Enqueue:
    """``services.order_place``'s ``queue`` hook for ``POST /orders``: puts the validated purchase in
    line and keeps the 202 for the view (``response``).

    The body is written when the request is, with the position it had then; with eager tasks the
    drain runs right after the commit, so the status URL may already show the outcome."""

    def __init__(
        self,
        request: Request,
        lines: Sequence[services.Line],
        remember: Callable | None,
        discount_code: str | None = None,
    ) -> None:
        self.request, self.lines, self.remember, self.discount_code = request, lines, remember, discount_code
        self.response: Response | None = None

    def __call__(self, event: Event, types: dict[int, TicketType], now: datetime) -> None:
        body: dict[str, Any] = {}

        def in_transaction(purchase_request: PurchaseRequest, position: int) -> None:
            body.update(
                PurchaseRequestAcceptedSerializer(
                    {
                        "id": purchase_request.pk,
                        "status": PurchaseRequest.Status.QUEUED,
                        "event": event.pk,
                        "position": position,
                        "status_url": status_url(self.request, purchase_request),
                    }
                ).data
            )
            if self.remember is not None:
                self.remember(status.HTTP_202_ACCEPTED, body)

        queue.purchase_request_enqueue(
            buyer=self.request.user,
            event=event,
            lines=self.lines,
            types=types,
            now=now,
            in_transaction=in_transaction,
            discount_code=self.discount_code,
        )
        headers = {"Location": body["status_url"], "Retry-After": str(queue.poll_after_seconds(body["position"]))}
        self.response = Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)


ACCEPTED_RESPONSE = OpenApiResponse(
    PurchaseRequestAcceptedSerializer,
    description="High-demand event (`high_demand: true`): the purchase is valid and waits in line. "
    "`Location` and `status_url` name the request to poll; `Retry-After` says when. A second request of the "
    "same buyer for the same event while the first is queued gets the first back when it asks for the same "
    "tickets, else 409 `already_queued`.",
)


class PurchaseRequestApi(APIView):
    @extend_schema(
        tags=["orders"],
        operation_id="orders_queue_retrieve",
        responses={200: PurchaseRequestOutputSerializer, **problems({404: ["not_found"]})},
        description="The outcome of a purchase queued for a high-demand event (the 202 of `POST /orders`): "
        "`queued` with its `position` (poll again after `Retry-After` seconds), `placed` with the `order` "
        "(reserved: pay it before `expires_at`), `refused` with the `error` a direct purchase would have got, "
        "or `expired`. The buyer's own requests only; anyone else's is a 404.",
    )
    def get(self, request: Request, request_id: str) -> Response:
        purchase_request = queue.purchase_request_of(buyer=request.user, request_id=request_id)
        position = queue.position_of(purchase_request)
        body = PurchaseRequestOutputSerializer(purchase_request, context={"position": position}).data
        response = Response(body)
        if purchase_request.status == PurchaseRequest.Status.QUEUED:
            response["Retry-After"] = str(queue.poll_after_seconds(position))
        response["Cache-Control"] = "private, no-store"
        return response
