"""Access tokens stop working at once when their user is deactivated or deleted, changes password,
or ends a session.

Access tokens are checked without reading the user's row (a purchase must not pay for a
user SELECT: issue 10). What makes a token void before it expires is recorded in the cache
instead, one Redis hash per user, kept as long as an access token can live:

- ``before``: tokens issued before this Unix second are void (``all``: every token, for a
  deactivated or deleted account);
- ``keep``: except those of this session (``fam`` claim), the one that changed its password
  (``POST /auth/password/change``) and stays signed in;
- ``s:<session id>``: the tokens of this ended session are void (``DELETE /users/me/sessions/{id}``).

The authenticator reads the whole hash with one HGETALL (one round trip, as the GET before it).
When the cache cannot answer, it reads the user's row as before, so a Redis outage never lets a
deactivated account back in; a marker that could not be written (Redis down at that moment) is
logged. (A marker of the older string format, under the same name, answers WRONGTYPE, a
RedisError: the row decides for the minutes until it expires.)

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

_ALL = "all"
_BEFORE, _KEEP, _SESSION = "before", "keep", "s:"


def _key(user_id: int) -> str:
    # The name of the older string marker, kept: during a deploy, a string answers WRONGTYPE and the
    # row decides, where a new name would leave the older markers unread.
    return f"auth:void-before:{user_id}"


def _lifetime() -> int:
    return int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()) + 60


def _write(user_id: int, fields: dict[str, str], *, drop: tuple[str, ...] = ()) -> None:
    """Set ``fields`` (and remove ``drop``) in the user's marker; its lifetime starts again."""
    client = rawcache.client()
    try:
        if client is None:  # the embedded in-process cache: one process, no race to guard against
            marker = cache.get(_key(user_id))
            marker = {k: v for k, v in marker.items() if k not in drop} if isinstance(marker, dict) else {}
            cache.set(_key(user_id), {**marker, **fields}, timeout=_lifetime())
            return
        name = rawcache.key(_key(user_id))
        with client.pipeline(transaction=True) as pipe:
            if drop:
                pipe.hdel(name, *drop)
            pipe.hset(name, mapping=fields)
            pipe.expire(name, _lifetime())
            pipe.execute()
    except rawcache.RedisError as exc:
        logger.warning("Could not record that user %s's access tokens are void: %s", user_id, exc)


def void_tokens(user_id: int, *, every: bool = False, keep_family: str | None = None) -> None:
    """The access tokens of ``user_id`` issued up to now stop working; with ``every``, all of them
    (a deactivated or deleted account has no legitimate token, whatever second it was issued in).
    ``keep_family``: except those of this session (the one that changed the password)."""
    if every:
        _write(user_id, {_BEFORE: _ALL}, drop=(_KEEP,))
        return
    # ``iat`` has whole seconds: a token issued earlier in this very second survives, and so does
    # the one the login after a password change issues.
    before = {_BEFORE: str(int(time.time()))}
    if keep_family:
        _write(user_id, {**before, _KEEP: str(keep_family)})
    else:
        _write(user_id, before, drop=(_KEEP,))


def void_session(user_id: int, family: str) -> None:
    """The access tokens of one session of ``user_id`` stop working (it was ended by its owner)."""
    _write(user_id, {f"{_SESSION}{family}": "1"})


def account_reactivated(user_id: int) -> None:
    """An account active again: the marker its deactivation left goes (later markers stay)."""
    client = rawcache.client()
    try:
        if client is None:
            marker = cache.get(_key(user_id))
            if isinstance(marker, dict) and marker.get(_BEFORE) == _ALL:
                del marker[_BEFORE]
                cache.set(_key(user_id), marker, timeout=_lifetime())
        elif client.hget(rawcache.key(_key(user_id)), _BEFORE) == _ALL.encode():
            client.hdel(rawcache.key(_key(user_id)), _BEFORE)
    except rawcache.RedisError as exc:
        logger.warning("Could not clear user %s's deactivation marker: %s", user_id, exc)


def _read(user_id: int):
    client = rawcache.client()
    try:
        if client is None:
            marker = cache.get(_key(user_id)) or {}
            return marker if isinstance(marker, dict) else UNKNOWN
        raw = client.hgetall(rawcache.key(_key(user_id)))
    except rawcache.RedisError:
        return UNKNOWN
    return {k.decode(): v.decode() for k, v in raw.items()}


def _before(marker: dict) -> float | None:
    value = marker.get(_BEFORE)
    if value is None:
        return None
    return math.inf if value == _ALL else int(value)


def void_before(user_id: int):
    """Tokens of this user issued before this Unix time are void: None if none are, ``math.inf`` if
    all are, UNKNOWN when the cache did not answer. (A kept or ended session is not told apart
    here: see :func:`is_void`.)"""
    marker = _read(user_id)
    return UNKNOWN if marker is UNKNOWN else _before(marker)


def is_void(user_id: int, *, issued_at: int, family: str | None):
    """Whether an access token of ``user_id`` issued at ``issued_at`` (Unix seconds) for session
    ``family`` (its ``fam`` claim) was voided; UNKNOWN when the cache did not answer. One round trip."""
    marker = _read(user_id)
    if marker is UNKNOWN:
        return UNKNOWN
    if not marker:
        return False
    if family and f"{_SESSION}{family}" in marker:
        return True
    before = _before(marker)
    if before is None or issued_at >= before:
        return False
    return not (before != math.inf and family and marker.get(_KEEP) == str(family))
