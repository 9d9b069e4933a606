"""FilterSet building blocks shared by the apps."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _


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
