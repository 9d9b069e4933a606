"""GET /api/v1/health: can this process reach what it needs? Answered within a second.

A load balancer's probe must get an answer even when a dependency hangs (a
paused Redis accepts connections and never replies). The cache and broker
checks run in a small thread pool with short socket timeouts and a common
deadline (``HEALTH_CHECK_TIMEOUT``); a check that has not answered by then is
reported ``down``. The database check runs in the request's own thread, on the
connection requests use.

``beat`` is the age of beat's heartbeat (eventflow/heartbeat.py): ``ok`` when a worker ran it
within ``HEALTH_BEAT_STALE_SECONDS``, ``stale`` when longer ago, ``down`` when no heartbeat
can be read (never recorded, or the cache that holds it does not answer), ``off`` where
there is no beat by design: the embedded default, whose server sweeps holds itself, and any
configuration that runs tasks eagerly (``CELERY_TASK_ALWAYS_EAGER``: nothing is queued, so no
worker would run beat's heartbeat). Stale or down
makes the whole ``degraded``, still a 200: the API serves, but held tickets may not be
returned to sale on time. Only a database that is down makes it a 503.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextvars import copy_context
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema
from kombu import Connection
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from eventflow import heartbeat

logger = logging.getLogger("eventflow.health")

OK, DOWN = "ok", "down"
STALE, OFF = "stale", "off"
_clock = time.time  # wall time: the heartbeat was written by another host (tests set their own)


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("health: database down: %s", exc)
        # Drop the broken connection so the next request reconnects.
        connection.close_if_unusable_or_obsolete()
        return DOWN
    return OK


def cache_status() -> str:
    """A write and a read of a throw-away key: the cache may swallow errors."""
    key, value = f"health:{uuid.uuid4().hex}", uuid.uuid4().hex
    try:
        cache.set(key, value, timeout=5)
        ok = cache.get(key) == value
        cache.delete(key)
    except Exception as exc:  # any backend error means "down"
        logger.warning("health: cache down: %s", exc)
        return DOWN
    return OK if ok else DOWN


def broker_status() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER and settings.CELERY_BROKER_URL == "memory://":
        return OK  # embedded default: tasks run in-process, there is no broker to reach
    timeout = settings.HEALTH_CHECK_TIMEOUT
    # Socket timeouts for every read, not only the connect: a hung broker accepts and never answers.
    options = {"max_retries": 0, "socket_timeout": timeout, "socket_connect_timeout": timeout}
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options) as conn:
            conn.ensure_connection(max_retries=0, timeout=timeout)
    except Exception as exc:  # kombu raises transport-specific errors
        logger.warning("health: broker down: %s", exc)
        return DOWN
    return OK


def beat_status(now: float | None = None) -> tuple[str, int | None]:
    """The heartbeat's state and age in whole seconds (None when there is none to read)."""
    try:
        last = heartbeat.last_run()
    except Exception as exc:  # the cache may raise rather than swallow
        logger.warning("health: beat's heartbeat unreadable: %s", exc)
        return DOWN, None
    if last is None:
        return DOWN, None
    age = max(0, int((_clock() if now is None else now) - last))  # clocks of two hosts: never negative
    return (OK if age <= settings.HEALTH_BEAT_STALE_SECONDS else STALE), age


def beat_off() -> bool:
    """No beat by design: the server sweeps holds itself, or tasks run eagerly (no worker)."""
    return settings.EXPIRY_SWEEP_IN_PROCESS or settings.CELERY_TASK_ALWAYS_EAGER


# Checks that talk to other servers run here, so the request can stop waiting at the deadline.
# A check stuck on a hung socket ends at its own socket timeout; until then it holds one thread,
# and checks queued behind busy threads also count as down when the deadline passes.
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")


def _submit(check: Callable[[], Any]) -> Future:
    return _checks.submit(copy_context().run, check)


def dependency_statuses() -> dict[str, Any]:
    deadline = time.monotonic() + settings.HEALTH_CHECK_TIMEOUT
    # In the request's context, so a check's warning carries the probe's request id.
    pending = {"cache": _submit(cache_status), "broker": _submit(broker_status)}
    beat = None if beat_off() else _submit(beat_status)
    parts: dict[str, Any] = {"database": database_status()}
    for name, future in pending.items():
        try:
            parts[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            logger.warning("health: %s did not answer within %ss", name, settings.HEALTH_CHECK_TIMEOUT)
            parts[name] = DOWN
    if beat is None:
        parts["beat"], parts["beat_age_seconds"] = OFF, None
    else:
        try:
            parts["beat"], parts["beat_age_seconds"] = beat.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            logger.warning("health: beat's heartbeat not read within %ss", settings.HEALTH_CHECK_TIMEOUT)
            parts["beat"], parts["beat_age_seconds"] = DOWN, None
    return parts


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded", "down"])
    database = serializers.ChoiceField(choices=[OK, DOWN])
    cache = serializers.ChoiceField(choices=[OK, DOWN])
    broker = serializers.ChoiceField(choices=[OK, DOWN])
    beat = serializers.ChoiceField(
        choices=[OK, STALE, DOWN, OFF],
        help_text="Beat's heartbeat: `ok` if a worker ran it within `HEALTH_BEAT_STALE_SECONDS` (90 s), "
        "`stale` if longer ago, `down` if none can be read, `off` where there is no beat (the embedded "
        "default, whose server sweeps expired holds itself, or tasks run eagerly, without workers).",
    )
    beat_age_seconds = serializers.IntegerField(
        min_value=0,
        allow_null=True,
        help_text="Seconds since a worker last ran the heartbeat that beat sends every "
        "`HEALTH_BEAT_SECONDS` (30 s) on the expiry queue; null when `beat` is `down` or `off`.",
    )


class HealthApi(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []

    @extend_schema(
        tags=["system"],
        operation_id="health",
        responses={200: HealthSerializer, 503: HealthSerializer},
        description="`status` is `ok` when every part is up, `degraded` (still 200) when the cache or the "
        "broker is down or beat's heartbeat is `stale` or `down`, and `down` with 503 when the database is "
        "unreachable. The cache, the broker and the heartbeat's read count as down when they do not answer "
        "within `HEALTH_CHECK_TIMEOUT` (0.5 s).",
    )
    def get(self, request: Request) -> Response:
        parts = dependency_statuses()
        if parts["database"] == DOWN:
            overall, code = "down", 503
        elif DOWN in (parts["cache"], parts["broker"]) or parts["beat"] in (STALE, DOWN):
            overall, code = "degraded", 200
        else:
            overall, code = "ok", 200
        return Response({"status": overall, **parts}, status=code, headers={"Cache-Control": "no-store"})
