"""A webhook receiver for trying EventFlow's webhooks on your machine (stdlib only, Python 3.9+).

    WEBHOOK_SECRET=whsec_... python3 -m webhooks.demo_receiver [port, default 8099]   # from the project directory

Prints each delivery it gets, and whether its signature verifies, with the README's ``verify``
(the function is copied here as is; a test checks it is the same text). Answers 204 to a verified delivery and
400 to any other, so EventFlow retries what did not verify. Not for production: no TLS, and it
keeps no record of event ids (a real receiver deduplicates on ``EventFlow-Event``).
"""

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """True if `header` (EventFlow-Signature) signs `body` (the raw request bytes) with `secret`."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        signature = parts.get("v1", "").encode()  # bytes: a forged non-ASCII value compares unequal
        fresh = abs(time.time() - timestamp) <= tolerance
    except (KeyError, ValueError, OverflowError):  # a part missing or garbled
        return False
    if not fresh:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ok = verify(os.environ["WEBHOOK_SECRET"], body, self.headers.get("EventFlow-Signature", ""))
        event = json.loads(body) if ok else {}
        print(
            ("verified" if ok else "NOT VERIFIED"),
            self.headers.get("EventFlow-Event-Type"),
            self.headers.get("EventFlow-Event"),
            json.dumps(event.get("data"), sort_keys=True),
            flush=True,
        )
        self.send_response(204 if ok else 400)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
