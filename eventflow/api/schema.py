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

from .errors import PROBLEM_CONTENT_TYPE


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField(help_text="URI identifying the problem type.")
    title = serializers.CharField(help_text="Short summary of the problem type.")
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="Explanation specific to this occurrence.")
    code = serializers.CharField(help_text="Stable snake_case error code to switch on.")
    instance = serializers.CharField(required=False, help_text="The request path.")


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
    def _default_problems(self) -> dict[int, list[str]]:
        view = self.view
        defaults: dict[int, list[str]] = {}
        if self.method in ("POST", "PUT", "PATCH"):
            defaults[400] = ["invalid", "parse_error"]
        needs_auth = any(not issubclass(p, permissions.AllowAny) for p in getattr(view, "permission_classes", []))
        if needs_auth and getattr(view, "authentication_classes", None):
            defaults[401] = ["not_authenticated", "token_not_valid"]
        if "{" in self.path:
            defaults[404] = ["not_found"]
        if getattr(view, "throttle_classes", None):
            defaults[429] = ["throttled"]
        return defaults

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
