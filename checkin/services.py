"""Writes for the door: scanning tickets (online, and offline scans uploaded later) and naming
check-in staff.

A scan locks the ticket's row (``FOR NO KEY UPDATE``, the ticket only: never its ticket type,
which purchases lock), then looks for its check-in: two scanners on one ticket at once are served
one after the other, and the second finds the first's check-in (409 ``already_checked_in``). The
unique ticket column of ``CheckIn`` refuses a second admission even if code were wrong. A transfer
or a refund changing the ticket takes the same row lock, so a scan never admits a ticket that was
given away or refunded in the same instant.

Offline scans (``check_ins_upload``): the earliest scan of a ticket is its check-in. Scans of one
ticket within a batch, and a check-in already stored, are compared by ``scanned_at``; an earlier
uploaded scan replaces the stored one's time, gate, scanner and source (that earlier entry is the
admission; the later one was the duplicate). Re-sending a batch changes nothing and answers the same.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import OrganizerProfile, User, normalize_email
from accounts.passwords import user_invite
from eventflow.api.errors import ApplicationError
from eventflow.signals import send_on_commit
from events.models import Event
from orders.errors import TicketVoid
from orders.models import Ticket
from orders.services import stock_transaction
from orders.transfers import already_checked_in

from .models import CheckIn, CheckInStaff
from .signals import checked_in

logger = logging.getLogger(__name__)

MAX_BATCH = 500


def _locked_tickets(event: Event, codes) -> dict[str, Ticket]:
    """The event's tickets with these codes, row-locked in primary-key order (the ticket rows only)."""
    rows = (
        Ticket.objects.select_for_update(no_key=True, of=("self",))
        .select_related("ticket_type", "holder")
        .filter(code__in=list(codes), ticket_type__event_id=event.pk)
        .order_by("pk")
    )
    return {ticket.code: ticket for ticket in rows}


def _void(ticket: Ticket, event: Event) -> TicketVoid | None:
    if ticket.status != Ticket.Status.VALID:
        detail = {
            Ticket.Status.TRANSFERRED: _("This ticket was transferred; its new holder has a new code."),
        }.get(ticket.status, _("This ticket is void: it was refunded or cancelled."))
        return TicketVoid(detail, extra={"ticket_status": ticket.status})
    if event.status == Event.Status.CANCELLED:
        return TicketVoid(_("The event is cancelled."), extra={"ticket_status": ticket.status})
    return None


def ticket_check_in(*, event: Event, code: str, scanned_by: User, gate: str = "") -> CheckIn:
    """Admit the ticket with ``code`` (the QR code's content) to ``event``, once.

    404 for a code no ticket of this event has (another event's ticket included); 409
    ``ticket_void`` for a refunded, cancelled or transferred ticket; 409 ``already_checked_in``
    with the first scan's time and gate."""
    now = timezone.now()
    with stock_transaction():  # a lock not had within ORDER_LOCK_TIMEOUT_MS: 503 busy
        ticket = _locked_tickets(event, [code]).get(code)
        if ticket is None:
            raise Http404(_("No ticket of this event has this code."))
        void = _void(ticket, event)
        if void is not None:
            raise void
        first = CheckIn.objects.filter(ticket=ticket).first()
        if first is not None:
            raise already_checked_in(first)
        try:
            with transaction.atomic():
                check_in = CheckIn.objects.create(
                    ticket=ticket, event=event, scanned_at=now, gate=gate, scanned_by=scanned_by
                )
        except IntegrityError:  # only if something admitted it without the row lock
            raise already_checked_in(CheckIn.objects.get(ticket=ticket)) from None
        send_on_commit(checked_in, CheckIn, event_id=event.pk, check_in_ids=[check_in.pk])
    check_in.ticket = ticket
    return check_in


def _result(result: str, **fields: Any) -> dict[str, Any]:
    return {"result": result, **fields}


def _admitted(check_in: CheckIn, ticket: Ticket, result: str) -> dict[str, Any]:
    return _result(result, ticket=ticket, checked_in_at=check_in.scanned_at, gate=check_in.gate)


