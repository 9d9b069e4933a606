"""Seat maps: creating and removing seats, and reading an event's map.

A seated ticket type's capacity is its seats: creating seats adds them to the
type's ``capacity`` and ``available``, deleting an available seat takes one
away from both, under the ticket type's row lock (as every capacity change in
events/services.py), so ``capacity = available + held + sold`` stays true and
``check_inventory`` stays clean. The API (``POST /events/{id}/seats``), the
admin and ``manage.py import_seats`` all go through :func:`seats_create`.

Seats change state (available → held → sold and back) only in orders/seating.py.

Lock order: the event row, then ticket types in ascending id (creating); a seat,
then its ticket type (deleting), the order purchases lock them in.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, F, When
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework.exceptions import ValidationError

from eventflow.api.errors import ApplicationError, Conflict

from . import cache as catalogue_cache
from .errors import EventCancelled
from .models import MAX_SEAT_COORDINATE, Event, Seat, TicketType, natural_key

# One API request creates at most this many seats (a 20,000-seat arena is a few uploads;
# ``manage.py import_seats`` has no limit). Kept so one request's transaction stays short.
MAX_SEATS_PER_UPLOAD = 5_000
LABEL_MAX = {"section": 50, "row": 20, "number": 20}
SEAT_MAP_FIELDS = ("id", "section", "row", "number", "ticket_type", "status", "x", "y")


class SeatsInvalid(ValidationError):
    """400 ``invalid`` with ``errors`` per seat: ``{"3.number": [...], "7": ["Duplicate ..."]}``.

    A ValidationError, so the API renders it as every other validation error; ``messages``
    lists the same for the admin and the command line."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__(dict(errors))
        self.errors = dict(errors)

    @property
    def messages(self) -> list[str]:
        return [f"{where}: {message}" for where, messages in self.errors.items() for message in messages]


class SeatNotAvailable(Conflict):
    default_code = "seat_taken"
    default_detail = _("This seat is held or sold; it can be removed only while it is available.")


def _label(value: Any, field: str, errors: list[str]) -> str:
    if value is None and field == "section":
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        errors.append(_("%(field)s must be text.") % {"field": field})
        return ""
    text = str(value).strip()
    if not text and field != "section":
        errors.append(_("%(field)s may not be blank.") % {"field": field})
    elif len(text) > LABEL_MAX[field]:
        errors.append(
            _("%(field)s has at most %(max)d characters.") % {"field": field, "max": LABEL_MAX[field]},
        )
    elif any(not char.isprintable() for char in text):
        errors.append(_("%(field)s has characters that cannot be printed.") % {"field": field})
    return text


def _coordinate(value: Any, field: str, errors: list[str]) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        errors.append(_("%(field)s must be a number.") % {"field": field})
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        errors.append(_("%(field)s must be a number.") % {"field": field})
        return None
    if not math.isfinite(number) or abs(number) > MAX_SEAT_COORDINATE:
        errors.append(_("%(field)s lies between -%(max)d and %(max)d.") % {"field": field, "max": MAX_SEAT_COORDINATE})
        return None
    return number


def _ticket_type(ref: Any, types: Sequence[TicketType]) -> TicketType | None:
    """A ticket type of the event by id (a number), or by name (text; an id written as text too)."""
    if isinstance(ref, TicketType):
        ref = ref.pk
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return next((tt for tt in types if tt.pk == ref), None)
    if isinstance(ref, str):
        text = ref.strip()
        if text.isdigit() and len(text) <= 18:
            by_id = next((tt for tt in types if tt.pk == int(text)), None)
            if by_id is not None:
                return by_id
        return next((tt for tt in types if tt.name == text), None) or next(
            (tt for tt in types if tt.name.casefold() == text.casefold()), None
        )
    return None


def _where(index: int, labels: Mapping[int, int] | None) -> str:
    """How an error names a seat: its index in the upload, or its CSV line number."""
    return str(labels[index]) if labels else str(index)


