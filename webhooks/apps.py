from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"

    def ready(self) -> None:
        from accounts.signals import account_anonymised
        from checkin.signals import checked_in
        from events.signals import event_cancelled
        from orders.signals import order_status_changed

        from . import receivers

        order_status_changed.connect(receivers.on_order_status_changed, dispatch_uid="webhooks.orders")
        checked_in.connect(receivers.on_checked_in, dispatch_uid="webhooks.checkin")
        event_cancelled.connect(receivers.on_event_cancelled, dispatch_uid="webhooks.event_cancelled")
        account_anonymised.connect(receivers.on_account_anonymised, dispatch_uid="webhooks.account_anonymised")
