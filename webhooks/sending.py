"""One HTTP POST to a webhook endpoint, safe against server-side request forgery.

An organizer chooses the URL, so a delivery must never reach our own network: the host is
resolved at send time, every address it resolves to must be public (one private answer refuses
the lot), and the connection goes to the checked address itself with the host name kept for the
``Host`` header and TLS (SNI and certificate check). A second DNS answer (rebinding) is never
asked for. Redirects are not followed, proxies from the environment are not used, and the
response body is read only as far as the log keeps it.

``WEBHOOKS_ALLOW_PRIVATE_NETWORKS`` lifts the address check (tests, a local demo).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

USER_AGENT = "EventFlow-Webhooks/1"
RESPONSE_BYTES_KEPT = 500


class Refused(Exception):
    """The URL may not be called (a non-public address, an unusable URL)."""


@dataclass(frozen=True)
class Result:
    status_code: int | None
    latency_ms: int
    error: str  # empty on a response (whatever its status)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def address_refused(ip: str) -> bool:
    """Private, loopback, link-local, multicast, reserved or unspecified (IPv4-mapped IPv6 too)."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def resolve(host: str, port: int) -> str:
    """The address to connect to: the first of ``host``'s, once every one of them passed the check."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"cannot resolve {host}: {exc}") from exc
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise Refused(f"{host} has no address")
    if not settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        refused = [a for a in addresses if address_refused(a)]
        if refused:
            raise Refused(f"{host} resolves to a non-public address ({refused[0]})")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, ip: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, ip: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Result:
    """POST ``body``; never raises for what the endpoint or the network does (that is a failed attempt)."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.username or parts.password:
        return Result(None, 0, "refused: not an http(s) URL without credentials")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        ip = resolve(parts.hostname, port)
    except Refused as exc:
        return Result(None, elapsed(), f"refused: {exc}")
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(parts.hostname, port, ip=ip, timeout=settings.WEBHOOKS_TIMEOUT_SECONDS)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(
            "POST",
            target,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
        )
        response = connection.getresponse()
        response.read(RESPONSE_BYTES_KEPT)
        return Result(response.status, elapsed(), "")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Result(None, elapsed(), f"{type(exc).__name__}: {exc}"[:500])
    finally:
        connection.close()
