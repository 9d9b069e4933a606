"""Ticket transfer: the holder of a valid ticket gives it to somebody else, by email address.

The old ticket becomes ``transferred`` (void: its code admits nobody, check-in answers
``ticket_void``) and a new ticket with a new code is issued to the recipient, linked to it by
``transferred_from``; every other attribute (order, ticket type, a seat...) is copied, so the
history is traceable and the order's buyer keeps the order: a refund of the order voids the
recipient's ticket like any other of its tickets. An address without an account gets one,
without a password (``accounts.passwords.user_invite``); the email telling the recipient
about the ticket carries the code to set it.

Refused: a ticket that is not valid (409 ``ticket_void``), already checked in (409
``already_checked_in``), an event whose organizer turned transfers off, that is cancelled,
started, or within ``transfer_cutoff_hours`` of its start (409 ``transfer_closed``), and a
transfer to oneself (400).

Locks: the order row, then the ticket row, the order a refund takes them in (it locks the
order, then voids its tickets), so a transfer racing a refund or a second transfer of the same
ticket waits and then finds the ticket void: exactly one wins. Check-in locks the ticket row.
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.mail import EmailMessage
from django.db import transaction
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User, normalize_email
from accounts.passwords import invite_code, user_invite
from eventflow.api.errors import ApplicationError
from eventflow.regional import format_local_time

from . import documents
from .errors import AlreadyCheckedIn, TicketVoid, TransferClosed
from .models import Order, Ticket
from .services import stock_transaction

logger = logging.getLogger(__name__)

# What a transfer does not copy to the new ticket; everything else (order, ticket type, any
# attribute added later, such as a seat) is copied as it is.
_NOT_COPIED = {"code", "holder", "status", "issued_at", "transferred_from"}


def _check_in_of(ticket: Ticket):
    try:
        return ticket.check_in  # checkin.CheckIn, one per ticket
    except (ObjectDoesNotExist, AttributeError):
        return None


def already_checked_in(check_in) -> AlreadyCheckedIn:
    return AlreadyCheckedIn(
        _("This ticket was checked in at %(time)s.") % {"time": check_in.scanned_at.isoformat()},
        extra={"checked_in_at": check_in.scanned_at, "gate": check_in.gate},
    )


def _check_transferable(order: Order, ticket: Ticket, now) -> None:
    if ticket.status != Ticket.Status.VALID or order.status != Order.Status.PAID:
        raise TicketVoid(extra={"ticket_status": ticket.status})
    check_in = _check_in_of(ticket)
    if check_in is not None:
        raise already_checked_in(check_in)
    event = order.event
    if not event.transfers_enabled:
        raise TransferClosed(_("The organizer does not allow transfers of this event's tickets."))
    if event.status == event.Status.CANCELLED or event.deleted_at is not None:
        raise TransferClosed(_("The event is cancelled."))
    closes = event.transfers_close_at
    if now >= closes:
        raise TransferClosed(
            _("Transfers for this event closed at %(time)s.") % {"time": closes.isoformat()},
            extra={"transfers_closed_at": closes},
        )


def ticket_transfer(*, ticket_id: int, sender: User, email: str) -> Ticket:
    """Give ``sender``'s ticket to the holder of ``email`` (invited when new); returns the new ticket.

    Anybody but the ticket's holder gets a 404, as for any ticket that is not theirs.
    """
    email = normalize_email(email)
    if email == normalize_email(sender.email):
        raise ApplicationError(_("You already hold this ticket."), field="email")
    order_id = Ticket.objects.filter(pk=ticket_id, holder=sender).values_list("order_id", flat=True).first()
    if order_id is None:
        raise Http404
    now = timezone.now()
    with stock_transaction():  # a lock not had within ORDER_LOCK_TIMEOUT_MS: 503 busy
        order = Order.objects.select_for_update(of=("self",)).select_related("event").get(pk=order_id)
        ticket = Ticket.objects.select_for_update(no_key=True).filter(pk=ticket_id, holder=sender).first()
        if ticket is None:
            raise Http404
        _check_transferable(order, ticket, now)
        recipient, invited = user_invite(email=email)
        if not recipient.is_active:
            raise ApplicationError(_("This account cannot receive tickets."), field="email")
        # The old ticket first: a unique rule on a copied attribute (a seat) sees one valid ticket.
        ticket.status = Ticket.Status.TRANSFERRED
        ticket.save(update_fields=["status"])
        copied = {
            field.attname: getattr(ticket, field.attname)
            for field in Ticket._meta.concrete_fields
            if not field.primary_key and field.name not in _NOT_COPIED
        }
        new = Ticket.objects.create(**copied, holder=recipient, transferred_from=ticket)
        from .tasks import send_ticket_transfer_notice  # tasks import services, which this module uses

        transaction.on_commit(partial(send_ticket_transfer_notice.delay, new.pk), robust=True)
    logger.info("Ticket %s transferred by user %s to user %s as ticket %s", ticket.pk, sender.pk, recipient.pk, new.pk)
    new.order, new.holder, new.transferred_from = order, recipient, ticket
    new.recipient_invited = invited
    return new


def transfer_notice_send(*, ticket_id: int) -> bool:
    """Email the recipient their ticket (a PDF page with its QR code); with the code to set a
    password when their account was created for it. False when there is nothing to send."""
    ticket = (
        Ticket.objects.select_related("holder", "ticket_type", "order__event", "transferred_from__holder")
        .filter(pk=ticket_id, status=Ticket.Status.VALID)
        .first()
    )
    if ticket is None or not ticket.holder.email or not ticket.holder.is_active:
        return False
    event = ticket.order.event
    sender = ticket.transferred_from.holder if ticket.transferred_from else None
    context = {
        "event": event,
        "starts": format_local_time(event.starts_at, event.timezone),
        "ticket": ticket,
        "sender": (sender.name or sender.email) if sender else "",
        "invite_code": None if ticket.holder.has_usable_password() else invite_code(ticket.holder),
        "email": ticket.holder.email,
        "invite_hours": settings.INVITE_CODE_HOURS,
    }
    message = EmailMessage(
        subject=" ".join(render_to_string("orders/email/ticket_received_subject.txt", context).split()),
        body=render_to_string("orders/email/ticket_received.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[ticket.holder.email],
    )
    message.attach(f"ticket-{ticket.pk}.pdf", documents.order_tickets_pdf(ticket.order, [ticket]), "application/pdf")
    message.send()
    return True
