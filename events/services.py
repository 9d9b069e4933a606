"""Writes for the catalogue. The API, the admin and commands all go through these."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import OrganizerProfile
from eventflow.api.errors import ApplicationError

from . import seats, stock
from .errors import (
    CapacityBelowSold,
    EventCancelled,
    EventEnded,
    EventHasOrders,
    EventStarted,
    InvalidStatusTransition,
    LastTicketType,
    NoTicketTypes,
    SlugTaken,
    TicketTypeHasOrders,
)
from .images import reencode
from .models import Event, TicketType
from .selectors import event_ids_not_deletable, event_ids_with_tickets_taken
from .signals import event_cancelled, stock_added

EVENT_FIELDS = {
    "title",
    "slug",
    "description",
    "category",
    "venue_name",
    "address",
    "city",
    "country",
    "latitude",
    "longitude",
    "starts_at",
    "ends_at",
    "timezone",
    "currency",
    "refundable_until_hours_before",
    "max_tickets_per_buyer",
    "high_demand",
    "transfers_enabled",
    "transfer_cutoff_hours",
}
TICKET_TYPE_FIELDS = {
    "name",
    "description",
    "price_cents",
    "capacity",
    "max_per_order",
    "max_per_buyer",
    "sales_start",
    "sales_end",
    "seated",
    "position",
    "stock_buckets",
    "low_stock_threshold",
}


def check_time_window(start: datetime | None, end: datetime | None, *, end_field: str) -> None:
    if start is not None and end is not None and end <= start:
        raise ApplicationError(_("Must be later than the start."), field=end_field)


# How far ahead an event may be put on sale: further is a typo (2207 for 2027), not a plan.
MAX_YEARS_AHEAD = 10


def check_starts_in_future(starts_at: datetime | None) -> None:
    """Events are created (or moved) to start in the future, within MAX_YEARS_AHEAD years; the past is
    for records, not for sale."""
    if starts_at is None:
        return
    now = timezone.now()
    if starts_at <= now:
        raise ApplicationError(_("An event must start in the future."), field="starts_at")
    if starts_at > now + timedelta(days=365 * MAX_YEARS_AHEAD):
        raise ApplicationError(
            _("An event must start within the next %(years)d years.") % {"years": MAX_YEARS_AHEAD}, field="starts_at"
        )


def _unique_event_slug(organizer: OrganizerProfile, base: str, exclude_pk: int | None = None) -> str:
    root = (slugify(base) or "event")[:200]
    taken = set(
        Event.objects.alive()
        .filter(organizer=organizer, slug__startswith=root)
        .exclude(pk=exclude_pk)
        .values_list("slug", flat=True)
    )
    slug, n = root, 2
    while slug in taken:
        slug, n = f"{root}-{n}", n + 1
    return slug


def _lock_event(event: Event) -> Event:
    """Re-read the event under a row lock; the caller's copy may be stale."""
    locked = Event.objects.select_for_update(no_key=True).get(pk=event.pk)
    locked.organizer = event.organizer
    return locked


def _save(instance, fields: list[str]) -> None:
    try:
        with transaction.atomic():
            instance.save(update_fields=[*fields, "updated_at"])
    except IntegrityError as exc:
        if "slug" in str(exc):
            raise SlugTaken() from exc
        raise


logger = logging.getLogger(__name__)

# --- Events -----------------------------------------------------------------------


@transaction.atomic
def event_create(*, organizer: OrganizerProfile, **data: Any) -> Event:
    """A new draft event of ``organizer``."""
    data = {k: v for k, v in data.items() if k in EVENT_FIELDS}
    data.setdefault("timezone", organizer.timezone)  # the organizer's defaults, unless chosen
    data.setdefault("currency", organizer.currency)
    check_starts_in_future(data.get("starts_at"))
    check_time_window(data.get("starts_at"), data.get("ends_at"), end_field="ends_at")
    slug = data.pop("slug", None)
    if slug and Event.objects.alive().filter(organizer=organizer, slug=slug).exists():
        raise SlugTaken()
    event = Event(organizer=organizer, slug=slug or _unique_event_slug(organizer, data["title"]), **data)
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError as exc:
        raise SlugTaken() from exc
    return event


