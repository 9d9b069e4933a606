"""OpenAPI documentation of the error vocabulary.

Views declare the domain errors they can raise with :func:`problems`; the
:class:`AutoSchema` adds the errors every endpoint of a kind can return
(validation on writes, authentication, not found on detail routes, throttling)
so the schema lists each status with its stable codes.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers

from .docs import EXAMPLES, OPERATIONS
from .errors import PROBLEM_CONTENT_TYPE
from .serializers import StrictInputSerializer


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField(help_text="URI identifying the problem type.")
    title = serializers.CharField(help_text="Short summary of the problem type.")
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="Explanation specific to this occurrence.")
    code = serializers.CharField(help_text="Stable snake_case error code to switch on.")
    instance = serializers.CharField(required=False, help_text="The request path.")
    request_id = serializers.CharField(
        required=False,
        help_text="On 5xx answers: the request's id (also the X-Request-ID header), to quote in a report.",
    )


class ValidationProblemSerializer(ProblemSerializer):
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages per field; nested fields use dotted paths ("items.0.quantity").',
    )


class ThrottledProblemSerializer(ProblemSerializer):
    retry_after = serializers.IntegerField(help_text="Seconds to wait; also sent as the Retry-After header.")


_SERIALIZER_FOR_STATUS = {400: ValidationProblemSerializer, 429: ThrottledProblemSerializer}


def problem_response(status_code: int, codes: list[str]) -> OpenApiResponse:
    return OpenApiResponse(
        response=_SERIALIZER_FOR_STATUS.get(status_code, ProblemSerializer),
        description="Problem details; `code` is one of: " + ", ".join(f"`{c}`" for c in codes),
    )


def problems(spec: dict[int, list[str]]) -> dict:
    """Responses for ``extend_schema``: ``{409: ["sold_out", ...]}`` -> problem+json entries."""
    return {
        (status_code, PROBLEM_CONTENT_TYPE): problem_response(status_code, codes) for status_code, codes in spec.items()
    }


class AutoSchema(BaseAutoSchema):
    # Summaries, descriptions the views leave out, and request examples: eventflow/api/docs.py.
    def get_summary(self) -> str | None:
        entry = OPERATIONS.get(self.get_operation_id())
        return entry[0] if entry else super().get_summary()

    def get_description(self) -> str:
        entry = OPERATIONS.get(self.get_operation_id())
        return (entry[1] if entry and entry[1] else None) or super().get_description()

    def get_examples(self):
        return [*super().get_examples(), *EXAMPLES.get(self.get_operation_id(), [])]

    def _default_problems(self) -> dict[int, list[str]]:
        view = self.view
        defaults: dict[int, list[str]] = {}
        if self.method in ("POST", "PUT", "PATCH"):
            defaults[400] = ["invalid", "parse_error"]
            defaults[413] = ["request_too_large"]
            defaults[415] = ["unsupported_media_type"]
        elif self._has_query_parameters():
            defaults[400] = ["invalid"]  # a malformed filter, or a NUL anywhere in the query
        needs_auth = any(not issubclass(p, permissions.AllowAny) for p in getattr(view, "permission_classes", []))
        if needs_auth and getattr(view, "authentication_classes", None):
            # token_expired: refresh and retry; the others: sign in again (a malformed
            # Authorization header, or an account deleted, deactivated or re-passworded since).
            defaults[401] = [
                "not_authenticated",
                "token_not_valid",
                "token_expired",
                "token_revoked",
                "bad_authorization_header",
                "user_not_found",
                "user_inactive",
            ]
        if "{" in self.path or (self._is_list_view() and self._get_paginator() is not None):
            defaults[404] = ["not_found"]  # a missing object, or a page past the last one
        if getattr(view, "throttle_classes", None):
            defaults[429] = ["throttled"]
        return defaults

    def _is_list_view(self, serializer=None) -> bool:
        """drf-spectacular picks the "main" response by the smallest key; with our
        ``(status, media type)`` keys that is a problem response. Look at the 2xx ones."""
        if serializer is None:
            serializer = self.get_response_serializers()
        if isinstance(serializer, dict) and serializer:
            status_of = {key: str(key[0] if isinstance(key, tuple) else key) for key in serializer}
            success = [key for key, code in status_of.items() if code.startswith("2")]
            if success:
                serializer = serializer[min(success, key=status_of.get)]
        return super()._is_list_view(serializer)

    def _has_query_parameters(self) -> bool:
        if self._get_filter_parameters() or self._get_pagination_parameters():
            return True
        return any(getattr(p, "location", None) == "query" for p in self.get_override_parameters())

    def _map_basic_serializer(self, serializer, direction):
        """Input serializers that refuse unknown fields say so: ``additionalProperties: false``."""
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, StrictInputSerializer):
            schema["additionalProperties"] = False
        return schema

    def _unwrap_list_serializer(self, serializer, direction):
        """DRF's ``min_length``/``max_length``/``allow_empty`` of a nested list, as minItems/maxItems."""
        schema = super()._unwrap_list_serializer(serializer, direction)
        if schema and isinstance(serializer, serializers.ListSerializer) and schema.get("type") == "array":
            min_items = (
                serializer.min_length if serializer.min_length is not None else (0 if serializer.allow_empty else 1)
            )
            if min_items:
                schema["minItems"] = min_items
            if serializer.max_length is not None:
                schema["maxItems"] = serializer.max_length
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status_code, codes in self._default_problems().items():
            if str(status_code) not in responses:
                responses[str(status_code)] = self._get_response_for_code(
                    problem_response(status_code, codes), str(status_code), (PROBLEM_CONTENT_TYPE,), direction
                )
        return responses
