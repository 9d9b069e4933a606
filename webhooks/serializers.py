"""Input and output of the organizer's webhook endpoints and their deliveries."""

from __future__ import annotations

from rest_framework import serializers

from eventflow.api.serializers import StrictInputSerializer

from .models import URL_MAX_LENGTH, EventType

EVENTS_HELP = "Event types to receive: " + ", ".join(f"`{value}`" for value in EventType.values) + "."


class EndpointInputSerializer(StrictInputSerializer):
    url = serializers.URLField(
        max_length=URL_MAX_LENGTH,
        help_text="Where deliveries are POSTed: https (http only where the platform allows it), a public host, "
        "no user name or password.",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        allow_empty=False,
        max_length=len(EventType.values) * 2,
        help_text=EVENTS_HELP,
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class EndpointUpdateInputSerializer(EndpointInputSerializer):
    url = serializers.URLField(max_length=URL_MAX_LENGTH, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        allow_empty=False,
        max_length=len(EventType.values) * 2,
        required=False,
        help_text=EVENTS_HELP,
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    active = serializers.BooleanField(
        required=False,
        help_text="`true` re-enables a disabled endpoint (its failure count starts again); `false` pauses it.",
    )


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Also sent as `EventFlow-Delivery`.")
    event_id = serializers.CharField(help_text="The payload's `id`, also sent as `EventFlow-Event`.")
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "succeeded", "failed"])
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True, help_text="Null: no response (refused, timeout).")
    last_latency_ms = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    payload = serializers.JSONField(help_text="The body sent: `{id, type, created_at, data}`.")


class EndpointOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField(source="is_active")
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField()
    consecutive_failures = serializers.IntegerField(help_text="Deliveries in a row that failed every attempt.")
    secret_hint = serializers.CharField(help_text="The signing secret's last characters, to tell secrets apart.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EndpointWithSecretOutputSerializer(EndpointOutputSerializer):
    secret = serializers.CharField(
        help_text="The signing secret (`whsec_…`): in the response to creating or rotating, and on the "
        "endpoint's own page (GET/PATCH of one endpoint), never in the list."
    )


class EndpointDetailOutputSerializer(EndpointWithSecretOutputSerializer):
    recent_deliveries = DeliveryOutputSerializer(many=True, help_text="The 10 latest deliveries, newest first.")
