"""The cache's Redis client, for the few hot-path operations that need one round trip or a clear
"Redis did not answer" (Django's cache API with ``IGNORE_EXCEPTIONS`` turns a failure into a miss).

``client()`` is None on the embedded default (the in-process cache), where callers use the
cache API instead. Commands sent through it go through the circuit breaker's connection class
(eventflow/redis_breaker.py) like every other cache command; a failure raises ``RedisError``,
which callers turn into their own documented fallback.
"""

from __future__ import annotations

from django.core.cache import cache
from redis.exceptions import RedisError

__all__ = ["RedisError", "client", "key"]


def client():
    """The default cache's Redis client, or None when the cache is not Redis."""
    get_client = getattr(getattr(cache, "client", None), "get_client", None)
    return get_client(write=True) if get_client is not None else None


def key(name: str) -> str:
    """``name`` with the cache's prefix and version, as the cache API would store it."""
    return cache.make_and_validate_key(name)
