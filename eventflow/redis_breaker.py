"""A circuit breaker for the cache's Redis connections.

Redis holds nothing a purchase needs to be correct (stock and its locks are in
PostgreSQL): throttle counters, cached pages, rate-limit windows. So when Redis
fails, requests should go on without it, quickly. A dead Redis refuses
connections at once, but a hung one (overloaded, paused, a network partition
that drops packets) accepts them and never answers: every cache command then
waits for its socket timeout, several times per request.

This connection class trips the breaker on the first connection or timeout
error; while it is open (``REDIS_BREAKER_SECONDS``), every cache command in
this process fails at once without touching the network, and django-redis'
``IGNORE_EXCEPTIONS`` turns that into "no cache" (throttles and rate limits fail
open, as documented). After the pause one command tries Redis again; if it
answers, the breaker closes. So a hung Redis costs one request at most one
socket timeout (``REDIS_SOCKET_TIMEOUT``) per pause, per process, and a flood
of identical tracebacks in the log becomes two lines: down, and back.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("eventflow.redis")

_FAILURES = (RedisConnectionError, RedisTimeoutError, OSError)


class CircuitOpen(RedisConnectionError):
    """Redis failed recently; not tried again until the pause is over."""


class Breaker:
    def __init__(self) -> None:
        self._open_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    def check(self) -> None:
        if self._open_until > time.monotonic():
            raise CircuitOpen("Redis failed recently; skipped until the breaker's pause ends.")

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self._open_until = time.monotonic() + settings.REDIS_BREAKER_SECONDS
            if not self._down:
                self._down = True
                logger.warning(
                    "Redis unavailable (%s): the cache is skipped for %ss at a time until it answers again.",
                    exc,
                    settings.REDIS_BREAKER_SECONDS,
                )

    def succeeded(self) -> None:
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    self._open_until = 0.0
                    logger.warning("Redis answers again: the cache is back in use.")

    @property
    def is_open(self) -> bool:
        return self._open_until > time.monotonic()

    def reset(self) -> None:
        with self._lock:
            self._open_until, self._down = 0.0, False


BREAKER = Breaker()


def _through_breaker(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except _FAILURES as exc:
        BREAKER.failed(exc)
        raise


class BreakerConnection(Connection):
    """redis-py's connection, failing fast while the breaker is open and tripping it on errors."""

    def connect(self, *args, **kwargs):
        BREAKER.check()
        return _through_breaker(super().connect, *args, **kwargs)

    def send_packed_command(self, *args, **kwargs):
        BREAKER.check()
        return _through_breaker(super().send_packed_command, *args, **kwargs)

    def read_response(self, *args, **kwargs):
        response = _through_breaker(super().read_response, *args, **kwargs)
        BREAKER.succeeded()
        return response
