"""DRF's throttles, keyed on the client IP as ``eventflow.clientip`` defines it (``NUM_PROXIES``),
with their bookkeeping in one Redis round trip.

DRF's ``SimpleRateThrottle`` keeps each client's request times as a pickled list: a GET
to read it and a SET to write it back, two round trips per request (and two concurrent
requests of one client can each write their own list, losing one). Here the same sliding
window lives in a sorted set, trimmed, counted and appended by one Lua script: one round
trip, atomic, with exactly DRF's semantics (at most N requests in any window of the rate's
period). When the cache is not Redis (the embedded default) DRF's own bookkeeping runs;
when Redis does not answer, requests are let through, as the cache's ``IGNORE_EXCEPTIONS``
does for every other limit.
"""

from __future__ import annotations

import math
import secrets

from rest_framework import throttling

from eventflow import rawcache
from eventflow.clientip import client_ip

# KEYS[1]: the window's sorted set; ARGV: now, period (s), limit, a unique member for this request.
# Returns {1} when the request is let through, else {0, time of the oldest request in the window}.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, oldest[2]}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(period))
return {1}
"""


class OneRoundTripThrottle(throttling.SimpleRateThrottle):
    _scripts: dict[int, object] = {}

    def get_ident(self, request) -> str:
        return client_ip(request)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        client = rawcache.client()
        if client is None:
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(_SLIDING_WINDOW)
        member = f"{self.now!r}:{secrets.token_hex(4)}"
        try:
            result = script(
                keys=[rawcache.key(self.key)], args=[repr(self.now), self.duration, self.num_requests, member]
            )
        except rawcache.RedisError:
            return True  # fail open, like every cache-backed limit
        if result[0] == 1:
            return True
        self.oldest = float(result[1])
        return False

    def wait(self) -> float | None:
        oldest = getattr(self, "oldest", None)
        if oldest is None:
            return super().wait()
        return max(1.0, math.ceil(self.duration - (self.now - oldest)))


class AnonRateThrottle(OneRoundTripThrottle, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(OneRoundTripThrottle, throttling.UserRateThrottle):
    """Signed-in callers, by user id.

    DRF's counts anonymous callers here too, by IP, beside AnonRateThrottle's own
    count of the same requests. While the anonymous rate is the stricter one (as
    configured by default: 120/min against 600/min), that second count can never
    refuse a request the first allowed, and costs a Redis round trip on every
    anonymous request (a large share of a cached catalogue GET, bench/catalogue.py).
    So it is kept only when the anonymous rate is configured looser than this one.
    """

    def get_cache_key(self, request, view) -> str | None:
        if not (request.user and request.user.is_authenticated) and _anon_is_stricter(self):
            return None
        return super().get_cache_key(request, view)


def _anon_is_stricter(user_throttle: UserRateThrottle) -> bool:
    anon = AnonRateThrottle().get_rate()
    if anon is None or user_throttle.rate is None:
        return anon is not None  # no user limit: the anonymous one is all there is
    anon_requests, anon_seconds = user_throttle.parse_rate(anon)
    return anon_requests * user_throttle.duration <= user_throttle.num_requests * anon_seconds
