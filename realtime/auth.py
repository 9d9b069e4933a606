"""``?token=<access JWT>`` on a WebSocket, checked as the REST API checks ``Authorization: Bearer``.

Browsers cannot set headers on a WebSocket, hence the query string (API.md). The token goes
through the REST API's own authenticator (``eventflow.api.authentication.JWTAuthentication``):
the same signature, expiry and revocation checks (a password change or a closed account voids
it at once). A socket whose token fails is accepted and closed at once with a close code saying
why (a close code needs an accepted socket; a refused handshake only tells the client "403"):

==== ==========================================================================
4401 no token, or not a valid access token (malformed, wrong key, a refresh token): sign in
4402 the access token expired (at connect, or while the socket was open): refresh, reconnect
4403 the access token was revoked (password changed, account closed): sign in again
4404 ``/ws/events/{id}/``: no such event (unknown, deleted, or a draft)
==== ==========================================================================
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions

from eventflow.api.authentication import JWTAuthentication, TokenExpired, TokenRevoked

CLOSE_TOKEN_INVALID = 4401
CLOSE_TOKEN_EXPIRED = 4402
CLOSE_TOKEN_REVOKED = 4403
CLOSE_NOT_FOUND = 4404


def authenticate(raw_token: str) -> tuple[object, int | None, int | None]:
    """``(user, token expiry as a Unix time, close code)``: the user and no code when the token is good."""
    auth = JWTAuthentication()
    try:
        token = auth.get_validated_token(raw_token.encode())
        user = auth.get_user(token)
    except TokenExpired:
        return AnonymousUser(), None, CLOSE_TOKEN_EXPIRED
    except TokenRevoked:
        return AnonymousUser(), None, CLOSE_TOKEN_REVOKED
    except exceptions.AuthenticationFailed:  # invalid, or (the cache down) an inactive or deleted account
        return AnonymousUser(), None, CLOSE_TOKEN_INVALID
    return user, int(token["exp"]), None


class QueryStringJWTMiddleware(BaseMiddleware):
    """Sets ``scope["user"]``, ``scope["token_exp"]`` and, when a token was sent and refused,
    ``scope["auth_close_code"]``; no token: an anonymous user and code 4401 for routes that need one."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        raw = (params.get("token") or [""])[0]
        scope["user"], scope["token_exp"], scope["auth_close_code"] = AnonymousUser(), None, CLOSE_TOKEN_INVALID
        if raw:
            scope["user"], scope["token_exp"], scope["auth_close_code"] = await database_sync_to_async(authenticate)(
                raw
            )
        return await super().__call__(scope, receive, send)


class BrowserOriginValidator(OriginValidator):
    """Channels' ``AllowedHostsOriginValidator``, letting through clients that send no ``Origin``.

    The check stops a page on another site from opening sockets from its visitors' browsers;
    browsers always send ``Origin``. Apps, scripts and servers do not, and carry their own token,
    so they are let in (Channels' validator refuses them)."""

    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or self.validate_origin(parsed_origin)


def origin_validator(application):
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(application, allowed)
