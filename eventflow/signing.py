"""The one signature scheme EventFlow signs webhooks with, ours and the test gateway's, as Stripe
does: ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``. The timestamp is signed
with the body, so a captured request replayed later fails the receiver's tolerance check."""

from __future__ import annotations

import hashlib
import hmac


def signature_hex(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={signature_hex(secret, body, timestamp)}"
