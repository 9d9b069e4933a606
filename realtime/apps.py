from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "realtime"
    verbose_name = "Realtime (WebSockets)"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_delete, post_save

        if not settings.REALTIME_ENABLED:
            return

        from events.models import Event, TicketType
        from events.signals import event_cancelled
        from orders.signals import order_status_changed, stock_changed, waitlist_offer_made

        from . import receivers

        stock_changed.connect(receivers.stock_changed, dispatch_uid="realtime.stock_changed")
        order_status_changed.connect(receivers.order_status_changed, dispatch_uid="realtime.order_status")
        waitlist_offer_made.connect(receivers.waitlist_offer_made, dispatch_uid="realtime.waitlist_offer")
        event_cancelled.connect(receivers.event_cancelled, dispatch_uid="realtime.event_cancelled")
        for model in (Event, TicketType):
            for name, signal in (("saved", post_save), ("deleted", post_delete)):
                signal.connect(
                    receivers.catalogue_saved, sender=model, dispatch_uid=f"realtime.{model.__name__}.{name}"
                )
