"""EventFlow's Prometheus metrics: the business counters and the request latency histogram.

Why ``prometheus_client`` itself and not django-prometheus: its two middlewares record several
series per request (and its database and cache backends, to count queries, wrap every
statement), a cost the purchase path budgets like SQL (DESIGN.md, "Scale"). Here a request
costs one histogram observation (``observability.middleware``, about 1 µs; 2 µs with the
multiprocess files), and a purchase one receiver of the order signal after commit
(``observability.receivers``): +1.4 % instructions per POST /orders in bench/purchase_cost.py,
no SQL statement, no Redis round trip.

Processes. Gunicorn runs several workers and Celery its own processes. With the environment
variable ``PROMETHEUS_MULTIPROC_DIR`` set (the image's Compose services set it), every process
writes its values to memory-mapped files in that directory and ``exposition`` adds them up, so
one scrape of ``/metrics`` sees every worker of that gunicorn (or that Celery worker, through
``observability.worker``). The directory is emptied when gunicorn's master or a Celery worker
starts (``reset_multiprocess_dir``). Without the variable (``make run``, the tests) the values
live in the process, in prometheus_client's default registry.

This module imports nothing from Django, so gunicorn's master and a Celery worker's main process
can call it before Django is set up, and other apps can count without depending on settings.
The variable is read when prometheus_client is first imported: set it before the process starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
from collections.abc import Iterator

_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if _MULTIPROC_DIR:
    # prometheus_client opens its files there on the first metric: the directory must exist.
    os.makedirs(_MULTIPROC_DIR, exist_ok=True)

from prometheus_client import (  # noqa: E402 - after the directory exists
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.mmap_dict import MmapedDict  # noqa: E402

# The ``*_created`` timestamp series double the output and no dashboard reads them.
disable_created_metrics()

# --- Business counters ----------------------------------------------------------------------
# Counted after the change commits (the domain signals are sent on commit), so a purchase that
# rolled back is never counted. Names are the exposed ones without prometheus_client's "_total".

ORDERS_PLACED = Counter(
    "eventflow_orders_placed", "Orders placed: tickets held for payment, or a free order paid at once."
)
ORDERS_PAID = Counter("eventflow_orders_paid", "Orders that became paid (a payment settled, or a free order).")
SOLD_OUT = Counter(
    "eventflow_sold_out",
    "Purchases answered sold_out: by the API (409) or, for a queued on-sale, by the line's worker.",
    ["source"],
)
HOLDS_EXPIRED = Counter("eventflow_holds_expired", "Unpaid orders whose hold expired, their tickets back on sale.")
PAYMENTS = Counter("eventflow_payments", "Payments the gateway settled (succeeded) or reported failed.", ["outcome"])
REFUNDS = Counter(
    "eventflow_refunds",
    "Refunds: requested (the refund recorded), succeeded (the gateway confirmed), failed (given up).",
    ["outcome"],
)
CHECKINS = Counter("eventflow_checkins", "Tickets admitted at the door for the first time.")
WEBHOOK_FAILURES = Counter("eventflow_webhook_failures", "Outbound webhook delivery attempts that failed.")
API_ERRORS = Counter(
    "eventflow_api_errors", "Problem responses the API answered, by status and code.", ["status", "code"]
)

# --- Requests ---------------------------------------------------------------------------------

HTTP_DURATION = Histogram(
    "eventflow_http_request_duration_seconds",
    "Time from the first middleware to the response, by URL pattern, method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0),
)

# --- Small helpers other apps call --------------------------------------------------------------

_sold_out_api = SOLD_OUT.labels("api")
_sold_out_queue = SOLD_OUT.labels("queue")


def sold_out_queued(count: int) -> None:
    """``count`` queued purchases were refused ``sold_out`` by the line's worker (committed)."""
    if count:
        _sold_out_queue.inc(count)


def problem_answered(status: int, code: str) -> None:
    """The API answered a problem; a 409 ``sold_out`` also counts as a sold-out answer."""
    API_ERRORS.labels(str(status), code).inc()
    if code == "sold_out":
        _sold_out_api.inc()


def webhook_delivery_failed(**kwargs: object) -> None:
    """One outbound webhook delivery attempt failed. A signal receiver: connect it to the webhooks
    app's failure signal (``signal.connect(webhook_delivery_failed, dispatch_uid=...)``), or call it."""
    WEBHOOK_FAILURES.inc()


# --- Exposition and the multiprocess directory ----------------------------------------------------


def multiprocess_dir() -> str:
    """The directory of the multiprocess mode, or "" in single-process mode."""
    return _MULTIPROC_DIR


@contextlib.contextmanager
def _directory_lock(exclusive: bool) -> Iterator[None]:
    """Readers (a scrape) share the directory; folding a dead process's files in takes it alone, so
    no scrape sees its values twice (in the archive and in its file) or not at all."""
    with open(os.path.join(_MULTIPROC_DIR, "lock"), "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format and its content type: every process's values added up
    in multiprocess mode, this process's otherwise."""
    if _MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=_MULTIPROC_DIR)
        with _directory_lock(exclusive=False):
            return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def reset_multiprocess_dir() -> None:
    """Remove the files of earlier runs: called once by the parent process (gunicorn's master, a
    Celery worker's main process) before any child writes. Counters then start from zero, which
    Prometheus' ``rate()`` reads as a restart."""
    if not _MULTIPROC_DIR:
        return
    for path in glob.glob(os.path.join(_MULTIPROC_DIR, "*.db")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def process_exited(pid: int) -> None:
    """A child process is gone: its counters and histograms are added to the ``archive`` files and
    its own files removed, its live gauges' files dropped.

    Gunicorn replaces each worker after ``max_requests`` (deploy/gunicorn.conf.py): without the
    fold, every replaced worker would leave its files behind, and each scrape would read more of
    them, thousands a day under a busy sale. Called by the parent only (gunicorn's master), one
    process at a time, so the archive has one writer."""
    if not _MULTIPROC_DIR:
        return
    with _directory_lock(exclusive=True):
        for kind in ("counter", "histogram"):  # values that add up; histogram buckets are stored per bucket
            dead = os.path.join(_MULTIPROC_DIR, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            archive = MmapedDict(os.path.join(_MULTIPROC_DIR, f"{kind}_archive.db"))
            try:
                for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(dead):
                    archive.write_value(key, archive.read_value(key)[0] + value, 0.0)  # zeros too: every bucket stays
            finally:
                archive.close()
            os.remove(dead)
        multiprocess.mark_process_dead(pid, _MULTIPROC_DIR)
