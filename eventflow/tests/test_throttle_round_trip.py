"""The DRF throttles' bookkeeping: one Redis round trip, atomic, DRF's sliding-window semantics."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from rest_framework.test import APIClient

from accounts.tests.test_auth import assert_problem
from eventflow import rawcache
from eventflow.api.throttling import AnonRateThrottle, OneRoundTripThrottle

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = "/api/v1/events"


@pytest.fixture
def clock(monkeypatch):
    now = [1_900_000_000.0]
    monkeypatch.setattr(OneRoundTripThrottle, "timer", staticmethod(lambda: now[0]))
    return now


@pytest.fixture
def three_per_minute(monkeypatch):
    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "3/min")


def test_the_window_slides_and_retry_after_says_when(clock, three_per_minute):
    client = APIClient(REMOTE_ADDR="10.40.0.1")
    for _ in range(3):
        assert client.get(EVENTS).status_code == 200
        clock[0] += 10
    r = client.get(EVENTS)
    assert_problem(r, 429, "throttled")
    assert r["Retry-After"] == "30"  # the first request leaves the window 60 s after it was made
    clock[0] += 30
    assert client.get(EVENTS).status_code == 200  # the first one has left the window
    assert_problem(client.get(EVENTS), 429, "throttled")
    assert APIClient(REMOTE_ADDR="10.40.0.2").get(EVENTS).status_code == 200  # per client


def test_the_window_is_one_sorted_set_that_expires(clock, three_per_minute):
    APIClient(REMOTE_ADDR="10.40.1.1").get(EVENTS)
    redis = rawcache.client()
    key = rawcache.key("throttle_anon_10.40.1.1")
    assert redis.zcard(key) == 1
    assert 0 < redis.ttl(key) <= 60


def test_racing_requests_never_get_past_the_limit(monkeypatch):
    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "10/min")
    barrier = threading.Barrier(8)

    def call(_index: int) -> int:
        try:
            barrier.wait(timeout=30)
            return APIClient(REMOTE_ADDR="10.40.2.1").get(EVENTS).status_code
        finally:
            connections.close_all()

    def burst(index: int) -> list[int]:
        return [call(index)] + [APIClient(REMOTE_ADDR="10.40.2.1").get(EVENTS).status_code for _ in range(2)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [status for statuses in pool.map(burst, range(8)) for status in statuses]
    assert statuses.count(200) == 10
    assert statuses.count(429) == 14


def test_without_redis_requests_go_through(monkeypatch, three_per_minute):
    class DeadRedis:
        def register_script(self, script):
            def fail(*args, **kwargs):
                raise rawcache.RedisError("down")

            return fail

    monkeypatch.setattr(rawcache, "client", lambda: DeadRedis())
    monkeypatch.setattr(OneRoundTripThrottle, "_scripts", {})
    client = APIClient(REMOTE_ADDR="10.40.3.1")
    assert [client.get(EVENTS).status_code for _ in range(5)] == [200] * 5