def seats_create(
    *,
    event: Event,
    rows: Sequence[Mapping[str, Any]],
    limit: int | None = MAX_SEATS_PER_UPLOAD,
    line_numbers: Mapping[int, int] | None = None,
) -> list[Seat]:
    """Add seats to the event's seated ticket types, all or nothing.

    ``rows`` are ``{section, row, number, ticket_type, x?, y?}``; ``ticket_type`` is an id, or a
    name (``import_seats``). Any bad row, a seat listed twice, or a seat the event already has
    raises :class:`SeatsInvalid` naming each (by index, or by ``line_numbers[index]``) and
    creates nothing. Each type's capacity and availability grow by its new seats.
    """
    if not rows:
        raise SeatsInvalid({"non_field_errors": [_("Give at least one seat.")]})
    if limit is not None and len(rows) > limit:
        raise SeatsInvalid(
            {"non_field_errors": [_("At most %(max)d seats per request; send the rest in another.") % {"max": limit}]}
        )
    with transaction.atomic():
        event = Event.objects.select_for_update(no_key=True).get(pk=event.pk)  # one upload per event at a time
        if event.status == Event.Status.CANCELLED:
            raise EventCancelled()
        types = list(TicketType.objects.filter(event=event).order_by("pk"))
        existing = set(Seat.objects.filter(event=event).values_list("section", "row", "number"))
        errors: dict[str, list[str]] = {}
        first_at: dict[tuple[str, str, str], int] = {}
        seats: list[Seat] = []
        for index, row in enumerate(rows):
            problems: list[str] = []
            if not isinstance(row, Mapping):
                errors[_where(index, line_numbers)] = [_("Each seat is an object.")]
                continue
            unknown = sorted(set(row) - {"section", "row", "number", "ticket_type", "x", "y"})
            if unknown:
                problems.append(_("Unknown fields: %(fields)s.") % {"fields": ", ".join(map(str, unknown))})
            section = _label(row.get("section", ""), "section", problems)
            row_label = _label(row.get("row"), "row", problems)
            number = _label(row.get("number"), "number", problems)
            ticket_type = _ticket_type(row.get("ticket_type"), types)
            if ticket_type is None:
                problems.append(_("This event has no ticket type %(ref)r.") % {"ref": row.get("ticket_type")})
            elif not ticket_type.seated:
                problems.append(_("%(name)s is not a seated ticket type.") % {"name": ticket_type.name})
            x = _coordinate(row.get("x"), "x", problems)
            y = _coordinate(row.get("y"), "y", problems)
            key = (section, row_label, number)
            if not problems:
                if key in first_at:
                    problems.append(
                        _("Section %(section)r row %(row)s seat %(number)s is listed twice (also at %(other)s).")
                        % {
                            "section": section,
                            "row": row_label,
                            "number": number,
                            "other": _where(first_at[key], line_numbers),
                        }
                    )
                elif key in existing:
                    problems.append(
                        _("Section %(section)r row %(row)s seat %(number)s already exists.")
                        % {"section": section, "row": row_label, "number": number}
                    )
                first_at.setdefault(key, index)
            if problems:
                errors[_where(index, line_numbers)] = problems
                continue
            seats.append(
                Seat(
                    event=event,
                    ticket_type=ticket_type,
                    section=section,
                    row=row_label,
                    number=number,
                    row_key=natural_key(row_label),
                    number_key=natural_key(number),
                    x=x,
                    y=y,
                )
            )
        if errors:
            raise SeatsInvalid(errors)
        added: dict[int, int] = {}
        for seat in seats:
            added[seat.ticket_type_id] = added.get(seat.ticket_type_id, 0) + 1
        # The ticket types' row locks, as every capacity change takes them (ascending ids).
        list(TicketType.objects.select_for_update(no_key=True).filter(pk__in=added).order_by("pk").values("pk"))
        created = Seat.objects.bulk_create(seats, batch_size=1000)
        TicketType.objects.filter(pk__in=added).update(
            capacity=Case(*(When(pk=pk, then=F("capacity") + n) for pk, n in added.items())),
            available=Case(*(When(pk=pk, then=F("available") + n) for pk, n in added.items())),
        )
        _map_changed(event.pk)
    return created


def seat_delete(*, seat: Seat) -> None:
    """Remove an available seat; its ticket type has one seat (capacity and available) fewer."""
    with transaction.atomic():
        locked = Seat.objects.select_for_update(no_key=True).filter(pk=seat.pk).first()  # the seat first, as buyers
        if locked is None:
            return
        if locked.status != Seat.Status.AVAILABLE:
            raise SeatNotAvailable(extra={"seats": [locked.pk]})
        list(TicketType.objects.select_for_update(no_key=True).filter(pk=locked.ticket_type_id).values("pk"))
        locked.delete()
        TicketType.objects.filter(pk=locked.ticket_type_id).update(
            capacity=F("capacity") - 1, available=F("available") - 1
        )
        _map_changed(locked.event_id)


