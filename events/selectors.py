"""Reads for the catalogue: who may see what, search, filters and availability."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Exists, ExpressionWrapper, F, FloatField, Max, Min, OuterRef, Prefetch, Q, QuerySet, Value
from django.db.models.functions import ASin, Cos, Power, Radians, Sin, Sqrt
from django.http import Http404
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from accounts.models import OrganizerProfile, User
from accounts.twofactor import require_for_organizer
from eventflow.db import catalogue_db, replica_configured

from . import cache
from .errors import NotAnOrganizer
from .models import Event, TicketType, in_stock_q

EARTH_RADIUS_KM = 6371.0088


def is_platform_admin(user: User) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_superuser)


def organizer_profile_id(user: User) -> int | None:
    """The id of the organizer profile ``user`` acts for, looked up once per user object."""
    if not (user and user.is_authenticated):
        return None
    if not hasattr(user, "_organizer_profile_id"):
        user._organizer_profile_id = OrganizerProfile.objects.filter(user=user).values_list("pk", flat=True).first()
    if user._organizer_profile_id is not None:
        # With ORGANIZERS_REQUIRE_2FA, an organizer acts as one only with 2FA on: 403 `2fa_required`.
        require_for_organizer(user)
    return user._organizer_profile_id


def can_manage(user: User, event: Event) -> bool:
    """The owning organizer, or a platform admin."""
    if is_platform_admin(user):
        return True
    profile_id = organizer_profile_id(user)
    return profile_id is not None and profile_id == event.organizer_id


def event_ids_with_tickets_taken(*, event_ids: Iterable[int]) -> set[int]:
    """Events with a ticket sold or held right now (some ticket type has less on sale than its capacity)."""
    types = TicketType.objects.filter(event_id__in=list(event_ids)).with_on_sale()
    taken = types.filter(capacity__gt=F("available") + F("bucket_stock"))
    return set(taken.values_list("event_id", flat=True).distinct())


def event_ids_not_deletable(*, event_ids: Iterable[int]) -> set[int]:
    """Events that must stay: tickets taken, or any order ever placed (409 ``event_has_orders``)."""
    from orders.selectors import event_ids_with_orders  # orders build on events, not the reverse

    event_ids = list(event_ids)
    return event_ids_with_tickets_taken(event_ids=event_ids) | event_ids_with_orders(event_ids=event_ids)


def ticket_types_prefetch() -> Prefetch:
    return Prefetch("ticket_types", queryset=TicketType.objects.with_on_sale().order_by("position", "id"))


def _alive_events() -> QuerySet[Event]:
    return Event.objects.alive().select_related("organizer")


def _catalogue_db(event_id: int | None = None) -> str:
    """The database a public catalogue read uses: the read replica when one is configured and it
    is safe (eventflow/db/__init__.py), the primary otherwise. Asks when it last changed only then."""
    if not replica_configured():
        return DEFAULT_DB_ALIAS
    return catalogue_db(changed_at_ns=cache.changed_at(event_id))


def event_get_visible(
    *, event_id: int, user: User | None, with_ticket_types: bool = False, from_replica: bool = False
) -> Event:
    """An event the caller may read: public ones, and their own drafts. 404 otherwise.

    ``from_replica``: a public read (a GET for display), which the read replica may answer; its
    ticket types (``ticket_types_of``, ``ticket_type_get``) then come from there too. Never for
    an event about to be changed or sold."""
    qs = _alive_events().filter(pk=event_id)
    if from_replica:
        qs = qs.using(_catalogue_db(event_id))
    if with_ticket_types:
        qs = qs.prefetch_related(ticket_types_prefetch())
    event = qs.first()
    if event is None or not (event.status != Event.Status.DRAFT or can_manage(user, event)):
        raise Http404
    return event


def event_get_manageable(*, event_id: int, user: User) -> Event:
    """An event the caller may change: 404 if they may not even see it, 403 if they may only see it."""
    event = event_get_visible(event_id=event_id, user=user)
    if not can_manage(user, event):
        raise PermissionDenied
    return event


def ticket_type_get(*, event: Event, ticket_type_id: int) -> TicketType:
    """One of the event's ticket types, read from the database the event was read from."""
    ticket_type = (
        TicketType.objects.using(event._state.db).filter(event=event, pk=ticket_type_id).with_on_sale().first()
    )
    if ticket_type is None:
        raise Http404
    ticket_type.event = event
    return ticket_type


def ticket_types_of(*, event: Event) -> QuerySet[TicketType]:
    """The event's ticket types, read from the database the event was read from."""
    return TicketType.objects.using(event._state.db).filter(event=event).select_related("event").with_on_sale()


# --- The catalogue -------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def _search(qs: QuerySet[Event], text: str) -> tuple[QuerySet[Event], bool]:
    """Full-text prefix search on PostgreSQL, substring search elsewhere. Returns (qs, ranked)."""
    words = _WORD.findall(text.lower())[:10]
    if not words:
        return qs, False
    if connection.vendor == "postgresql":
        query = SearchQuery(" & ".join(f"{w}:*" for w in words), search_type="raw", config="simple")
        qs = qs.filter(search_vector=query).annotate(rank=SearchRank(F("search_vector"), query))
        return qs, True
    for word in words:
        qs = qs.filter(
            Q(title__icontains=word)
            | Q(description__icontains=word)
            | Q(venue_name__icontains=word)
            | Q(city__icontains=word)
        )
    return qs, False


