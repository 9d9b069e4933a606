"""Catalogue caching with versioned keys.

Public list and detail bodies are cached for ``CATALOGUE_CACHE_SECONDS``
under keys that embed a version: the catalogue's (for lists) and the event's
(for its detail). A change bumps the versions after commit, so the next read
misses and rebuilds; nothing is ever flushed or searched for. Versions are
timestamps, so a version key lost from Redis never revives an old entry.

Stock moves far more often than the catalogue. Live numbers come from
:func:`availability`, cached for ``AVAILABILITY_CACHE_SECONDS`` (1 s) and
overlaid on cached detail bodies, so availability is never staler than that.
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


def list_body(query_string: str, build: Callable[[], Any]) -> Any:
    digest = hashlib.sha256(query_string.encode()).hexdigest()[:32]
    key = f"events:list:{_version(CATALOGUE_VERSION_KEY)}:{digest}"
    return _get_or_build(key, build, settings.CATALOGUE_CACHE_SECONDS)


def detail_body(event_id: int, variant: str, build: Callable[[], Any]) -> Any:
    """The cached public detail body; ``build`` returns None for events that must not be cached.

    ``variant`` separates bodies that differ by request (the host in absolute URLs)."""
    digest = hashlib.sha256(variant.encode()).hexdigest()[:16]
    key = f"events:detail:{event_id}:{_version(_event_version_key(event_id))}:{digest}"
    return _get_or_build(key, build, settings.CATALOGUE_CACHE_SECONDS)


def availability(event_id: int, build: Callable[[], Any]) -> Any:
    return _get_or_build(_availability_key(event_id), build, settings.AVAILABILITY_CACHE_SECONDS)
