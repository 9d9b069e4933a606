"""Errors the accounts services raise; each has a stable code (see API.md)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import status

from eventflow.api.errors import ApplicationError, Conflict


class EmailTaken(ApplicationError):
    default_code = "email_taken"
    default_detail = _("A user with this email address already exists.")

    def __init__(self) -> None:
        super().__init__(field="email")


class InvalidCredentials(ApplicationError):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "invalid_credentials"
    default_detail = _("No active account matches this email and password.")
    auth_header = 'Bearer realm="api"'


class RefreshTokenInvalid(ApplicationError):
    default_code = "token_not_valid"
    default_detail = _("The refresh token is invalid, expired or already revoked.")

    def __init__(self) -> None:
        super().__init__(field="refresh")


class RefreshRejected(ApplicationError):
    """A refresh that cannot go on: 401, so the client signs in again."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "token_not_valid"
    default_detail = _("The refresh token is invalid, expired or revoked. Sign in again.")
    auth_header = 'Bearer realm="api"'


class OrganizerProfileExists(Conflict):
    default_code = "organizer_exists"
    default_detail = _("You already have an organizer profile; update it with PATCH.")


class SlugTaken(ApplicationError):
    default_code = "slug_taken"
    default_detail = _("Another organizer already uses this slug.")

    def __init__(self) -> None:
        super().__init__(field="slug")


class CsrfFailed(ApplicationError):
    """A request that authenticates with the refresh cookie failed Django's CSRF check."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "csrf_failed"
    default_detail = _("The CSRF check failed: send the X-CSRFToken header (GET /auth/csrf) from an allowed origin.")
