"""System checks for the payment configuration (``manage.py check``, ``check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .payments import PROVIDERS, enabled_providers


@register(Tags.compatibility)
def payment_provider_configured(app_configs, **kwargs) -> list:
    errors = []
    if settings.PAYMENT_PROVIDER not in PROVIDERS:
        errors.append(
            Error(
                f"PAYMENT_PROVIDER={settings.PAYMENT_PROVIDER!r} is not one of {', '.join(PROVIDERS)}.",
                id="orders.E001",
            )
        )
    elif settings.PAYMENT_PROVIDER not in enabled_providers():
        errors.append(
            Error(
                f"PAYMENT_PROVIDER={settings.PAYMENT_PROVIDER!r} but its keys are not set.",
                hint="Stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET; Paystack PAYSTACK_SECRET_KEY.",
                id="orders.E002",
            )
        )
    if settings.STRIPE_SECRET_KEY and not settings.STRIPE_WEBHOOK_SECRET:
        errors.append(
            Error(
                "STRIPE_SECRET_KEY is set without STRIPE_WEBHOOK_SECRET: Stripe's webhooks could not be verified.",
                id="orders.E003",
            )
        )
    return errors


@register(Tags.security, deploy=True)
def test_payments_off_in_production(app_configs, **kwargs) -> list:
    if not settings.TEST_PAYMENTS_ENABLED:
        return []
    return [
        Warning(
            "The test payment provider is enabled: any buyer can mark their own orders paid without paying.",
            hint="Set PAYMENT_PROVIDER=stripe or paystack (with its keys) and leave TEST_PAYMENTS_ENABLED unset.",
            id="orders.W001",
        )
    ]
