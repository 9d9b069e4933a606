"""One error vocabulary for the whole API: RFC 9457 problem details.

Every error a client can meet leaves through :func:`exception_handler` (DRF
views) or the ``handler404``/``handler500`` views (everything else under
``/api/``) as ``application/problem+json``::

    {"type", "title", "status", "detail", "code", "instance", ["errors"]}

``code`` is a stable snake_case value clients can switch on. Domain rules
raise :class:`ApplicationError` subclasses from services; the handler only
renders them, so the API, the admin and management commands share one set of
errors.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, renderers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from eventflow.logs import request_id
from observability import metrics

logger = logging.getLogger("eventflow.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ApplicationError(exceptions.APIException):
    """A domain error with a stable ``code``, raised by services.

    ``field`` names the input field at fault; the response then carries it in
    ``errors`` like any validation error. ``extra`` adds members to the body
    (for example the time of a first scan).
    """

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"
    default_detail = _("The request could not be processed.")

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail=detail, code=code)
        self.code = code or self.default_code
        self.field = field
        self.extra = extra or {}


class Conflict(ApplicationError):
    """The request is well-formed but conflicts with the current state (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = _("The request conflicts with the current state of the resource.")


class ServiceUnavailable(ApplicationError):
    """A dependency (database, lock) cannot serve the request right now (503)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = _("The service is temporarily unavailable. Try again shortly.")

    def __init__(self, detail: str | None = None, *, code: str | None = None, retry_after: int = 5) -> None:
        super().__init__(detail, code=code)
        self.wait = retry_after


class PayloadTooLarge(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = _("The request body is larger than this API accepts.")


def problem(
    *,
    status_code: int,
    code: str,
    detail: str,
    title: str | None = None,
    instance: str | None = None,
    errors: dict[str, list[str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a problem-details body."""
    body: dict[str, Any] = {
        "type": f"{settings.PROBLEM_TYPE_BASE_URI}{code}",
        "title": title or HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    if status_code >= 500 and (rid := request_id.get()) is not None:
        # Also in the X-Request-ID header; in the body it survives a client that shows only the body.
        body["request_id"] = rid
    return body


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into ``{"field.sub.0": [messages]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if prefix and key == api_settings.NON_FIELD_ERRORS_KEY:
                path = prefix  # an error of the nested object or list itself
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for k, v in flatten_errors(value, path).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            if detail:
                out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                path = f"{prefix}.{index}" if prefix else str(index)
                for k, v in flatten_errors(item, path).items():
                    out.setdefault(k, []).extend(v)
    elif detail is not None:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _as_api_exception(exc: Exception) -> exceptions.APIException:
    """Translate Django and database errors into the API vocabulary."""
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        return PayloadTooLarge()
    if isinstance(exc, SuspiciousOperation):
        return exceptions.ValidationError({"non_field_errors": [_("The request was rejected as malformed.")]})
    if isinstance(exc, DjangoValidationError):
        # A model or lookup refused a value the API layer let through: still the client's input.
        logger.warning("Validation error escaped the API layer: %s", exc)
        return exceptions.ValidationError({"non_field_errors": list(exc.messages)})
    if isinstance(exc, DataError):
        # The database refused a value (out of range, malformed): the input, not the server, is at fault.
        logger.warning("Database refused a value: %s", exc)
        return exceptions.ValidationError({"non_field_errors": [_("A value is out of the range this API accepts.")]})
    if isinstance(exc, OperationalError | InterfaceError):
        logger.error("Database unavailable: %s", exc)
        return ServiceUnavailable(_("The database is unavailable. Try again shortly."), code="database_unavailable")
    logger.exception("Unhandled exception in the API", exc_info=exc)
    return exceptions.APIException()


def _text(detail: Any) -> str:
    if isinstance(detail, dict):
        # simplejwt's InvalidToken carries {"detail", "code", "messages"}
        return str(detail.get("detail", ""))
    if isinstance(detail, list):
        return " ".join(str(item) for item in detail)
    return str(detail)


def problem_response(exc: Exception, request=None) -> Response:
    """Render any exception as a problem-details response (no side effects)."""
    exc = _as_api_exception(exc)
    status_code = exc.status_code
    errors = None
    extra: dict[str, Any] = {}

    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        detail = str(_("The request has invalid fields."))
        errors = flatten_errors(exc.detail)
    elif isinstance(exc, ApplicationError):
        code = exc.code
        detail = _text(exc.detail)
        if exc.field:
            errors = {exc.field: [detail]}
        extra = exc.extra
    elif isinstance(exc.detail, dict):
        code = str(exc.detail.get("code") or exc.default_code)
        detail = _text(exc.detail)
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        detail = _text(exc.detail)
    if status_code == status.HTTP_500_INTERNAL_SERVER_ERROR:
        code, detail = "server_error", str(_("An unexpected error occurred. It has been logged."))
    if status_code == status.HTTP_400_BAD_REQUEST and errors is None:
        errors = {api_settings.NON_FIELD_ERRORS_KEY: [detail]}  # every 400 names what was wrong

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(max(1, int(exc.wait)))
    if status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        headers.setdefault("Retry-After", "1")
        extra = {**extra, "retry_after": int(headers["Retry-After"])}

    body = problem(
        status_code=status_code,
        code=code,
        detail=detail,
        instance=request.path if request is not None else None,
        errors=errors,
        extra=extra,
    )
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: every exception becomes problem details, and the request's
    transaction (if any) is rolled back.

    A problem is always JSON, whatever the client asked for (``?format=csv``,
    ``Accept: text/csv``): the negotiated renderer is for the resource, not for errors.
    """
    set_rollback()
    request = context.get("request")
    if request is not None:
        request.accepted_renderer = renderers.JSONRenderer()
        request.accepted_media_type = PROBLEM_CONTENT_TYPE
    response = problem_response(exc, request)
    metrics.problem_answered(response.status_code, response.data["code"])  # sold-out answers among them
    return response


# --- Django-level error views ---------------------------------------------------
# Requests that never reach a DRF view (an unknown path, a crash in middleware)
# still get problem details when they were meant for the API.


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _problem_response(request: HttpRequest, status_code: int, code: str, detail: str) -> JsonResponse:
    errors = {api_settings.NON_FIELD_ERRORS_KEY: [detail]} if status_code == 400 else None
    body = problem(status_code=status_code, code=code, detail=detail, instance=request.path, errors=errors)
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def bad_request_response(request: HttpRequest, detail: str):
    """A 400 for a request refused before any view ran: problem details under /api/, Django's page elsewhere."""
    if _is_api(request):
        return _problem_response(request, 400, "invalid", detail)
    from django.views import defaults

    return defaults.bad_request(request, SuspiciousOperation(detail))


def bad_request(request: HttpRequest, exception: Exception, template_name: str = "400.html"):
    if _is_api(request):
        return _problem_response(request, 400, "bad_request", str(_("The request was rejected as malformed.")))
    from django.views import defaults

    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception, template_name: str = "403.html"):
    if _is_api(request):
        return _problem_response(
            request, 403, "permission_denied", str(_("You do not have permission to perform this action."))
        )
    from django.views import defaults

    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception, template_name: str = "404.html"):
    if _is_api(request):
        return _problem_response(request, 404, "not_found", str(_("No resource exists at this address.")))
    from django.views import defaults

    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest, template_name: str = "500.html"):
    if _is_api(request):
        return _problem_response(
            request, 500, "server_error", str(_("An unexpected error occurred. It has been logged."))
        )
    from django.views import defaults

    return defaults.server_error(request)
