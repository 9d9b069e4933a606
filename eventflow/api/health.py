"""GET /api/v1/health: can this process reach what it needs? Answered within a second.

A load balancer's probe must get an answer even when a dependency hangs (a
paused Redis accepts connections and never replies). The cache and broker
checks run in a small thread pool with short socket timeouts and a common
deadline (``HEALTH_CHECK_TIMEOUT``); a check that has not answered by then is
reported ``down``. The database check runs in the request's own thread, on the
connection requests use.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema
from kombu import Connection
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger("eventflow.health")

OK, DOWN = "ok", "down"


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


# Checks that talk to other servers run here, so the request can stop waiting at the deadline.
# A check stuck on a hung socket ends at its own socket timeout; until then it holds one thread,
# and checks queued behind busy threads also count as down when the deadline passes.
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")


def dependency_statuses() -> dict[str, str]:
    deadline = time.monotonic() + settings.HEALTH_CHECK_TIMEOUT
    pending = {"cache": _checks.submit(cache_status), "broker": _checks.submit(broker_status)}
    parts = {"database": database_status()}
    for name, future in pending.items():
        try:
            parts[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            logger.warning("health: %s did not answer within %ss", name, settings.HEALTH_CHECK_TIMEOUT)
            parts[name] = DOWN
    return parts


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded", "down"])
    database = serializers.ChoiceField(choices=[OK, DOWN])
    cache = serializers.ChoiceField(choices=[OK, DOWN])
    broker = serializers.ChoiceField(choices=[OK, DOWN])


class HealthApi(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []

    @extend_schema(
        tags=["system"],
        operation_id="health",
        responses={200: HealthSerializer, 503: HealthSerializer},
        description="`status` is `ok` when every part is up, `degraded` (still 200) when the cache or the "
        "broker is down, and `down` with 503 when the database is unreachable. The cache and the broker "
        "count as down when they do not answer within `HEALTH_CHECK_TIMEOUT` (0.5 s).",
    )
    def get(self, request: Request) -> Response:
        parts = dependency_statuses()
        if parts["database"] == DOWN:
            overall, code = "down", 503
        elif DOWN in parts.values():
            overall, code = "degraded", 200
        else:
            overall, code = "ok", 200
        return Response({"status": overall, **parts}, status=code, headers={"Cache-Control": "no-store"})
