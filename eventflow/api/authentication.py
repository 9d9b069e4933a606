"""JWT authentication that tells an expired access token apart from a bad one.

simplejwt answers both with 401 ``token_not_valid``. A client seeing an
expired access token should refresh it quietly; one seeing a forged,
malformed or revoked token should sign in again. So an access token whose
signature is right but whose time is up answers 401 ``token_expired``.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import exceptions, status
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings


class TokenExpired(exceptions.AuthenticationFailed):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "token_expired"
    default_detail = _("The access token has expired. Refresh it with POST /api/v1/auth/refresh.")


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


class JWTScheme(SimpleJWTScheme):
    """The schema's ``jwtAuth`` security scheme, for this subclass too."""

    target_class = "eventflow.api.authentication.JWTAuthentication"