def check_ins_upload(
    *, event: Event, scans: list[dict[str, Any]], scanned_by: User, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Record scans a door device made offline; one result per scan, in input order.

    ``scans``: ``{"code", "scanned_at", "gate"}`` each, or ``{"errors": {...}}`` for one that did
    not validate (its result is ``invalid``). A scan more than ``CHECKIN_CLOCK_SKEW_SECONDS`` in
    the future is ``invalid``. Results: ``checked_in`` (this scan is the ticket's check-in),
    ``already_checked_in`` (another scan, earlier or stored, is; its time and gate are given),
    ``ticket_void``, ``not_found``, ``invalid``.
    """
    now = now or timezone.now()
    latest = now + timedelta(seconds=settings.CHECKIN_CLOCK_SKEW_SECONDS)
    results: list[dict[str, Any] | None] = [None] * len(scans)
    by_code: dict[str, list[int]] = defaultdict(list)
    for index, scan in enumerate(scans):
        if "errors" in scan:
            results[index] = _result("invalid", errors=scan["errors"])
        elif scan["scanned_at"] > latest:
            results[index] = _result("invalid", errors={"scanned_at": [_("This time is in the future.")]})
        else:
            by_code[scan["code"]].append(index)
    if by_code:
        with stock_transaction():
            tickets = _locked_tickets(event, by_code)
            stored = {c.ticket_id: c for c in CheckIn.objects.filter(ticket__in=list(tickets.values()))}
            for code, indexes in by_code.items():
                ticket = tickets.get(code)
                if ticket is None:
                    for index in indexes:
                        results[index] = _result("not_found")
                    continue
                void = _void(ticket, event)
                if void is not None:
                    for index in indexes:
                        results[index] = _result("ticket_void", ticket=ticket, ticket_status=ticket.status)
                    continue
                first = min(indexes, key=lambda i: (scans[i]["scanned_at"], i))  # ties: the first sent
                check_in = _keep_earliest(event, ticket, stored.get(ticket.pk), scans[first], scanned_by)
                for index in indexes:
                    is_record = index == first and (scans[index]["scanned_at"], scans[index]["gate"]) == (
                        check_in.scanned_at,
                        check_in.gate,
                    )
                    results[index] = _admitted(check_in, ticket, "checked_in" if is_record else "already_checked_in")
    return results  # type: ignore[return-value]


def _keep_earliest(
    event: Event, ticket: Ticket, stored: CheckIn | None, scan: dict[str, Any], scanned_by: User
) -> CheckIn:
    """The ticket's check-in after this scan: created, moved earlier, or left as it was."""
    if stored is None:
        check_in = CheckIn.objects.create(
            ticket=ticket,
            event=event,
            scanned_at=scan["scanned_at"],
            gate=scan["gate"],
            scanned_by=scanned_by,
            source=CheckIn.Source.OFFLINE,
        )
        send_on_commit(checked_in, CheckIn, event_id=event.pk, check_in_ids=[check_in.pk])
        return check_in
    if scan["scanned_at"] < stored.scanned_at:
        logger.info(
            "Ticket %s: an offline scan at %s precedes its check-in at %s",
            ticket.pk,
            scan["scanned_at"],
            stored.scanned_at,
        )
        stored.scanned_at, stored.gate = scan["scanned_at"], scan["gate"]
        stored.scanned_by, stored.source = scanned_by, CheckIn.Source.OFFLINE
        stored.save(update_fields=["scanned_at", "gate", "scanned_by", "source", "updated_at"])
    return stored


# --- Check-in staff -----------------------------------------------------------------------------


def check_in_staff_refusal(*, organizer: OrganizerProfile, email: str) -> str | None:
    """Why ``email`` cannot be named check-in staff of ``organizer``, or None (the admin's form asks too)."""
    user = User.objects.filter(email=normalize_email(email)).only("pk", "is_active").first()
    if user is None:
        return None
    if user.pk == organizer.user_id:
        return _("You scan your own events already.")
    if not user.is_active:
        return _("This account is closed.")
    return None


def check_in_staff_add(*, organizer: OrganizerProfile, email: str) -> tuple[CheckInStaff, bool]:
    """Let the holder of ``email`` scan the organizer's tickets; ``(staff, created)``.

    An address without an account gets one, without a password, and an email with the code to set
    it (``accounts.passwords``). Naming somebody twice changes nothing."""
    refusal = check_in_staff_refusal(organizer=organizer, email=email)
    if refusal:
        raise ApplicationError(refusal, field="email")
    with transaction.atomic():
        user, invited = user_invite(email=email)
        staff, created = CheckInStaff.objects.get_or_create(organizer=organizer, user=user)
        if invited:
            from accounts.tasks import send_password_code

            transaction.on_commit(partial(send_password_code.delay, user.pk), robust=True)
    staff.user = user
    return staff, created


def check_in_staff_remove(*, organizer: OrganizerProfile, staff_id: int) -> None:
    deleted, _per_model = CheckInStaff.objects.filter(organizer=organizer, pk=staff_id).delete()
    if not deleted:
        raise Http404