def _near(qs: QuerySet[Event], lat: Decimal, lng: Decimal, radius_km: Decimal) -> QuerySet[Event]:
    """Haversine distance in SQL, after a bounding box the (latitude, longitude) index can serve."""
    lat_f, lng_f, radius = float(lat), float(lng), float(radius_km)
    dlat = radius / 111.045
    # degrees of longitude shrink towards the poles; near them, do not bound longitude
    cos_lat = math.cos(math.radians(lat_f))
    qs = qs.filter(latitude__isnull=False, longitude__isnull=False, latitude__range=(lat_f - dlat, lat_f + dlat))
    if cos_lat > 0.01:
        dlng = radius / (111.045 * cos_lat)
        if dlng < 180:
            low, high = lng_f - dlng, lng_f + dlng
            if low < -180 or high > 180:  # the box crosses the antimeridian
                qs = qs.filter(Q(longitude__gte=(low + 540) % 360 - 180) | Q(longitude__lte=(high + 540) % 360 - 180))
            else:
                qs = qs.filter(longitude__range=(low, high))
    phi1, lam1 = Radians(Value(lat_f)), Radians(Value(lng_f))
    phi2, lam2 = Radians(F("latitude")), Radians(F("longitude"))
    a = Power(Sin((phi2 - phi1) / 2), 2) + Cos(phi1) * Cos(phi2) * Power(Sin((lam2 - lam1) / 2), 2)
    distance = Value(2 * EARTH_RADIUS_KM) * ASin(Sqrt(a))
    return qs.annotate(distance_km=ExpressionWrapper(distance, output_field=FloatField())).filter(
        distance_km__lte=radius
    )


def event_catalogue(
    *,
    user: User,
    mine: bool = False,
    search: str = "",
    city: str = "",
    category: str = "",
    starts_after: datetime | None = None,
    starts_before: datetime | None = None,
    available: bool | None = None,
    near: tuple[Decimal, Decimal] | None = None,
    radius_km: Decimal | None = None,
    min_price_cents: int | None = None,
    max_price_cents: int | None = None,
    ordering: str = "",
) -> QuerySet[Event]:
    """The event list: published events that have not ended, or with ``mine`` the caller's own
    (drafts and past events included)."""
    if mine:
        profile_id = organizer_profile_id(user)
        if profile_id is None:
            raise NotAnOrganizer()
        qs = _alive_events().filter(organizer_id=profile_id)
    else:  # the public catalogue lists what can still be attended; the read replica may answer
        qs = _alive_events().using(_catalogue_db()).filter(status=Event.Status.PUBLISHED, ends_at__gt=timezone.now())

    ranked = False
    if search:
        qs, ranked = _search(qs, search)
    if city:
        qs = qs.filter(city__iexact=city)
    if category:
        qs = qs.filter(category=category)
    if starts_after:
        qs = qs.filter(starts_at__gte=starts_after)
    if starts_before:
        qs = qs.filter(starts_at__lte=starts_before)
    if available:
        qs = qs.filter(Exists(TicketType.objects.filter(in_stock_q(), event=OuterRef("pk"))))
    if min_price_cents is not None or max_price_cents is not None:
        price = Q()
        if min_price_cents is not None:
            price &= Q(price_cents__gte=min_price_cents)
        if max_price_cents is not None:
            price &= Q(price_cents__lte=max_price_cents)
        qs = qs.filter(Exists(TicketType.objects.filter(price, event=OuterRef("pk"))))
    if near is not None:
        qs = _near(qs, near[0], near[1], radius_km or Decimal(settings.NEAR_DEFAULT_RADIUS_KM))

    qs = qs.annotate(
        min_price_cents=Min("ticket_types__price_cents"),
        max_price_cents=Max("ticket_types__price_cents"),
        has_availability=Exists(TicketType.objects.filter(in_stock_q(), event=OuterRef("pk"))),
    )
    order = {
        "starts_at": ["starts_at", "id"],
        "-starts_at": ["-starts_at", "-id"],
        "price": [F("min_price_cents").asc(nulls_last=True), "starts_at", "id"],
        "-price": [F("min_price_cents").desc(nulls_last=True), "starts_at", "id"],
        "distance": ["distance_km", "starts_at", "id"],
    }.get(ordering)
    if order is None:
        order = ["-rank", "starts_at", "id"] if ranked else ["starts_at", "id"]
    return qs.order_by(*order)


def event_availability(*, event: Event) -> list[dict]:
    """Live stock per ticket type, straight from the rows purchases lock (the pool plus its buckets)."""
    rows = (
        TicketType.objects.filter(event=event)
        .with_on_sale()
        .order_by("position", "id")
        .values("id", "name", "available", "bucket_stock", "capacity", "waitlisted")
    )
    # While a waiting list has entries, what a newcomer can buy is 0: stock that comes back is
    # offered to the list (orders.waitlist). waitlist_length: the entries waiting.
    return [
        {
            "id": row["id"],
            "name": row["name"],
            "available": 0 if row["waitlisted"] else row["available"] + row["bucket_stock"],
            "capacity": row["capacity"],
            "waitlist_length": row["waitlisted"],
        }
        for row in rows
    ]
