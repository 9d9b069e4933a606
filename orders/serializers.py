"""Input and output serializers for orders and tickets."""

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from eventflow.api.serializers import StrictInputSerializer

from .models import Order, OrderItem, Payment, Ticket
from .seating import MAX_SEATS_PER_ORDER, seats_of

MAX_LINES = 20
MAX_DISCOUNT_CODE_LENGTH = 64  # events.discounts.MAX_CODE_LENGTH


class OrderLineInputSerializer(StrictInputSerializer):
    ticket_type = serializers.IntegerField(min_value=1, max_value=2**62)
    quantity = serializers.IntegerField(min_value=1, max_value=100)


class JSONIntegerField(serializers.IntegerField):
    """An integer as JSON writes one: ``"2"``, ``2.0`` and ``true`` are refused, as StrictInputSerializer
    refuses them for its own fields (it does not look inside lists)."""

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("invalid")
        return super().to_internal_value(data)


class OrderCreateInputSerializer(StrictInputSerializer):
    event = serializers.IntegerField(min_value=1, max_value=2**62)
    items = OrderLineInputSerializer(
        many=True,
        min_length=1,
        max_length=MAX_LINES,
        allow_empty=False,
        required=False,
        help_text="Ticket types and quantities. A quantity of a seated type gets the best available adjacent "
        "seats in one row (front-most row, then closest to the section's centre). Required unless `seats` is given.",
    )
    discount_code = serializers.CharField(
        max_length=MAX_DISCOUNT_CODE_LENGTH,
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=True,
        help_text="A discount code of the event, in any case; empty or null: none. A percentage comes off the "
        "subtotal of the ticket types it applies to (the discount rounded up to a whole minor unit, in the "
        "buyer's favour), a fixed amount once per order, capped at that subtotal: the total never goes below "
        "zero, and a total of 0 is paid at once. Unknown, switched off, outside its validity window or for none "
        "of these ticket types: 400 `invalid` with `errors.discount_code` and a `reason` (`unknown`, "
        "`not_yet_valid`, `expired`, `not_applicable`); used up: 409 `discount_code_exhausted`.",
    )
    seats = serializers.ListField(
        child=JSONIntegerField(min_value=1, max_value=2**62),
        min_length=1,
        max_length=MAX_SEATS_PER_ORDER,
        required=False,
        help_text=f"Seat ids of this event to buy (1 to {MAX_SEATS_PER_ORDER}, each once): one ticket per seat, "
        "at its ticket type's price. 409 `seat_taken` with `seats` naming those no longer available.",
    )

    def validate_seats(self, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("List each seat once.")
        return value

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("items") and not attrs.get("seats"):
            raise serializers.ValidationError({"items": ["Give items, seats, or both."]})
        return attrs


_ORDER_KEYS = frozenset(("event", "items"))
_ORDER_KEYS_WITH_CODE = frozenset(("event", "items", "discount_code"))
_LINE_KEYS = frozenset(("ticket_type", "quantity"))
_ID_MAX = 2**62


def _whole(value, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def order_create_input(data) -> dict:
    """``OrderCreateInputSerializer(data=data)``'s validated data: checked by hand when the body has
    exactly the expected shape (building the nested serializer's fields was 7 % of a purchase's CPU,
    issue 10), and by the serializer, which writes the 400's field errors, otherwise.

    The hand check accepts only what the serializer accepts, and returns what it would."""
    keys = data.keys() if type(data) is dict else None
    if keys == _ORDER_KEYS or (
        keys == _ORDER_KEYS_WITH_CODE
        and (data["discount_code"] is None or type(data["discount_code"]) is str)
        and len(data["discount_code"] or "") <= MAX_DISCOUNT_CODE_LENGTH
    ):
        event, items = data["event"], data["items"]
        if (
            _whole(event, 1, _ID_MAX)
            and type(items) is list
            and 1 <= len(items) <= MAX_LINES
            and all(
                type(item) is dict
                and item.keys() == _LINE_KEYS
                and _whole(item["ticket_type"], 1, _ID_MAX)
                and _whole(item["quantity"], 1, 100)
                for item in items
            )
        ):
            checked = {
                "event": event,
                "items": [{"ticket_type": item["ticket_type"], "quantity": item["quantity"]} for item in items],
            }
            if "discount_code" in data:
                code = data["discount_code"]
                checked["discount_code"] = code.strip() if code is not None else None
            return checked
    serializer = OrderCreateInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class OrderItemOutputSerializer(serializers.ModelSerializer):
    ticket_type_name = serializers.CharField(source="ticket_type.name")
    subtotal_cents = serializers.IntegerField()

    class Meta:
        model = OrderItem
        fields = ["ticket_type", "ticket_type_name", "quantity", "unit_price_cents", "subtotal_cents"]
        read_only_fields = fields


class EventRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    starts_at = serializers.DateTimeField()


class SeatRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    section = serializers.CharField()
    row = serializers.CharField()
    number = serializers.CharField()


class OrderSeatSerializer(SeatRefSerializer):
    ticket_type = serializers.IntegerField(source="ticket_type_id")


def seat_ref(seat) -> dict | None:
    return None if seat is None else {"id": seat.pk, "section": seat.section, "row": seat.row, "number": seat.number}


class OrderOutputSerializer(serializers.ModelSerializer):
    event = EventRefSerializer()
    items = OrderItemOutputSerializer(many=True)
    subtotal_cents = serializers.IntegerField(help_text="The tickets at list price: the items' subtotals added up.")
    discount_cents = serializers.IntegerField(help_text="Taken off by `discount_code`; 0 without one.")
    discount_code = serializers.SerializerMethodField(help_text="The discount code the order used, or null.")
    total_cents = serializers.IntegerField(help_text="What the buyer pays: `subtotal_cents - discount_cents`.")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_discount_code(self, obj: Order) -> str | None:
        return obj.discount_code.code if obj.discount_code_id else None

    seats = OrderSeatSerializer(
        many=True, help_text="The seats the order holds or bought (none once it expired, was cancelled or refunded)."
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "event",
            "items",
            "subtotal_cents",
            "discount_cents",
            "discount_code",
            "seats",
            "total_cents",
            "currency",
            "expires_at",
            "paid_at",
            "created_at",
        ]
        read_only_fields = fields


def _datetime(value):
    """A datetime as ``serializers.DateTimeField`` writes it (ISO 8601 in the current zone, ``Z`` for UTC)."""
    if value is None:
        return None
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def order_representation(order: Order) -> dict:
    """``OrderOutputSerializer(order).data``, built by hand for the purchase's 201.

    A serializer constructs its fields for every instance it writes: that was 13.5 % of
    a purchase's CPU (issue 10). ``orders.tests.test_orders_api`` checks that the two
    agree for every shape of order, so a field added to one and not the other fails.
    """
    event = order.event
    return {
        "id": str(order.id),
        "status": order.status,
        "event": {"id": event.pk, "title": event.title, "starts_at": _datetime(event.starts_at)},
        "items": [
            {
                "ticket_type": item.ticket_type_id,
                "ticket_type_name": item.ticket_type.name,
                "quantity": item.quantity,
                "unit_price_cents": item.unit_price_cents,
                "subtotal_cents": item.subtotal_cents,
            }
            for item in order.items.all()
        ],
        "subtotal_cents": order.total_cents + order.discount_cents,
        "discount_cents": order.discount_cents,
        "discount_code": order.discount_code.code if order.discount_code_id else None,
        "seats": [{**seat_ref(seat), "ticket_type": seat.ticket_type_id} for seat in seats_of(order)],
        "total_cents": order.total_cents,
        "currency": order.currency,
        "expires_at": _datetime(order.expires_at),
        "paid_at": _datetime(order.paid_at),
        "created_at": _datetime(order.created_at),
    }


class PaymentOutputSerializer(serializers.ModelSerializer):
    client_secret = serializers.CharField(help_text="Stripe-like providers: for the app's payment sheet.")
    checkout_url = serializers.CharField(help_text="Redirect providers (Paystack): the page to send the buyer to.")

    class Meta:
        model = Payment
        fields = ["id", "provider", "status", "amount_cents", "currency", "client_secret", "checkout_url", "created_at"]
        read_only_fields = fields


class PayOutputSerializer(serializers.Serializer):
    payment = PaymentOutputSerializer()


class StaffOrderOutputSerializer(OrderOutputSerializer):
    buyer = serializers.EmailField(source="buyer.email")

    class Meta(OrderOutputSerializer.Meta):
        fields = [*OrderOutputSerializer.Meta.fields, "buyer", "fee_cents", "closed_at"]
        read_only_fields = fields


class TicketOutputSerializer(serializers.ModelSerializer):
    """A ticket with links to its documents; the links need the request (context) to be absolute."""

    ticket_type = serializers.SerializerMethodField()
    event = EventRefSerializer(source="order.event")
    order = serializers.UUIDField(source="order_id")
    seat = SeatRefSerializer(allow_null=True, help_text="The seat of a seated ticket; null for unseated ones.")
    qr_svg_url = serializers.SerializerMethodField(help_text="The ticket's QR code (SVG); it encodes `code`.")
    pdf_url = serializers.SerializerMethodField(
        help_text="The order's tickets as one PDF, a page per ticket (for the order's buyer; null on a ticket "
        "transferred to the caller)."
    )

    class Meta:
        model = Ticket
        fields = [
            "id",
            "code",
            "status",
            "ticket_type",
            "seat",
            "event",
            "order",
            "issued_at",
            "checked_in_at",
            "qr_svg_url",
            "pdf_url",
        ]
        read_only_fields = fields

    checked_in_at = serializers.SerializerMethodField(help_text="When it was checked in at the door; null: not yet.")

    def get_ticket_type(self, obj: Ticket) -> dict:
        return {"id": obj.ticket_type_id, "name": obj.ticket_type.name}

    @extend_schema_field(OpenApiTypes.URI)
    def get_qr_svg_url(self, obj: Ticket) -> str:
        return self._absolute(reverse("ticket-qr", kwargs={"ticket_id": obj.pk}))

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_checked_in_at(self, obj: Ticket):
        check_in = getattr(obj, "check_in", None)  # checkin.CheckIn; loaded by the selectors
        return None if check_in is None else _datetime(check_in.scanned_at)

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_pdf_url(self, obj: Ticket) -> str | None:
        if obj.holder_id != obj.order.buyer_id:
            return None  # a ticket transferred to the caller: its QR code (qr_svg_url) is their document
        return self._absolute(reverse("order-tickets-pdf", kwargs={"pk": obj.order_id}))

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class TicketTransferInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254, help_text="The recipient; an account is created when none exists.")


class TransferredTicketOutputSerializer(serializers.ModelSerializer):
    """The recipient's new ticket as its sender sees it: never its code, which is the recipient's alone."""

    ticket_type = serializers.SerializerMethodField()
    event = EventRefSerializer(source="order.event")
    order = serializers.UUIDField(source="order_id")
    holder = serializers.EmailField(source="holder.email", help_text="The recipient.")
    transferred_from = serializers.IntegerField(
        source="transferred_from_id", help_text="The sender's ticket, now void."
    )
    recipient_invited = serializers.BooleanField(
        help_text="True: the recipient had no account; one was created and they were emailed how to set a password."
    )

    class Meta:
        model = Ticket
        fields = [
            "id",
            "status",
            "ticket_type",
            "event",
            "order",
            "holder",
            "issued_at",
            "transferred_from",
            "recipient_invited",
        ]
        read_only_fields = fields

    def get_ticket_type(self, obj: Ticket) -> dict:
        return {"id": obj.ticket_type_id, "name": obj.ticket_type.name}


class AttendeeOutputSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="holder.name")
    email = serializers.EmailField(source="holder.email")
    ticket_type = serializers.CharField(source="ticket_type.name")
    seat = SeatRefSerializer(allow_null=True)
    order = serializers.UUIDField(source="order_id")

    class Meta:
        model = Ticket
        fields = ["name", "email", "ticket_type", "seat", "code", "order", "issued_at"]
        read_only_fields = fields


