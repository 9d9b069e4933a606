from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    """Prometheus metrics: ``GET /metrics``, the request histogram and the domain signals counted."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "observability"

    def ready(self) -> None:
        from checkin.signals import checked_in
        from orders.signals import order_status_changed
        from webhooks.signals import delivery_failed

        from . import checks  # noqa: F401  (registers the METRICS_* settings' check)
        from .metrics import webhook_delivery_failed
        from .receivers import count_checkins, count_order_changes

        order_status_changed.connect(count_order_changes, dispatch_uid="observability.orders")
        checked_in.connect(count_checkins, dispatch_uid="observability.checkins")
        delivery_failed.connect(webhook_delivery_failed, dispatch_uid="observability.webhook_failures")
