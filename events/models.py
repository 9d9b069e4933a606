"""The catalogue: events and their ticket types (tiers)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, Lower
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from accounts.models import OrganizerProfile
from eventflow.regional import validate_currency, validate_time_zone

# Upper bounds of what one ticket type may hold or cost (the API and the admin both enforce them).
MAX_PRICE_CENTS = 100_000_000  # one million in major units
MAX_CAPACITY = 1_000_000
MAX_REFUND_HOURS = 24 * 366  # a refund policy reaches at most a year before the start
MAX_STOCK_BUCKETS = 64  # past this, claiming a bucket scans more rows than the lock it avoids costs


# validate_time_zone and validate_currency are imported here for the models and their migrations.


class Category(models.TextChoices):
    MUSIC = "music", _("Music")
    SPORTS = "sports", _("Sports")
    THEATRE = "theatre", _("Theatre")
    COMEDY = "comedy", _("Comedy")
    CONFERENCE = "conference", _("Conference")
    FESTIVAL = "festival", _("Festival")
    WORKSHOP = "workshop", _("Workshop")
    FOOD = "food", _("Food & drink")
    OTHER = "other", _("Other")


class EventQuerySet(models.QuerySet):
    def alive(self) -> EventQuerySet:
        return self.filter(deleted_at__isnull=True)

    def public(self) -> EventQuerySet:
        """What anyone may see: published, not deleted."""
        return self.alive().filter(status=Event.Status.PUBLISHED)


class Event(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        CANCELLED = "cancelled", _("Cancelled")

    organizer = models.ForeignKey(OrganizerProfile, on_delete=models.PROTECT, related_name="events")
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=220)
    description = models.TextField(_("description"), blank=True)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices, default=Category.OTHER)

    venue_name = models.CharField(_("venue"), max_length=200, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = CountryField(_("country"), blank=True, help_text=_("ISO 3166-1 alpha-2 code."))
    latitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )

    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_time_zone])
    currency = models.CharField(_("currency"), max_length=3, default="EUR", validators=[validate_currency])

    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    image = models.ImageField(_("image"), upload_to="events/%Y/%m/", blank=True)
    refundable_until_hours_before = models.PositiveIntegerField(
        _("refundable until (hours before the start)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_REFUND_HOURS)],
        help_text=_(
            "Buyers may cancel paid orders for a refund until this many hours before the start; "
            "empty: tickets are not refundable."
        ),
    )
    max_tickets_per_buyer = models.PositiveIntegerField(
        _("max tickets per buyer"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("At most this many tickets of this event, all types together, in one buyer's live orders."),
    )
    transfers_enabled = models.BooleanField(
        _("ticket transfers allowed"),
        default=True,
        help_text=_("Holders may transfer their tickets to another email address."),
    )
    transfer_cutoff_hours = models.PositiveIntegerField(
        _("transfers close (hours before the start)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_REFUND_HOURS)],
        help_text=_("Transfers close this many hours before the start; empty: until the event starts."),
    )
    high_demand = models.BooleanField(
        _("high demand"),
        default=False,
        help_text=_(
            "Queued on-sale: purchases are checked, queued and answered 202 with a place in line; "
            "workers then place them in order. For on-sales where many more buyers than tickets arrive at once."
        ),
    )

    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Maintained by a PostgreSQL trigger (see migration 0002); NULL on SQLite.
    search_vector = SearchVectorField(null=True, editable=False)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="event_ends_after_start"),
            models.CheckConstraint(
                condition=Q(latitude__isnull=True, longitude__isnull=True)
                | Q(latitude__gte=-90, latitude__lte=90, longitude__gte=-180, longitude__lte=180),
                name="event_coordinates_valid",
            ),
            models.UniqueConstraint(
                fields=["organizer", "slug"], condition=Q(deleted_at__isnull=True), name="event_slug_per_organizer"
            ),
            models.CheckConstraint(
                condition=Q(max_tickets_per_buyer__isnull=True) | Q(max_tickets_per_buyer__gte=1),
                name="event_max_tickets_per_buyer_positive",
            ),
        ]
        indexes = [
            # The public catalogue: published, alive, by date.
            models.Index(
                fields=["starts_at"],
                condition=Q(status="published", deleted_at__isnull=True),
                name="event_public_starts_at",
            ),
            models.Index(fields=["city"], name="event_city"),
            models.Index(fields=["category", "starts_at"], name="event_category_starts_at"),
            models.Index(fields=["latitude", "longitude"], name="event_lat_lng"),
            models.Index(fields=["organizer", "status"], name="event_organizer_status"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def refundable_until(self):
        """The moment the refund policy closes; None when tickets are not refundable."""
        hours = self.refundable_until_hours_before
        return None if hours is None else self.starts_at - timedelta(hours=hours)

    @property
    def transfers_close_at(self):
        """When ticket transfers stop: the start, or ``transfer_cutoff_hours`` before it."""
        return self.starts_at - timedelta(hours=self.transfer_cutoff_hours or 0)

    @property
    def is_public(self) -> bool:
        return self.status == self.Status.PUBLISHED and self.deleted_at is None


class TicketTypeQuerySet(models.QuerySet):
    def with_on_sale(self) -> TicketTypeQuerySet:
        """Annotate ``bucket_stock`` (what the stock buckets hold) so ``on_sale`` costs no query per row."""
        in_buckets = (
            StockBucket.objects.filter(ticket_type=OuterRef("pk"))
            .order_by()
            .values("ticket_type")
            .annotate(total=Sum("available"))
            .values("total")
        )
        return self.annotate(bucket_stock=Coalesce(Subquery(in_buckets), 0))


def in_stock_q(prefix: str = "") -> Q:
    """Ticket types with a ticket a newcomer can buy, in the pool or in a bucket (for ``filter``);
    while a type's waiting list has entries, its stock is the list's, not for sale."""
    buckets = StockBucket.objects.filter(ticket_type=OuterRef(f"{prefix}pk"), available__gt=0)
    return (Q(**{f"{prefix}available__gt": 0}) | Q(Exists(buckets))) & Q(**{f"{prefix}waitlisted": 0})


class TicketType(models.Model):
    """A tier of an event.

    Its tickets on sale are ``available`` (the pool, on this row) plus, for a
    ticket type split over ``stock_buckets`` > 1 rows, what its
    :class:`StockBucket` rows hold; ``on_sale`` is that sum, and
    ``capacity = available + sum(buckets) + held + sold`` (``manage.py
    check_inventory``). A bucketed type keeps its pool at 0 except for stock
    given back by releases and refunds, which the next purchase that finds no
    bucket big enough spreads over the buckets (events/stock.py). The database
    enforces the bounds of every row.
    """

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="ticket_types")
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    price_cents = models.PositiveIntegerField(_("price (minor units)"))
    capacity = models.PositiveIntegerField(_("capacity"))
    available = models.PositiveIntegerField(_("available"), editable=False)
    max_per_order = models.PositiveSmallIntegerField(
        _("max per order"), default=10, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    max_per_buyer = models.PositiveIntegerField(
        _("max per buyer"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("At most this many tickets of this type in one buyer's live (reserved and paid) orders."),
    )
    sales_start = models.DateTimeField(_("sales start"), null=True, blank=True)
    sales_end = models.DateTimeField(_("sales end"), null=True, blank=True)
    seated = models.BooleanField(_("seated"), default=False)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    stock_buckets = models.PositiveSmallIntegerField(
        _("stock buckets"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_STOCK_BUCKETS)],
        help_text=_(
            "Rows the stock is split over so that many buyers can buy this type at the same moment "
            "(1: one row). For very hot on-sales."
        ),
    )
    waitlisted = models.PositiveIntegerField(
        _("on the waiting list"),
        default=0,
        editable=False,
        help_text=_(
            "Entries waiting on this type's waiting list (orders.waitlist keeps it under this row's lock). "
            "While it is above 0, stock is offered to the list, never sold to newcomers."
        ),
    )
    low_stock_threshold = models.PositiveIntegerField(
        _("low-stock threshold"),
        null=True,
        blank=True,
        help_text=_(
            "Subscribers of the event are told (stock.low) when tickets on sale drop to this many or fewer; "
            "empty: the STOCK_LOW_THRESHOLD setting."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TicketTypeQuerySet.as_manager()

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(available__gte=0) & Q(available__lte=F("capacity")), name="ticket_type_available_in_bounds"
            ),
            models.CheckConstraint(condition=Q(price_cents__gte=0), name="ticket_type_price_not_negative"),
            models.CheckConstraint(condition=Q(max_per_order__gte=1), name="ticket_type_max_per_order_positive"),
            models.CheckConstraint(
                condition=Q(max_per_buyer__isnull=True) | Q(max_per_buyer__gte=1),
                name="ticket_type_max_per_buyer_positive",
            ),
            models.CheckConstraint(
                condition=Q(sales_start__isnull=True) | Q(sales_end__isnull=True) | Q(sales_end__gt=F("sales_start")),
                name="ticket_type_sales_window_ordered",
            ),
            models.CheckConstraint(
                condition=Q(stock_buckets__gte=1) & Q(stock_buckets__lte=MAX_STOCK_BUCKETS),
                name="ticket_type_stock_buckets_in_bounds",
            ),
            models.CheckConstraint(condition=Q(waitlisted__gte=0), name="ticket_type_waitlisted_not_negative"),
        ]
        indexes = [
            models.Index(fields=["event", "position"], name="ticket_type_event_position"),
            models.Index(fields=["price_cents"], name="ticket_type_price"),
        ]

    def __str__(self) -> str:
        return f"{self.event}: {self.name}"

    @property
    def on_sale(self) -> int:
        """Tickets on sale right now: the pool plus the buckets (annotated by ``with_on_sale()``, or read)."""
        in_buckets = getattr(self, "bucket_stock", None)
        if in_buckets is None:
            if self.pk is None or self.stock_buckets <= 1:
                in_buckets = 0  # an unbucketed type has no bucket rows (kept so under its row lock)
            else:
                in_buckets = self.buckets.aggregate(total=Coalesce(Sum("available"), 0))["total"]
        return self.available + in_buckets

    @property
    def for_sale(self) -> int:
        """What a newcomer can buy: what is on sale, or 0 while the waiting list has entries (the
        stock that comes back is offered to them, orders.waitlist)."""
        return 0 if self.waitlisted else self.on_sale

    @property
    def taken(self) -> int:
        """Tickets sold or held right now."""
        return self.capacity - self.on_sale


class StockBucket(models.Model):
    """A share of a bucketed ticket type's stock, on a row of its own.

    One hot row lets one purchase at a time hold its lock; with buckets, each
    buyer claims some bucket nobody else holds (``SKIP LOCKED``), so up to
    ``stock_buckets`` purchases of one type commit side by side. The rows are
    changed only by events/stock.py, under the locks it documents.
    """

    # The unique (ticket_type, number) index serves the foreign key and the claims; no second index.
    ticket_type = models.ForeignKey(TicketType, on_delete=models.CASCADE, related_name="buckets", db_index=False)
    number = models.PositiveSmallIntegerField()
    available = models.PositiveIntegerField()

    class Meta:
        ordering = ["ticket_type", "number"]
        constraints = [
            models.CheckConstraint(condition=Q(available__gte=0), name="stock_bucket_available_not_negative"),
            models.UniqueConstraint(fields=["ticket_type", "number"], name="stock_bucket_number_per_ticket_type"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_type_id} bucket {self.number}: {self.available}"


class DiscountCode(models.Model):
    """A code buyers enter at checkout for a percentage or a fixed amount off (events/discounts.py).

    Exactly one of ``percent_off`` and ``amount_off_cents`` is set (a database CHECK). ``uses``
    counts the live orders (reserved or paid) that carry the code; it is claimed by one
    conditional UPDATE in the order's transaction and given back when the order's stock is
    (expiry, cancellation, refund), so it never exceeds ``max_uses`` (another CHECK). Codes
    match case-insensitively and are unique per event in that sense. A code some order
    carries is never deleted: deleting it sets ``deleted_at`` (the orders keep it).
    """

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="discount_codes")
    code = models.CharField(_("code"), max_length=64, help_text=_("What buyers type; case does not matter."))
    percent_off = models.PositiveSmallIntegerField(
        _("percent off"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    amount_off_cents = models.PositiveIntegerField(
        _("amount off (minor units)"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    max_uses = models.PositiveIntegerField(
        _("max uses"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("How many live orders may carry the code; empty: unlimited."),
    )
    uses = models.PositiveIntegerField(
        _("uses"), default=0, editable=False, help_text=_("Live (reserved and paid) orders carrying the code.")
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    ticket_types = models.ManyToManyField(
        TicketType,
        blank=True,
        related_name="discount_codes",
        verbose_name=_("ticket types"),
        help_text=_("The ticket types the code takes money off; none: all of the event's."),
    )
    active = models.BooleanField(_("active"), default=True, help_text=_("Off: buyers cannot use the code."))
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["event", "code", "id"]
        verbose_name = _("discount code")
        verbose_name_plural = _("discount codes")
        constraints = [
            models.UniqueConstraint(
                Lower("code"), "event", condition=Q(deleted_at__isnull=True), name="discount_code_unique_per_event"
            ),
            models.CheckConstraint(
                condition=Q(percent_off__isnull=False, amount_off_cents__isnull=True)
                | Q(percent_off__isnull=True, amount_off_cents__isnull=False),
                name="discount_code_percent_xor_amount",
            ),
            models.CheckConstraint(
                condition=Q(percent_off__isnull=True) | Q(percent_off__gte=1, percent_off__lte=100),
                name="discount_code_percent_in_range",
            ),
            models.CheckConstraint(
                condition=Q(amount_off_cents__isnull=True) | Q(amount_off_cents__gte=1),
                name="discount_code_amount_positive",
            ),
            models.CheckConstraint(condition=Q(uses__gte=0), name="discount_code_uses_not_negative"),
            models.CheckConstraint(
                condition=Q(max_uses__isnull=True) | (Q(max_uses__gte=1) & Q(uses__lte=F("max_uses"))),
                name="discount_code_uses_within_max",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="discount_code_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


MAX_SEAT_COORDINATE = 1_000_000  # x/y are drawing units; a larger magnitude is a typo, not a venue


def natural_key(label: str) -> str:
    """A sort key that orders seat labels the way people read them: "2" < "10" < "10A" < "B".

    Each run of digits becomes a fixed-width number, so a plain (database) string sort of the key
    is the natural sort of the label; labels are at most 20 characters, so 20 digits suffice."""
    out, digits = [], ""
    for char in label:
        if char.isdigit():
            digits += char
            continue
        if digits:
            out.append(digits.rjust(20, "0"))
            digits = ""
        out.append(char.lower())
    if digits:
        out.append(digits.rjust(20, "0"))
    return "".join(out)


class Seat(models.Model):
    """One seat of a seated ticket type, and who holds it.

    ``available`` seats belong to nobody; ``held`` ones to a reserved order,
    ``sold`` ones to a paid order (the database refuses anything else). A seated
    ticket type's capacity is its number of seats and its ``available`` the
    number of available seats; seats change state only in orders/seating.py,
    under the same order lock that moves the ticket-type stock.
    """

    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        HELD = "held", _("Held")
        SOLD = "sold", _("Sold")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="seats", db_index=False)
    ticket_type = models.ForeignKey(TicketType, on_delete=models.CASCADE, related_name="seats")
    section = models.CharField(_("section"), max_length=50, blank=True)
    row = models.CharField(_("row"), max_length=20)
    number = models.CharField(_("number"), max_length=20)
    # Natural sort keys of row and number (natural_key), kept with them by the services.
    row_key = models.CharField(max_length=255, editable=False)
    number_key = models.CharField(max_length=255, editable=False)
    x = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(-MAX_SEAT_COORDINATE), MaxValueValidator(MAX_SEAT_COORDINATE)],
        help_text=_("Where to draw the seat on a seat map (any unit); optional."),
    )
    y = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(-MAX_SEAT_COORDINATE), MaxValueValidator(MAX_SEAT_COORDINATE)],
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.AVAILABLE)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="seats", editable=False
    )

    class Meta:
        ordering = ["event", "section", "row_key", "number_key"]
        constraints = [
            # The unique index also serves the seat map's order (event, section, row, number).
            models.UniqueConstraint(fields=["event", "section", "row", "number"], name="seat_unique_per_event"),
            models.CheckConstraint(
                condition=Q(status="available", order__isnull=True)
                | Q(status__in=["held", "sold"], order__isnull=False),
                name="seat_order_matches_status",
            ),
        ]
        indexes = [
            models.Index(fields=["ticket_type", "status"], name="seat_ticket_type_status"),
            models.Index(fields=["event", "section", "row_key", "number_key"], name="seat_map_order"),
        ]

    def __str__(self) -> str:
        where = f"{self.section} " if self.section else ""
        return f"{where}row {self.row} seat {self.number}"

    def save(self, *args, **kwargs) -> None:
        self.row_key, self.number_key = natural_key(self.row), natural_key(self.number)
        super().save(*args, **kwargs)
