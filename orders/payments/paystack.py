"""The ``paystack`` provider: Paystack's hosted checkout, over its REST API with ``requests``.

Paystack has no well-kept official Python SDK, and its API is a handful of JSON
calls, so they are made here directly. The transaction ``reference`` is our
payment's id: it is what makes starting a payment idempotent (Paystack refuses
a second transaction with the same reference) and what lets a webhook find its
payment before ``Payment.reference`` is stored.

Webhooks are signed with HMAC-SHA512 of the raw body under the secret key, and
carry neither a timestamp nor an event id. So a captured webhook cannot be
refused as stale: replay protection rests on the event id derived below being
stored once (``orders.models.WebhookEvent``), which makes a replay a duplicate
that changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from .base import (
    IntentLost,
    InvalidSignature,
    PaymentIntent,
    Provider,
    ProviderError,
    RefundResult,
    WebhookEvent,
    header,
)

API_BASE = "https://api.paystack.co"
SIGNATURE_HEADER = "x-paystack-signature"
TIMEOUT = (5, 30)  # (connect, read) seconds

_KINDS = {
    "charge.success": WebhookEvent.SUCCEEDED,
    # Not among Paystack's documented events (a declined attempt leaves the transaction open for
    # another try); mapped in case it is ever sent.
    "charge.failed": WebhookEvent.FAILED,
    "refund.processed": WebhookEvent.REFUNDED,
}
# Paystack's answers to refunding a transaction that has been refunded in full already.
_ALREADY_REFUNDED_CODES = {"transaction_reversed"}
_ALREADY_REFUNDED_MESSAGES = ("fully reversed", "already been reversed", "already fully refunded")


class PaystackError(ProviderError):
    """Paystack refused a call or could not be reached; ``code`` is Paystack's error code, if it gave one."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class CheckoutUnavailable(PaystackError, IntentLost):
    """The payment's transaction exists at Paystack (an earlier answer was lost) but is unpaid,
    and Paystack gives its checkout page only once: this payment cannot be resumed, a new
    payment (a new id, so a new reference) must be started for the order."""


def _uuid_or_empty(value: Any) -> str:
    """Our payment's id when ``value`` is one, else "" (a transaction another system created)."""
    try:
        return str(uuid.UUID(str(value))) if value else ""
    except ValueError:
        return ""


