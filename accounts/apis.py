"""Accounts endpoints: registration, JWT sessions, passwords, email verification, the caller's profile."""

from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from eventflow.api.ratelimit import enforce_ip_rate_limit
from eventflow.api.schema import problems

from . import browser, passwords, privacy, selectors, services, twofactor, verification
from .errors import RefreshRejected
from .limits import enforce_account_rate_limit
from .serializers import (
    CsrfTokenOutputSerializer,
    EmailVerifyInputSerializer,
    EmailVerifyResendInputSerializer,
    LoginInputSerializer,
    OrganizerProfileCreateInputSerializer,
    OrganizerProfileOutputSerializer,
    OrganizerProfileUpdateInputSerializer,
    OtpInputSerializer,
    PasswordChangeInputSerializer,
    PasswordResetConfirmInputSerializer,
    PasswordResetInputSerializer,
    RecoveryCodesOutputSerializer,
    RefreshInputSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
    SessionOutputSerializer,
    TokenPairOutputSerializer,
    TwoFactorSetupOutputSerializer,
    UserDeleteInputSerializer,
    UserOutputSerializer,
    UserUpdateInputSerializer,
)


def _token_pair(pair: services.TokenPair) -> dict[str, str]:
    return {"access": pair.access, "refresh": pair.refresh}


def _signed_in(request: Request, pair: services.TokenPair, *, body: dict | None = None, **kwargs) -> Response:
    """The response of a sign-in: the pair in the body, or for a browser with the refresh cookie
    on, the access token in the body and the refresh token in the cookie (accounts.browser)."""
    if not browser.cookie_mode(request):
        return Response({**(body or {}), **_token_pair(pair)}, **kwargs)
    response = Response({**(body or {}), "access": pair.access}, **kwargs)
    browser.set_refresh_cookie(response, request=request, refresh=pair.refresh)
    return response


def _refresh_required() -> serializers.ValidationError:
    return serializers.ValidationError({"refresh": [serializers.Field.default_error_messages["required"]]})


_COOKIE_NOTE = (
    " With `AUTH_REFRESH_COOKIE` on, a browser (a request with an `Origin` header) gets the refresh token "
    "as an HttpOnly cookie scoped to the auth paths instead of in the body."
)


