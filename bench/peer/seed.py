"""Seed and check the peer shop's database; run by bench/peer/run.py with the *peer's* interpreter.

Runs inside the peer's venv and code tree (``cwd`` = its ``backend/``, its settings from
the environment bench/peer/setup.sh writes), so it imports the peer's models. It is our
code, not the peer's: it only creates rows through the peer's ORM models and reads them.

    seed.py seed --buyers N --capacity C   -> JSON: event, ticket type, one access token per buyer
    seed.py check --event E --ticket-type T -> JSON: capacity, available, sold, bookings
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from datetime import timedelta
from decimal import Decimal


def seed(buyers: int, capacity: int) -> dict:
    from apps.events.models import Event, TicketType
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    user_model = get_user_model()
    run_id = time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
    organizer = user_model.objects.create(
        username=f"org-{run_id}", email=f"org-{run_id}@example.com", role="organizer", password=UNUSABLE_PASSWORD_PREFIX
    )
    event = Event.objects.create(
        organizer=organizer,
        name=f"Flash sale {run_id}",
        start_time=timezone.now() + timedelta(days=30),
        location="Berlin",
        total_capacity=capacity,
    )
    ticket_type = TicketType.objects.create(event=event, name="GA", price=Decimal("49.00"), quantity_available=capacity)
    attendees = user_model.objects.bulk_create(
        [
            user_model(
                username=f"buyer-{run_id}-{i:06d}",
                email=f"buyer-{run_id}-{i:06d}@example.com",
                role="attendee",
                password=UNUSABLE_PASSWORD_PREFIX,
            )
            for i in range(buyers)
        ],
        batch_size=2000,
    )
    return {
        "run_id": run_id,
        "event_id": event.pk,
        "ticket_type_id": ticket_type.pk,
        "capacity": capacity,
        "tokens": [str(AccessToken.for_user(user)) for user in attendees],
    }


def check(event_id: int, ticket_type_id: int) -> dict:
    from apps.bookings.models import Booking, BookingItem
    from apps.events.models import Event, TicketType
    from django.db.models import Sum

    event = Event.objects.get(pk=event_id)
    ticket_type = TicketType.objects.get(pk=ticket_type_id)
    booked = BookingItem.objects.filter(ticket_type=ticket_type, booking__status="confirmed").aggregate(
        n=Sum("quantity")
    )["n"]
    return {
        "capacity": event.total_capacity,
        "available": ticket_type.quantity_available,
        "sold_counter": ticket_type.quantity_sold,
        "booked": booked or 0,
        "bookings": Booking.objects.filter(event=event).count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    seeding = sub.add_parser("seed")
    seeding.add_argument("--buyers", type=int, required=True)
    seeding.add_argument("--capacity", type=int, required=True)
    checking = sub.add_parser("check")
    checking.add_argument("--event", type=int, required=True)
    checking.add_argument("--ticket-type", type=int, required=True)
    args = parser.parse_args()

    sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    result = seed(args.buyers, args.capacity) if args.command == "seed" else check(args.event, args.ticket_type)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
