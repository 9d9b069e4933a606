"""Pushing to WebSocket subscribers from any process, without the purchase path paying for it.

The domain signals (orders/signals.py, events/signals.py) arrive after their transaction
commits, in the request or task that made the change. A receiver here only records what to
push, in this process's memory: no SQL, no Redis round trip, a few attribute writes. One daemon
thread per process (started by the first record, again after a fork) sends it:

- ``order.status``, ``waitlist.offer``, ``event.cancelled``: queued messages; the thread is woken
  for them and sends what queued within ``BATCH_SECONDS`` together. A user's own messages go to
  the channel layer only when that user has a ``/ws/orders/`` socket open somewhere (a count per
  user in Redis, one ``HMGET`` per batch): most buyers in a sale have none.
- ``stock.updated`` / ``stock.low``: coalesced. A purchase marks its event dirty; every
  ``REALTIME_STOCK_PUSH_MS`` the thread reads the current stock of each dirty event (one query
  per event) and sends ``stock.updated`` only for the ticket types whose ``available`` moved
  since the last push, so a flash sale of thousands of purchases a second becomes one push per
  ``REALTIME_STOCK_PUSH_MS`` per event, the last one carrying the final count. Across processes (gunicorn and
  Celery workers each have their thread), a claim in the cache (Redis ``SET NX PX``) lets one
  process push an event per interval; a process that loses the claim keeps the event dirty and
  tries again next tick, so the final state is always pushed. The last pushed counts are kept
  in the cache too, so "what moved" and ``stock.low``'s crossing are judged across processes.
- ``event.updated``: coalesced per tick like stock (a save of the event and of three ticket types
  in one transaction is one message), and it marks the event's stock dirty (a capacity change).

Messages are ``{"type": ..., "data": ...}`` JSON texts, serialized once here and sent as they
are by every consumer. On the in-process channel layer (the embedded default, no Redis), the
only subscribers are this process's own sockets, served by the ASGI server's event loop: sends
go through that loop (``remember_server_loop``); with no socket ever opened there is nobody to
tell and the messages are dropped. With Redis the thread sends on an event loop of its own.

A push is best effort, like any notification: a send that fails (Redis away) is logged and
dropped, and so is what a process had recorded but not sent when it exits (a gunicorn worker
recycled after ``max_requests``); stock is pushed again with the next change, and clients
re-read state over REST when they (re)connect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import deque
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connections

from eventflow import rawcache

logger = logging.getLogger(__name__)

# The consumers' handler for every push (``RealtimeConsumer.realtime_push``).
PUSH = "realtime.push"
# The last pushed counts of an event are kept this long after its last push.
STATE_SECONDS = 24 * 3600
# Woken for a queued message, the thread waits this long for others to send them together.
BATCH_SECONDS = 0.02
# Open /ws/orders/ sockets per user id, across processes (a Redis hash; see ``online``).
ONLINE_KEY = "realtime:online"


def event_group(event_id: int) -> str:
    return f"event.{event_id}"


def user_group(user_id: int) -> str:
    return f"orders.{user_id}"


def message(kind: str, data: Any) -> str:
    return json.dumps({"type": kind, "data": data}, separators=(",", ":"), default=str)


def user_joined(user_id: int, delta: int = 1) -> None:
    """A /ws/orders/ socket of this user opened (``delta`` 1) or closed (-1): the publisher skips
    users with none. A count left behind by a server that died only costs a send to nobody."""
    client = rawcache.client()
    if client is None:
        return
    try:
        client.hincrby(rawcache.key(ONLINE_KEY), str(user_id), delta)
    except rawcache.RedisError:
        logger.warning("Could not count user %s's socket", user_id, exc_info=True)


def _online(user_ids: set[int]) -> set[int] | None:
    """Which of these users have a socket open anywhere; None when unknown (no Redis, or it failed)."""
    client = rawcache.client()
    if client is None or not user_ids:
        return None
    ids = sorted(user_ids)
    try:
        counts = client.hmget(rawcache.key(ONLINE_KEY), [str(i) for i in ids])
    except rawcache.RedisError:
        return None
    return {i for i, n in zip(ids, counts, strict=True) if n is not None and int(n) > 0}


def _state_key(event_id: int) -> str:
    return f"realtime:stock:{event_id}"


def _claim_key(event_id: int) -> str:
    return f"realtime:stock-claim:{event_id}"


class Publisher:
    """What this process has to push, and the thread that pushes it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._outbox: deque[tuple[str, str, int | None]] = deque()  # (group, text, user id), sent in order
        self._stock: set[int] = set()  # events whose stock may have moved
        self._updated: set[int] = set()  # events to send event.updated for
        self._pid: int | None = None  # the process the thread was started in
        self._stop = threading.Event()
        # The test suite turns recording off (conftest.py) but in realtime's own tests, which
        # call flush() themselves (autostart off) or run the thread and stop() it.
        self.enabled = True
        self.autostart = True
        self.server_loop: asyncio.AbstractEventLoop | None = None
        self._loops = threading.local()

    # --- Recording (called by the receivers, in requests and tasks) ---------------------------

    def stock_changed(self, event_id: int) -> None:
        if not self.enabled:
            return
        with self._lock:  # uncontended: well under a microsecond
            self._stock.add(event_id)
        self._start()

    def event_changed(self, event_id: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._updated.add(event_id)
            self._stock.add(event_id)
        self._start()

    def push(self, group: str, text: str, *, user_id: int | None = None) -> None:
        """Queue a message; ``user_id``: a user's own (skipped when they have no socket open)."""
        if not self.enabled:
            return
        self._outbox.append((group, text, user_id))
        self._start()
        self._wake.set()

    # --- The thread ----------------------------------------------------------------------------

    def _start(self) -> None:
        if self._pid == os.getpid() or not self.autostart:
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            # A forked child (a Celery or gunicorn worker) inherits the parent's flag, not its thread.
            self._pid = os.getpid()
            self._wake, self._stop = threading.Event(), threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="realtime-publisher", daemon=True
            )
        self._thread.start()

    def stop(self) -> None:
        """Stop this process's thread (tests); the next record starts a new one."""
        with self._lock:
            thread, self._pid = getattr(self, "_thread", None), None
            self._stop.set()
            self._wake.set()
        if thread is not None:
            thread.join(timeout=10)

    def _run(self, stop: threading.Event) -> None:
        interval = max(settings.REALTIME_STOCK_PUSH_MS, 10) / 1000
        next_stock = time.monotonic() + interval
        try:
            while not stop.is_set():
                if self._wake.wait(max(0.0, next_stock - time.monotonic())):
                    stop.wait(BATCH_SECONDS)  # a sale queues one per purchase: send them together
                self._wake.clear()
                if stop.is_set():
                    break
                stock_due = time.monotonic() >= next_stock
                try:
                    self.flush(stock=stock_due)
                except Exception:
                    logger.exception("Realtime push failed; the next tick goes on")
                if stock_due:
                    next_stock = time.monotonic() + interval
        finally:
            connections.close_all()

    def flush(self, *, stock: bool = True) -> int:
        """Send what is queued and, with ``stock``, the coalesced stock and event pushes; returns the
        number of messages sent. The thread's tick; tests call it directly."""
        queued = []
        while self._outbox:
            queued.append(self._outbox.popleft())
        # A user's own messages go only to users with a socket open: most buyers in a sale have none,
        # and one look-up for the batch replaces a channel-layer send per purchase.
        online = _online({user_id for _, _, user_id in queued if user_id is not None})
        sends = [
            (group, text) for group, text, user_id in queued if user_id is None or online is None or user_id in online
        ]
        if stock:
            with self._lock:
                dirty, self._stock = self._stock, set()
                updated, self._updated = self._updated, set()
            for event_id in sorted(updated):
                sends.append((event_group(event_id), message("event.updated", {"event": event_id})))
            if dirty:
                try:
                    for event_id in sorted(dirty):
                        try:
                            sends.extend(self._stock_messages(event_id))
                        except Exception:  # the database or the cache away: this event waits for the next tick
                            logger.warning("Could not read event %s's stock to push it", event_id, exc_info=True)
                            with self._lock:
                                self._stock.add(event_id)
                finally:
                    close_old_connections()  # this thread's connection follows CONN_MAX_AGE like a request's
        if sends:
            self._send(sends)
        return len(sends)

    def _stock_messages(self, event_id: int) -> list[tuple[str, str]]:
        from .selectors import stock_of_event

        interval = settings.REALTIME_STOCK_PUSH_MS / 1000  # 0: no claim (realtime's tests)
        # Another process pushed this event less than an interval ago: keep it dirty, try next tick.
        if interval > 0 and not cache.add(_claim_key(event_id), os.getpid(), timeout=interval * 0.9):
            with self._lock:
                self._stock.add(event_id)
            return []
        current = stock_of_event(event_id=event_id)
        previous = cache.get(_state_key(event_id)) or {}
        group = event_group(event_id)
        out = []
        for type_id, (available, threshold) in current.items():
            before = previous.get(type_id)
            if before == available:
                continue
            data = {"ticket_type": type_id, "available": available}
            out.append((group, message("stock.updated", data)))
            # Once per crossing from above the threshold to at or below it (unknown before: told).
            if available <= threshold and (before is None or before > threshold):
                out.append((group, message("stock.low", data)))
        if out or previous.keys() != current.keys():
            cache.set(_state_key(event_id), {k: v[0] for k, v in current.items()}, timeout=STATE_SECONDS)
        return out

    # --- Sending -------------------------------------------------------------------------------

    def _send(self, sends: list[tuple[str, str]]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return

        async def send_all() -> None:
            for group, text in sends:
                await layer.group_send(group, {"type": PUSH, "text": text})

        if isinstance(layer, InMemoryChannelLayer):
            # Its queues belong to the server's event loop; no loop yet: no socket to tell.
            loop = self.server_loop
            if loop is None or loop.is_closed():
                return
            asyncio.run_coroutine_threadsafe(send_all(), loop).result(timeout=10)
            return
        loop = getattr(self._loops, "loop", None)
        if loop is None:
            loop = self._loops.loop = asyncio.new_event_loop()  # the Redis layer's pool is per loop
        try:
            loop.run_until_complete(send_all())
        except Exception:
            logger.warning("Could not push %d realtime messages", len(sends), exc_info=True)


publisher = Publisher()


def remember_server_loop() -> None:
    """Called by the consumers, on the ASGI server's loop: the in-process layer sends through it."""
    publisher.server_loop = asyncio.get_running_loop()
