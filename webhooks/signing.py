"""Signing deliveries the way the payment gateways sign theirs (orders/payments/test.py).

``EventFlow-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``. The
timestamp is signed with the body, so a captured delivery replayed later fails the receiver's
tolerance check. Receivers verify with the stdlib snippet in the README; the tests run that very text (read
from README.md) against real deliveries.
"""

from __future__ import annotations

import secrets

from eventflow.signing import signature_header

SIGNATURE_HEADER = "EventFlow-Signature"
EVENT_HEADER = "EventFlow-Event"
EVENT_TYPE_HEADER = "EventFlow-Event-Type"
DELIVERY_HEADER = "EventFlow-Delivery"


def new_secret() -> str:
    """256 random bits, prefixed so a leaked one is recognisable in logs and scanners."""
    return f"whsec_{secrets.token_urlsafe(32)}"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    return signature_header(secret, body, timestamp)  # the scheme the test gateway signs with too
