"""Writes for money: starting payments, applying webhooks, refunding.

Every move of an order (``reserved → paid``, ``paid → refunded``, and a late
payment re-taking stock) happens under the order's row lock, like every other
move out of ``reserved`` (see ``orders.services``), so a webhook, the expiry
sweep, a cancellation and an event cancellation racing each other move it
once. Gateways are called outside any transaction that holds a lock, with our
own row's id as idempotency key: a retry is never a second charge or refund.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from eventflow.api.errors import ApplicationError
from events.models import Event
from observability import metrics
from orders import services as order_services
from orders.confirmation import order_refund_notice_queue
from orders.errors import (
    Busy,
    InvalidWebhookSignature,
    NotRefundable,
    OrderNotCancellable,
    OrderNotPayable,
    PaymentProviderUnavailable,
    PaymentUnknown,
)
from orders.models import Order, OrderItem, Payment, Refund, Ticket, WebhookEvent

from . import default_provider, get_provider
from .base import IntentLost, InvalidSignature, Provider, ProviderError
from .base import WebhookEvent as ProviderEvent

logger = logging.getLogger(__name__)

MAX_EVENT_ID = 255  # WebhookEvent.event_id


def platform_fee(amount_cents: int) -> int:
    """``PLATFORM_FEE_PERCENT`` of the amount (half up) plus ``PLATFORM_FEE_FIXED_CENTS``, never above it."""
    if amount_cents <= 0:
        return 0
    percent = (Decimal(amount_cents) * settings.PLATFORM_FEE_PERCENT / 100).quantize(Decimal(1), ROUND_HALF_UP)
    return min(amount_cents, int(percent) + settings.PLATFORM_FEE_FIXED_CENTS)


# --- Paying ------------------------------------------------------------------------------------


def payment_start(*, order: Order, provider: Provider | None = None) -> Payment:
    """Open (or reuse) the order's pending payment and ask the gateway for an intent.

    The Payment row commits before the gateway is called, and an order has at
    most one pending payment, so two ``pay`` calls at once, or a retry after a
    timeout, share one intent (the gateway sees the same idempotency key).
    """
    provider = provider or default_provider()
    now = timezone.now()
    with transaction.atomic():
        locked = Order.objects.select_for_update(of=("self",)).select_related("event").get(pk=order.pk)
        if locked.status != Order.Status.RESERVED or locked.expires_at <= now or not locked.event.is_public:
            raise OrderNotPayable(
                _("This order is %(status)s and can no longer be paid.")
                % {"status": _("expired") if locked.status == Order.Status.RESERVED else locked.get_status_display()}
            )
        if locked.total_cents == 0:
            raise OrderNotPayable(_("This order is free; it needs no payment."))
        payment = locked.payments.filter(status=Payment.Status.PENDING).first()
        if payment is not None and payment.provider != provider.name:
            # The deployment switched gateways while this order waited: the old intent is abandoned.
            Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED, updated_at=now)
            payment = None
        if payment is None:
            payment = _new_payment(locked, provider)
    if not payment.reference:
        try:
            intent = _create_intent(provider, payment, locked)
        except IntentLost as exc:
            # The gateway has an intent for this payment we can never resume: give it up, and pay with
            # a new one (a new id, so a new reference at the gateway), once.
            logger.warning("Payment %s: %s; starting a new payment", payment.pk, exc)
            with transaction.atomic():
                Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
                    status=Payment.Status.FAILED, updated_at=timezone.now()
                )
                payment = _new_payment(locked, provider)
            try:
                intent = _create_intent(provider, payment, locked)
            except ProviderError as again:
                raise PaymentProviderUnavailable() from again
        except ProviderError as exc:
            logger.warning("Payment %s: the %s gateway failed: %s", payment.pk, provider.name, exc)
            raise PaymentProviderUnavailable() from exc
        Payment.objects.filter(pk=payment.pk, reference="").update(
            reference=intent.reference,
            client_secret=intent.client_secret,
            checkout_url=intent.checkout_url,
            updated_at=timezone.now(),
        )
        payment.refresh_from_db()
    return payment


def _new_payment(order: Order, provider: Provider) -> Payment:
    """A pending payment of the order's total, with the platform's fee on it."""
    return Payment.objects.create(
        order=order,
        provider=provider.name,
        amount_cents=order.total_cents,
        currency=order.currency,
        fee_cents=platform_fee(order.total_cents),
    )


def _create_intent(provider: Provider, payment: Payment, order: Order):
    return provider.create_payment(
        payment=payment, buyer_email=order.buyer.email, description=f"{order.event.title} ({order.pk})"
    )


# --- Webhooks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookResult:
    outcome: str
    duplicate: bool = False


def webhook_receive(*, provider_name: str, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
    """Verify a gateway's notification and apply it exactly once.

    The event is stored (unique per provider and event id) in the same
    transaction that applies it: a redelivery, even one arriving at the same
    moment, waits on the first one's row and is answered as a duplicate; an
    event that fails half-way is not stored, so the gateway's retry applies it.
    """
    provider = get_provider(provider_name)
    if provider is None:
        from rest_framework.exceptions import NotFound

        raise NotFound()
    try:
        event = provider.parse_webhook(body=body, headers=headers)
    except InvalidSignature as exc:
        logger.warning("Refused a %s webhook: %s", provider_name, exc)
        raise InvalidWebhookSignature() from exc
    if len(event.event_id) > MAX_EVENT_ID:
        raise ApplicationError(_("The event id is too long."), field="id")
    # Locks wait at most ORDER_LOCK_TIMEOUT_MS (503 busy): the gateway delivers the event again.
    with order_services.stock_transaction():
        try:
            with transaction.atomic():
                stored = WebhookEvent.objects.create(
                    provider=provider.name,
                    event_id=event.event_id,
                    kind=event.kind,
                    payload=dict(event.payload),
                    outcome="received",
                )
        except IntegrityError:
            if WebhookEvent.objects.filter(provider=provider.name, event_id=event.event_id).exists():
                return WebhookResult(outcome="duplicate", duplicate=True)
            raise ApplicationError(_("The event could not be stored.")) from None
        outcome, payment = _apply(provider, event)
        WebhookEvent.objects.filter(pk=stored.pk).update(outcome=outcome, payment=payment)
    logger.info("%s webhook %s (%s): %s", provider.name, event.event_id, event.kind, outcome)
    return WebhookResult(outcome=outcome)


def _find_payment(provider: Provider, event: ProviderEvent) -> Payment | None:
    payments = Payment.objects.filter(provider=provider.name)
    if event.payment_id:
        try:
            return payments.filter(pk=uuid.UUID(event.payment_id)).first()
        except ValueError:
            pass
    if event.reference:
        return payments.filter(reference=event.reference).first()
    return None


def _apply(provider: Provider, event: ProviderEvent) -> tuple[str, Payment | None]:
    if event.kind == ProviderEvent.IGNORED:
        return "ignored", None
    found = _find_payment(provider, event)
    if found is None:
        if event.kind == ProviderEvent.SUCCEEDED:
            # Money arrived for a payment we cannot see (yet): never drop it, have it delivered again.
            raise PaymentUnknown()
        return "unknown_payment", None
    if event.kind == ProviderEvent.SUCCEEDED:
        return payment_confirm(payment=found, amount_cents=event.amount_cents, currency=event.currency)
    _order, payment = _lock(found)
    if event.kind == ProviderEvent.FAILED:
        if payment.status != Payment.Status.PENDING:
            return f"ignored_{payment.status}", payment  # a failure after success leaves the order paid
        payment.status = Payment.Status.FAILED
        payment.save(update_fields=["status", "updated_at"])
        transaction.on_commit(metrics.PAYMENTS.labels("failed").inc)
        return "failed", payment
    if event.kind == ProviderEvent.REFUNDED:
        if not Refund.objects.filter(payment=payment).exists():
            # Refunded at the gateway, not through us (its dashboard): the order may still hold tickets.
            payment.needs_review = True
            payment.review_note = _("Refunded at the payment provider, not through EventFlow.")
            payment.save(update_fields=["needs_review", "review_note", "updated_at"])
            logger.error("Payment %s was refunded outside EventFlow; flagged for review", payment.pk)
            return "flagged_external_refund", payment
        done = Refund.objects.filter(payment=payment).exclude(status=Refund.Status.SUCCEEDED)
        confirmed = done.update(status=Refund.Status.SUCCEEDED, completed_at=timezone.now())
        if confirmed:
            transaction.on_commit(lambda: metrics.REFUNDS.labels("succeeded").inc(confirmed))
            return "refund_confirmed", payment
        return "ignored_refund", payment


def _lock(payment: Payment) -> tuple[Order, Payment]:
    order = (
        Order.objects.select_for_update(of=("self",)).select_related("event").get(pk=payment.order_id)
    )  # order first
    return order, Payment.objects.select_for_update().get(pk=payment.pk)


def payment_confirm(
    *, payment: Payment, amount_cents: int | None, currency: str, at: datetime | None = None
) -> tuple[str, Payment]:
    """The gateway took ``amount_cents`` in ``currency`` for ``payment``: settle it, once.

    ``webhook_receive`` calls it for a verified ``payment.succeeded``; ``seed_demo`` for its demo
    sales (paid at past times ``at``). An amount or currency other than asked is flagged for
    staff instead of paying the order. Returns what happened and the payment.
    """
    with order_services.stock_transaction():
        order, payment = _lock(payment)
        return _succeeded(order, payment, amount_cents=amount_cents, currency=currency, at=at)


def _succeeded(
    order: Order, payment: Payment, *, amount_cents: int | None, currency: str, at: datetime | None
) -> tuple[str, Payment]:
    if payment.status == Payment.Status.SUCCEEDED:
        return "already_succeeded", payment
    payment.status, payment.succeeded_at = Payment.Status.SUCCEEDED, at or timezone.now()
    transaction.on_commit(metrics.PAYMENTS.labels("succeeded").inc)  # flagged for review or not
    if amount_cents != payment.amount_cents or currency.upper() != payment.currency.upper():
        payment.needs_review = True
        payment.review_note = _("The gateway reported %(got)s %(got_currency)s for %(want)s %(want_currency)s.") % {
            "got": amount_cents,
            "got_currency": currency or "?",
            "want": payment.amount_cents,
            "want_currency": payment.currency,
        }
        payment.save(update_fields=["status", "succeeded_at", "needs_review", "review_note", "updated_at"])
        logger.error("Payment %s flagged for review: %s", payment.pk, payment.review_note)
        return "flagged", payment
    payment.save(update_fields=["status", "succeeded_at", "updated_at"])
    return _settle(order, payment), payment


def _settle(order: Order, payment: Payment) -> str:
    """A payment succeeded: sell the order, re-take its stock, or give the money back."""
    now = payment.succeeded_at
    if order.event.status == Event.Status.CANCELLED:
        if order.status == Order.Status.RESERVED:
            order_services.release_held(order, to_status=Order.Status.CANCELLED)
        _open_refund(payment, Refund.Reason.EVENT_CANCELLED)
        return "refunded_event_cancelled"
    if order.status == Order.Status.RESERVED:
        # Still holding its stock (even past expires_at, until the sweep gets to it): held becomes sold.
        order_services.order_mark_paid(order=order, paid_at=now, fee_cents=payment.fee_cents)
        return "paid"
    if order.status == Order.Status.EXPIRED and order.event.status == Event.Status.PUBLISHED:
        quantities = list(OrderItem.objects.filter(order=order).values_list("ticket_type_id", "quantity"))
        taken = order_services.retake(order, quantities)
        if taken:
            order_services.mark_paid(order, paid_at=now, fee_cents=payment.fee_cents)
            return "paid_after_expiry"
        _open_refund(payment, Refund.Reason.LATE_PAYMENT)
        return "refunded_sold_out"
    reason = Refund.Reason.DUPLICATE_PAYMENT if order.status == Order.Status.PAID else Refund.Reason.LATE_PAYMENT
    _open_refund(payment, reason)
    return f"refunded_{order.status}"


# --- Refunds -------------------------------------------------------------------------------------


def _open_refund(payment: Payment, reason: str) -> Refund:
    """The refund row, committed with whatever made it necessary; the gateway is asked after commit."""
    refund, created = Refund.objects.get_or_create(
        payment=payment, defaults={"amount_cents": payment.amount_cents, "reason": reason}
    )
    if created:
        transaction.on_commit(metrics.REFUNDS.labels("requested").inc)
    from orders.tasks import refund_send

    # robust: a broker that cannot take it now is logged; the resend-stuck-refunds beat job sends it later.
    transaction.on_commit(lambda: refund_send.delay(str(refund.pk)), robust=True)
    return refund


def refund_deadline(event: Event) -> datetime | None:
    """Until when the event's policy lets buyers refund; None when it never does."""
    hours = event.refundable_until_hours_before
    return None if hours is None else event.starts_at - timedelta(hours=hours)


