"""Page-number pagination as the contract pins it: ?page=N&page_size=M (M <= 100).

Stricter than DRF's, which quietly falls back to the default page size on a
malformed ``page_size``: a client asking for ``page_size=abc`` or ``0`` has a
bug, and gets a 400 naming the parameter. A ``page_size`` above 100 is capped,
as the contract says. A page past the last (or not a page number) is a 404.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()  # only numbers, as the schema documents

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        digits = raw.strip()
        significant = digits.lstrip("0")
        if not (digits.isascii() and digits.isdigit()) or not significant:
            raise ValidationError({self.page_size_query_param: [_("A whole number of 1 or more.")]})
        if len(significant) > 3:  # never parse thousands of digits: anything this long is over the cap
            return self.max_page_size
        return min(int(significant), self.max_page_size)

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not raw.strip():
            return raw  # "?page=" names no page: Django's paginator refuses it, a 404 like any bad page
        return super().get_page_number(request, paginator)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = str(_("Results per page, 1 or more; more than 100 is capped at 100."))
        return parameters
