from django.utils.translation import gettext_lazy as _
from rest_framework import status

from eventflow.api.errors import ApplicationError, Conflict


class WebhookUrlNotAllowed(ApplicationError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "webhook_url_not_allowed"
    default_detail = _("This URL cannot receive webhooks.")


class TooManyEndpoints(Conflict):
    default_code = "too_many_webhook_endpoints"
    default_detail = _("You have as many webhook endpoints as allowed; delete one first.")


class EndpointDisabled(Conflict):
    default_code = "webhook_endpoint_disabled"
    default_detail = _("This webhook endpoint is disabled; enable it first (PATCH with active: true).")
