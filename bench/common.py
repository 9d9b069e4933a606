"""What the payment benchmarks share: their own database, and an event on sale with buyers.

Import after ``django.setup()`` for the model helpers; ``ensure_database`` needs only psycopg.
"""

from __future__ import annotations

from datetime import timedelta


def ensure_database(url: str) -> None:
    """Create the benchmark's own PostgreSQL database when it does not exist yet."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def event_on_sale(tag: str, name: str, *, price_cents: int, tickets: int, max_per_order: int):
    """A published event a month ahead with one ticket type of ``tickets``, no per-buyer limit."""
    from django.utils import timezone

    from accounts.models import OrganizerProfile, User
    from events.models import Event, TicketType

    slug = f"{name.lower()}-{tag}"
    owner = User.objects.create_user(email=f"org-{tag}@example.com", password=None, role="organizer")
    profile = OrganizerProfile.objects.create(
        user=owner, display_name=f"{name} {tag}", slug=slug, contact_email=owner.email
    )
    now = timezone.now()
    event = Event.objects.create(
        organizer=profile,
        title=f"{name} {tag}",
        slug=slug,
        starts_at=now + timedelta(days=30),
        ends_at=now + timedelta(days=30, hours=3),
        status=Event.Status.PUBLISHED,
        published_at=now,
    )
    tier = TicketType.objects.create(
        event=event,
        name="GA",
        price_cents=price_cents,
        capacity=tickets,
        available=tickets,
        max_per_buyer=None,
        max_per_order=max_per_order,
    )
    return event, tier


def attendees(tag: str, prefix: str, count: int) -> list:
    """``count`` buyers without a usable password (nobody signs in as them)."""
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX

    from accounts.models import User

    return User.objects.bulk_create(
        User(email=f"{prefix}{i}-{tag}@example.com", password=UNUSABLE_PASSWORD_PREFIX, role="attendee")
        for i in range(count)
    )
