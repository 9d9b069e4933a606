"""Catalogue caching with versioned keys.

Public list and detail bodies are cached for ``CATALOGUE_CACHE_SECONDS``
under keys that embed a version: the catalogue's (for lists) and the event's
(for its detail). A change bumps the versions after commit, so the next read
misses and rebuilds; nothing is ever flushed or searched for. Versions are
timestamps, so a version key lost from Redis never revives an old entry.

Stock moves far more often than the catalogue. Live numbers come from
:func:`availability`, cached for ``AVAILABILITY_CACHE_SECONDS`` (1 s) and
overlaid on cached detail bodies, so availability is never staler than that.

Bodies are kept rendered (JSON bytes) with their ETag, under keys without the
version; each entry records the version it was built for, and one MGET reads
the version, the entry (and for a detail, the availability snapshot) in a
single round trip. An entry whose version is not the current one is a miss.
A cached GET so costs one cache command besides the throttle's, and neither
a serializer nor a renderer runs (issue 10, bench/catalogue.py).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

CATALOGUE_VERSION_KEY = "events:catalogue:version"


def _event_version_key(event_id: int) -> str:
    return f"events:event:{event_id}:version"


def _availability_key(event_id: int) -> str:
    return f"events:event:{event_id}:availability"


def _version(key: str) -> int:
    version = cache.get(key)
    if version is None:
        cache.add(key, time.time_ns(), timeout=None)
        version = cache.get(key) or 0
    return version


def changed_at(event_id: int | None = None) -> int | None:
    """When the catalogue (or one event) last changed, in ``time.time_ns()``; None if unknown.

    The versions are those timestamps. The read replica is trusted only for what did not change
    in the last moments (eventflow/db/__init__.py)."""
    return cache.get(CATALOGUE_VERSION_KEY if event_id is None else _event_version_key(event_id))


def catalogue_changed(event_id: int | None = None) -> None:
    """Invalidate cached lists (and the event's detail) once the current transaction commits."""

    def bump() -> None:
        version = time.time_ns()
        cache.set(CATALOGUE_VERSION_KEY, version, timeout=None)
        if event_id is not None:
            cache.set(_event_version_key(event_id), version, timeout=None)
            cache.delete(_availability_key(event_id))

    transaction.on_commit(bump)


def stock_changed(event_id: int) -> None:
    """Drop the event's availability snapshot after commit (stock moved, the catalogue did not)."""
    transaction.on_commit(lambda: cache.delete(_availability_key(event_id)))


def _get_or_build(key: str, build: Callable[[], Any], timeout: float) -> Any:
    value = cache.get(key)
    if value is None:
        value = build()
        if value is not None:
            cache.set(key, value, timeout=timeout)
    return value


def _current(version_key: str, key: str, *others: str) -> tuple[int | None, Any, dict]:
    """The current version, the entry at ``key`` if it was built for that version, and ``others``:
    one round trip. A missing version is created (and so the entry is a miss)."""
    found = cache.get_many([version_key, key, *others])
    version = found.get(version_key)
    entry = found.get(key)
    if version is None:
        version, entry = _version(version_key), None
    elif entry is not None and entry[0] != version:
        entry = None
    return version, entry, found


def list_body(variant: str, build: Callable[[], bytes]) -> tuple[bytes, str]:
    """A public list page as rendered bytes and its ETag; ``variant`` names the host and the query."""
    key = f"events:list:{hashlib.sha256(variant.encode()).hexdigest()[:32]}"
    version, entry, _ = _current(CATALOGUE_VERSION_KEY, key)
    if entry is not None:
        return entry[1], entry[2]
    body = build()
    tag = etag(body)
    cache.set(key, (version, body, tag), timeout=settings.CATALOGUE_CACHE_SECONDS)
    return body, tag


def detail_body(
    event_id: int, variant: str, build: Callable[[], Any], build_availability: Callable[[], Any]
) -> tuple[Any, Any]:
    """The cached public detail (what ``build`` made of it: None for events that must not be cached,
    never stored) and the event's availability snapshot, from one round trip when both are cached.

    ``variant`` separates bodies that differ by request (the host in absolute URLs)."""
    key = f"events:detail:{event_id}:{hashlib.sha256(variant.encode()).hexdigest()[:16]}"
    availability_key = _availability_key(event_id)
    version, entry, found = _current(_event_version_key(event_id), key, availability_key)
    if entry is None:
        body = build()
        if body is None:
            return None, None
        entry = (version, body)
        cache.set(key, entry, timeout=settings.CATALOGUE_CACHE_SECONDS)
    snapshot = found.get(availability_key)
    if snapshot is None:
        snapshot = build_availability()
        if snapshot is not None:
            cache.set(availability_key, snapshot, timeout=settings.AVAILABILITY_CACHE_SECONDS)
    return entry[1], snapshot


def etag(body: bytes) -> str:
    """A strong entity tag for a rendered body: equal bodies, equal tags, whichever process made them."""
    return f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def availability(event_id: int, build: Callable[[], Any]) -> Any:
    return _get_or_build(_availability_key(event_id), build, settings.AVAILABILITY_CACHE_SECONDS)