GROSS_HELP = "Orders sold (paid, or paid then refunded) at list price, before discount codes."
DISCOUNTS_HELP = "Taken off those orders by discount codes: gross - discounts is what buyers paid."
REFUNDS_HELP = "Paid back to buyers: the refunded orders' totals, as paid (after discounts)."
NET_HELP = "gross - discounts - fees - refunds: what the organizer is owed."

CHECKED_IN_HELP = "Valid tickets checked in at the door (check-ins of tickets voided since are not counted)."
ISSUED_HELP = "Valid tickets issued (paid, not refunded; a transferred ticket counts once)."


class SalesTicketTypeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    capacity = serializers.IntegerField()
    available = serializers.IntegerField()
    held = serializers.IntegerField()
    sold = serializers.IntegerField()
    gross_cents = serializers.IntegerField(
        help_text="Paid tickets of this type at list price; discount codes come off per order (`discounts_cents`)."
    )
    checked_in = serializers.IntegerField(help_text=CHECKED_IN_HELP)
    issued = serializers.IntegerField(help_text=ISSUED_HELP)


class SalesDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    orders = serializers.IntegerField()
    tickets = serializers.IntegerField()
    gross_cents = serializers.IntegerField(help_text="The day's paid orders at list price.")
    discounts_cents = serializers.IntegerField(help_text="Taken off them by discount codes.")


