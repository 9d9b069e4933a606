from django.apps import AppConfig


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.signals import request_started
        from django.db.models.signals import post_save, pre_delete

        from events.signals import event_cancelled, stock_added

        from . import checks  # noqa: F401  (registers the payment configuration checks)
        from .receivers import (
            close_entries_of_deactivated_user,
            close_entries_of_deleted_user,
            close_waitlists,
            offer_added_stock,
            refund_cancelled_event,
        )

        user_model = get_user_model()
        pre_delete.connect(
            close_entries_of_deleted_user, sender=user_model, dispatch_uid="orders.waitlist_user_deleted"
        )
        post_save.connect(
            close_entries_of_deactivated_user, sender=user_model, dispatch_uid="orders.waitlist_user_deactivated"
        )

        # Closing the waiting lists first: the refunds' release of offers then offers nothing.
        event_cancelled.connect(close_waitlists, dispatch_uid="orders.close_waitlists")
        event_cancelled.connect(refund_cancelled_event, dispatch_uid="orders.refund_cancelled_event")
        stock_added.connect(offer_added_stock, dispatch_uid="orders.offer_added_stock")

        if settings.EXPIRY_SWEEP_IN_PROCESS:
            from .sweeper import start_on_first_request

            request_started.connect(start_on_first_request, dispatch_uid="orders.sweeper")
