"""DRF's throttles, keyed on the client IP as ``eventflow.clientip`` defines it (``NUM_PROXIES``)."""

from rest_framework import throttling

from eventflow.clientip import client_ip


class AnonRateThrottle(throttling.AnonRateThrottle):
    def get_ident(self, request) -> str:
        return client_ip(request)


class UserRateThrottle(throttling.UserRateThrottle):
    def get_ident(self, request) -> str:
        return client_ip(request)
