"""Access tokens stop working at once when their user is deactivated or deleted, or changes password.

Access tokens are checked without reading the user's row (a purchase must not pay for a
user SELECT: issue 10). What makes a token void before it expires is recorded in the cache
instead: "tokens issued before T are void" for one user, kept as long as an access token can
live. The authenticator reads it with one cache GET. When the cache cannot answer, it reads
the user's row as before, so a Redis outage never lets a deactivated account back in; a
marker that could not be written (Redis down at that moment) is logged.

A password change keeps the session that made it (``POST /auth/password/change``): the marker
then reads "tokens issued before T are void, except those of session F" (``T:F``; access tokens
carry their session's id in the claim ``fam``), still one value and one GET.

Refresh tokens are checked against the database on every use (accounts.services), so they
need no marker.
"""

from __future__ import annotations

import logging
import math
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


_ALL = "all"


def _write(user_id: int, value) -> None:
    client = rawcache.client()
    try:
        if client is None:
            cache.set(_key(user_id), value, timeout=_lifetime())
        else:
            client.set(rawcache.key(_key(user_id)), value, ex=_lifetime())
    except rawcache.RedisError as exc:
        logger.warning("Could not record that user %s's access tokens are void: %s", user_id, exc)


def void_tokens(user_id: int, *, every: bool = False, keep_family: str | None = None) -> None:
    """The access tokens of ``user_id`` issued up to now stop working; with ``every``, all of them
    (a deactivated or deleted account has no legitimate token, whatever second it was issued in).
    ``keep_family``: except those of this session (the one that changed the password)."""
    if every:
        _write(user_id, _ALL)
        return
    # ``iat`` has whole seconds: a token issued earlier in this very second survives, and so does
    # the one the login after a password change issues.
    _write(user_id, f"{int(time.time())}:{keep_family}" if keep_family else int(time.time()))


def account_reactivated(user_id: int) -> None:
    """An account active again: the marker its deactivation left goes (later markers stay)."""
    client = rawcache.client()
    try:
        if client is None:
            if cache.get(_key(user_id)) == _ALL:
                cache.delete(_key(user_id))
        elif client.get(rawcache.key(_key(user_id))) == _ALL.encode():
            client.delete(rawcache.key(_key(user_id)))
    except rawcache.RedisError as exc:
        logger.warning("Could not clear user %s's deactivation marker: %s", user_id, exc)


def _read(user_id: int):
    client = rawcache.client()
    try:
        value = cache.get(_key(user_id)) if client is None else client.get(rawcache.key(_key(user_id)))
    except rawcache.RedisError:
        return UNKNOWN
    return value.decode() if isinstance(value, bytes) else value


def _parse(value) -> tuple[float, str | None] | None:
    if value is None:
        return None
    if value == _ALL:
        return math.inf, None
    if isinstance(value, int):
        return value, None
    before, _sep, keep = value.partition(":")
    return int(before), keep or None


def void_before(user_id: int):
    """Tokens of this user issued before this Unix time are void: None if none are, ``math.inf`` if
    all are, UNKNOWN when the cache did not answer. (A session kept by a password change is not
    told apart here: see :func:`is_void`.)"""
    value = _read(user_id)
    if value is UNKNOWN:
        return UNKNOWN
    parsed = _parse(value)
    return None if parsed is None else parsed[0]


def is_void(user_id: int, *, issued_at: int, family: str | None):
    """Whether an access token of ``user_id`` issued at ``issued_at`` (Unix seconds) for session
    ``family`` (its ``fam`` claim) was voided; UNKNOWN when the cache did not answer. One GET."""
    value = _read(user_id)
    if value is UNKNOWN:
        return UNKNOWN
    parsed = _parse(value)
    if parsed is None:
        return False
    before, keep = parsed
    return issued_at < before and not (keep is not None and family == keep)
