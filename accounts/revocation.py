"""Access tokens stop working at once when their user is deactivated or deleted, or changes password.

Access tokens are checked without reading the user's row (a purchase must not pay for a
user SELECT: issue 10). What makes a token void before it expires is recorded in the cache
instead: "tokens issued before T are void" for one user, kept as long as an access token can
live. The authenticator reads it with one cache GET. When the cache cannot answer, it reads
the user's row as before, so a Redis outage never lets a deactivated account back in; a
marker that could not be written (Redis down at that moment) is logged.

Refresh tokens are checked against the database on every use (accounts.services), so they
need no marker.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from eventflow import rawcache

logger = logging.getLogger(__name__)

UNKNOWN = object()  # the cache did not answer


def _key(user_id: int) -> str:
    return f"auth:void-before:{user_id}"


def _lifetime() -> int:
    return int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()) + 60


def void_tokens(user_id: int) -> None:
    """Every access token of ``user_id`` issued up to now stops working."""
    # ``iat`` has whole seconds: a token issued earlier in this very second survives (so does one
    # issued just after, e.g. by the login that follows a password change).
    now = int(time.time())
    client = rawcache.client()
    try:
        if client is None:
            cache.set(_key(user_id), now, timeout=_lifetime())
        else:
            client.set(rawcache.key(_key(user_id)), now, ex=_lifetime())
    except rawcache.RedisError as exc:
        logger.warning("Could not record that user %s's access tokens are void: %s", user_id, exc)


def void_before(user_id: int):
    """When this user's tokens were voided (a Unix time), None if never, or UNKNOWN (cache down)."""
    client = rawcache.client()
    if client is None:
        return cache.get(_key(user_id))
    try:
        value = client.get(rawcache.key(_key(user_id)))
    except rawcache.RedisError:
        return UNKNOWN
    return int(value) if value is not None else None