@transaction.atomic
def event_update(*, event: Event, **data: Any) -> Event:
    event = _lock_event(event)
    if event.status == Event.Status.CANCELLED:
        raise EventCancelled()
    data = {k: v for k, v in data.items() if k in EVENT_FIELDS}
    if "starts_at" in data and data["starts_at"] != event.starts_at:
        check_starts_in_future(data["starts_at"])
    check_time_window(data.get("starts_at", event.starts_at), data.get("ends_at", event.ends_at), end_field="ends_at")
    slug = data.get("slug")
    if slug and Event.objects.alive().filter(organizer_id=event.organizer_id, slug=slug).exclude(pk=event.pk).exists():
        raise SlugTaken()
    for field, value in data.items():
        setattr(event, field, value)
    if data:
        _save(event, list(data))
    return event


@transaction.atomic
def event_publish(*, event: Event) -> Event:
    event = _lock_event(event)
    if event.status != Event.Status.DRAFT:
        raise InvalidStatusTransition(
            _("Only draft events can be published; this one is %(status)s.")
            % {"status": event.get_status_display().lower()}
        )
    if event.ends_at <= timezone.now():
        raise EventEnded()
    if event.starts_at <= timezone.now():
        raise EventStarted()
    if not TicketType.objects.filter(event=event).exists():
        raise NoTicketTypes()
    event.status = Event.Status.PUBLISHED
    event.published_at = timezone.now()
    _save(event, ["status", "published_at"])
    return event


@transaction.atomic
def event_unpublish(*, event: Event) -> Event:
    """Take a published event back to draft, while nobody holds or owns a ticket."""
    event = _lock_event(event)
    if event.status != Event.Status.PUBLISHED:
        raise InvalidStatusTransition(_("Only published events can be unpublished."))
    if event_ids_with_tickets_taken(event_ids=[event.pk]):
        raise EventHasOrders(_("Tickets have been sold or are held; cancel the event instead."))
    event.status = Event.Status.DRAFT
    _save(event, ["status"])
    return event


def _announce_cancelled(event_id: int) -> None:
    """After commit: a receiver that fails (a broker down) is logged, never an error for a
    cancellation that has happened; the orders app re-drives its refunds from beat."""
    for receiver, result in event_cancelled.send_robust(sender=Event, event_id=event_id):
        if isinstance(result, Exception):
            logger.error("event_cancelled receiver %r failed for event %s: %s", receiver, event_id, result)


@transaction.atomic
def event_cancel(*, event: Event) -> Event:
    """Call an event off: it leaves the catalogue at once, and after commit its holds are released
    and every paid order is refunded in the background (``event_cancelled`` signal). Cancelling
    a cancelled event again only asks for the refunds again, which is safe."""
    event = _lock_event(event)
    if event.status == Event.Status.DRAFT:
        raise InvalidStatusTransition(_("A draft event is not on sale; delete it instead of cancelling it."))
    if event.status == Event.Status.PUBLISHED:
        event.status = Event.Status.CANCELLED
        event.cancelled_at = timezone.now()
        _save(event, ["status", "cancelled_at"])
    transaction.on_commit(lambda: _announce_cancelled(event.pk))
    return event


@transaction.atomic
def event_delete(*, event: Event) -> None:
    """Soft-delete: the row stays for accounting, the event leaves every list and its slug is freed."""
    event = _lock_event(event)
    if event_ids_not_deletable(event_ids=[event.pk]):
        raise EventHasOrders()
    event.deleted_at = timezone.now()
    _save(event, ["deleted_at"])


def event_set_image(*, event: Event, image: UploadedFile | ContentFile) -> Event:
    """Store an uploaded image, re-encoded by its real format (events.images), through Django's
    storage API (local disk, S3, ...). The old file goes once the new one is committed.

    An image ``events.images.reencode`` already produced (the admin form validates the
    upload that way) is stored as it is."""
    if not getattr(image, "reencoded", False):
        image = reencode(image)
    with transaction.atomic():
        event = _lock_event(event)
        if event.status == Event.Status.CANCELLED:
            raise EventCancelled()
        old = event.image.name if event.image else None
        event.image = image
        _save(event, ["image"])
        if old:
            storage = event.image.storage
            transaction.on_commit(lambda: storage.delete(old))
    return event


# --- Ticket types ---------------------------------------------------------------------