def order_refund(*, order: Order, reason: str = Refund.Reason.REQUESTED_BY_BUYER, by_policy: bool = True) -> Order:
    """A paid order is refunded: tickets void, stock back on sale, money back through its gateway.

    Exactly once: the order moves ``paid → refunded`` under its row lock, and its
    refund is one row per payment. ``by_policy`` applies the event's refund
    policy (a buyer asking); an event cancellation or staff skip it.
    """
    now = timezone.now()
    with order_services.stock_transaction():
        locked = Order.objects.select_for_update(of=("self",)).select_related("event").get(pk=order.pk)
        if locked.status != Order.Status.PAID:
            raise OrderNotCancellable(
                _("This order is %(status)s and can no longer be cancelled.")
                % {"status": locked.get_status_display().lower()}
            )
        if by_policy:
            deadline = refund_deadline(locked.event)
            if deadline is None:
                raise NotRefundable(_("This event's tickets are not refundable."))
            if now >= deadline:
                raise NotRefundable(
                    _("Refunds for this event closed at %(deadline)s.") % {"deadline": deadline.isoformat()},
                    extra={"refundable_until": deadline},
                )
        quantities = list(OrderItem.objects.filter(order=locked).values_list("ticket_type_id", "quantity"))
        order_services.give_back_sold(locked, quantities)
        Ticket.objects.filter(order=locked, status=Ticket.Status.VALID).update(status=Ticket.Status.VOID)
        order_services.announce([locked], status=Order.Status.REFUNDED, previous=locked.status)
        locked.status, locked.closed_at = Order.Status.REFUNDED, now
        locked.save(update_fields=["status", "closed_at", "updated_at"])
        order_refund_notice_queue(order=locked)
        for payment in Payment.objects.filter(order=locked, status=Payment.Status.SUCCEEDED, refund__isnull=True):
            _open_refund(payment, reason)
    return locked


