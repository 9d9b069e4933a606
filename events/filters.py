"""Query parameters of GET /events, validated by django-filter (400 names the field).

The FilterSet only parses and validates; ``selectors.event_catalogue`` does the
querying, so the same catalogue rules serve every caller.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from eventflow.api.filters import StrictFilterSet, WholeNumberFilter
from eventflow.api.serializers import datetime_problem

from .models import Category
from .selectors import event_catalogue


class LatLngField(forms.CharField):
    default_error_messages = {"invalid": _('Give a position as "latitude,longitude", e.g. "52.52,13.405".')}

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            lat_text, lng_text = value.split(",")
            lat, lng = Decimal(lat_text.strip()), Decimal(lng_text.strip())
        except (ValueError, InvalidOperation) as exc:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from exc
        if not (lat.is_finite() and lng.is_finite() and -90 <= lat <= 90 and -180 <= lng <= 180):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return lat, lng


class StrictBooleanField(forms.Field):
    """true/false (1/0, yes/no); anything else is an error rather than silently ignored."""

    TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}
    default_error_messages = {"invalid": _('Use "true" or "false".')}

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class ZonedIsoDateTimeField(IsoDateTimeField):
    """ISO 8601, with an offset some time zone could have (PostgreSQL refuses +16:00) and within the
    calendar; a time without an offset is UTC."""

    def to_python(self, value):
        value = super().to_python(value)
        problem = datetime_problem(value, require_offset=False)
        if problem:
            raise forms.ValidationError(problem, code="invalid")
        return value


class ZonedIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = ZonedIsoDateTimeField


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


@extend_schema_field({"type": "string", "pattern": r"^\s*-?\d{1,3}(\.\d+)?\s*,\s*-?\d{1,3}(\.\d+)?\s*$"})
class LatLngFilter(django_filters.Filter):
    field_class = LatLngField


@extend_schema_field({"type": "integer", "minimum": 0})
class CentsFilter(WholeNumberFilter):
    """Whole minor units, 0 or more."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "number", "minimum": 0.001, "maximum": 20_000})
class RadiusFilter(django_filters.NumberFilter):
    """Kilometres around ``near``."""


ORDERING_CHOICES = [
    ("starts_at", "starts_at"),
    ("-starts_at", "-starts_at"),
    ("price", "price"),
    ("-price", "-price"),
    ("distance", "distance"),
]


class EventCatalogueFilter(StrictFilterSet):
    search = django_filters.CharFilter(max_length=200, help_text="Full-text search in title, description, venue, city.")
    city = django_filters.CharFilter(max_length=100, help_text="Exact city name, any case.")
    category = django_filters.ChoiceFilter(choices=Category.choices)
    starts_after = ZonedIsoDateTimeFilter(help_text="ISO 8601 date-time; events starting then or later.")
    starts_before = ZonedIsoDateTimeFilter(help_text="ISO 8601 date-time; events starting then or earlier.")
    available = StrictBooleanFilter(help_text="true: only events with tickets left.")
    near = LatLngFilter(help_text='"latitude,longitude": events within radius_km, with distance_km.')
    radius_km = RadiusFilter(
        min_value=Decimal("0.001"), max_value=20_000, help_text="Radius around near in km (0.001 to 20000), default 50."
    )
    min_price_cents = CentsFilter(help_text="Some ticket type costs at least this.")
    max_price_cents = CentsFilter(help_text="Some ticket type costs at most this.")
    ordering = django_filters.ChoiceFilter(choices=ORDERING_CHOICES, help_text="distance needs near.")
    mine = StrictBooleanFilter(help_text="Organizers: your own events, drafts included.")

    def filter_queryset(self, queryset):
        data = {k: v for k, v in self.form.cleaned_data.items() if v not in (None, "")}
        if data.get("ordering") == "distance" and "near" not in data:
            raise serializers.ValidationError({"ordering": [_("Ordering by distance needs near=latitude,longitude.")]})
        return event_catalogue(user=self.request.user, **data)
