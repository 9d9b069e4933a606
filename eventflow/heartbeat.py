"""Beat's heartbeat: proof that scheduled work still runs, for /api/v1/health.

Celery beat has no "last tick" that another process can read, and a beat that ticks is
not enough: the expiry sweep that returns held tickets to sale also needs the broker to
deliver it and a worker to run it. So beat sends ``beat_heartbeat`` every
``HEALTH_BEAT_SECONDS`` on the expiry queue, the one the sweep uses, and the worker that runs
it writes the time into the cache (Redis). Its age, as /health reports it, is the time since
scheduled work last ran end to end: beat scheduling, the broker delivering, an expiry worker
keeping up. The message expires after one interval, so a backlog is skipped, not replayed,
and the age keeps growing while the sweep's queue is stuck.
"""

from __future__ import annotations

import time

from celery import shared_task

CACHE_KEY = "health:beat"
_clock = time.time  # wall time, compared by /health on another host (tests set their own)


def record(now: float | None = None) -> None:
    from django.core.cache import cache

    # No timeout: an old value is what tells /health that beat stopped.
    cache.set(CACHE_KEY, _clock() if now is None else now, timeout=None)


def last_run() -> float | None:
    """When a worker last ran the heartbeat (Unix time), or None if none is recorded."""
    from django.core.cache import cache

    value = cache.get(CACHE_KEY)
    return float(value) if isinstance(value, int | float) else None


@shared_task(ignore_result=True)
def beat_heartbeat() -> None:
    record()
