"""Input and output of the door endpoints and of check-in staff."""

from __future__ import annotations

from rest_framework import serializers

from eventflow.api.serializers import DateTimeField, StrictInputSerializer

from .models import GATE_MAX_LENGTH, CheckInStaff
from .selectors import seat_of

CODE_MAX_LENGTH = 200  # longer than any code; a longer string is refused, a shorter unknown one is a 404


class ScanInputSerializer(StrictInputSerializer):
    code = serializers.CharField(max_length=CODE_MAX_LENGTH, help_text="The ticket's code: what its QR code holds.")
    gate = serializers.CharField(
        max_length=GATE_MAX_LENGTH, required=False, allow_blank=True, default="", help_text="Where it was scanned."
    )


class OfflineScanInputSerializer(ScanInputSerializer):
    scanned_at = DateTimeField(help_text="When the device scanned it (ISO 8601 with offset).")


class TicketTypeRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class HolderSerializer(serializers.Serializer):
    name = serializers.CharField()
    email = serializers.EmailField()


class DoorTicketSerializer(serializers.Serializer):
    """What the door shows about a ticket: never its code."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    ticket_type = TicketTypeRefSerializer()
    holder = HolderSerializer()
    seat = serializers.SerializerMethodField(help_text="The seat of a seated ticket; null otherwise.")

    def get_seat(self, obj) -> dict | None:
        return seat_of(obj)


class CheckInOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ticket = DoorTicketSerializer()
    scanned_at = serializers.DateTimeField()
    gate = serializers.CharField()
    source = serializers.CharField()


SCAN_RESULTS = ["checked_in", "already_checked_in", "ticket_void", "not_found", "invalid"]


class ScanResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The scan's position in the request (from 0).")
    code = serializers.CharField(allow_null=True, help_text="The code sent, when it was a string.")
    result = serializers.ChoiceField(
        choices=SCAN_RESULTS,
        help_text="`checked_in`: this scan is the ticket's check-in (the earliest). `already_checked_in`: another "
        "scan is (`checked_in_at`, `gate`). `ticket_void`: refunded, cancelled or transferred (`ticket_status`). "
        "`not_found`: no ticket of this event has the code. `invalid`: see `errors` (a scan more than "
        "`CHECKIN_CLOCK_SKEW_SECONDS` in the future is invalid).",
    )
    ticket = DoorTicketSerializer(required=False)
    checked_in_at = serializers.DateTimeField(required=False, help_text="The ticket's check-in (the winning scan).")
    gate = serializers.CharField(required=False)
    ticket_status = serializers.CharField(required=False, help_text="ticket_void: the ticket's status.")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class BatchOutputSerializer(serializers.Serializer):
    results = ScanResultSerializer(many=True)


class ListTicketSerializer(serializers.Serializer):
    code_sha256 = serializers.CharField(help_text="SHA-256 of the ticket's code (UTF-8), lower-case hex.")
    status = serializers.ChoiceField(choices=["valid", "checked_in", "void"])
    ticket_type = serializers.IntegerField()
    ticket_type_name = serializers.CharField()
    seat = serializers.DictField(allow_null=True)
    checked_in_at = serializers.DateTimeField(allow_null=True)


class CheckInListOutputSerializer(serializers.Serializer):
    event = serializers.IntegerField()
    version = serializers.CharField(help_text="Changes whenever any ticket of the event does; also the ETag.")
    hash = serializers.CharField(help_text="The hash of `code_sha256`: always `sha256`.")
    ticket_types = TicketTypeRefSerializer(many=True)
    tickets = ListTicketSerializer(many=True, help_text="Every ticket of the event, void ones included; not paginated.")


class StaffUserSerializer(serializers.Serializer):
    """Only what the organizer typed in: naming an address must not reveal whose account it is."""

    id = serializers.IntegerField()
    email = serializers.EmailField()


class CheckInStaffOutputSerializer(serializers.ModelSerializer):
    user = StaffUserSerializer()

    class Meta:
        model = CheckInStaff
        fields = ["id", "user", "created_at"]
        read_only_fields = fields


class CheckInStaffInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
