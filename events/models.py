"""The catalogue: events and their ticket types (tiers)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from accounts.models import OrganizerProfile
from eventflow.regional import validate_currency, validate_time_zone

# Upper bounds of what one ticket type may hold or cost (the API and the admin both enforce them).
MAX_PRICE_CENTS = 100_000_000  # one million in major units
MAX_CAPACITY = 1_000_000
MAX_REFUND_HOURS = 24 * 366  # a refund policy reaches at most a year before the start


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
    def is_public(self) -> bool:
        return self.status == self.Status.PUBLISHED and self.deleted_at is None


class TicketType(models.Model):
    """A tier of an event. ``available`` = capacity - held - sold; the database enforces its bounds."""

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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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
        ]
        indexes = [
            models.Index(fields=["event", "position"], name="ticket_type_event_position"),
            models.Index(fields=["price_cents"], name="ticket_type_price"),
        ]

    def __str__(self) -> str:
        return f"{self.event}: {self.name}"

    @property
    def taken(self) -> int:
        """Tickets sold or held right now."""
        return self.capacity - self.available
