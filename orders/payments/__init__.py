"""Payment providers: one module per gateway behind :class:`orders.payments.base.Provider`.

Which provider takes new payments (``PAYMENT_PROVIDER``) and which ones may
send webhooks (every configured one) is decided here, from settings, so the
views and services never name a gateway.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .base import Provider

PROVIDERS = {
    "test": "orders.payments.test.TestProvider",
    "stripe": "orders.payments.stripe.StripeProvider",
    "paystack": "orders.payments.paystack.PaystackProvider",
}


def enabled_providers() -> list[str]:
    """The providers this deployment is configured for, in the order of ``PROVIDERS``."""
    configured = {
        "test": settings.TEST_PAYMENTS_ENABLED,
        "stripe": bool(settings.STRIPE_SECRET_KEY),
        "paystack": bool(settings.PAYSTACK_SECRET_KEY),
    }
    return [name for name in PROVIDERS if configured[name]]


def get_provider(name: str) -> Provider | None:
    """The named provider when it is configured here, else None."""
    if name not in enabled_providers():
        return None
    return import_string(PROVIDERS[name])()


def default_provider() -> Provider:
    provider = get_provider(settings.PAYMENT_PROVIDER)
    if provider is None:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"PAYMENT_PROVIDER={settings.PAYMENT_PROVIDER!r} is not configured.")
    return provider
