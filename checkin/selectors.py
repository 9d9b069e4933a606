"""Reads for the door: who may scan an event, the offline check-in list and its version."""

from __future__ import annotations

import hashlib

from django.db.models import Count, Max, Q, QuerySet
from django.http import Http404
from rest_framework.exceptions import PermissionDenied

from accounts.models import OrganizerProfile, User
from events.models import Event, TicketType
from events.selectors import is_platform_admin, organizer_profile_id
from orders.models import Ticket

from .models import CheckIn, CheckInStaff


def can_scan(user: User, event: Event) -> bool:
    """The event's organizer, check-in staff the organizer named, or a platform admin."""
    if not (user and user.is_authenticated):
        return False
    if is_platform_admin(user) or organizer_profile_id(user) == event.organizer_id:
        return True
    return CheckInStaff.objects.filter(organizer_id=event.organizer_id, user_id=user.pk).exists()


def door_event(*, event_id: int, user: User) -> Event:
    """An event the caller may scan tickets of: 404 when they may not even see it (another
    organizer's draft, a deleted event), 403 when they may see it but not scan it."""
    event = Event.objects.alive().filter(pk=event_id).first()
    if event is None:
        raise Http404
    if can_scan(user, event):
        return event
    if event.status == Event.Status.DRAFT:
        raise Http404
    raise PermissionDenied


def code_hash(code: str) -> str:
    """What the check-in list carries instead of a code: SHA-256 of its UTF-8 bytes, lower-case hex.
    Codes are 160 random bits, so the hash cannot be turned back into a code that opens the door."""
    return hashlib.sha256(code.encode()).hexdigest()


def seat_of(ticket: Ticket) -> dict | None:
    """A seated ticket's seat (``Ticket.seat``, when seats exist), as plain data; None otherwise."""
    seat = getattr(ticket, "seat", None)
    if seat is None:
        return None
    return {
        name: getattr(seat, name)
        for name in ("id", "section", "row", "number")
        if hasattr(seat, name)  # whatever the seat model has of these
    }


def _has_seats() -> bool:
    return any(field.name == "seat" for field in Ticket._meta.concrete_fields)


def event_tickets(event: Event) -> QuerySet[Ticket]:
    """Every ticket of the event, whatever its status, with what the door shows."""
    related = ["ticket_type", "check_in", *(["seat"] if _has_seats() else [])]
    return Ticket.objects.filter(ticket_type__event_id=event.pk).select_related(*related)


def check_in_list_version(*, event: Event) -> str:
    """Changes whenever a ticket of the event is issued, transferred, voided or checked in, or a ticket
    type is renamed: what a door device compares to know its list is stale.

    Built from values that only ever move one way (tickets issued, check-ins, the newest ticket, the
    last time a check-in was moved earlier) and
    the valid count (which only drops, unless a ticket is issued): two different lists never share
    one. Two aggregate queries, no list built: cheap enough to poll, and the list's ETag."""
    tickets = Ticket.objects.filter(ticket_type__event_id=event.pk).aggregate(
        issued=Count("pk"),
        newest=Max("pk"),
        valid=Count("pk", filter=Q(status=Ticket.Status.VALID)),
        checked_in=Count("check_in"),
        moved=Max("check_in__updated_at"),  # a check-in moved earlier by an offline scan
    )
    types = TicketType.objects.filter(event_id=event.pk).aggregate(n=Count("pk"), changed=Max("updated_at"))
    state = (
        f"{event.pk}:{tickets['issued']}:{tickets['newest']}:{tickets['valid']}:{tickets['checked_in']}:"
        f"{tickets['moved'].isoformat() if tickets['moved'] else ''}:"
        f"{types['n']}:{types['changed'].isoformat() if types['changed'] else ''}"
    )
    return hashlib.sha256(state.encode()).hexdigest()[:32]


def door_status(ticket: Ticket) -> str:
    if ticket.status != Ticket.Status.VALID:
        return "void"
    return "checked_in" if getattr(ticket, "check_in", None) is not None else "valid"


def check_in_list(*, event: Event, version: str) -> dict:
    """The whole list in one body (no pagination: a device needs all of it; ~150 bytes a ticket).

    ``version`` is read before the tickets, so a change landing in between makes the device's next
    poll see a newer version (and fetch again), never a list older than its version."""
    tickets = event_tickets(event).order_by("pk")
    seats = _has_seats()
    return {
        "event": event.pk,
        "version": version,
        "hash": "sha256",
        "ticket_types": list(
            TicketType.objects.filter(event_id=event.pk).order_by("position", "pk").values("id", "name")
        ),
        "tickets": [
            {
                "code_sha256": code_hash(ticket.code),
                "status": door_status(ticket),
                "ticket_type": ticket.ticket_type_id,
                "ticket_type_name": ticket.ticket_type.name,
                "seat": seat_of(ticket) if seats else None,
                "checked_in_at": ticket.check_in.scanned_at if door_status(ticket) == "checked_in" else None,
            }
            for ticket in tickets.iterator(chunk_size=2000)
        ],
    }


def staff_of(*, organizer: OrganizerProfile) -> QuerySet[CheckInStaff]:
    return CheckInStaff.objects.filter(organizer=organizer).select_related("user").order_by("created_at", "pk")


def check_ins_of(*, event: Event) -> QuerySet[CheckIn]:
    return CheckIn.objects.filter(event=event).select_related("ticket__ticket_type", "scanned_by")
