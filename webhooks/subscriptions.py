"""Who subscribes to what, answered without SQL or a network round trip on the purchase path.

Every order, check-in and cancellation asks "does this event's organizer have an endpoint for this
event type?". Almost always the answer is no, and the purchase (POST /orders) must not pay for
asking (bench/purchase_cost.py). So each process keeps a memo: event type -> the organizers with an
active endpoint for it (one query over the endpoints builds it), trusted for
``WEBHOOKS_SUBSCRIPTIONS_TTL_SECONDS``; after that one cache read of a version key says whether it
is still current. Any endpoint change clears this process's memo at once and bumps the version
after commit, so other processes follow within the TTL. An event type nobody subscribes to costs a
dictionary lookup; otherwise the event's organizer comes from a second memo (an event's organizer
does not change), filled by one query per event per process.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

VERSION_KEY = "webhooks:subscriptions:version"
_EVENTS_REMEMBERED = 20_000

_lock = threading.Lock()
# (checked at (monotonic), version, {event type: frozenset of organizer ids})
_state: tuple[float, object, dict[str, frozenset[int]]] | None = None
_event_organizers: dict[int, int] = {}


def _load() -> dict[str, frozenset[int]]:
    from .models import WebhookEndpoint

    by_type: dict[str, set[int]] = {}
    for organizer_id, events in WebhookEndpoint.objects.filter(is_active=True).values_list("organizer_id", "events"):
        for event_type in events or ():
            by_type.setdefault(event_type, set()).add(organizer_id)
    return {event_type: frozenset(ids) for event_type, ids in by_type.items()}


def current() -> dict[str, frozenset[int]]:
    """Event type -> organizers with an active endpoint for it (at most the TTL old)."""
    global _state
    state = _state
    now = time.monotonic()
    if state is not None and now - state[0] < settings.WEBHOOKS_SUBSCRIPTIONS_TTL_SECONDS:
        return state[2]
    with _lock:
        version = cache.get(VERSION_KEY)
        if version is None:
            cache.add(VERSION_KEY, time.time_ns(), timeout=None)
            version = cache.get(VERSION_KEY)
        still_current = state is not None and version is not None and version == state[1]
        by_type = state[2] if still_current else _load()
        _state = (now, version, by_type)
        return by_type


def subscriber(*, event_id: int, event_type: str) -> int | None:
    """The id of ``event_id``'s organizer if they have an active endpoint for ``event_type``."""
    organizers = current().get(event_type)
    if not organizers:
        return None
    organizer_id = _event_organizers.get(event_id)
    if organizer_id is None:
        from events.models import Event

        organizer_id = Event.objects.filter(pk=event_id).values_list("organizer_id", flat=True).first()
        if organizer_id is None:
            return None
        if len(_event_organizers) >= _EVENTS_REMEMBERED:
            _event_organizers.clear()
        _event_organizers[event_id] = organizer_id
    return organizer_id if organizer_id in organizers else None


def forget() -> None:
    """Drop this process's memo (the next question reloads it)."""
    global _state
    _state = None


def changed() -> None:
    """An endpoint was added, changed or removed: this process at once, the others after commit."""
    forget()

    def bump() -> None:
        cache.set(VERSION_KEY, time.time_ns(), timeout=None)
        forget()

    transaction.on_commit(bump)
