"""The attendee list as a CSV download, for the API and the admin alike."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone

from events.models import Event

from . import selectors
from .documents import seat_label


class _Echo:
    def write(self, value: str) -> str:
        return value


# A cell a spreadsheet would read as a formula (OWASP, "CSV Injection"): =, +, -, @, tab, CR.
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """Text starting like a formula gets a leading apostrophe, so Excel and LibreOffice show it as
    text instead of running it (a buyer named ``=HYPERLINK(...)``). Other values pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_TRIGGERS):
        return f"'{value}"
    return value


def _csv_rows(tickets) -> Iterator[str]:
    # Every cell quoted (OWASP): a name like "Max;=1+1" stays one cell in a spreadsheet that splits
    # on semicolons or tabs, so no formula can start in the middle of it.
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    yield writer.writerow(["name", "email", "ticket_type", "seat", "code", "order", "issued_at"])
    for ticket in tickets.iterator(chunk_size=2000):
        yield writer.writerow(
            spreadsheet_safe(cell)
            for cell in [
                ticket.holder.name,
                ticket.holder.email,
                ticket.ticket_type.name,
                seat_label(ticket),
                ticket.code,
                ticket.order_id,
                ticket.issued_at.isoformat(),
            ]
        )


def attendees_csv_response(event: Event) -> StreamingHttpResponse:
    """Every holder of a valid ticket of ``event``, streamed (the caller checked who may see it)."""
    response = StreamingHttpResponse(
        _csv_rows(selectors.event_attendees(event=event)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="event-{event.pk}-attendees-{stamp}.csv"'
    return response