def payment_refund(*, payment: Payment) -> Refund:
    """Staff give back a payment that never became a sale (flagged, late or duplicate).

    Never the payment that pays a paid order (that is ``order_refund``, which also voids the
    tickets and returns the stock): for a paid order only a second, unflagged payment is extra.
    """
    with order_services.stock_transaction():
        order, locked = _lock(payment)
        if locked.status != Payment.Status.SUCCEEDED:
            raise NotRefundable(_("Only a succeeded payment can be refunded."))
        if order.status == Order.Status.PAID and not locked.needs_review:
            kept = Payment.objects.filter(order=order, status=Payment.Status.SUCCEEDED, needs_review=False)
            if not kept.exclude(pk=locked.pk).filter(refund__isnull=True).exists():
                raise NotRefundable(_("This payment pays for its order; refund the order instead."))
        return _open_refund(locked, Refund.Reason.STAFF)


def refund_send(*, refund_id, final_attempt: bool = False) -> Refund:
    """Ask the gateway for a refund (again). Idempotent: the gateway sees the refund's id as key.

    Raises ProviderError for the caller (a Celery task) to retry; on the final
    attempt the refund is marked failed, for staff to retry from the admin.
    """
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status == Refund.Status.SUCCEEDED:
        return refund
    if refund.status == Refund.Status.PENDING and refund.reference:
        return refund  # accepted by the gateway, completing there (Paystack): its webhook confirms it
    provider = get_provider(refund.payment.provider)
    Refund.objects.filter(pk=refund.pk).update(attempts=F("attempts") + 1)
    try:
        if provider is None:
            raise ProviderError(f"the {refund.payment.provider} provider is not configured here")
        result = provider.refund(refund=refund)
    except ProviderError as exc:
        fields = {"last_error": str(exc)[:2000]}
        if final_attempt:
            fields["status"] = Refund.Status.FAILED
        gave_up = Refund.objects.filter(pk=refund.pk).exclude(status=Refund.Status.SUCCEEDED).update(**fields)
        if final_attempt and gave_up:
            transaction.on_commit(metrics.REFUNDS.labels("failed").inc)
        raise
    done = {"last_error": "", **({"reference": result.reference} if result.reference else {})}
    if result.succeeded:
        done.update(status=Refund.Status.SUCCEEDED, completed_at=timezone.now())
    updated = Refund.objects.filter(pk=refund.pk).exclude(status=Refund.Status.SUCCEEDED).update(**done)
    if result.succeeded and updated:
        transaction.on_commit(metrics.REFUNDS.labels("succeeded").inc)
    refund.refresh_from_db()
    return refund


