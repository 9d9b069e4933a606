"""The simulated gateway from the command line: complete or decline a test payment."""

import urllib.request
import uuid
from urllib.error import HTTPError, URLError

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orders.models import Payment
from orders.payments import test as gateway


class Command(BaseCommand):
    help = (
        "Play the test payment gateway: complete (or --fail) a pending test payment by delivering its "
        "signed webhook, in this process or (--url) over HTTP to a running server's webhook endpoint. "
        "Only while the test provider is enabled."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("payment", help="The payment's id (from POST /orders/{id}/pay).")
        parser.add_argument("--fail", action="store_true", help="Decline the payment instead.")
        parser.add_argument(
            "--url",
            help="POST the signed webhook here, e.g. http://127.0.0.1:8000/api/v1/payments/webhooks/test",
        )

    def handle(self, *args, payment: str, fail: bool, url: str | None, **options) -> None:
        if not settings.TEST_PAYMENTS_ENABLED:
            raise CommandError(
                "The test payment provider is not enabled here (PAYMENT_PROVIDER / TEST_PAYMENTS_ENABLED)."
            )
        try:
            found = Payment.objects.get(pk=uuid.UUID(payment), provider=gateway.TestProvider.name)
        except (ValueError, Payment.DoesNotExist) as exc:
            raise CommandError(f"No test payment {payment!r}.") from exc
        if url is None:
            result = gateway.deliver(found, succeeded=not fail)
            self.stdout.write(self.style.SUCCESS(f"Webhook delivered: {result.outcome}"))
            return
        delivery = gateway.signed_event(found, not fail)
        request = urllib.request.Request(  # noqa: S310  (an operator-given URL of our own server)
            url,
            data=delivery["body"],
            headers={"Content-Type": "application/json", **delivery["headers"]},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                self.stdout.write(self.style.SUCCESS(f"{response.status} {response.read().decode()}"))
        except HTTPError as exc:
            raise CommandError(f"{exc.code} {exc.read().decode()}") from exc
        except URLError as exc:
            raise CommandError(f"Could not reach {url}: {exc.reason}") from exc
