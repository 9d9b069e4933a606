"""The buyer's emails about an order: the confirmation (their receipt, with the tickets attached
as a PDF) and the refund notice (a refund at their request, or their event was cancelled).

Whatever marks an order paid queues it with :func:`order_confirmation_queue`
inside its transaction: the task is sent on commit only, so a rolled-back
payment sends nothing. The task may run more than once (a retry after an SMTP
error, a worker killed after sending, ``acks_late`` redelivery); the order's
``confirmation_sent_at`` makes every run after the first successful one a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from uuid import UUID

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from eventflow.regional import format_local_time, format_money

from . import documents, selectors
from .models import Order

logger = logging.getLogger(__name__)

_suppressed: ContextVar[bool] = ContextVar("order_confirmations_suppressed", default=False)


@contextmanager
def confirmations_suppressed() -> Iterator[None]:
    """Orders paid inside this block queue no email: demo data (``seed_demo``) is not a purchase
    anybody made, and its buyers' addresses must not receive anything."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def order_confirmation_queue(*, order: Order) -> None:
    """Send the confirmation of a just-paid order once the surrounding transaction commits.

    Call it inside the transaction that marks the order paid. ``robust``: a broker
    that cannot take the task is logged, never turned into an error for a payment
    that has committed.
    """
    if _suppressed.get():
        return
    from .tasks import send_order_confirmation  # tasks import this module

    transaction.on_commit(partial(send_order_confirmation.delay, str(order.pk)), robust=True)


def _discount(order: Order) -> dict:
    """The discount code's line of the email: the list price, the code and what it took off."""
    if not order.discount_code_id:
        return {}
    return {
        "subtotal": format_money(order.subtotal_cents, order.currency),
        "discount_code": order.discount_code.code,
        "discount": format_money(order.discount_cents, order.currency),
    }


def _message(order: Order) -> EmailMultiAlternatives:
    event = order.event
    context = {
        "order": order,
        "order_number": str(order.pk)[:8],
        "event": event,
        "starts": format_local_time(event.starts_at, event.timezone),
        "venue": documents.venue_lines(order),
        "items": list(order.items.all()),
        "total": format_money(order.total_cents, order.currency) if order.total_cents else None,
        "buyer_name": order.buyer.name or order.buyer.email,
        **_discount(order),
    }
    subject = " ".join(render_to_string("orders/email/confirmation_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("orders/email/confirmation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.buyer.email],
    )
    message.attach_alternative(render_to_string("orders/email/confirmation.html", context), "text/html")
    pdf = documents.order_tickets_pdf(order, selectors.printable_tickets_of(order=order))
    message.attach(documents.tickets_pdf_filename(order), pdf, "application/pdf")
    return message


def order_confirmation_send(*, order_id: UUID | str) -> bool:
    """Email the buyer their confirmation and tickets, once; ``False`` when there is nothing to send.

    The message (PDF included) is built before any lock is taken. The order row is
    then locked with ``SKIP LOCKED`` while the mail goes out and the send is
    recorded, so two runs of the task at once send one email; an SMTP error
    rolls back and leaves ``confirmation_sent_at`` empty for the retry. The lock
    is held at most ``EMAIL_TIMEOUT`` seconds.
    """
    order = selectors.order_for_confirmation(order_id=order_id)
    if order is None or order.confirmation_sent_at is not None:
        return False  # not paid (any more), or already confirmed
    if not order.buyer.email:
        logger.info("Order %s: the buyer has no email address left; no confirmation", order.pk)
        return False
    if not _send_once(order, _message(order), sent_field="confirmation_sent_at", status=Order.Status.PAID):
        return False  # sent meanwhile, or being sent by another run right now
    logger.info("Order %s: confirmation sent", order.pk)
    return True


def _send_once(order: Order, message: EmailMultiAlternatives, *, sent_field: str, status: str) -> bool:
    """Send ``message`` unless ``sent_field`` is set, and set it: the order row is claimed with
    ``SKIP LOCKED``, so two runs of a task at once send one email; an SMTP error rolls back and
    leaves the field empty for the retry."""
    with transaction.atomic():
        claimed = (
            Order.objects.select_for_update(skip_locked=True)
            .filter(pk=order.pk, status=status, **{f"{sent_field}__isnull": True})
            .only("pk")
            .first()
        )
        if claimed is None:
            return False
        message.send()
        Order.objects.filter(pk=order.pk).update(**{sent_field: timezone.now()})
    return True


def order_refund_notice_queue(*, order: Order) -> None:
    """Tell the buyer their order was refunded, once the refund's transaction commits."""
    if _suppressed.get():
        return
    from .tasks import send_order_refund_notice  # tasks import this module

    transaction.on_commit(partial(send_order_refund_notice.delay, str(order.pk)), robust=True)


def order_refund_notice_send(*, order_id: UUID | str) -> bool:
    """Email the buyer that their order was refunded, once (as the confirmation: skip-locked claim)."""
    from .models import Refund

    order = selectors.order_for_refund_notice(order_id=order_id)
    if order is None or order.refund_notice_sent_at is not None or not order.buyer.email:
        return False
    event = order.event
    reasons = set(Refund.objects.filter(payment__order=order).values_list("reason", flat=True))
    context = {
        "order_number": str(order.pk)[:8],
        "event": event,
        "event_cancelled": Refund.Reason.EVENT_CANCELLED in reasons or event.status == event.Status.CANCELLED,
        "starts": format_local_time(event.starts_at, event.timezone),
        "items": list(order.items.all()),
        "total": format_money(order.total_cents, order.currency) if order.total_cents else None,
        "buyer_name": order.buyer.name or order.buyer.email,
    }
    message = EmailMultiAlternatives(
        subject=" ".join(render_to_string("orders/email/refunded_subject.txt", context).split()),
        body=render_to_string("orders/email/refunded.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.buyer.email],
    )
    message.attach_alternative(render_to_string("orders/email/refunded.html", context), "text/html")
    return _send_once(order, message, sent_field="refund_notice_sent_at", status=Order.Status.REFUNDED)
