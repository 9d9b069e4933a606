"""Ticket documents a buyer carries to the door: a QR code per ticket (SVG) and one PDF per order.

The QR code holds exactly the ticket's ``code``, the string a door scanner reads
and ``POST /events/{id}/check-ins`` takes; nothing else (no URL, no signature)
goes in, so any scanner app works and the code stays the one secret.

Rendering is CPU only (segno and fpdf2 are pure Python) and reads nothing from
the database: callers pass tickets loaded with their ticket type, holder and
order event (``selectors.printable_tickets_of``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import segno
from django.conf import settings
from django.utils.translation import gettext as _
from fpdf import FPDF

from eventflow.regional import format_local_time, format_money

from .models import Order, Ticket

logger = logging.getLogger(__name__)

# Error correction M (15 %): survives a scuffed print or a cracked phone screen, and keeps a
# 27-character code at version 3 (29 x 29 modules), which reads fast at a door. Never Micro QR:
# many scanners do not read it.
QR_ERROR = "m"


def ticket_qr(code: str) -> segno.QRCode:
    return segno.make(code, error=QR_ERROR, micro=False, boost_error=False)


def ticket_qr_svg(code: str) -> bytes:
    """A standalone SVG (with the quiet zone the QR standard asks for), black on white."""
    out = io.BytesIO()
    ticket_qr(code).save(
        out, kind="svg", scale=8, border=4, dark="#000", light="#fff", xmldecl=True, title=_("Ticket QR code")
    )
    return out.getvalue()


def _qr_svg_for_pdf(code: str) -> io.BytesIO:
    # Size from the viewBox only: fpdf2 scales it to the box it is drawn in.
    out = io.BytesIO()
    ticket_qr(code).save(out, kind="svg", scale=1, border=4, dark="#000", light="#fff", xmldecl=False, omitsize=True)
    out.seek(0)
    return out


# --- The PDF ---------------------------------------------------------------------------------

_FAMILY = "ticket"
_CORE_FAMILY = "helvetica"


@cache
def _font_paths() -> tuple[Path, Path] | None:
    """The TrueType font (and its bold face, when beside it) that prints any event title.

    fpdf2's built-in fonts know Latin-1 only; a title in Greek, Polish or Turkish needs a
    Unicode font such as DejaVu Sans (Debian: fonts-dejavu-core, in the Docker image).
    """
    regular = Path(settings.TICKET_PDF_FONT) if settings.TICKET_PDF_FONT else None
    if regular is None or not regular.is_file():
        logger.warning("TICKET_PDF_FONT %s not found: ticket PDFs print Latin-1 text only", regular)
        return None
    bold = regular.with_name(f"{regular.stem}-Bold{regular.suffix}")
    return regular, bold if bold.is_file() else regular


class _TicketPDF(FPDF):
    def __init__(self, *, unicode: bool = True) -> None:
        super().__init__(orientation="portrait", unit="mm", format=(148, 210))  # A5
        self.set_auto_page_break(auto=False)
        self.set_margins(14, 14, 14)
        fonts = _font_paths() if unicode else None
        if fonts:
            self.add_font(_FAMILY, "", str(fonts[0]))
            self.add_font(_FAMILY, "B", str(fonts[1]))
        self.face = _FAMILY if fonts else _CORE_FAMILY

    def text_font(self, size: float, *, bold: bool = False) -> None:
        self.set_font(self.face, "B" if bold else "", size)

    def safe(self, text: str) -> str:
        """With a built-in font, characters outside Latin-1 print as "?" rather than fail the PDF."""
        if self.face == _CORE_FAMILY:
            return text.encode("latin-1", "replace").decode("latin-1")
        return text

    def write_line(self, text: str, size: float = 11, *, bold: bool = False, height: float = 6) -> None:
        self.text_font(size, bold=bold)
        self.multi_cell(0, height, self.safe(text), new_x="LMARGIN", new_y="NEXT")


def venue_lines(order: Order) -> list[str]:
    event = order.event
    place = ", ".join(part for part in (event.address, event.city, event.country.name if event.country else "") if part)
    return [part for part in (event.venue_name, place) if part]


def tickets_pdf_filename(order: Order) -> str:
    return f"tickets-{str(order.pk)[:8]}.pdf"


def holder_name(ticket: Ticket) -> str:
    return ticket.holder.name or ticket.holder.email


def discount_line(order: Order) -> str | None:
    """What a discount code took off the order, for its documents; None without one."""
    if not order.discount_code_id:
        return None
    return _("Discount code %(code)s: -%(off)s (list price %(subtotal)s, paid %(total)s)") % {
        "code": order.discount_code.code,
        "off": format_money(order.discount_cents, order.currency),
        "subtotal": format_money(order.subtotal_cents, order.currency),
        "total": format_money(order.total_cents, order.currency),
    }


def seat_label(ticket: Ticket) -> str:
    """ "Stalls, row C, seat 12" for a seated ticket; empty for an unseated one."""
    seat = ticket.seat
    if seat is None:
        return ""
    where = _("Row %(row)s, seat %(number)s") % {"row": seat.row, "number": seat.number}
    return f"{seat.section}, {where}" if seat.section else where


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def order_tickets_pdf(order: Order, tickets: Sequence[Ticket]) -> bytes:
    """One A5 page per ticket: what the event is, when (on the venue's clock), where, for whom,
    and the QR code with its code in text for a scanner that cannot read the image."""
    event = order.event
    starts = format_local_time(event.starts_at, event.timezone)
    texts = [event.title, starts, *venue_lines(order), _("Ticket: %(type)s"), _("Holder: %(name)s"), _("Order")]
    texts += [part for ticket in tickets for part in (ticket.ticket_type.name, holder_name(ticket), seat_label(ticket))]
    # What the buyer paid (and their code) is theirs: not on a ticket transferred to somebody else.
    discount = discount_line(order) if all(ticket.holder_id == order.buyer_id for ticket in tickets) else None
    texts += [discount] if discount else []
    # Loading a TrueType font (fontTools parses it for every document) is half the cost of a PDF
    # (bench/README.md, "Webhook throughput"); text that Latin-1 covers prints with a built-in face.
    pdf = _TicketPDF(unicode=not all(_latin1(text) for text in texts))
    pdf.set_title(pdf.safe(_("Tickets: %(event)s") % {"event": event.title}))
    pdf.set_author("EventFlow")
    for number, ticket in enumerate(tickets, start=1):
        pdf.add_page()
        pdf.write_line(event.title, 18, bold=True, height=8)
        pdf.ln(2)
        pdf.write_line(starts, 12)
        for part in venue_lines(order):
            pdf.write_line(part, 11)
        pdf.ln(4)
        pdf.write_line(_("Ticket: %(type)s") % {"type": ticket.ticket_type.name}, 12, bold=True)
        if ticket.seat_id is not None:
            pdf.write_line(_("Seat: %(seat)s") % {"seat": seat_label(ticket)}, 12, bold=True)
        pdf.write_line(_("Holder: %(name)s") % {"name": holder_name(ticket)}, 11)
        if discount:
            pdf.write_line(discount, 9)
        size = 70
        top = max(pdf.get_y() + 6, 95)
        pdf.image(_qr_svg_for_pdf(ticket.code), x=(pdf.w - size) / 2, y=top, w=size, h=size)
        pdf.set_y(top + size + 2)
        pdf.set_font("courier", "", 10)  # the code is ASCII: a fixed-width face reads unambiguously
        pdf.cell(0, 6, ticket.code, align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(-20)
        pdf.write_line(
            _("Order %(order)s, ticket %(number)d of %(count)d")
            % {"order": str(order.pk)[:8], "number": number, "count": len(tickets)},
            8,
            height=4,
        )
    return bytes(pdf.output())
