"""The one interface every payment provider implements.

The orders services never talk to a gateway directly: they ask a provider to
start a payment, to turn a webhook's raw bytes into a verified
:class:`WebhookEvent`, and to refund. A provider holds no state of its own
between calls; the ``Payment`` and ``Refund`` rows are the truth, and every
call that moves money carries an idempotency key (our own row's id) so a
retried call is never a second charge or a second refund.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from orders.models import Payment, Refund


def header(headers: Mapping[str, str], name: str) -> str | None:
    """``name`` from ``headers`` whatever its case (Django's ``request.headers`` or a plain dict)."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


class ProviderError(Exception):
    """The gateway could not be reached or refused the call; the caller may retry later."""


class IntentLost(ProviderError):
    """The gateway has this payment's intent, but an earlier answer was lost and it will not hand
    it out again: the payment cannot be resumed, a new payment (a new id) must be started."""


class InvalidSignature(Exception):
    """A webhook whose signature is missing, wrong or too old."""


@dataclass(frozen=True)
class PaymentIntent:
    """What the buyer's app needs to pay: a client secret (Stripe-like) or a checkout page."""

    reference: str
    client_secret: str = ""
    checkout_url: str = ""


@dataclass(frozen=True)
class WebhookEvent:
    """A verified notification from a gateway.

    ``kind`` is one of ``KINDS``; anything else a gateway sends is ``ignored``
    (stored, answered 200, changes nothing). ``payment_id`` is our Payment's id
    when the gateway echoes it back (metadata / reference), so an event that
    races the storing of ``reference`` is still matched.
    """

    SUCCEEDED: ClassVar[str] = "payment.succeeded"
    FAILED: ClassVar[str] = "payment.failed"
    REFUNDED: ClassVar[str] = "payment.refunded"
    IGNORED: ClassVar[str] = "ignored"
    KINDS: ClassVar[tuple[str, ...]] = (SUCCEEDED, FAILED, REFUNDED, IGNORED)

    event_id: str
    kind: str
    reference: str = ""
    payment_id: str = ""
    amount_cents: int | None = None
    currency: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResult:
    reference: str
    succeeded: bool  # False: accepted but still pending at the gateway


class Provider:
    """Base class of the gateways in ``orders.payments``; see the module docstring."""

    name: ClassVar[str]

    def create_payment(self, *, payment: Payment, buyer_email: str, description: str) -> PaymentIntent:
        """Start collecting ``payment.amount_cents`` in ``payment.currency``; idempotent per ``payment.pk``."""
        raise NotImplementedError

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify ``body`` (the raw request bytes) against the signature in ``headers``.

        Raises :class:`InvalidSignature` when it does not verify, and never
        returns an event that did not."""
        raise NotImplementedError

    def refund(self, *, refund: Refund) -> RefundResult:
        """Return ``refund.amount_cents`` of ``refund.payment``; idempotent per ``refund.pk``."""
        raise NotImplementedError
