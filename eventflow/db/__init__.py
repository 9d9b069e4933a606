"""The primary and the optional read replica (``DATABASE_REPLICA_URL``).

Only reads that say so go to the replica: the public catalogue selectors ask
:func:`catalogue_db` and bind their querysets to the alias it names. Everything
else reads and writes the primary, so a replica that lags can never feed a
purchase, a stock check, the admin or an organizer's edit. The replica is used
only when all of these hold, else the primary answers:

- it is configured, and was reachable the last time it was tried (an unreachable
  one is skipped for ``DATABASE_REPLICA_RETRY_SECONDS``);
- no transaction is open on the primary (reads inside one must see its writes);
- this request has not written yet (a read after a write sees that write);
- the thing read has not changed in the last ``DATABASE_REPLICA_MAX_LAG_SECONDS``
  (the caller says when it changed), so a body built right after a change, and
  cached under the new version, is never built from a replica still behind.

What may still be stale, by the replica's lag (normally well under a second):
the public event list (its ``has_availability`` flags and ``?available=true``),
a public event's fields and ticket types (the detail's live stock is overlaid
from the primary), and the public ticket-type list's ``available``. None of it
decides a sale: a purchase locks and checks stock on the primary.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar

from django.conf import settings
from django.core.signals import request_started
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

REPLICA = "replica"

# Set when this request (or task) writes; cleared when the next request starts.
_wrote: ContextVar[bool] = ContextVar("eventflow_db_wrote", default=False)
# monotonic() until which an unreachable replica is not tried again (per process).
_replica_down_until = 0.0


def _request_started(**kwargs) -> None:
    _wrote.set(False)


request_started.connect(_request_started, dispatch_uid="eventflow.db.request_started")


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def _replica_reachable() -> bool:
    global _replica_down_until
    if time.monotonic() < _replica_down_until:
        return False
    try:
        connections[REPLICA].ensure_connection()
    except DatabaseError as exc:
        _replica_down_until = time.monotonic() + settings.DATABASE_REPLICA_RETRY_SECONDS
        logger.warning(
            "Read replica unreachable, reading from the primary for %ss: %s",
            settings.DATABASE_REPLICA_RETRY_SECONDS,
            exc,
        )
        return False
    return True


def catalogue_db(*, changed_at_ns: int | None = None) -> str:
    """The alias a public catalogue read may use: the replica when that is safe (module doc).

    ``changed_at_ns``: when what is read last changed (``time.time_ns()``), if known."""
    if not replica_configured():
        return DEFAULT_DB_ALIAS
    if connections[DEFAULT_DB_ALIAS].in_atomic_block or _wrote.get():
        return DEFAULT_DB_ALIAS
    if changed_at_ns is not None and time.time_ns() - changed_at_ns < settings.DATABASE_REPLICA_MAX_LAG_SECONDS * 1e9:
        return DEFAULT_DB_ALIAS
    return REPLICA if _replica_reachable() else DEFAULT_DB_ALIAS


class PrimaryReplicaRouter:
    """Writes always to the primary; reads to the primary unless a catalogue selector chose the
    replica (``.using(catalogue_db())``), whose related lookups (prefetches, foreign keys of the
    rows it loaded) stay on the replica while reading from it is still safe."""

    def db_for_read(self, model, **hints) -> str:
        instance = hints.get("instance")
        if (
            instance is not None
            and instance._state.db == REPLICA
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block
            and not _wrote.get()
        ):
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        _wrote.set(True)
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS  # the replica follows the primary's schema by replication
