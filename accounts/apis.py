"""Accounts endpoints: registration, JWT sessions, the caller's profile."""

from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from eventflow.api.ratelimit import enforce_ip_rate_limit
from eventflow.api.schema import problems

from . import browser, passwords, selectors, services
from .errors import RefreshRejected
from .serializers import (
    CsrfTokenOutputSerializer,
    LoginInputSerializer,
    OrganizerProfileCreateInputSerializer,
    OrganizerProfileOutputSerializer,
    OrganizerProfileUpdateInputSerializer,
    PasswordResetConfirmInputSerializer,
    PasswordResetInputSerializer,
    RefreshInputSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
    TokenPairOutputSerializer,
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
        responses={200: TokenPairOutputSerializer, **problems({401: ["invalid_credentials"], 429: ["throttled"]})},
        description="Exchange email and password for an access and a refresh token. After `LOGIN_FAILURE_LIMIT` "
        "(5) wrong passwords for one account from one address, that address gets 429 `throttled` for that "
        "account for `LOGIN_LOCKOUT_MINUTES` (15), with `Retry-After`; a correct password resets the count. "
        "Other addresses, including the account owner's, are not affected." + _COOKIE_NOTE,
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
        "has an account. Limited per client address (`PASSWORD_RESET_RATE_PER_IP`).",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="password_reset", rate_setting="PASSWORD_RESET_RATE_PER_IP")
        data = PasswordResetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        passwords.password_reset_request(**data.validated_data)
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmApi(PublicAuthView):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_password_reset_confirm",
        request=PasswordResetConfirmInputSerializer,
        responses={204: None, **problems({400: ["invalid", "code_invalid"], 429: ["throttled"]})},
        description="Set a new password with the code emailed by `POST /auth/password/reset` (or the "
        "invitation of an account created for you). The code works once; every session of the account ends.",
    )
    def post(self, request: Request) -> Response:
        enforce_ip_rate_limit(request, group="password_reset_confirm", rate_setting="PASSWORD_RESET_RATE_PER_IP")
        data = PasswordResetConfirmInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
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
