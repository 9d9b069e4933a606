"""The ``test`` provider: a simulated gateway for development, demos and the test suite.

It behaves like a real one where it matters: a payment gets a reference and a
client secret, completing or failing it produces a webhook signed the way
Stripe signs them (``t=<unix time>,v1=<HMAC-SHA256 of "t." + raw body>``,
refused outside ``PAYMENT_WEBHOOK_TOLERANCE_SECONDS``) and delivered through
the same code as ``POST /payments/webhooks/test``; refunds are idempotent per
key, like a gateway's. Nothing leaves the process, so it must never take real
orders: ``check --deploy`` warns while it is enabled.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Mapping

from django.conf import settings
from django.core.cache import cache

from eventflow import signing

from .base import InvalidSignature, PaymentIntent, Provider, RefundResult, WebhookEvent, header

SIGNATURE_HEADER = "EventFlow-Signature"
_REFUND_KEY = "payments:test:refund:{}"


def _sign(body: bytes, timestamp: int) -> str:
    return signing.signature_hex(settings.TEST_PAYMENTS_WEBHOOK_SECRET, body, timestamp)


def signature_header(body: bytes, *, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return signing.signature_header(settings.TEST_PAYMENTS_WEBHOOK_SECRET, body, timestamp)


def webhook_body(
    *, event_id: str, kind: str, payment_id: str, reference: str, amount_cents: int, currency: str
) -> bytes:
    """The JSON a simulated gateway posts for a payment event."""
    payload = {
        "id": event_id,
        "type": kind,
        "created": int(time.time()),
        "data": {"payment_id": payment_id, "reference": reference, "amount_cents": amount_cents, "currency": currency},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


class TestProvider(Provider):
    name = "test"

    def create_payment(self, *, payment, buyer_email: str, description: str) -> PaymentIntent:
        reference = f"tp_{payment.pk.hex}"  # one intent per payment, however often this is asked
        return PaymentIntent(reference=reference, client_secret=f"{reference}_secret_{secrets.token_urlsafe(18)}")

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        parts = dict(
            part.split("=", 1) for part in (header(headers, SIGNATURE_HEADER) or "").split(",") if part.count("=") == 1
        )
        timestamp, given = parts.get("t", ""), parts.get("v1", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12 and given):
            raise InvalidSignature("missing or malformed signature header")
        if not hmac.compare_digest(_sign(body, int(timestamp)).encode(), given.encode("utf-8", "replace")):
            raise InvalidSignature("signature does not match")
        if abs(time.time() - int(timestamp)) > settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS:
            raise InvalidSignature("signature timestamp outside the tolerance")
        try:
            payload = json.loads(body)
            data = payload["data"]
            event_id, kind = str(payload["id"]), str(payload["type"])
            amount = data.get("amount_cents")
            return WebhookEvent(
                event_id=event_id,
                kind=kind if kind in WebhookEvent.KINDS else WebhookEvent.IGNORED,
                reference=str(data.get("reference", "")),
                payment_id=str(data.get("payment_id", "")),
                amount_cents=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
                currency=str(data.get("currency", "")),
                payload=payload,
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # Signed by us but not a payload we understand: as good as forged.
            raise InvalidSignature(f"unreadable payload: {exc}") from exc

    def refund(self, *, refund) -> RefundResult:
        # Like a gateway's idempotency keys: asking again for the same refund returns the first answer.
        key = _REFUND_KEY.format(refund.pk)
        cache.add(key, f"tr_{secrets.token_hex(12)}", timeout=7 * 24 * 3600)
        cache.add(f"{key}:calls", 0, timeout=7 * 24 * 3600)
        cache.incr(f"{key}:calls")
        return RefundResult(reference=cache.get(key) or f"tr_{refund.pk.hex}", succeeded=True)


def deliver(payment, *, succeeded: bool, amount_cents: int | None = None, currency: str | None = None):
    """The simulated gateway finishes ``payment`` and notifies us, signed, through the webhook code path.

    ``amount_cents`` / ``currency`` let a demo or a test make the gateway report something else than
    was asked (a mismatch staff must review)."""
    from .services import webhook_receive

    return webhook_receive(provider_name=TestProvider.name, **signed_event(payment, succeeded, amount_cents, currency))


def signed_event(payment, succeeded: bool, amount_cents: int | None = None, currency: str | None = None) -> dict:
    """A webhook delivery as the simulated gateway would POST it: ``{"body": bytes, "headers": {...}}``."""
    body = webhook_body(
        event_id=f"evt_{secrets.token_hex(12)}",
        kind=WebhookEvent.SUCCEEDED if succeeded else WebhookEvent.FAILED,
        payment_id=str(payment.pk),
        reference=payment.reference,
        amount_cents=payment.amount_cents if amount_cents is None else amount_cents,
        currency=payment.currency if currency is None else currency,
    )
    return {"body": body, "headers": {SIGNATURE_HEADER: signature_header(body)}}