def _amount(value: Any) -> int | None:
    """Minor units; refund events send them as a string ("5000")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _event_id(event: str, data: Mapping[str, Any], body: bytes) -> str:
    """A stable id for a Paystack event, which has none of its own.

    Paystack redelivers the same event until it gets a 200, so the id must be
    the same for every delivery and differ between events: the event name with
    the id of the object it is about (a transaction for ``charge.*``). Refund
    events carry no id, only the transaction's and the refund's references.
    Anything else falls back to a digest of the signed body.
    """
    if data.get("id") not in (None, ""):
        return f"{event}:{data['id']}"
    if event.startswith("refund.") and data.get("transaction_reference"):
        return f"{event}:{data['transaction_reference']}:{data.get('refund_reference') or ''}"
    return f"{event}:sha256:{hashlib.sha256(body).hexdigest()}"


class PaystackProvider(Provider):
    name = "paystack"

    def _call(self, method: str, path: str, *, body: dict | None = None) -> dict:
        """One API call; Paystack's ``data`` on success, else :class:`PaystackError`."""
        try:
            response = requests.request(
                method,
                f"{API_BASE}{path}",
                json=body,
                headers={"Authorization": f"Bearer {settings.PAYSTACK_SECRET_KEY}", "Accept": "application/json"},
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise PaystackError(f"Paystack unreachable: {exc.__class__.__name__}: {exc}") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise PaystackError(f"Paystack answered {response.status_code} without JSON", status=response.status_code)
        if response.status_code >= 400 or answer.get("status") is not True:
            raise PaystackError(
                f"Paystack answered {response.status_code}: {answer.get('message') or 'no message'}",
                status=response.status_code,
                code=str(answer.get("code") or ""),
            )
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    def create_payment(self, *, payment, buyer_email: str, description: str) -> PaymentIntent:
        reference = str(payment.pk)
        try:
            data = self._call(
                "POST",
                "/transaction/initialize",
                body={
                    "email": buyer_email,
                    "amount": payment.amount_cents,
                    "currency": payment.currency.upper(),
                    "reference": reference,
                    "metadata": {
                        "payment_id": reference,
                        "order_id": str(payment.order_id),
                        "description": description,
                    },
                },
            )
        except PaystackError as exc:
            if exc.code != "duplicate_reference" and "duplicate transaction reference" not in str(exc).lower():
                raise
            return self._existing_transaction(reference)
        checkout_url = data.get("authorization_url")
        if not checkout_url:
            raise PaystackError("Paystack initialised the transaction without a checkout URL")
        return PaymentIntent(reference=reference, checkout_url=str(checkout_url))

    def _existing_transaction(self, reference: str) -> PaymentIntent:
        """An earlier initialize for this payment went through but its answer never reached us.

        Paystack refuses to initialise a reference twice and does not hand out
        the first checkout page again. If the buyer paid already, the payment
        goes on (the webhook settles it); otherwise it cannot be resumed.
        """
        data = self._call("GET", f"/transaction/verify/{quote(reference, safe='')}")
        if data.get("status") == "success":
            return PaymentIntent(reference=reference)
        raise CheckoutUnavailable(
            f"Paystack transaction {reference} was already started ({data.get('status') or 'unknown status'}) "
            "and its checkout page cannot be fetched again; start a new payment",
            code="duplicate_reference",
        )

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        given = header(headers, SIGNATURE_HEADER)
        if not given or not settings.PAYSTACK_SECRET_KEY:
            raise InvalidSignature("missing signature header")
        expected = hmac.new(settings.PAYSTACK_SECRET_KEY.encode(), body, hashlib.sha512).hexdigest()
        if not hmac.compare_digest(expected.encode(), given.strip().encode()):
            raise InvalidSignature("signature does not match")
        try:
            payload = json.loads(body)
            event = str(payload["event"])
            data = payload["data"]
            if not isinstance(data, dict):
                raise TypeError("data is not an object")
            kind = _KINDS.get(event, WebhookEvent.IGNORED)
            event_id = _event_id(event, data, body)
        except (ValueError, TypeError, KeyError) as exc:
            # Signed with our key but not a payload we understand: as good as forged.
            raise InvalidSignature(f"unreadable payload: {exc!r}") from exc
        if kind == WebhookEvent.IGNORED:
            return WebhookEvent(event_id=event_id, kind=kind, payload=payload)
        if kind == WebhookEvent.REFUNDED:
            transaction = data.get("transaction")
            reference = data.get("transaction_reference") or (
                transaction.get("reference") if isinstance(transaction, dict) else ""
            )
        else:
            reference = data.get("reference")
        payment_id = _uuid_or_empty(reference)  # we set every transaction's reference to our payment's id
        if not payment_id:
            # Not a transaction EventFlow started (a payment page, another app on the same account):
            # nothing here can match it, and answering it as unknown would only have it redelivered.
            return WebhookEvent(event_id=event_id, kind=WebhookEvent.IGNORED, payload=payload)
        return WebhookEvent(
            event_id=event_id,
            kind=kind,
            reference=str(reference),
            payment_id=payment_id,
            amount_cents=_amount(data.get("amount")),
            currency=str(data.get("currency") or "").upper(),
            payload=payload,
        )

    def refund(self, *, refund) -> RefundResult:
        # Paystack takes no idempotency key for refunds; asking twice is safe only because a second
        # full refund of the same transaction is refused as "fully reversed", which is handled below.
        reference = refund.payment.reference or str(refund.payment_id)
        try:
            data = self._call(
                "POST",
                "/refund",
                body={
                    "transaction": reference,
                    "amount": refund.amount_cents,
                    "merchant_note": f"EventFlow refund {refund.pk}",
                },
            )
        except PaystackError as exc:
            message = str(exc).lower()
            if exc.code in _ALREADY_REFUNDED_CODES or any(text in message for text in _ALREADY_REFUNDED_MESSAGES):
                return RefundResult(reference="", succeeded=True)
            raise
        # Refunds are asynchronous at Paystack: pending/processing now, refund.processed later.
        return RefundResult(reference=str(data.get("id") or ""), succeeded=data.get("status") == "processed")
