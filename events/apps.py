from django.apps import AppConfig


class EventsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "events"

    def ready(self) -> None:
        from . import discounts, signals  # noqa: F401  (connect the cache invalidation and discount receivers)
