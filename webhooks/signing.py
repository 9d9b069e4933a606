"""Signing deliveries the way the payment gateways sign theirs (orders/payments/test.py).

``EventFlow-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``. The
timestamp is signed with the body, so a captured delivery replayed later fails the receiver's
tolerance check. Receivers verify with the stdlib snippet in the README (``verify`` below is that
snippet, and a test runs it against a real delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "EventFlow-Signature"
EVENT_HEADER = "EventFlow-Event"
EVENT_TYPE_HEADER = "EventFlow-Event-Type"
DELIVERY_HEADER = "EventFlow-Delivery"


def new_secret() -> str:
    """256 random bits, prefixed so a leaked one is recognisable in logs and scanners."""
    return f"whsec_{secrets.token_urlsafe(32)}"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


# --- The README's verification snippet (kept identical; tests/test_signing.py runs it) ------------
README_SNIPPET = '''
import hashlib
import hmac
import time


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """True if `header` (EventFlow-Signature) signs `body` (the raw request bytes) with `secret`."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))
'''
