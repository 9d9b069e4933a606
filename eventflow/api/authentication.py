"""JWT authentication without reading the user's row, telling an expired access token apart from a bad one.

simplejwt answers both with 401 ``token_not_valid``. A client seeing an
expired access token should refresh it quietly; one seeing a forged,
malformed or revoked token should sign in again. So an access token whose
signature is right but whose time is up answers 401 ``token_expired``.

simplejwt also reads the user's row on every request, to check that the account
still exists and is active. A purchase does not need the row: the token carries the
user's id, which is all the order needs. So the user is built from the token, with
every other field deferred (loaded in one read the first time any of them is used,
see ``accounts.models.User.refresh_from_db``), and what used to need the row is
answered by ``accounts.revocation``: deactivating or deleting an account, or
changing its password, voids its access tokens at once (401 ``token_revoked``).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import exceptions, status
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings

from accounts import revocation


class TokenExpired(exceptions.AuthenticationFailed):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "token_expired"
    default_detail = _("The access token has expired. Refresh it with POST /api/v1/auth/refresh.")


class TokenRevoked(exceptions.AuthenticationFailed):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "token_revoked"
    default_detail = _("This access token was revoked (password changed or account closed). Sign in again.")


class JWTAuthentication(authentication.JWTAuthentication):
    def get_validated_token(self, raw_token: bytes):
        expired = False
        for token_class in api_settings.AUTH_TOKEN_CLASSES:
            try:
                return token_class(raw_token)
            except ExpiredTokenError:  # raised only once the signature has been verified
                expired = True
            except TokenError:
                continue
        if expired:
            raise TokenExpired()
        raise InvalidToken(_("The token is invalid: not an access token, malformed, or signed with another key."))

    def get_user(self, validated_token):
        try:
            user_id = int(validated_token[api_settings.USER_ID_CLAIM])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidToken(_("Token contained no recognizable user identification")) from exc
        void = revocation.is_void(
            user_id, issued_at=int(validated_token.get("iat", 0)), family=validated_token.get("fam")
        )
        if void is revocation.UNKNOWN:
            return super().get_user(validated_token)  # the cache is down: the row decides, as it always did
        if void:
            raise TokenRevoked()
        return self.user_model.from_db("default", [api_settings.USER_ID_FIELD], [user_id])


class JWTScheme(SimpleJWTScheme):
    """The schema's ``jwtAuth`` security scheme, for this subclass too."""

    target_class = "eventflow.api.authentication.JWTAuthentication"
