"""Query parameters of GET /events, validated by django-filter (400 names the field).

The FilterSet only parses and validates; ``selectors.event_catalogue`` does the
querying, so the same catalogue rules serve every caller.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

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


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


@extend_schema_field(OpenApiTypes.STR)
class LatLngFilter(django_filters.Filter):
    field_class = LatLngField


ORDERING_CHOICES = [
    ("starts_at", "starts_at"),
    ("-starts_at", "-starts_at"),
    ("price", "price"),
    ("-price", "-price"),
    ("distance", "distance"),
]


class EventCatalogueFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(max_length=200, help_text="Full-text search in title, description, venue, city.")
    city = django_filters.CharFilter(max_length=100, help_text="Exact city name, any case.")
    category = django_filters.ChoiceFilter(choices=Category.choices)
    starts_after = django_filters.IsoDateTimeFilter(help_text="ISO 8601 date-time; events starting then or later.")
    starts_before = django_filters.IsoDateTimeFilter(help_text="ISO 8601 date-time; events starting then or earlier.")
    available = StrictBooleanFilter(help_text="true: only events with tickets left.")
    near = LatLngFilter(help_text='"latitude,longitude": events within radius_km, with distance_km.')
    radius_km = django_filters.NumberFilter(
        min_value=Decimal("0.001"), max_value=20_000, help_text="Radius around near, default 50 km."
    )
    min_price_cents = django_filters.NumberFilter(min_value=0, help_text="Some ticket type costs at least this.")
    max_price_cents = django_filters.NumberFilter(min_value=0, help_text="Some ticket type costs at most this.")
    ordering = django_filters.ChoiceFilter(choices=ORDERING_CHOICES, help_text="distance needs near.")
    mine = StrictBooleanFilter(help_text="Organizers: your own events, drafts included.")

    def filter_queryset(self, queryset):
        data = {k: v for k, v in self.form.cleaned_data.items() if v not in (None, "")}
        if data.get("ordering") == "distance" and "near" not in data:
            raise serializers.ValidationError({"ordering": [_("Ordering by distance needs near=latitude,longitude.")]})
        for key in ("min_price_cents", "max_price_cents"):
            if key in data:
                data[key] = int(data[key])
        return event_catalogue(user=self.request.user, **data)
