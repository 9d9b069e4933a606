"""A hung Redis (it accepts connections and never answers, like a paused process) must not hold
requests: the cache is skipped after the first timeout, and /health answers within its deadline.

The hung server is a real listening socket that never reads: the kernel completes the TCP
handshake, and every command then waits, exactly as with ``kill -STOP`` on redis-server.
(bench/faults.py does the same against a real Redis under load.)
"""

from __future__ import annotations

import socket
import time

import pytest
from django.core.cache import cache

from accounts.tests.factories import UserFactory
from eventflow.redis_breaker import BREAKER
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import Order

pytestmark = pytest.mark.django_db


class HungRedis:
    """A listening socket that never answers; it counts the connections clients opened to it."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(128)  # handshakes complete in the backlog; nobody ever reads
        self.server.setblocking(False)
        self.accepted: list[socket.socket] = []  # kept open (and silent) so clients still wait
        self.url = f"redis://127.0.0.1:{self.server.getsockname()[1]}/0"

    def connections(self) -> int:
        while True:
            try:
                self.accepted.append(self.server.accept()[0])
            except BlockingIOError:
                return len(self.accepted)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.server.close()


@pytest.fixture
def hung_redis():
    hung = HungRedis()
    yield hung
    hung.close()


@pytest.fixture
def hung_redis_url(hung_redis):
    return hung_redis.url


@pytest.fixture
def hung_cache(settings, hung_redis_url):
    # Pinned, so the test does not depend on the defaults: one pause outlasts the whole test.
    settings.REDIS_SOCKET_TIMEOUT, settings.REDIS_BREAKER_SECONDS = 0.25, 60
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": hung_redis_url}}
    yield
    BREAKER.reset()


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_requests_wait_at_most_one_socket_timeout_then_skip_the_cache(api_client, hung_cache, hung_redis):
    EventFactory(status=Event.Status.PUBLISHED)
    r = api_client.get("/api/v1/events")
    assert r.status_code == 200
    assert r.json()["count"] == 1
    # throttle get, throttle set, list cache get, set...: only the first command reached the hung
    # server (and waited its socket timeout); the breaker then skipped the rest
    assert BREAKER.is_open
    assert hung_redis.connections() == 1
    for _ in range(5):
        r = api_client.get("/api/v1/events")
        assert r.status_code == 200
    assert hung_redis.connections() == 1  # the breaker is open: no network at all


def test_purchases_go_on_while_redis_hangs(hung_cache, hung_redis):
    from rest_framework.test import APIClient

    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=5)
    for _ in range(5):
        client = APIClient()
        client.force_authenticate(UserFactory())
        body = {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}]}
        r = client.post("/api/v1/orders", body)
        assert r.status_code == 201, r.content
    assert hung_redis.connections() == 1  # after the first command, no purchase waited for Redis
    tier.refresh_from_db()
    assert tier.available == 0
    assert Order.objects.count() == 5


def test_health_answers_within_its_deadline_naming_what_is_down(api_client, hung_cache, hung_redis_url, settings):
    # The deadline is the contract here (a load balancer's probe), so it is measured; pinned, not defaulted.
    settings.HEALTH_CHECK_TIMEOUT = 0.5
    settings.CELERY_BROKER_URL = hung_redis_url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    for _ in range(3):  # the first trips the breaker; later ones also queue behind stuck broker checks
        r, took = timed(lambda: api_client.get("/api/v1/health"))
        assert took < 1.0
        assert r.status_code == 200
        assert r.json() == {
            "status": "degraded",
            "database": "ok",
            "cache": "down",
            "broker": "down",
            "beat": "down",  # its heartbeat is in the hung cache
            "beat_age_seconds": None,
        }


def test_the_cache_is_used_again_when_redis_answers(settings, hung_redis_url):
    real = settings.CACHES["default"]["LOCATION"]
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": hung_redis_url}}
    assert cache.get("k") is None
    assert BREAKER.is_open
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": real}}
    assert cache.set("k", 1) is None  # skipped: the pause is not over
    assert cache.get("k") is None
    BREAKER._open_until = 0.0  # the pause ends (time is not raced: the breaker is told so)
    cache.set("k", 1)
    assert cache.get("k") == 1
    assert not BREAKER.is_open
