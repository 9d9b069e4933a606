"""The ``stripe`` provider: PaymentIntents through Stripe's official SDK.

The buyer's app confirms the intent with its ``client_secret`` (Stripe.js or a
mobile SDK); we learn the outcome from webhooks. Every call that moves money
carries our row's id as Stripe idempotency key, and every PaymentIntent carries
our payment's id in its metadata, so a webhook that overtakes the storing of
``Payment.reference`` still finds its payment.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from typing import Any

import stripe
from django.conf import settings

from .base import InvalidSignature, PaymentIntent, Provider, ProviderError, RefundResult, WebhookEvent, header

SIGNATURE_HEADER = "Stripe-Signature"
# (connect, read) seconds. The read allowance is generous because Stripe may take a while on a
# card network hiccup, but well under a worker's or a request's own time limit.
TIMEOUT = (5, 30)
# The SDK retries connection errors, 409s and 5xx itself (same idempotency key, backoff).
MAX_NETWORK_RETRIES = 2

_KINDS = {
    "payment_intent.succeeded": WebhookEvent.SUCCEEDED,
    "payment_intent.payment_failed": WebhookEvent.FAILED,
    "payment_intent.canceled": WebhookEvent.FAILED,
    "charge.refunded": WebhookEvent.REFUNDED,
}


@functools.lru_cache(maxsize=4)
def _client(secret_key: str) -> stripe.StripeClient:
    """One client per key, so its HTTP sessions (one per thread) keep their connections."""
    return stripe.StripeClient(
        secret_key,
        http_client=stripe.RequestsClient(timeout=TIMEOUT),
        max_network_retries=MAX_NETWORK_RETRIES,
    )


def _payment_id(metadata: Any) -> str:
    """Our payment's id from an object's metadata, or "" when it is absent or not one of ours."""
    raw = metadata.get("payment_id") if isinstance(metadata, Mapping) else None
    try:
        return str(uuid.UUID(str(raw))) if raw else ""
    except ValueError:
        return ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class StripeProvider(Provider):
    name = "stripe"

    def __init__(self) -> None:
        self._client = _client(settings.STRIPE_SECRET_KEY)

    def create_payment(self, *, payment, buyer_email: str, description: str) -> PaymentIntent:
        params = {
            "amount": payment.amount_cents,
            "currency": payment.currency.lower(),
            "automatic_payment_methods": {"enabled": True},
            "receipt_email": buyer_email,
            "description": description,
            "metadata": {"payment_id": str(payment.pk), "order_id": str(payment.order_id)},
        }
        try:
            # The same key within Stripe's 24 hours returns the first intent instead of a second one.
            intent = self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": f"payment-{payment.pk}"}
            )
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe refused the payment intent: {exc}") from exc
        return PaymentIntent(reference=intent.id, client_secret=intent.client_secret or "")

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        try:
            event = self._client.construct_event(
                body,
                header(headers, SIGNATURE_HEADER),
                settings.STRIPE_WEBHOOK_SECRET,
                tolerance=settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS,
            )
        except stripe.SignatureVerificationError as exc:
            raise InvalidSignature(str(exc)) from exc
        except (ValueError, TypeError) as exc:  # not UTF-8, not JSON, not a snapshot event; a non-ASCII header
            raise InvalidSignature(f"unreadable payload: {exc}") from exc
        try:
            payload = event.to_dict()
            event_type = str(payload["type"])
            kind = _KINDS.get(event_type, WebhookEvent.IGNORED)
            if kind == WebhookEvent.IGNORED:
                return WebhookEvent(event_id=str(payload["id"]), kind=kind, payload=payload)
            obj = payload["data"]["object"]
            if event_type == "charge.refunded":
                reference, amount = obj.get("payment_intent") or "", obj.get("amount_refunded")
            elif kind == WebhookEvent.SUCCEEDED:
                reference, amount = obj["id"], obj.get("amount_received")
            else:
                reference, amount = obj["id"], obj.get("amount")
            payment_id = _payment_id(obj.get("metadata"))
            if kind == WebhookEvent.SUCCEEDED and not payment_id:
                # Not one of ours (a Payment Link, an invoice, another app on the account): answering
                # "unknown, deliver again" would have Stripe retry it for days and disable the endpoint.
                return WebhookEvent(event_id=str(payload["id"]), kind=WebhookEvent.IGNORED, payload=payload)
            return WebhookEvent(
                event_id=str(payload["id"]),
                kind=kind,
                reference=str(reference),
                payment_id=payment_id,
                amount_cents=_int(amount),
                currency=str(obj.get("currency") or "").upper(),
                payload=payload,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            # Signed by Stripe but not shaped like the events we subscribe to: refuse rather than guess.
            raise InvalidSignature(f"unexpected event shape: {exc!r}") from exc

    def refund(self, *, refund) -> RefundResult:
        reference = refund.payment.reference
        if not reference:
            raise ProviderError(f"payment {refund.payment_id} has no Stripe PaymentIntent to refund")
        try:
            result = self._client.v1.refunds.create(
                params={
                    "payment_intent": reference,
                    "amount": refund.amount_cents,
                    "metadata": {"refund_id": str(refund.pk), "payment_id": str(refund.payment_id)},
                },
                options={"idempotency_key": f"refund-{refund.pk}"},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "charge_already_refunded":
                # Refunded already (by an earlier attempt past the key's 24 hours, or from Stripe's
                # dashboard): the money is back, which is all this call is for. No refund id to give.
                return RefundResult(reference="", succeeded=True)
            raise ProviderError(f"Stripe refused the refund: {exc}") from exc
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe refused the refund: {exc}") from exc
        # "pending" (some payment methods refund slowly) is confirmed later by charge.refunded.
        return RefundResult(reference=result.id, succeeded=result.status == "succeeded")
