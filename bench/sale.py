"""The sale the benchmarks run: one organizer, one published event, N ticket types.

Shared by ``flash_sale.py`` and ``faults.py``. It goes through the services, like the
API does, and imports Django lazily: the caller sets Django up first, on whichever
application tree it measures.
"""

from __future__ import annotations

from datetime import timedelta

PRICE_CENTS = 4900


def create_sale(*, email_prefix: str, title: str, capacity: int, tiers: int = 1, buckets: int | None = None) -> tuple:
    """An organizer, an event 30 days ahead with ``tiers`` ticket types of ``capacity`` each
    (``Tier 1``, ``Tier 2``, ...; 49.00 EUR, at most 10 per order), published. Returns
    ``(event, ticket_types)``. ``buckets`` sets their ``stock_buckets`` (None: the application's
    default, which splits large capacities; trees without stock buckets ignore None)."""
    from django.utils import timezone

    from accounts.models import User
    from accounts.services import organizer_profile_create
    from events.services import event_create, event_publish, ticket_type_create

    organizer = User.objects.create_user(email=f"{email_prefix}-organizer@example.com", password=None, name="Bench")
    profile = organizer_profile_create(user=organizer, display_name=f"Organizer of {title}")
    starts_at = timezone.now() + timedelta(days=30)
    event = event_create(
        organizer=profile,
        title=title,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=3),
        city="Berlin",
        currency="EUR",
        timezone="UTC",
    )
    split = {} if buckets is None else {"stock_buckets": buckets}
    ticket_types = [
        ticket_type_create(
            event=event,
            name=f"Tier {k + 1}",
            price_cents=PRICE_CENTS,
            capacity=capacity,
            max_per_order=10,
            position=k,
            **split,
        )
        for k in range(tiers)
    ]
    event_publish(event=event)
    return event, ticket_types
