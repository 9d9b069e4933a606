"""Admin building blocks shared by the apps."""

from __future__ import annotations

from django.contrib.admin.options import IncorrectLookupParameters
from django.http import HttpRequest


class SafeLookupsMixin:
    """Lookups a changelist cannot turn into a query are a bad request, not a crash.

    The date drill-down's ``?starts_at__year=9999`` asks for a range ending in year
    10000, and a date filter at the calendar's ends overflows on conversion: Django
    raises OverflowError or ValueError while building the list. Raised as
    IncorrectLookupParameters, the admin answers as it does for any bad filter: the
    unfiltered list, marked ``?e=1``.
    """

    def get_changelist_instance(self, request: HttpRequest):
        try:
            return super().get_changelist_instance(request)
        except (OverflowError, ValueError) as exc:
            raise IncorrectLookupParameters(exc) from exc