class RefundProgressSerializer(serializers.Serializer):
    paid_orders_to_refund = serializers.IntegerField(help_text="Paid orders not refunded yet.")
    refunds_succeeded = serializers.IntegerField()
    refunds_pending = serializers.IntegerField(help_text="Committed, waiting for the payment provider.")
    refunds_failed = serializers.IntegerField(help_text="Refused by the provider after every retry; staff retry them.")
    refunded_cents = serializers.IntegerField()


class SalesOutputSerializer(serializers.Serializer):
    event = serializers.IntegerField()
    currency = serializers.CharField()
    ticket_types = SalesTicketTypeSerializer(many=True)
    days = SalesDaySerializer(many=True)
    orders = serializers.IntegerField()
    checked_in = serializers.IntegerField(help_text=CHECKED_IN_HELP)
    issued = serializers.IntegerField(help_text=ISSUED_HELP)
    gross_cents = serializers.IntegerField(help_text=GROSS_HELP)
    discounts_cents = serializers.IntegerField(help_text=DISCOUNTS_HELP)
    fees_cents = serializers.IntegerField()
    refunds_cents = serializers.IntegerField(help_text=REFUNDS_HELP)
    net_cents = serializers.IntegerField(help_text=NET_HELP)
    refund_progress = RefundProgressSerializer()


class RevenueSerializer(serializers.Serializer):
    currency = serializers.CharField()
    gross_cents = serializers.IntegerField(help_text=GROSS_HELP)
    discounts_cents = serializers.IntegerField(help_text=DISCOUNTS_HELP)
    fees_cents = serializers.IntegerField()
    refunds_cents = serializers.IntegerField(help_text=REFUNDS_HELP)
    net_cents = serializers.IntegerField(help_text=NET_HELP)


class PayoutOutputSerializer(RevenueSerializer):
    organizer = serializers.IntegerField()
    organizer_name = serializers.CharField()
    paid_orders = serializers.IntegerField()


class StaffStatsOutputSerializer(serializers.Serializer):
    users = serializers.IntegerField()
    events = serializers.IntegerField()
    events_published = serializers.IntegerField()
    orders_by_status = serializers.DictField(child=serializers.IntegerField())
    tickets_sold = serializers.IntegerField()
    revenue = RevenueSerializer(many=True)