def check_ticket_type_change(ticket_type: TicketType, data: Mapping[str, Any]) -> None:
    """A seated type's capacity follows its seats, and it stays seated while it has seats.

    ``ticket_type`` is locked by the caller (``events.services.ticket_type_update``)."""
    seated = data.get("seated", ticket_type.seated)
    if ticket_type.seated and "capacity" in data and data["capacity"] != ticket_type.capacity:
        raise ApplicationError(
            _("A seated ticket type's capacity is its number of seats: add or remove seats instead."),
            field="capacity",
        )
    if ticket_type.seated and not seated and Seat.objects.filter(ticket_type=ticket_type).exists():
        raise ApplicationError(_("This ticket type has seats; remove them before making it unseated."), field="seated")
    if seated and not ticket_type.seated and data.get("capacity", ticket_type.capacity):
        raise ApplicationError(
            _("Only a ticket type with capacity 0 can become seated: its capacity will be its seats."),
            field="seated",
        )


# --- Reading the map ---------------------------------------------------------------------------


def _map_key(event_id: int) -> str:
    return f"events:event:{event_id}:seats"


def _map_changed(event_id: int) -> None:
    """Seats were added or removed: the map and the catalogue (capacity) change after commit."""
    catalogue_cache.catalogue_changed(event_id)
    transaction.on_commit(lambda: cache.delete(_map_key(event_id)))


def seat_map_rows(*, event_id: int) -> list[dict]:
    """Every seat of the event with its state, in map order (section, then row and number naturally)."""
    rows = Seat.objects.filter(event_id=event_id).order_by("section", "row_key", "number_key", "pk")
    return [
        dict(zip(SEAT_MAP_FIELDS, values, strict=True))
        for values in rows.values_list("id", "section", "row", "number", "ticket_type_id", "status", "x", "y")
    ]


def seat_map(event_id: int, build: Any) -> Any:
    """The event's rendered seat map, cached ``AVAILABILITY_CACHE_SECONDS`` (1 s) like availability:
    a sale shows within a second without every sale invalidating it."""
    key = _map_key(event_id)
    value = cache.get(key)
    if value is None:
        value = build()
        if value is not None:
            cache.set(key, value, timeout=settings.AVAILABILITY_CACHE_SECONDS)
    return value


# --- CSV ---------------------------------------------------------------------------------------

CSV_COLUMNS = ("section", "row", "number", "ticket_type")
CSV_OPTIONAL = ("x", "y")


def parse_seats_csv(text: str) -> tuple[list[dict], dict[int, int]]:
    """Rows of a seats CSV (header ``section,row,number,ticket_type[,x,y]``) and each row's line
    number, for errors. Raises :class:`SeatsInvalid` for a wrong header or a malformed file."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader, None)
        if header is None:
            raise SeatsInvalid({"line 1": [_("The file is empty.")]})
        header = [name.strip().lower() for name in header]
        missing = [name for name in CSV_COLUMNS if name not in header]
        unknown = [name for name in header if name not in (*CSV_COLUMNS, *CSV_OPTIONAL)]
        if missing or unknown or len(set(header)) != len(header):
            raise SeatsInvalid(
                {
                    "line 1": [
                        _("The header must be %(expected)s; got %(got)s.")
                        % {"expected": ",".join(CSV_COLUMNS) + "[,x,y]", "got": ",".join(header)}
                    ]
                }
            )
        rows, lines, errors = [], {}, {}
        for values in reader:
            if not any(value.strip() for value in values):
                continue  # a blank line
            if len(values) != len(header):
                errors[f"line {reader.line_num}"] = [
                    ngettext("Expected %(n)d column.", "Expected %(n)d columns.", len(header)) % {"n": len(header)}
                ]
                continue
            lines[len(rows)] = f"line {reader.line_num}"
            rows.append(dict(zip(header, values, strict=True)))
    except csv.Error as exc:
        raise SeatsInvalid({f"line {reader.line_num}": [str(exc)]}) from exc
    if errors:
        raise SeatsInvalid(errors)
    return rows, lines


def seats_import_csv(*, event: Event, text: str) -> list[Seat]:
    """``manage.py import_seats`` and the admin's import page: a CSV file, all or nothing, no size limit."""
    rows, lines = parse_seats_csv(text)
    return seats_create(event=event, rows=rows, limit=None, line_numbers=lines)
