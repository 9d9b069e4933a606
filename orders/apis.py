"""Orders endpoints: placing, reading and cancelling orders; tickets; sales and attendees; staff views."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.verification import require_verified_email
from eventflow.api.filters import StrictFilterSet, WholeNumberFilter
from eventflow.api.ratelimit import enforce_ip_rate_limit
from eventflow.api.schema import problems
from eventflow.api.serializers import NoInputSerializer
from events import selectors as event_selectors
from events.models import Event
from events.serializers import SUMMARY_FIELDS, EventBaseOutputSerializer

from . import documents, selectors, services, transfers
from .exports import attendees_csv_response
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import idempotent, idempotent_in_transaction
from .models import Order
from .payments import services as payment_services
from .queue_apis import ACCEPTED_RESPONSE, Enqueue
from .serializers import (
    AttendeeOutputSerializer,
    OrderCreateInputSerializer,
    OrderOutputSerializer,
    PayoutOutputSerializer,
    PayOutputSerializer,
    SalesOutputSerializer,
    StaffOrderOutputSerializer,
    StaffStatsOutputSerializer,
    TicketOutputSerializer,
    TicketTransferInputSerializer,
    TransferredTicketOutputSerializer,
    order_create_input,
    order_representation,
)

ORDER_404 = {404: ["not_found"]}


class PDFRenderer(renderers.BaseRenderer):
    """Lets a client ask for ``application/pdf``; the view writes the document itself."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else b""


class SVGRenderer(PDFRenderer):
    media_type = "image/svg+xml"
    format = "svg"


class DocumentNegotiation(BaseContentNegotiation):
    """A document has one representation, served whatever ``Accept`` says (never a 406 to a client that
    sends ``application/json`` by habit); an error is problem+json all the same (the exception handler)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _ticket_document(content: bytes, content_type: str, filename: str) -> HttpResponse:
    """A ticket's code opens the door: the document is never stored by a shared cache or kept by the browser."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


