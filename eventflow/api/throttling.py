"""DRF's throttles, keyed on the client IP as ``eventflow.clientip`` defines it (``NUM_PROXIES``)."""

from rest_framework import throttling

from eventflow.clientip import client_ip


class AnonRateThrottle(throttling.AnonRateThrottle):
    def get_ident(self, request) -> str:
        return client_ip(request)


class UserRateThrottle(throttling.UserRateThrottle):
    """Signed-in callers, by user id.

    DRF's counts anonymous callers here too, by IP, beside AnonRateThrottle's own
    count of the same requests. While the anonymous rate is the stricter one (as
    configured by default: 120/min against 600/min), that second count can never
    refuse a request the first allowed, and costs two Redis commands on every
    anonymous request (a third of a cached catalogue GET's CPU, bench/catalogue.py).
    So it is kept only when the anonymous rate is configured looser than this one.
    """

    def get_cache_key(self, request, view) -> str | None:
        if not (request.user and request.user.is_authenticated) and _anon_is_stricter(self):
            return None
        return super().get_cache_key(request, view)

    def get_ident(self, request) -> str:
        return client_ip(request)


def _anon_is_stricter(user_throttle: UserRateThrottle) -> bool:
    anon = AnonRateThrottle().get_rate()
    if anon is None or user_throttle.rate is None:
        return anon is not None  # no user limit: the anonymous one is all there is
    anon_requests, anon_seconds = user_throttle.parse_rate(anon)
    return anon_requests * user_throttle.duration <= user_throttle.num_requests * anon_seconds
