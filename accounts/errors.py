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


# --- Two-factor authentication and account deletion (accounts.twofactor, accounts.privacy) ----


class OtpRequired(ApplicationError):
    """The password was right; the account has 2FA on and no code came with it."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "otp_required"
    default_detail = _("This account has two-factor authentication on: send the code from your app as `otp`.")
    auth_header = 'Bearer realm="api"'

    def __init__(self) -> None:
        super().__init__(field="otp")


class OtpInvalid(ApplicationError):
    """A wrong, expired or already used code (or recovery code) at login: 401."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "otp_invalid"
    default_detail = _("This code is wrong, expired or already used.")
    auth_header = 'Bearer realm="api"'

    def __init__(self) -> None:
        super().__init__(field="otp")


class OtpRejected(ApplicationError):
    """A wrong code where the caller is already signed in (enable, disable, new recovery codes, delete): 400."""

    default_code = "otp_invalid"
    default_detail = _("This code is wrong, expired or already used.")

    def __init__(self) -> None:
        super().__init__(field="otp")


class TwoFactorAlreadyEnabled(Conflict):
    default_code = "2fa_already_enabled"
    default_detail = _("Two-factor authentication is already on; disable it first to set up a new app.")


class TwoFactorNotEnabled(Conflict):
    default_code = "2fa_not_enabled"
    default_detail = _("Two-factor authentication is not on for this account.")


class TwoFactorNotSetUp(Conflict):
    default_code = "2fa_not_set_up"
    default_detail = _("Start with POST /auth/2fa/setup, add the secret to your app, then enable it with a code.")


class TwoFactorRequired(ApplicationError):
    """Organizers must use 2FA here (ORGANIZERS_REQUIRE_2FA) and this one has not turned it on."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "2fa_required"
    default_detail = _(
        "Organizers must turn on two-factor authentication first: POST /api/v1/auth/2fa/setup, "
        "then POST /api/v1/auth/2fa/enable with a code from your app."
    )


class PasswordIncorrect(ApplicationError):
    default_code = "password_incorrect"
    default_detail = _("The password is not correct.")

    def __init__(self) -> None:
        super().__init__(field="password")


class OtpMissing(ApplicationError):
    """A signed-in request that needs the second factor came without ``otp``: 400."""

    default_code = "otp_required"
    default_detail = _("Two-factor authentication is on: send a code from your app (or a recovery code) as `otp`.")

    def __init__(self) -> None:
        super().__init__(field="otp")


class CsrfFailed(ApplicationError):
    """A request that authenticates with the refresh cookie failed Django's CSRF check."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "csrf_failed"
    default_detail = _("The CSRF check failed: send the X-CSRFToken header (GET /auth/csrf) from an allowed origin.")