class OrderViewSet(viewsets.GenericViewSet):
    """The caller's orders. Anyone else's order is a 404."""

    serializer_class = OrderOutputSerializer
    queryset = Order.objects.none()
    lookup_value_converter = "anyuuid"  # a malformed id matches no route: 404, never a database error

    def get_queryset(self):
        return selectors.orders_of(buyer=self.request.user)

    def _order(self, pk: str) -> Order:
        return selectors.order_of(buyer=self.request.user, order_id=pk)

    @extend_schema(operation_id="orders_list", description="The caller's orders, newest first.")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(OrderOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="orders_create",
        request=OrderCreateInputSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Recommended. A retry with the same key and body replays the first response "
                "(header `Idempotent-Replayed: true`); keys are kept 24 h per user.",
            )
        ],
        responses={
            201: OrderOutputSerializer,
            202: ACCEPTED_RESPONSE,
            **problems(
                {
                    400: ["invalid"],
                    403: ["email_not_verified"],
                    409: [
                        "sold_out",
                        "seat_taken",
                        "sales_closed",
                        "limit_exceeded",
                        "discount_code_exhausted",
                        "already_queued",
                        "idempotency_in_progress",
                    ],
                    422: ["idempotency_key_reused"],
                    503: ["busy"],
                }
            ),
        },
        description="Reserve tickets: status `reserved` with a hold until `expires_at`, or `paid` at once when "
        "the total is 0. On any error nothing is held (nor any use of a discount code). Fields other than "
        "`event`, `items`, `seats` and `discount_code` are refused. "
        "Seats: `seats` buys those seat ids (locked in id order; 409 `seat_taken` with `seats` naming the ones "
        "gone); a quantity of a seated ticket type in `items` gets the best available adjacent seats in one row "
        "(front-most row, then closest to its section's centre, every section considered), or 409 `sold_out` "
        "(with `adjacent: false`) when no row has that many together. The 201 lists the order's `seats`. "
        "Seat orders are placed at once even for a high-demand event (never queued). "
        "For a high-demand event the checks that need no lock are made, then the purchase waits in line: 202, "
        "and `GET /orders/queue/{id}` gives the outcome (the same order or error as here). "
        "Where `REQUIRE_EMAIL_VERIFICATION_TO_BUY` is on, a buyer whose access token does not say their email "
        "address is verified gets 403 `email_not_verified` (verify, then refresh the token).",
    )
    def create(self, request: Request) -> Response:
        if settings.REQUIRE_EMAIL_VERIFICATION_TO_BUY:  # off: one attribute read; on: the token's claim, no SQL
            require_verified_email(request)

        def place(remember) -> Response:
            data = order_create_input(request.data)
            lines = [services.Line(item["ticket_type"], item["quantity"]) for item in data.get("items", ())]
            body = {}

            def in_transaction(order: Order) -> None:
                # Stored with the order, in its transaction, before the stock lock is taken: the key's claim.
                body.update(order_representation(order))
                remember(status.HTTP_201_CREATED, body)

            code = data.get("discount_code") or None
            enqueue = Enqueue(request, lines, remember, code)  # a high-demand event: 202, the purchase waits in line
            order = services.order_place(
                buyer=request.user,
                event_id=data["event"],
                lines=lines,
                in_transaction=in_transaction if remember else None,
                queue=enqueue,
                seats=data.get("seats"),
                discount_code=code,
            )
            if order is None:
                return enqueue.response
            return Response(body or order_representation(order), status=status.HTTP_201_CREATED)

        return idempotent_in_transaction(request, scope="orders.create", handler=place)

    @extend_schema(operation_id="orders_retrieve", responses={200: OrderOutputSerializer, **problems(ORDER_404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(OrderOutputSerializer(self._order(pk)).data)

    @extend_schema(
        operation_id="orders_cancel",
        request=None,
        responses={
            200: OrderOutputSerializer,
            **problems({**ORDER_404, 409: ["order_not_cancellable", "not_refundable"], 503: ["busy"]}),
        },
        description="Cancel an order. A reserved one: its tickets go back on sale at once (`cancelled`). A paid "
        "one: refunded in full through its payment provider (`refunded`, tickets void, back on sale) while the "
        "event's `refund_policy` allows it, else 409 `not_refundable`.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        order = self._order(pk)
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)
        services.order_cancel(order=order)
        return Response(OrderOutputSerializer(self._order(pk)).data)

    @extend_schema(
        operation_id="orders_pay",
        request=None,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Recommended. A retry with the same key replays the first response.",
            )
        ],
        responses={
            200: PayOutputSerializer,
            **problems(
                {
                    **ORDER_404,
                    409: ["order_not_payable", "idempotency_in_progress"],
                    422: ["idempotency_key_reused"],
                    503: ["payment_provider_unavailable"],
                }
            ),
        },
        description="Start paying a reserved order before its hold expires. The answer carries what the app "
        "needs to collect the money: a `client_secret` (test and Stripe providers) or a `checkout_url` "
        "(Paystack). Asking again, with or without the same key, returns the same pending payment: never "
        "a second charge. The order becomes `paid` when the provider's webhook confirms the payment; with "
        "the test provider, `POST /payments/test/{payment id}/complete` plays the gateway.",
    )
    @action(detail=True, methods=["post"])
    def pay(self, request: Request, pk: str) -> Response:
        order = self._order(pk)

        def pay(remember) -> Response:
            NoInputSerializer(data=request.data).is_valid(raise_exception=True)
            payment = payment_services.payment_start(order=order)
            return Response(PayOutputSerializer({"payment": payment}).data)

        return idempotent(request, scope="orders.pay", handler=pay)

    @extend_schema(
        operation_id="orders_tickets",
        responses={200: TicketOutputSerializer(many=True), **problems(ORDER_404)},
        description="The order's tickets (issued once it is paid).",
    )
    @action(detail=True, methods=["get"])
    def tickets(self, request: Request, pk: str) -> Response:
        page = self.paginate_queryset(selectors.tickets_of_order(order=self._order(pk)))
        return self.get_paginated_response(TicketOutputSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="orders_tickets_pdf",
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="One page per valid ticket, with its QR code."
            ),
            **problems({**ORDER_404, 409: ["order_not_paid"]}),
        },
        description="The order's valid tickets as one PDF to print or show at the door: per page the event, "
        "its start on the venue's clock (the event's time zone, named), the venue, the ticket type, the holder, "
        "and the ticket's QR code with its code in text. 409 `order_not_paid` while the order has no valid "
        "tickets (reserved, expired, cancelled or refunded).",
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="tickets.pdf",
        url_name="tickets-pdf",
        renderer_classes=[PDFRenderer],
        content_negotiation_class=DocumentNegotiation,
    )
    def tickets_pdf(self, request: Request, pk: str) -> HttpResponse:
        order = self._order(pk)
        pdf = documents.order_tickets_pdf(order, selectors.printable_tickets_of(order=order))
        return _ticket_document(pdf, "application/pdf", documents.tickets_pdf_filename(order))


