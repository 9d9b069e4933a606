"""Who may read the metrics: a client address inside ``METRICS_ALLOWED_NETWORKS`` and, when
``METRICS_TOKEN`` is set, ``Authorization: Bearer <token>``.

The address is the client's as the trusted proxies report it (``NUM_PROXIES``, as
``eventflow.clientip`` reads it), not the peer's: behind nginx every request's peer is nginx's
private address, so trusting the peer would open ``/metrics`` to the internet through the proxy.
Compose's Prometheus scrapes the web containers directly (no ``X-Forwarded-For``), from the
Compose network, which docker-compose.yml allows. Unlike ``client_ip``, an IPv6 address is kept
whole (``::1`` must match ``::1/128``, not stand for its /64).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache

from eventflow.clientip import client_hop

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(networks: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """The CIDRs (``*`` for any address); raises ValueError on a malformed one."""
    if "*" in networks:
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    return tuple(ipaddress.ip_network(network.strip(), strict=False) for network in networks if network.strip())


def client_address(meta: Mapping[str, str], num_proxies: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's exact address, chosen as every limit chooses it (``eventflow.clientip``), but
    not widened to its IPv6 /64: an allow-list names addresses. ``None`` when it is not one."""
    try:
        address = ipaddress.ip_address(client_hop(meta, num_proxies).strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_allowed(address: object, networks: Iterable[IPNetwork]) -> bool:
    if address is None:
        return False
    return any(address.version == network.version and address in network for network in networks)


def token_matches(authorization: str, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
