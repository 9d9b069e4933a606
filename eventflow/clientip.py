"""The client's IP address, as one setting of trusted proxies defines it.

Every per-client limit (DRF throttles, django-ratelimit, django-axes login
lockouts) keys on this one function, so they all agree on who the client is.

``NUM_PROXIES`` is how many reverse proxies in front of EventFlow append to
``X-Forwarded-For``. With 0 (the default) the header is ignored: anybody can
send it, and trusting it would give every request a fresh identity. With N,
the address the outermost trusted proxy saw is the N-th entry from the right;
entries further left were written by the client and are not trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from django.conf import settings
from django.http import HttpRequest

UNKNOWN = "0.0.0.0"  # noqa: S104 - a key for clients without an address (a test client), not a bind address


def _valid(address: str) -> str | None:
    """The address, normalised; an IPv6 address stands for its /64, the block one subscriber gets
    (counting single IPv6 addresses would give every client 2**64 fresh identities)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return str(ip)


def client_hop(meta: Mapping[str, str], num_proxies: int) -> str:
    """The address the client is known by, as given (not checked): the peer's, or with
    ``num_proxies`` trusted proxies the N-th ``X-Forwarded-For`` entry from the right."""
    remote = meta.get("REMOTE_ADDR") or ""
    if not num_proxies:
        return remote
    hops = [hop for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    return hops[-min(num_proxies, len(hops))] if hops else remote


def client_ip(request: HttpRequest) -> str:
    """The client's address for rate limits and lockouts; never raises."""
    request = getattr(request, "_request", request)  # a DRF Request wraps the HttpRequest
    meta = request.META
    return _valid(client_hop(meta, settings.NUM_PROXIES)) or _valid(meta.get("REMOTE_ADDR") or "") or UNKNOWN
