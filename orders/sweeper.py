"""Holds expire on time without Celery beat: an in-process sweep for the embedded default.

In production Celery beat runs ``orders.tasks.expire_reservations`` every
``EXPIRY_SWEEP_SECONDS``. The embedded default (``make run``: SQLite, no broker)
has no beat, so a reservation would stay ``reserved`` past ``expires_at`` until
the next purchase that found too little stock. With ``EXPIRY_SWEEP_IN_PROCESS``
(on by default exactly when there is no broker), the first request a server
process handles starts one daemon thread that runs the same service on the same
schedule, and the queued on-sale's sweep (``orders.queue.sweep``: a line whose
drain did not run is drained, stale requests expire). Management commands never start it.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections

from . import queue, services, waitlist

logger = logging.getLogger(__name__)

_started = threading.Event()
_lock = threading.Lock()


def sweep_once() -> int:
    """One sweep, as beat's task does it; never raises (the loop must outlive a bad moment)."""
    try:
        expired = services.expire_due_holds()
        queue.sweep()  # the queued on-sale's safety net, which beat runs elsewhere
        waitlist.offer_sweep()  # the waiting lists' safety net, likewise
        return expired
    except Exception:
        logger.exception("In-process expiry sweep failed; retrying on the next tick")
        return 0
    finally:
        close_old_connections()  # this thread's connection follows CONN_MAX_AGE like a request's


def _loop(stop: threading.Event) -> None:
    while not stop.wait(settings.EXPIRY_SWEEP_SECONDS):
        sweep_once()


def start(stop: threading.Event | None = None) -> bool:
    """Start the sweeper thread once per process; True if this call started it."""
    with _lock:
        if _started.is_set():
            return False
        _started.set()
    thread = threading.Thread(target=_loop, args=(stop or threading.Event(),), name="expiry-sweeper", daemon=True)
    thread.start()
    logger.info("In-process expiry sweep every %ss (no Celery beat in this deployment)", settings.EXPIRY_SWEEP_SECONDS)
    return True


def start_on_first_request(sender, **kwargs) -> None:
    start()
