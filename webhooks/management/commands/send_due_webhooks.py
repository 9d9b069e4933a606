"""Send the webhook deliveries that are due (retries), here and now.

Beat's sweep does this every ``WEBHOOKS_RETRY_SWEEP_SECONDS`` when Celery runs; without a worker (the
embedded default, tasks run eagerly) a failed delivery waits for this command (cron it, or run it by
hand after fixing a receiver)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from webhooks import services


class Command(BaseCommand):
    help = "Send the webhook deliveries whose next attempt is due."

    def handle(self, *args, **options) -> None:
        sent = 0
        for delivery_id in services.deliveries_due():
            if services.delivery_attempt(delivery_id=delivery_id) is not None:
                sent += 1
        self.stdout.write(f"{sent} delivery attempt(s) made.")