class MyTicketsApi(ListAPIView):
    serializer_class = TicketOutputSerializer

    def get_queryset(self):
        return selectors.valid_tickets_of(user=self.request.user)

    @extend_schema(operation_id="users_me_tickets", description="The caller's valid tickets, soonest event first.")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class MyEventsQuerySerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["attendee", "organizer", "checkin"], default="attendee")


class MyEventOutputSerializer(EventBaseOutputSerializer):
    tickets_held = serializers.IntegerField(
        allow_null=True, help_text="role=attendee: how many valid tickets the caller holds; else null."
    )

    class Meta:
        model = Event
        fields = [*SUMMARY_FIELDS, "tickets_held"]
        read_only_fields = fields


class MyEventsApi(ListAPIView):
    serializer_class = MyEventOutputSerializer

    def get_queryset(self):
        params = self.request.query_params
        # A plain dict, not the QueryDict: an empty ?role= is a wrong role, not a missing one.
        query = MyEventsQuerySerializer(data={"role": params["role"]} if "role" in params else {})
        query.is_valid(raise_exception=True)
        return selectors.events_of_user(user=self.request.user, role=query.validated_data["role"])

    @extend_schema(
        tags=["users"],
        operation_id="users_me_events",
        parameters=[MyEventsQuerySerializer],
        responses={200: MyEventOutputSerializer(many=True), **problems({400: ["invalid"]})},
        description="`role=attendee` (default): events the caller holds valid tickets for, soonest first, with "
        "`tickets_held`; `role=organizer`: the events the caller organizes, drafts included; `role=checkin`: "
        "the events the caller may scan tickets of as check-in staff.",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class TicketQrApi(APIView):
    renderer_classes = [SVGRenderer]
    content_negotiation_class = DocumentNegotiation

    @extend_schema(
        tags=["orders"],
        operation_id="tickets_qr",
        parameters=[OpenApiParameter("ticket_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={
            (200, "image/svg+xml"): OpenApiResponse(OpenApiTypes.STR, description="The QR code as an SVG image."),
            **problems({404: ["not_found"], 409: ["ticket_void"]}),
        },
        description="The ticket's QR code; it encodes exactly the ticket's `code`, which door scanners read. "
        "For the ticket's holder and the buyer of its order; anyone else gets a 404.",
    )
    def get(self, request: Request, ticket_id: str) -> HttpResponse:
        ticket = selectors.ticket_of(user=request.user, ticket_id=int(ticket_id))
        return _ticket_document(documents.ticket_qr_svg(ticket.code), "image/svg+xml", f"ticket-{ticket.pk}.svg")


class TicketTransferApi(APIView):
    @extend_schema(
        tags=["orders"],
        operation_id="tickets_transfer",
        parameters=[OpenApiParameter("ticket_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=TicketTransferInputSerializer,
        responses={
            201: TransferredTicketOutputSerializer,
            **problems(
                {
                    400: ["invalid"],
                    404: ["not_found"],
                    409: ["ticket_void", "already_checked_in", "transfer_closed"],
                    429: ["throttled"],
                    503: ["busy"],
                }
            ),
        },
        description="Give your ticket to somebody else by email. The ticket becomes `transferred` (its code "
        "stops working at once) and a new ticket with a new code is issued to the recipient, who finds it in "
        "`GET /users/me/tickets` and gets it by email; an address without an account gets one, with a code to "
        "set its password. The answer is the new ticket without its code. Only the ticket's current holder "
        "may (anyone else: 404); the order stays the buyer's, and refunding it voids the new ticket too. "
        "409 `ticket_void` (refunded, cancelled or transferred already), `already_checked_in`, "
        "`transfer_closed` (the organizer turned transfers off, the event is cancelled or starts within its "
        "`transfer_cutoff_hours`, or has started); 400 for a transfer to yourself. Limited per client address "
        "(`INVITE_RATE_PER_IP`).",
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        enforce_ip_rate_limit(request, group="invite", rate_setting="INVITE_RATE_PER_IP")
        data = TicketTransferInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ticket = transfers.ticket_transfer(ticket_id=int(ticket_id), sender=request.user, **data.validated_data)
        return Response(TransferredTicketOutputSerializer(ticket).data, status=status.HTTP_201_CREATED)


# --- Organizers ---------------------------------------------------------------------------

MANAGE_ERRORS = {403: ["permission_denied"], 404: ["not_found"]}


class EventSalesApi(APIView):
    @extend_schema(
        tags=["events"],
        operation_id="events_sales",
        responses={200: SalesOutputSerializer, **problems(MANAGE_ERRORS)},
        description="Owner or admin: sold and held tickets per ticket type, paid orders per day, gross, fees and net.",
    )
    def get(self, request: Request, event_id: int) -> Response:
        event = event_selectors.event_get_manageable(event_id=event_id, user=request.user)
        return Response(SalesOutputSerializer(selectors.event_sales(event=event)).data)


class CSVRenderer(renderers.BaseRenderer):
    """Lets ``?format=csv`` select the CSV download; the view streams the rows itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else b""


class EventAttendeesApi(GenericAPIView):
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]
    serializer_class = AttendeeOutputSerializer

    @extend_schema(
        tags=["events"],
        operation_id="events_attendees",
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="csv: a download")],
        responses={
            (200, "application/json"): AttendeeOutputSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="All attendees as CSV."),
            **problems(MANAGE_ERRORS),
        },
        description="Owner or admin: holders of valid tickets, paginated; `?format=csv` downloads them all.",
    )
    def get(self, request: Request, event_id: int) -> Response | StreamingHttpResponse:
        event = event_selectors.event_get_manageable(event_id=event_id, user=request.user)
        if request.accepted_renderer.format == "csv":
            return attendees_csv_response(event)
        page = self.paginate_queryset(selectors.event_attendees(event=event))
        return self.get_paginated_response(AttendeeOutputSerializer(page, many=True).data)


# --- Staff ------------------------------------------------------------------------------------


class IsPlatformAdmin(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return event_selectors.is_platform_admin(request.user)


class StaffOrderFilter(StrictFilterSet):
    status = filters.ChoiceFilter(choices=Order.Status.choices)
    event = WholeNumberFilter(min_value=1)
    user = WholeNumberFilter(min_value=1)

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        return selectors.staff_orders(status=data.get("status"), event_id=data.get("event"), user_id=data.get("user"))


class StaffOrdersApi(ListAPIView):
    permission_classes = [permissions.IsAuthenticated, IsPlatformAdmin]
    serializer_class = StaffOrderOutputSerializer
    queryset = Order.objects.none()
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = StaffOrderFilter

    @extend_schema(
        tags=["staff"],
        operation_id="staff_orders",
        responses={200: StaffOrderOutputSerializer(many=True), **problems({403: ["permission_denied"]})},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class StaffPayoutsApi(APIView):
    permission_classes = [permissions.IsAuthenticated, IsPlatformAdmin]

    @extend_schema(
        tags=["staff"],
        operation_id="staff_payouts",
        responses={200: PayoutOutputSerializer(many=True), **problems({403: ["permission_denied"]})},
        description="Net revenue owed per organizer and currency: gross - platform fees - refunds.",
    )
    def get(self, request: Request) -> Response:
        return Response(PayoutOutputSerializer(selectors.payouts(), many=True).data)


class StaffStatsApi(APIView):
    permission_classes = [permissions.IsAuthenticated, IsPlatformAdmin]

    @extend_schema(
        tags=["staff"],
        operation_id="staff_stats",
        responses={200: StaffStatsOutputSerializer, **problems({403: ["permission_denied"]})},
    )
    def get(self, request: Request) -> Response:
        return Response(StaffStatsOutputSerializer(selectors.staff_stats()).data)
