"""FilterSet building blocks shared by the apps."""

from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field


class StrictFilterSet(django_filters.FilterSet):
    """A FilterSet that refuses an empty value for a typed parameter (``?starts_after=``).

    django-filter treats an empty value as "no filter"; for a date, a number, a
    boolean or a choice, an empty value is a malformed request (the schema
    says what the value must be), so it is a 400 naming the parameter. Free
    text parameters (search, city) may be empty.
    """

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, filter_ in self.filters.items():
            if isinstance(filter_, django_filters.CharFilter) or name not in self.data:
                continue
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else [self.data.get(name)]
            if not any(str(value).strip() for value in values):
                self.form.add_error(name, _("Give a value, or leave the parameter out."))
                valid = False
        return valid


BIGINT_MAX = 2**63 - 1


class WholeNumberField(forms.IntegerField):
    """Digits only ("1_000", "1.5" and "1e3" are not whole numbers a client means), within a
    database integer (a larger one overflowed SQLite)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()):
            raise forms.ValidationError(_("A whole number."), code="invalid")
        if len(text) > 19:  # more digits than any bigint: no need to parse thousands of them
            raise forms.ValidationError(_("That number is too large."), code="invalid")
        return int(text)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": BIGINT_MAX})
class WholeNumberFilter(django_filters.NumberFilter):
    field_class = WholeNumberField
