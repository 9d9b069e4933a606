"""Serializer building blocks shared by the apps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

# Real zones sit within -12:00..+14:00; PostgreSQL stores offsets up to 15:59.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


# A day of margin at both ends of Python's calendar, so that any time zone can still show a
# stored time (year 9999 in UTC is year 10000 in Kiritimati, which no datetime can hold).
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


def datetime_problem(value: datetime | None, *, require_offset: bool) -> str | None:
    """What is wrong with a date-time a client sent, or None.

    An offset no time zone has (``+16:00``; the database cannot even store it), a time
    so close to the calendar's ends that converting it between zones overflows, and, where
    required, a missing offset (the contract's times are ISO 8601 *with* an offset).
    """
    if value is None:
        return None
    offset = value.utcoffset()
    if offset is None:
        return str(_("Give the time with its UTC offset, e.g. 2027-03-01T20:00:00+01:00.")) if require_offset else None
    if abs(offset) > MAX_UTC_OFFSET:
        return str(_("A UTC offset lies between -15:59 and +15:59."))
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not _EARLIEST <= in_utc <= _LATEST:
        return str(_("That date is out of range."))
    return None


class DateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time with an offset a real time zone could have; stored in UTC."""

    def enforce_timezone(self, value: datetime) -> datetime:
        problem = datetime_problem(value, require_offset=True)
        if problem:
            raise serializers.ValidationError(problem, code="invalid")
        return super().enforce_timezone(value)


_JSON_TYPES: list[tuple[type[serializers.Field], tuple[type, ...], str]] = [
    # Checked in order: BooleanField before IntegerField does not matter (bool is refused for
    # numbers explicitly), but ListSerializer/Serializer must come before the generic Field.
    (serializers.BooleanField, (bool,), _("Must be true or false.")),
    (serializers.IntegerField, (int,), _("Must be an integer.")),
    (serializers.DecimalField, (int, float, str), _("Must be a number.")),
    (serializers.FloatField, (int, float), _("Must be a number.")),
    (serializers.CharField, (str,), _("Must be a string.")),
    (serializers.ChoiceField, (str,), _("Must be a string.")),
    (serializers.DateTimeField, (str,), _("Must be a string (ISO 8601 date-time).")),
    (serializers.DateField, (str,), _("Must be a string (ISO 8601 date).")),
    (serializers.ListSerializer, (list,), _("Must be a list.")),
    (serializers.ListField, (list,), _("Must be a list.")),
    (serializers.Serializer, (dict,), _("Must be an object.")),
]


def _json_type_error(field: serializers.Field, value: object) -> str | None:
    for field_class, types, message in _JSON_TYPES:
        if isinstance(field, field_class):
            if isinstance(value, bool) and bool not in types:
                return str(message)
            return None if isinstance(value, types) else str(message)
    return None


def _too_long(field: serializers.Field, value: object) -> str | None:
    """A string over its field's ``max_length`` as sent, before DRF trims its whitespace (which
    counts \x1c-\x1f too): the schema's ``maxLength`` is about what the client sent."""
    limit = getattr(field, "max_length", None)
    if isinstance(value, str) and limit is not None and len(value) > limit:
        return str(_("Ensure this field has no more than %(max)d characters.") % {"max": limit})
    return None


# StrictInputSerializer: an input serializer that refuses what it does not expect.
# (A comment, not a docstring: drf-spectacular would publish an inherited docstring
# as the description of every input schema.)
# - Fields it does not know are a 400 naming them, so nobody believes they set
#   something they did not (``status`` in a new order, ``role`` at registration).
# - In a JSON body, a value must have the JSON type of its field: ``"2"`` and
#   ``2.0`` are not integers, ``"true"`` is not a boolean, ``12`` is not a name.
#   DRF coerces all of these by default; a client sending them has a bug worth
#   reporting. Form bodies (multipart uploads) carry only strings and are not
#   type-checked.
# - A string longer than its field's ``max_length`` is refused as sent, before
#   whitespace is trimmed: the schema's ``maxLength`` applies to the request.
class StrictInputSerializer(serializers.Serializer):
    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors: dict[str, list[str]] = {}
            for name in sorted(set(data) - set(self.fields)):
                errors[name] = [str(_("This field is not accepted."))]
            if not isinstance(data, QueryDict):
                for name, field in self.fields.items():
                    value = data.get(name)
                    if name in data and value is not None and not field.read_only:
                        message = _json_type_error(field, value) or _too_long(field, value)
                        if message:
                            errors[name] = [message]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class NoInputSerializer(StrictInputSerializer):
    """The body of an action that takes none (publish, cancel): any field sent is refused by name."""
