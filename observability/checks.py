"""A malformed ``METRICS_ALLOWED_NETWORKS`` entry stops the start, rather than every scrape."""

from django.conf import settings
from django.core.checks import Error, register

from .access import parse_networks


@register()
def metrics_networks(app_configs, **kwargs):
    try:
        parse_networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    except ValueError as exc:
        return [
            Error(
                f"METRICS_ALLOWED_NETWORKS holds a malformed network: {exc}",
                hint="A comma-separated list of addresses or CIDRs, e.g. 127.0.0.1/32,10.0.0.0/8.",
                id="observability.E001",
            )
        ]
    return []