def refund_retry(*, refund: Refund) -> Refund:
    """Staff try a failed refund again."""
    updated = Refund.objects.filter(pk=refund.pk, status=Refund.Status.FAILED).update(
        status=Refund.Status.PENDING, last_error=""
    )
    if not updated:
        raise NotRefundable(_("Only a failed refund can be retried."))
    from orders.tasks import refund_send as refund_send_task

    transaction.on_commit(lambda: refund_send_task.delay(str(refund.pk)))
    refund.refresh_from_db()
    return refund


# --- Event cancellation ------------------------------------------------------------------------


class RefundsIncomplete(Exception):
    """Some paid orders of a cancelled event could not be locked this time; run again."""


def event_refund_all(*, event_id: int, batch_size: int = 200) -> int:
    """An event was cancelled: release its holds, then refund each paid order, each once.

    Safe to run again at any point (a redelivered task after its worker was
    killed): released holds and refunded orders are simply not found again,
    and refunds committed earlier but never sent are queued again. An order
    locked by someone else for too long is skipped and the whole run reports
    ``RefundsIncomplete`` at the end, so its task is retried.
    """
    from orders.tasks import refund_send as refund_send_task

    started = timezone.now()
    order_services.release_event_holds(event_id=event_id)
    refunded, busy, after = 0, 0, None
    while True:
        page = Order.objects.filter(event_id=event_id, status=Order.Status.PAID).order_by("pk")
        if after is not None:
            page = page.filter(pk__gt=after)
        ids = list(page.values_list("pk", flat=True)[:batch_size])
        for order_id in ids:
            try:
                order_refund(order=Order(pk=order_id), reason=Refund.Reason.EVENT_CANCELLED, by_policy=False)
                refunded += 1
            except OrderNotCancellable:
                pass  # refunded by someone else in between
            except Busy:
                busy += 1
        if len(ids) < batch_size:
            break
        after = ids[-1]
    # Refunds an earlier run committed whose sending may have been lost with its worker; those of
    # this run were queued on their commit already.
    pending = Refund.objects.filter(
        payment__order__event_id=event_id, status=Refund.Status.PENDING, attempts=0, created_at__lt=started
    )
    for refund_id in pending.values_list("pk", flat=True):
        refund_send_task.delay(str(refund_id))
    if busy:
        raise RefundsIncomplete(f"{busy} orders of event {event_id} were busy; {refunded} refunded this run")
    return refunded


def refunds_resend_stuck(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Queue again the pending refunds nobody has tried for a while (their task was lost)."""
    from orders.tasks import refund_send as refund_send_task

    stuck = Refund.objects.filter(status=Refund.Status.PENDING, created_at__lte=timezone.now() - older_than)
    ids = [str(pk) for pk in stuck.filter(attempts=0).values_list("pk", flat=True)[:1000]]
    for refund_id in ids:
        refund_send_task.delay(refund_id)
    return len(ids) + _redrive_cancelled_events(older_than=older_than)


def _redrive_cancelled_events(*, older_than: timedelta) -> int:
    """Cancelled events that still have paid orders a while later: their refunding task died (an
    error it does not retry, or its retries ran out). Run it again; it is safe to run twice."""
    from orders.tasks import refund_cancelled_event

    event_ids = list(
        Order.objects.filter(
            status=Order.Status.PAID,
            event__status=Event.Status.CANCELLED,
            event__cancelled_at__lte=timezone.now() - older_than,
        )
        .values_list("event_id", flat=True)
        .distinct()[:100]
    )
    for event_id in event_ids:
        refund_cancelled_event.delay(event_id)
    return len(event_ids)