@transaction.atomic
def ticket_type_create(*, event: Event, **data: Any) -> TicketType:
    event = _lock_event(event)
    if event.status == Event.Status.CANCELLED:
        raise EventCancelled()
    data = {k: v for k, v in data.items() if k in TICKET_TYPE_FIELDS}
    data.setdefault("max_per_buyer", settings.DEFAULT_MAX_PER_BUYER)  # an explicit None: no limit
    if data.get("seated"):
        data["capacity"] = 0  # a seated type's capacity is its seats (events/seats.py), added later
    check_time_window(data.get("sales_start"), data.get("sales_end"), end_field="sales_end")
    if data.get("stock_buckets") is None:  # left out: split when the capacity is large (STOCK_BUCKETS_MIN_CAPACITY)
        data["stock_buckets"] = stock.buckets_for(data["capacity"], seated=data.get("seated", False))
    _check_buckets(data["stock_buckets"], seated=data.get("seated", False))
    ticket_type = TicketType(event=event, available=data["capacity"], **data)
    ticket_type.save()
    if ticket_type.stock_buckets > 1:
        ticket_type.available = stock.lay_out(
            ticket_type.pk, [], on_sale=ticket_type.capacity, buckets=ticket_type.stock_buckets
        )
        TicketType.objects.filter(pk=ticket_type.pk).update(available=ticket_type.available)
    return ticket_type


def _check_buckets(buckets: int, *, seated: bool) -> None:
    if seated and buckets > 1:
        raise ApplicationError(_("A seated ticket type sells by seat: its stock is not split."), field="stock_buckets")


@transaction.atomic
def ticket_type_update(*, ticket_type: TicketType, **data: Any) -> TicketType:
    """Change a tier. A capacity change moves what is on sale by the same amount, under the locks
    purchases take (the row, then its stock buckets), and can never go below what is sold and held.
    Changing ``stock_buckets`` spreads what is on sale over the new number of buckets."""
    event = ticket_type.event
    locked = TicketType.objects.select_for_update(no_key=True).get(pk=ticket_type.pk)
    buckets = stock.lock_buckets(locked.pk)
    on_sale = locked.available + sum(available for _pk, available in buckets)
    locked.event = event
    if event.status == Event.Status.CANCELLED:
        raise EventCancelled()
    data = {k: v for k, v in data.items() if k in TICKET_TYPE_FIELDS}
    check_time_window(
        data.get("sales_start", locked.sales_start), data.get("sales_end", locked.sales_end), end_field="sales_end"
    )
    _check_buckets(data.get("stock_buckets", locked.stock_buckets), seated=data.get("seated", locked.seated))
    seats.check_ticket_type_change(locked, data)
    fields = list(data)
    if "capacity" in data:
        taken = locked.capacity - on_sale
        if data["capacity"] < taken:
            raise CapacityBelowSold(
                ngettext(
                    "Capacity cannot drop below %(taken)d: that ticket is sold or held.",
                    "Capacity cannot drop below %(taken)d: that many tickets are sold or held.",
                    taken,
                )
                % {"taken": taken},
                extra={"sold_and_held": taken},
            )
        if data["capacity"] > locked.capacity and locked.waitlisted:
            ticket_type_id = locked.pk
            transaction.on_commit(lambda: stock_added.send_robust(sender=TicketType, ticket_type_id=ticket_type_id))
        on_sale = data["capacity"] - taken
    if "capacity" in data or "stock_buckets" in data:
        locked.available = stock.lay_out(
            locked.pk, buckets, on_sale=on_sale, buckets=data.get("stock_buckets", locked.stock_buckets)
        )
        fields.append("available")
    for field, value in data.items():
        setattr(locked, field, value)
    if fields:
        _save(locked, fields)
    return locked


@transaction.atomic
def ticket_type_delete(*, ticket_type: TicketType) -> None:
    event = _lock_event(ticket_type.event)
    locked = TicketType.objects.select_for_update().get(pk=ticket_type.pk)
    in_buckets = sum(available for _pk, available in stock.lock_buckets(locked.pk))
    if locked.available + in_buckets != locked.capacity:
        raise TicketTypeHasOrders()
    if (
        event.status == Event.Status.PUBLISHED
        and not TicketType.objects.filter(event=event).exclude(pk=locked.pk).exists()
    ):
        raise LastTicketType()
    locked.delete()