class PublicAuthView(APIView):
    """Endpoints that must work whatever (stale) token the client still sends."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        # A rejected refresh token is a 401 with a challenge, not a 403.
        return 'Bearer realm="api"'


class RegisterApi(PublicAuthView):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_register",
        request=RegisterInputSerializer,
        responses={201: RegisterOutputSerializer, **problems({400: ["invalid", "email_taken"], 429: ["throttled"]})},
        description="Create an attendee account and sign in. "
        "Fields other than `email`, `password` and `name` (such as `role`) are refused." + _COOKIE_NOTE,
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="register", rate_setting="REGISTER_RATE_PER_IP")
        data = RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        pair = services.session_start(user=user, request=request)
        return _signed_in(request, pair, body={"user": UserOutputSerializer(user).data}, status=status.HTTP_201_CREATED)


class LoginApi(PublicAuthView):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_login",
        request=LoginInputSerializer,
        responses={
            200: TokenPairOutputSerializer,
            **problems({401: ["invalid_credentials", "otp_required", "otp_invalid"], 429: ["throttled"]}),
        },
        description="Exchange email and password for an access and a refresh token. After `LOGIN_FAILURE_LIMIT` "
        "(5) wrong passwords for one account from one address, that address gets 429 `throttled` for that "
        "account for `LOGIN_LOCKOUT_MINUTES` (15), with `Retry-After`; a correct password resets the count. "
        "Other addresses, including the account owner's, are not affected.\n\n"
        "With two-factor authentication on, the right password without `otp` is 401 `otp_required`: send "
        "it again with `otp`, the current code of the authenticator app (each code is taken once) or one of "
        "the recovery codes (each works once). A wrong `otp` is 401 `otp_invalid` and counts as a wrong "
        "password; besides, `OTP_FAILURE_LIMIT` (5) wrong codes per account per `LOGIN_LOCKOUT_MINUTES`, "
        "from any address, and `OTP_FAILURE_RATE_PER_IP` per address, are then 429 `throttled`." + _COOKIE_NOTE,
    )
    def post(self, request: Request) -> Response:
        data = LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The HttpRequest, not DRF's wrapper: django-axes marks a lockout on it for its middleware.
        user = services.user_login(request=request._request, **data.validated_data)
        return _signed_in(request, services.session_start(user=user, request=request))


class RefreshApi(PublicAuthView):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_refresh",
        request=RefreshInputSerializer,
        responses={
            200: TokenPairOutputSerializer,
            **problems({400: ["invalid"], 401: ["token_not_valid"], 403: ["csrf_failed"]}),
        },
        description="Rotate a refresh token: the response carries a new pair and the old refresh token stops working. "
        "Presenting a refresh token that was already rotated ends the whole session (its successor too): "
        "somebody else holds a copy. A password change ends every session of the account. "
        "With `AUTH_REFRESH_COOKIE` on, a browser sends no body token: the refresh cookie is used, with "
        "the `X-CSRFToken` header from `GET /auth/csrf` (403 `csrf_failed` without it or from an origin "
        "not allowed), and the new refresh token comes back in the cookie only. 401 `token_not_valid` "
        "when there is no cookie (sign in).",
    )
    def post(self, request: Request) -> Response:
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if token := data.validated_data.get("refresh"):
            return Response(_token_pair(services.session_refresh(refresh=token, request=request)))
        cookie = browser.refresh_cookie(request)
        if cookie is None:
            raise RefreshRejected() if browser.cookie_mode(request) else _refresh_required()
        browser.enforce_csrf(request)
        self.refresh_cookie_used = True
        pair = services.session_refresh(refresh=cookie, request=request)
        response = Response({"access": pair.access})
        browser.set_refresh_cookie(response, request=request, refresh=pair.refresh)
        return response

    def finalize_response(self, request: Request, response: Response, *args, **kwargs) -> Response:
        if getattr(self, "refresh_cookie_used", False) and response.status_code == status.HTTP_401_UNAUTHORIZED:
            browser.delete_refresh_cookie(response)  # it will never work again: sign in
        return super().finalize_response(request, response, *args, **kwargs)


class LogoutApi(APIView):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_logout",
        request=RefreshInputSerializer,
        responses={204: None, **problems({400: ["invalid", "token_not_valid"], 403: ["csrf_failed"]})},
        description="End the session the given refresh token belongs to (it must be the caller's): "
        "none of its refresh tokens works any more. With `AUTH_REFRESH_COOKIE` on, a browser sends no "
        "body token: the session of the refresh cookie ends (with the `X-CSRFToken` header, as for "
        "`/auth/refresh`) and the cookie is cleared.",
    )
    def post(self, request: Request) -> Response:
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if token := data.validated_data.get("refresh"):
            services.session_end(user=request.user, refresh=token)
            return Response(status=status.HTTP_204_NO_CONTENT)
        cookie = browser.refresh_cookie(request)
        if cookie is None:
            raise _refresh_required()
        browser.enforce_csrf(request)
        self.refresh_cookie_used = True
        services.session_end(user=request.user, refresh=cookie)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def finalize_response(self, request: Request, response: Response, *args, **kwargs) -> Response:
        # Ended, or not a session of the caller's (400): the cookie is of no use any more.
        if getattr(self, "refresh_cookie_used", False) and response.status_code in (
            status.HTTP_204_NO_CONTENT,
            status.HTTP_400_BAD_REQUEST,
        ):
            browser.delete_refresh_cookie(response)
        return super().finalize_response(request, response, *args, **kwargs)


class CsrfTokenApi(PublicAuthView):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_csrf",
        request=None,
        responses={200: CsrfTokenOutputSerializer},
        description="A CSRF token for the requests a browser makes with the refresh cookie "
        "(`AUTH_REFRESH_COOKIE`): send it as the `X-CSRFToken` header to `/auth/refresh` and `/auth/logout`. "
        "The response also sets the `csrftoken` cookie it is checked against. Call it with credentials "
        "(`fetch(..., {credentials: 'include'})`) when the app starts; the token stays valid until the "
        "cookie is gone.",
    )
    def get(self, request: Request) -> Response:
        response = Response({"csrf_token": get_token(request)})
        response["Cache-Control"] = "no-store"
        return response


class PasswordResetApi(PublicAuthView):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_password_reset",
        request=PasswordResetInputSerializer,
        responses={202: None, **problems({400: ["invalid"], 429: ["throttled"]})},
        description="Email a one-time code to set a new password (also how an invited account, e.g. the "
        "recipient of a transferred ticket, sets its first one). Always 202, whether or not the address "
        "has an account; the same work is done either way. The code works once, for "
        "`PASSWORD_RESET_CODE_MINUTES` (15), and not after 5 wrong tries; a newer code replaces it. Limited "
        "per client address (`PASSWORD_RESET_RATE_PER_IP`) and per email address (`CODE_EMAIL_RATE_PER_ACCOUNT`).",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="password_reset", rate_setting="PASSWORD_RESET_RATE_PER_IP")
        data = PasswordResetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"]
        enforce_account_rate_limit(
            request, group="password_reset", account=email, rate_setting="CODE_EMAIL_RATE_PER_ACCOUNT"
        )
        passwords.password_reset_request(email=email)
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmApi(PublicAuthView):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_password_reset_confirm",
        request=PasswordResetConfirmInputSerializer,
        responses={204: None, **problems({400: ["invalid", "code_invalid"], 429: ["throttled"]})},
        description="Set a new password with the code emailed by `POST /auth/password/reset` (or the "
        "invitation of an account created for you, valid `INVITE_CODE_HOURS`). The code works once; every "
        "session of the account ends and its access tokens stop working. 5 wrong codes burn the code (ask for "
        "a new one). An unknown address, a wrong, used, expired or superseded code all answer 400 "
        "`code_invalid`. Limited per client address and per email address (`CREDENTIAL_RATE_PER_ACCOUNT`).",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="password_reset_confirm", rate_setting="PASSWORD_RESET_RATE_PER_IP")
        data = PasswordResetConfirmInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enforce_account_rate_limit(
            request,
            group="password_reset_confirm",
            account=data.validated_data["email"],
            rate_setting="CREDENTIAL_RATE_PER_ACCOUNT",
        )
        passwords.password_reset_confirm(**data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(tags=["users"], operation_id="users_me_retrieve", responses=UserOutputSerializer)
    def get(self, request: Request) -> Response:
        return Response(UserOutputSerializer(request.user).data)

    @extend_schema(
        tags=["users"],
        operation_id="users_me_update",
        request=UserUpdateInputSerializer,
        responses=UserOutputSerializer,
        description="Update the caller's profile. Email, role and password cannot be changed here.",
    )
    def patch(self, request: Request) -> Response:
        data = UserUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_update(user=request.user, **data.validated_data)
        return Response(UserOutputSerializer(user).data)

    @extend_schema(
        tags=["users"],
        operation_id="users_me_destroy",
        summary="Delete your account",
        request=UserDeleteInputSerializer,
        responses={
            204: None,
            **problems({400: ["invalid", "password_incorrect", "otp_required", "otp_invalid"], 429: ["throttled"]}),
        },
        description="Delete the caller's account, with `password` (and `otp` when 2FA is on: a code from the app "
        "or a recovery code). Personal data is anonymised (email `deleted-<id>@invalid`, name blank, no "
        "password, 2FA off); orders are kept for accounting; reservations are cancelled, paid orders of "
        "events still to come are refunded where the event's refund policy allows, and tickets of events "
        "still to come are void; every session ends and the old credentials stop working. Wrong passwords "
        "count toward the login lockout, wrong codes toward the 2FA limits.",
    )
    def delete(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="account_delete", rate_setting="TWO_FACTOR_RATE_PER_IP")
        data = UserDeleteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        privacy.account_delete(request=request._request, user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OrganizerMeApi(APIView):
    @extend_schema(
        tags=["organizers"],
        operation_id="organizers_me_retrieve",
        responses={200: OrganizerProfileOutputSerializer, **problems({404: ["not_found"]})},
    )
    def get(self, request: Request) -> Response:
        return Response(OrganizerProfileOutputSerializer(selectors.organizer_profile_of(user=request.user)).data)

    @extend_schema(
        tags=["organizers"],
        operation_id="organizers_me_create",
        request=OrganizerProfileCreateInputSerializer,
        responses={
            201: OrganizerProfileOutputSerializer,
            **problems({400: ["invalid", "slug_taken"], 409: ["organizer_exists"]}),
        },
        description="Become an organizer. `slug` is derived from `display_name` when omitted; "
        "`contact_email` defaults to the account's email.",
    )
    def post(self, request: Request) -> Response:
        data = OrganizerProfileCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = services.organizer_profile_create(user=request.user, **data.validated_data)
        return Response(OrganizerProfileOutputSerializer(profile).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=["organizers"],
        operation_id="organizers_me_update",
        request=OrganizerProfileUpdateInputSerializer,
        responses={
            200: OrganizerProfileOutputSerializer,
            **problems({400: ["invalid", "slug_taken"], 404: ["not_found"]}),
        },
    )
    def patch(self, request: Request) -> Response:
        profile = selectors.organizer_profile_of(user=request.user)
        data = OrganizerProfileUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = services.organizer_profile_update(profile=profile, **data.validated_data)
        return Response(OrganizerProfileOutputSerializer(profile).data)


# --- Issue 13B: password change, the caller's sessions, email verification ---------------------


def _current_session(request: Request) -> str | None:
    """The session (token family) of the calling access token: its ``fam`` claim."""
    token = request.auth
    return str(token.get(services.FAMILY_CLAIM)) if token is not None and token.get(services.FAMILY_CLAIM) else None


class PasswordChangeApi(APIView):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_password_change",
        request=PasswordChangeInputSerializer,
        responses={204: None, **problems({400: ["invalid", "invalid_password"], 429: ["throttled"]})},
        description="Change the caller's password; `old_password` proves it is them. Wrong old passwords count "
        "towards the login's lockout (`LOGIN_FAILURE_LIMIT` per account and client address: then 429) and a "
        "per-account limit (`CREDENTIAL_RATE_PER_ACCOUNT`). Every other session ends and its access tokens stop "
        "working; the caller's session (the one its access token belongs to: claim `fam`) and its tokens go on.",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="password_change", rate_setting="PASSWORD_RESET_RATE_PER_IP")
        data = PasswordChangeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enforce_account_rate_limit(
            request, group="password_change", account=str(request.user.pk), rate_setting="CREDENTIAL_RATE_PER_ACCOUNT"
        )
        passwords.password_change(
            # The HttpRequest, not DRF's wrapper: django-axes marks a lockout on it for its middleware.
            request=request._request,
            user=request.user,
            session=_current_session(request),
            **data.validated_data,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MySessionsApi(ListAPIView):
    serializer_class = SessionOutputSerializer

    def get_queryset(self):
        return selectors.sessions_of(user=self.request.user)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "current_session": _current_session(self.request)}

    @extend_schema(
        tags=["users"],
        operation_id="users_me_sessions_list",
        description="The caller's active sessions (each a login and the refresh tokens it rotated through), most "
        "recently used first; `current` marks the one the calling access token belongs to.",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["users"],
        operation_id="users_me_sessions_end_all",
        request=None,
        responses={204: None},
        description="Log out everywhere: every session ends, the caller's too, and every access token issued so far "
        "stops working at once (401 `token_revoked`). Sign in again to go on.",
    )
    def delete(self, request: Request) -> Response:
        services.sessions_end_all(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MySessionApi(APIView):
    @extend_schema(
        tags=["users"],
        operation_id="users_me_sessions_retrieve",
        responses={200: SessionOutputSerializer, **problems({404: ["not_found"]})},
        description="One of the caller's live sessions (404 if it is not theirs or already over).",
    )
    def get(self, request: Request, session_id) -> Response:
        session = get_object_or_404(selectors.sessions_of(user=request.user), pk=session_id)
        context = {"request": request, "current_session": _current_session(request)}
        return Response(SessionOutputSerializer(session, context=context).data)

    @extend_schema(
        tags=["users"],
        operation_id="users_me_sessions_end",
        request=None,
        responses={204: None, **problems({404: ["not_found"]})},
        description="End one of the caller's sessions (404 if it is not theirs or already over): its refresh token "
        "and its access tokens stop working at once (401 `token_revoked`). Ending the caller's own session signs "
        "the caller out.",
    )
    def delete(self, request: Request, session_id) -> Response:
        services.session_revoke(user=request.user, session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyApi(PublicAuthView):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_email_verify",
        request=EmailVerifyInputSerializer,
        responses={204: None, **problems({400: ["invalid", "code_invalid"], 429: ["throttled"]})},
        description="Verify the account's email address with the code emailed at registration (or by "
        "`POST /auth/email/verify/resend`). The code works once, for `EMAIL_VERIFICATION_CODE_HOURS` (24), and not "
        "after 5 wrong tries. Tokens issued afterwards say so (claim `ev`): refresh to buy where "
        "`REQUIRE_EMAIL_VERIFICATION_TO_BUY` is on. Limited per client address and per email address.",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="email_verify", rate_setting="PASSWORD_RESET_RATE_PER_IP")
        data = EmailVerifyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enforce_account_rate_limit(
            request,
            group="email_verify",
            account=data.validated_data["email"],
            rate_setting="CREDENTIAL_RATE_PER_ACCOUNT",
        )
        verification.email_verify(**data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyResendApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        tags=["auth"],
        operation_id="auth_email_verify_resend",
        request=EmailVerifyResendInputSerializer,
        responses={202: None, **problems({400: ["invalid"], 429: ["throttled"]})},
        description="Email a new verification code (the older one stops working) to `email`, or to the signed-in "
        "caller when `email` is omitted. Always 202: nothing is sent when no unverified account has the address, "
        "and nobody learns which. Limited per client address and per email address (`CODE_EMAIL_RATE_PER_ACCOUNT`).",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="email_verify_resend", rate_setting="PASSWORD_RESET_RATE_PER_IP")
        data = EmailVerifyResendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data.get("email")
        if not email:
            if not request.user.is_authenticated:
                raise ValidationError({"email": [_("Required unless you are signed in.")]})
            email = request.user.email
        enforce_account_rate_limit(
            request, group="email_verify_resend", account=email, rate_setting="CODE_EMAIL_RATE_PER_ACCOUNT"
        )
        verification.email_verification_resend_request(email=email)
        return Response(status=status.HTTP_202_ACCEPTED)


# --- Two-factor authentication (13A) -------------------------------------------------------

TWO_FACTOR_TAG = "auth"


class TwoFactorSetupApi(APIView):
    @extend_schema(
        tags=[TWO_FACTOR_TAG],
        operation_id="auth_2fa_setup",
        summary="Start setting up two-factor authentication",
        request=None,
        responses={200: TwoFactorSetupOutputSerializer, **problems({409: ["2fa_already_enabled"], 429: ["throttled"]})},
        description="Start setting up TOTP two-factor authentication: a new secret, its `otpauth://` URI and "
        "the URI as a QR code to scan, and ten recovery codes. Nothing is in force until "
        "`POST /auth/2fa/enable` with a code from the app. The secret and the recovery codes are shown only "
        "in this answer (a new setup replaces them); the recovery codes work once 2FA is enabled.",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="2fa", rate_setting="TWO_FACTOR_RATE_PER_IP")
        setup = twofactor.two_factor_setup(user=request.user)
        body = {
            "secret": setup.secret,
            "otpauth_uri": setup.otpauth_uri,
            "qr_code": setup.qr_code,
            "recovery_codes": setup.recovery_codes,
        }
        return Response(TwoFactorSetupOutputSerializer(body).data, headers={"Cache-Control": "no-store"})


class TwoFactorEnableApi(APIView):
    @extend_schema(
        tags=[TWO_FACTOR_TAG],
        operation_id="auth_2fa_enable",
        summary="Turn on two-factor authentication",
        request=OtpInputSerializer,
        responses={
            204: None,
            **problems(
                {
                    400: ["invalid", "otp_invalid"],
                    409: ["2fa_not_set_up", "2fa_already_enabled"],
                    429: ["throttled"],
                }
            ),
        },
        description="Turn on two-factor authentication with a code from the app just set up. From then on "
        "signing in needs `otp` too.",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="2fa", rate_setting="TWO_FACTOR_RATE_PER_IP")
        data = OtpInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        twofactor.two_factor_enable(request=request._request, user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TwoFactorDisableApi(APIView):
    @extend_schema(
        tags=[TWO_FACTOR_TAG],
        operation_id="auth_2fa_disable",
        summary="Turn off two-factor authentication",
        request=OtpInputSerializer,
        responses={
            204: None,
            **problems({400: ["invalid", "otp_invalid"], 409: ["2fa_not_enabled"], 429: ["throttled"]}),
        },
        description="Turn off two-factor authentication with a code from the app or a recovery code. "
        "The secret and the recovery codes are deleted.",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="2fa", rate_setting="TWO_FACTOR_RATE_PER_IP")
        data = OtpInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        twofactor.two_factor_disable(request=request._request, user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecoveryCodesApi(APIView):
    @extend_schema(
        tags=[TWO_FACTOR_TAG],
        operation_id="auth_2fa_recovery_codes",
        summary="New recovery codes",
        request=OtpInputSerializer,
        responses={
            200: RecoveryCodesOutputSerializer,
            **problems({400: ["invalid", "otp_invalid"], 409: ["2fa_not_enabled"], 429: ["throttled"]}),
        },
        description="Ten new recovery codes, shown only in this answer, for a code from the app (a recovery "
        "code is not enough here); the previous ones stop working.",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="2fa", rate_setting="TWO_FACTOR_RATE_PER_IP")
        data = OtpInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        codes = twofactor.recovery_codes_regenerate(request=request._request, user=request.user, **data.validated_data)
        body = RecoveryCodesOutputSerializer({"recovery_codes": codes}).data
        return Response(body, headers={"Cache-Control": "no-store"})
