"""Input and output serializers for the catalogue; no logic in create()/update()."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from eventflow.api.serializers import DateTimeField, StrictInputSerializer

from .models import (
    MAX_CAPACITY,
    MAX_PRICE_CENTS,
    MAX_REFUND_HOURS,
    MAX_SEAT_COORDINATE,
    MAX_STOCK_BUCKETS,
    Category,
    Event,
    Seat,
    TicketType,
    validate_currency,
    validate_time_zone,
)


class OrganizerSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    slug = serializers.CharField()


class TicketTypeOutputSerializer(serializers.ModelSerializer):
    available = serializers.IntegerField(
        source="for_sale",
        read_only=True,
        help_text="Tickets a newcomer can buy now (in all its stock buckets); 0 while its waiting list has entries.",
    )
    sold_out = serializers.SerializerMethodField()

    class Meta:
        model = TicketType
        fields = [
            "id",
            "name",
            "description",
            "price_cents",
            "capacity",
            "available",
            "sold_out",
            "max_per_order",
            "max_per_buyer",
            "sales_start",
            "sales_end",
            "seated",
            "position",
            "stock_buckets",
            "low_stock_threshold",
        ]
        read_only_fields = fields

    def get_sold_out(self, obj: TicketType) -> bool:
        return obj.for_sale == 0


class EventBaseOutputSerializer(serializers.ModelSerializer):
    organizer = OrganizerSummarySerializer()
    country = serializers.CharField(help_text="ISO 3166-1 alpha-2 code, or empty.")
    image_url = serializers.SerializerMethodField()

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, obj: Event) -> str | None:
        if not obj.image:
            return None
        url = obj.image.url
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request and url.startswith("/") else url


SUMMARY_FIELDS = [
    "id",
    "title",
    "slug",
    "category",
    "status",
    "organizer",
    "venue_name",
    "city",
    "country",
    "latitude",
    "longitude",
    "starts_at",
    "ends_at",
    "timezone",
    "currency",
    "image_url",
]


class EventListOutputSerializer(EventBaseOutputSerializer):
    min_price_cents = serializers.IntegerField(allow_null=True, read_only=True)
    max_price_cents = serializers.IntegerField(allow_null=True, read_only=True)
    has_availability = serializers.BooleanField(read_only=True)
    distance_km = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = [*SUMMARY_FIELDS, "min_price_cents", "max_price_cents", "has_availability", "distance_km"]
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_distance_km(self, obj: Event) -> float | None:
        distance = getattr(obj, "distance_km", None)
        return round(distance, 3) if distance is not None else None


class RefundPolicySerializer(serializers.Serializer):
    refundable_until_hours_before = serializers.IntegerField(
        min_value=0,
        max_value=MAX_REFUND_HOURS,
        help_text="Paid orders may be cancelled for a refund until this many hours before the start.",
    )


class RefundPolicyOutputSerializer(RefundPolicySerializer):
    refundable_until = serializers.DateTimeField(help_text="When refunds close.")


class RefundPolicyInputSerializer(StrictInputSerializer, RefundPolicySerializer):
    pass


class EventDetailOutputSerializer(EventBaseOutputSerializer):
    ticket_types = TicketTypeOutputSerializer(many=True)
    refund_policy = serializers.SerializerMethodField(
        help_text="null: tickets are not refundable (buyers' cancellations of paid orders get 409 not_refundable)."
    )

    @extend_schema_field(RefundPolicyOutputSerializer(allow_null=True))
    def get_refund_policy(self, obj: Event) -> dict | None:
        if obj.refundable_until_hours_before is None:
            return None
        return RefundPolicyOutputSerializer(obj).data

    class Meta:
        model = Event
        fields = [
            *SUMMARY_FIELDS,
            "description",
            "address",
            "refund_policy",
            "max_tickets_per_buyer",
            "high_demand",
            "transfers_enabled",
            "transfer_cutoff_hours",
            "published_at",
            "created_at",
            "updated_at",
            "ticket_types",
        ]
        read_only_fields = fields


def buyer_limit_field(what: str, *, default: str = "") -> serializers.IntegerField:
    """An optional cap on what one buyer may hold across their live orders (null: none)."""
    return serializers.IntegerField(
        min_value=1,
        max_value=MAX_CAPACITY,
        required=False,
        allow_null=True,
        help_text=f"{what} one buyer may hold across live orders; null: no limit.{default}",
    )


def _degrees_schema(limit: int) -> dict:
    """A coordinate in a JSON body: a number (52.5065) or a decimal string ("52.506500")."""
    return {
        "oneOf": [
            {"type": "number", "minimum": -limit, "maximum": limit},
            {"type": "string", "pattern": r"^-?\d{1,3}(\.\d{1,6})?$"},
        ],
        "nullable": True,
    }


@extend_schema_field(_degrees_schema(90))
class LatitudeField(serializers.DecimalField):
    def __init__(self, **kwargs) -> None:
        super().__init__(max_digits=9, decimal_places=6, min_value=-90, max_value=90, **kwargs)


@extend_schema_field(_degrees_schema(180))
class LongitudeField(serializers.DecimalField):
    def __init__(self, **kwargs) -> None:
        super().__init__(max_digits=9, decimal_places=6, min_value=-180, max_value=180, **kwargs)


COUNTRY_CODES = [code for code, _name in countries]


class CountryCodeField(serializers.ChoiceField):
    """An ISO 3166-1 alpha-2 code (django-countries' list), in either case; stored upper-case."""

    def __init__(self, **kwargs) -> None:
        super().__init__(choices=COUNTRY_CODES, **kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data.upper() if isinstance(data, str) else data)


class EventInputSerializer(StrictInputSerializer):
    """Create (all required fields) and PATCH (``partial=True``) of an event."""

    title = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=220, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    venue_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = CountryCodeField(required=False, allow_blank=True)
    latitude = LatitudeField(required=False, allow_null=True)
    longitude = LongitudeField(required=False, allow_null=True)
    starts_at = DateTimeField()
    ends_at = DateTimeField()
    timezone = serializers.CharField(max_length=64, required=False, validators=[validate_time_zone])
    currency = serializers.CharField(max_length=3, required=False, validators=[validate_currency])
    refund_policy = RefundPolicyInputSerializer(
        required=False, allow_null=True, help_text="null: paid orders are not refundable."
    )
    max_tickets_per_buyer = buyer_limit_field("Most tickets of this event (all types)")
    high_demand = serializers.BooleanField(
        required=False,
        help_text="Queued on-sale: `POST /orders` for this event answers 202 with a place in line and a "
        "status URL to poll (`GET /orders/queue/{id}`) instead of 201; workers place the orders in arrival order.",
    )

    transfers_enabled = serializers.BooleanField(
        required=False, help_text="Holders may transfer tickets to another email (default true)."
    )
    transfer_cutoff_hours = serializers.IntegerField(
        min_value=0,
        max_value=MAX_REFUND_HOURS,
        required=False,
        allow_null=True,
        help_text="Transfers close this many hours before the start; null (default): when the event starts.",
    )

    def validate(self, attrs):
        if ("latitude" in attrs) != ("longitude" in attrs) or (
            (attrs.get("latitude") is None) != (attrs.get("longitude") is None)
        ):
            raise serializers.ValidationError({"longitude": [_("Give latitude and longitude together.")]})
        if "refund_policy" in attrs:
            policy = attrs.pop("refund_policy")
            attrs["refundable_until_hours_before"] = policy["refundable_until_hours_before"] if policy else None
        return attrs


class EventImageInputSerializer(StrictInputSerializer):
    # A plain file: events.images decodes it once, within the byte and pixel limits, and re-encodes it.
    image = serializers.FileField(
        help_text=f"JPEG, PNG, GIF or WebP, at most {settings.EVENT_IMAGE_MAX_BYTES // 1_048_576} MB "
        f"and {settings.EVENT_IMAGE_MAX_PIXELS // 1_000_000} megapixels."
    )


class TicketTypeInputSerializer(StrictInputSerializer):
    """Create (required fields) and PATCH (``partial=True``) of a ticket type."""

    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5_000)
    price_cents = serializers.IntegerField(min_value=0, max_value=MAX_PRICE_CENTS)
    capacity = serializers.IntegerField(min_value=0, max_value=MAX_CAPACITY)
    max_per_order = serializers.IntegerField(min_value=1, max_value=100, required=False)
    max_per_buyer = buyer_limit_field(
        "Most tickets of this type",
        default=f" Left out on creation: {settings.DEFAULT_MAX_PER_BUYER} (DEFAULT_MAX_PER_BUYER).",
    )
    sales_start = DateTimeField(required=False, allow_null=True)
    sales_end = DateTimeField(required=False, allow_null=True)
    seated = serializers.BooleanField(required=False)
    position = serializers.IntegerField(min_value=0, max_value=32_767, required=False)
    stock_buckets = serializers.IntegerField(
        min_value=1,
        max_value=MAX_STOCK_BUCKETS,
        required=False,
        help_text=(
            "Rows the stock is split over, so many buyers can buy this type at once (1: one row). Left out "
            f"on creation: {settings.STOCK_BUCKETS} when capacity is at least {settings.STOCK_BUCKETS_MIN_CAPACITY} "
            "(STOCK_BUCKETS, STOCK_BUCKETS_MIN_CAPACITY), else 1. Not for seated types."
        ),
    )
    low_stock_threshold = serializers.IntegerField(
        min_value=0,
        max_value=MAX_CAPACITY,
        required=False,
        allow_null=True,
        help_text=(
            "Subscribers of the event's WebSocket get `stock.low` when tickets on sale drop to this many or "
            f"fewer; null: the default, {settings.STOCK_LOW_THRESHOLD} (STOCK_LOW_THRESHOLD)."
        ),
    )


class AvailabilityOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    available = serializers.IntegerField()
    capacity = serializers.IntegerField()
    waitlist_length = serializers.IntegerField()


class SeatInputSerializer(StrictInputSerializer):
    """One seat of a bulk upload (``POST /events/{id}/seats`` takes a list of these)."""

    section = serializers.CharField(
        max_length=50, required=False, allow_blank=True, default="", help_text="Empty for a venue without sections."
    )
    row = serializers.CharField(max_length=20, help_text='As the venue writes it: "A", "12".')
    number = serializers.CharField(max_length=20, help_text='As the venue writes it: "12", "12A".')
    ticket_type = serializers.IntegerField(
        min_value=1, max_value=2**62, help_text="A seated ticket type of this event; its capacity grows by one."
    )
    x = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=-MAX_SEAT_COORDINATE,
        max_value=MAX_SEAT_COORDINATE,
        help_text="Where to draw the seat (any unit); the best-available choice uses x for a section's centre.",
    )
    y = serializers.FloatField(
        required=False, allow_null=True, min_value=-MAX_SEAT_COORDINATE, max_value=MAX_SEAT_COORDINATE
    )


class SeatOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    section = serializers.CharField()
    row = serializers.CharField()
    number = serializers.CharField()
    ticket_type = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Seat.Status.choices)
    x = serializers.FloatField(allow_null=True)
    y = serializers.FloatField(allow_null=True)
