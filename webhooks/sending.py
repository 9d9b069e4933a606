"""One HTTP POST to a webhook endpoint, safe against server-side request forgery.

An organizer chooses the URL, so a delivery must never reach our own network: the host is
resolved at send time, every address it resolves to must be public (one private answer refuses
the lot), and the connection goes to the checked address itself with the host name kept for the
``Host`` header and TLS (SNI and certificate check). A second DNS answer (rebinding) is never
asked for. Redirects are not followed, proxies from the environment are not used, and the
response body is read only as far as the log keeps it.

``WEBHOOKS_TIMEOUT_SECONDS`` bounds the whole exchange, not each socket operation: connecting,
the TLS handshake, sending, and reading the status line, the headers and the part of the body
kept, all within that time from the start of the connection (each read waits at most what is
left), so a receiver that trickles its answer a byte at a time cannot hold a worker.

Checked again here, whatever was accepted at registration (settings change, rows age): the
scheme (``http`` only while ``WEBHOOKS_ALLOW_HTTP`` is on), an ASCII host name (an
internationalized one is used in its punycode ``xn--`` form: the standard library would encode
it with IDNA 2003, which maps some names to another domain), and the port.

``WEBHOOKS_ALLOW_PRIVATE_NETWORKS`` lifts the address check (tests, a local demo).
"""

from __future__ import annotations

import functools
import http.client
import io
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


# IPv6 prefixes that carry an IPv4 address inside (6to4 and Teredo): a relay may take the packet on
# to that address, a private one included, and Python 3.11's ``is_global`` calls 6to4 global.
# No receiver needs them: refused whatever they embed.
TUNNELLED_IPV6 = (ipaddress.IPv6Network("2002::/16"), ipaddress.IPv6Network("2001::/32"))


def address_refused(ip: str) -> bool:
    """Private, loopback, link-local, multicast, reserved or unspecified (IPv4-mapped IPv6 too),
    or an IPv6 address of a tunnel to IPv4 (6to4 ``2002::/16``, Teredo ``2001::/32``)."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in TUNNELLED_IPV6):
            return True
        if address.ipv4_mapped is not None:
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


class _DeadlineReader(io.RawIOBase):
    """Reads from ``sock``, each read waiting at most until ``deadline`` (``time.monotonic()``)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        # The socket's own file: it counts as a user of the socket, which a closing connection
        # (an HTTP/1.0 answer, ``Connection: close``) leaves open until the response is read.
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int | None:
        self._sock.settimeout(_remaining(self._deadline))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """A response whose status line, headers and body are read within the exchange's deadline."""

    def __init__(self, sock: socket.socket, *args, deadline: float, **kwargs) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp.close()  # the plain file over the socket, replaced by one that keeps the deadline
        self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline``; a ``TimeoutError`` once none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the receiver did not answer in time")
    return left


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address ``ip``; everything until the response's end by ``deadline``
    (``time.monotonic()``; by default ``timeout`` seconds after this object is made)."""

    def __init__(self, host: str, port: int, *, ip: str, timeout: float, deadline: float | None = None) -> None:
        super().__init__(host, port, timeout=timeout, **self._extra())
        self._ip = ip
        self.deadline = time.monotonic() + timeout if deadline is None else deadline
        self.response_class = functools.partial(_DeadlineResponse, deadline=self.deadline)

    def _extra(self) -> dict:
        return {}

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), _remaining(self.deadline))

    def send(self, data: bytes) -> None:
        if self.sock is None:
            self.connect()
        self.sock.settimeout(_remaining(self.deadline))  # sendall: one timeout for the whole
        super().send(data)


class _PinnedHTTPSConnection(_PinnedHTTPConnection, http.client.HTTPSConnection):
    def _extra(self) -> dict:
        return {"context": ssl.create_default_context()}

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), _remaining(self.deadline))
        sock.settimeout(_remaining(self.deadline))  # the handshake: one timeout for the whole
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Result:
    """POST ``body``; never raises for what the endpoint or the network does (that is a failed attempt)."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.username or parts.password:
        return Result(None, 0, "refused: not an http(s) URL without credentials")
    if parts.scheme == "http" and not settings.WEBHOOKS_ALLOW_HTTP:
        return Result(None, 0, "refused: http:// URLs are not allowed (WEBHOOKS_ALLOW_HTTP is off); use https")
    if not parts.hostname.isascii():
        return Result(None, 0, "refused: the host name is not ASCII (use its punycode xn-- form)")
    try:
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    if not port:
        return Result(None, 0, "refused: the URL's port is not valid")
    try:
        ip = resolve(parts.hostname, port)
    except Refused as exc:
        return Result(None, elapsed(), f"refused: {exc}")
    timeout = settings.WEBHOOKS_TIMEOUT_SECONDS
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = connection_class(parts.hostname, port, ip=ip, timeout=timeout, deadline=time.monotonic() + timeout)
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
    except TimeoutError:
        return Result(None, elapsed(), f"TimeoutError: no complete answer within {timeout:g} s")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Result(None, elapsed(), f"{type(exc).__name__}: {exc}"[:500])
    finally:
        connection.close()
