"""The Stripe provider at its HTTP boundary: what it sends Stripe, and what it makes of Stripe's answers.

Stripe's responses are recorded-style JSON bodies served by ``responses``; the
webhooks are signed here the way Stripe signs them. No key, no network.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import parse_qs

import pytest
import requests
import responses
import stripe

from orders.models import Payment, Refund
from orders.payments import get_provider
from orders.payments.base import InvalidSignature, ProviderError, WebhookEvent
from orders.payments.stripe import MAX_NETWORK_RETRIES, StripeProvider

SECRET_KEY = "sk_test_xxx"
WEBHOOK_SECRET = "whsec_xxx"
PAYMENT_ID = uuid.UUID("6f1c1a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
REFUND_ID = uuid.UUID("0a9b8c7d-6e5f-4a3b-9c1d-2e3f4a5b6c7d")
INTENT_ID = "pi_3QxYzA2eZvKYlo2C1a2b3c4d"
INTENTS_URL = "https://api.stripe.com/v1/payment_intents"
REFUNDS_URL = "https://api.stripe.com/v1/refunds"


@pytest.fixture(autouse=True)
def _stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS = 300


@pytest.fixture
def gateway():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def no_backoff(monkeypatch):
    """The SDK's retries without their half-second waits."""
    monkeypatch.setattr(stripe.HTTPClient, "_sleep_time_seconds", lambda self, num_retries: 0)


def make_payment(**fields) -> Payment:
    fields = {
        "id": PAYMENT_ID,
        "order_id": 4242,
        "provider": "stripe",
        "amount_cents": 2500,
        "currency": "EUR",
        **fields,
    }
    return Payment(**fields)


def make_refund(**payment_fields) -> Refund:
    payment = make_payment(**{"reference": INTENT_ID, **payment_fields})
    return Refund(id=REFUND_ID, payment=payment, amount_cents=payment.amount_cents, reason="requested_by_buyer")


def intent_body(**fields) -> dict:
    """A PaymentIntent as Stripe returns it (trimmed of fields nobody reads)."""
    return {
        "id": INTENT_ID,
        "object": "payment_intent",
        "amount": 2500,
        "amount_capturable": 0,
        "amount_received": 0,
        "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
        "capture_method": "automatic",
        "client_secret": f"{INTENT_ID}_secret_Jk8sD0aQ1w2e3r4t5y6u7i8o9",
        "confirmation_method": "automatic",
        "created": 1767225600,
        "currency": "eur",
        "description": "Spring Jazz Night (4242)",
        "latest_charge": None,
        "livemode": False,
        "metadata": {"order_id": "4242", "payment_id": str(PAYMENT_ID)},
        "payment_method_types": ["card", "link"],
        "receipt_email": "ada@example.com",
        "status": "requires_payment_method",
        **fields,
    }


def refund_body(**fields) -> dict:
    return {
        "id": "re_3QxYzA2eZvKYlo2C0r1e2f3u",
        "object": "refund",
        "amount": 2500,
        "balance_transaction": "txn_3QxYzA2eZvKYlo2C0b1a2l3a",
        "charge": "ch_3QxYzA2eZvKYlo2C1c2h3a4r",
        "created": 1767229200,
        "currency": "eur",
        "metadata": {"payment_id": str(PAYMENT_ID), "refund_id": str(REFUND_ID)},
        "payment_intent": INTENT_ID,
        "reason": None,
        "status": "succeeded",
        **fields,
    }


def stripe_error(code: str, message: str, *, kind: str = "invalid_request_error") -> dict:
    return {
        "error": {
            "code": code,
            "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
            "message": message,
            "request_log_url": "https://dashboard.stripe.com/test/logs/req_a1b2c3d4e5f6",
            "type": kind,
        }
    }


def form(request) -> dict[str, str]:
    """A form-encoded Stripe request body as a flat dict (``metadata[payment_id]`` keys as sent)."""
    body = request.body.decode() if isinstance(request.body, bytes) else request.body
    return {key: values[0] for key, values in parse_qs(body).items()}


# --- create_payment ----------------------------------------------------------------------------


def test_the_registry_gives_the_stripe_provider_once_its_key_is_set(settings):
    assert isinstance(get_provider("stripe"), StripeProvider)

    settings.STRIPE_SECRET_KEY = ""

    assert get_provider("stripe") is None


def test_a_payment_opens_one_payment_intent_keyed_by_the_payment(gateway):
    gateway.post(INTENTS_URL, json=intent_body())

    intent = StripeProvider().create_payment(
        payment=make_payment(), buyer_email="ada@example.com", description="Spring Jazz Night (4242)"
    )

    assert intent.reference == INTENT_ID
    assert intent.client_secret == f"{INTENT_ID}_secret_Jk8sD0aQ1w2e3r4t5y6u7i8o9"
    assert intent.checkout_url == ""
    (call,) = gateway.calls
    assert call.request.method == "POST"
    assert call.request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert call.request.headers["Idempotency-Key"] == f"payment-{PAYMENT_ID}"
    assert form(call.request) == {
        "amount": "2500",
        "currency": "eur",
        "automatic_payment_methods[enabled]": "true",
        "receipt_email": "ada@example.com",
        "description": "Spring Jazz Night (4242)",
        "metadata[payment_id]": str(PAYMENT_ID),
        "metadata[order_id]": "4242",
    }


def test_a_gateway_outage_on_create_is_retried_with_the_same_key_then_reported(gateway, no_backoff):
    gateway.post(INTENTS_URL, status=500, json=stripe_error("api_error", "An unknown error occurred", kind="api_error"))

    with pytest.raises(ProviderError, match="unknown error"):
        StripeProvider().create_payment(payment=make_payment(), buyer_email="ada@example.com", description="x")

    assert len(gateway.calls) == 1 + MAX_NETWORK_RETRIES
    assert {call.request.headers["Idempotency-Key"] for call in gateway.calls} == {f"payment-{PAYMENT_ID}"}


def test_an_unreachable_stripe_on_create_is_a_provider_error(gateway, no_backoff):
    gateway.post(INTENTS_URL, body=requests.ConnectionError("Connection refused"))

    with pytest.raises(ProviderError):
        StripeProvider().create_payment(payment=make_payment(), buyer_email="ada@example.com", description="x")


# --- parse_webhook -----------------------------------------------------------------------------


def event_body(event_type: str, obj: dict, *, event_id: str = "evt_3QxYzA2eZvKYlo2C0e1v2t3a") -> bytes:
    """A webhook body as Stripe posts it (a snapshot event)."""
    event = {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": 1767225700,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(event, indent=2).encode()


def sign(body: bytes, *, timestamp: int | None = None, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """The Stripe-Signature header: HMAC-SHA256 of "<t>.<body>" with the endpoint's secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={mac}"}


def test_a_succeeded_intent_is_a_verified_success_for_our_payment():
    body = event_body(
        "payment_intent.succeeded",
        intent_body(status="succeeded", amount_received=2500, latest_charge="ch_3QxYzA2eZvKYlo2C1c2h3a4r"),
    )

    event = StripeProvider().parse_webhook(body=body, headers=sign(body))

    assert event.kind == WebhookEvent.SUCCEEDED
    assert event.event_id == "evt_3QxYzA2eZvKYlo2C0e1v2t3a"
    assert event.reference == INTENT_ID
    assert event.payment_id == str(PAYMENT_ID)
    assert (event.amount_cents, event.currency) == (2500, "EUR")
    assert event.payload["data"]["object"]["id"] == INTENT_ID


def test_the_amount_received_is_reported_not_the_amount_asked():
    body = event_body("payment_intent.succeeded", intent_body(status="succeeded", amount=2500, amount_received=2000))

    event = StripeProvider().parse_webhook(body=body, headers=sign(body))

    assert event.amount_cents == 2000


@pytest.mark.parametrize(
    ("event_type", "status"),
    [("payment_intent.payment_failed", "requires_payment_method"), ("payment_intent.canceled", "canceled")],
)
def test_a_failed_or_cancelled_intent_is_a_failure(event_type, status):
    body = event_body(event_type, intent_body(status=status))

    event = StripeProvider().parse_webhook(body=body, headers=sign(body))

    assert (event.kind, event.reference, event.payment_id) == (WebhookEvent.FAILED, INTENT_ID, str(PAYMENT_ID))


def test_a_refunded_charge_is_a_refund_of_its_payment_intent():
    charge = {
        "id": "ch_3QxYzA2eZvKYlo2C1c2h3a4r",
        "object": "charge",
        "amount": 2500,
        "amount_captured": 2500,
        "amount_refunded": 2500,
        "captured": True,
        "currency": "eur",
        "metadata": {"order_id": "4242", "payment_id": str(PAYMENT_ID)},
        "paid": True,
        "payment_intent": INTENT_ID,
        "refunded": True,
        "status": "succeeded",
    }
    body = event_body("charge.refunded", charge)

    event = StripeProvider().parse_webhook(body=body, headers=sign(body))

    assert event.kind == WebhookEvent.REFUNDED
    assert (event.reference, event.payment_id) == (INTENT_ID, str(PAYMENT_ID))
    assert (event.amount_cents, event.currency) == (2500, "EUR")


def test_an_event_type_we_do_not_handle_is_ignored_but_verified():
    body = event_body("customer.created", {"id": "cus_R2d2C3po", "object": "customer", "email": "ada@example.com"})

    event = StripeProvider().parse_webhook(body=body, headers=sign(body))

    assert (event.kind, event.event_id) == (WebhookEvent.IGNORED, "evt_3QxYzA2eZvKYlo2C0e1v2t3a")


def test_a_payment_that_is_not_ours_is_ignored_not_retried_forever():
    # A Payment Link, an invoice or another app on the same Stripe account: no payment id of ours.
    body = event_body("payment_intent.succeeded", intent_body(status="succeeded", amount_received=2500, metadata={}))

    event = StripeProvider().parse_webhook(body=body, headers=sign(body))

    assert (event.kind, event.payment_id) == (WebhookEvent.IGNORED, "")


def test_a_non_ascii_signature_header_is_invalid_not_an_error():
    body = _succeeded_body()
    with pytest.raises(InvalidSignature):
        StripeProvider().parse_webhook(body=body, headers={"Stripe-Signature": "t=1,v1=é"})


def test_the_signature_header_is_found_in_any_case():
    body = event_body("payment_intent.succeeded", intent_body(status="succeeded", amount_received=2500))
    headers = {"stripe-signature": sign(body)["Stripe-Signature"]}

    assert StripeProvider().parse_webhook(body=body, headers=headers).kind == WebhookEvent.SUCCEEDED


def _succeeded_body() -> bytes:
    return event_body("payment_intent.succeeded", intent_body(status="succeeded", amount_received=2500))


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: {}, id="missing header"),
        pytest.param(lambda body: sign(body, secret="whsec_someone_else"), id="wrong secret"),
        pytest.param(lambda body: {"Stripe-Signature": "t=not-a-time,v1=abc"}, id="malformed header"),
        pytest.param(lambda body: sign(body, timestamp=int(time.time()) - 301), id="stale timestamp"),
    ],
)
def test_a_webhook_that_does_not_verify_is_refused(headers):
    body = _succeeded_body()

    with pytest.raises(InvalidSignature):
        StripeProvider().parse_webhook(body=body, headers=headers(body))


def test_the_replay_window_is_the_setting(settings):
    body = _succeeded_body()
    headers = sign(body, timestamp=int(time.time()) - 120)
    assert StripeProvider().parse_webhook(body=body, headers=headers).kind == WebhookEvent.SUCCEEDED

    settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS = 60

    with pytest.raises(InvalidSignature):
        StripeProvider().parse_webhook(body=body, headers=headers)


def test_a_tampered_body_is_refused():
    body = _succeeded_body()
    headers = sign(body)
    tampered = body.replace(b'"amount_received": 2500', b'"amount_received": 250000')
    assert tampered != body

    with pytest.raises(InvalidSignature):
        StripeProvider().parse_webhook(body=tampered, headers=headers)


def test_an_unset_webhook_secret_refuses_everything(settings):
    body = _succeeded_body()
    headers = sign(body, secret="")
    settings.STRIPE_WEBHOOK_SECRET = ""

    with pytest.raises(InvalidSignature):
        StripeProvider().parse_webhook(body=body, headers=headers)


def test_a_signed_body_that_is_not_an_event_is_refused():
    body = b"this is not json"

    with pytest.raises(InvalidSignature):
        StripeProvider().parse_webhook(body=body, headers=sign(body))


# --- refund ------------------------------------------------------------------------------------


def test_a_refund_is_asked_for_the_payment_intent_keyed_by_the_refund(gateway):
    gateway.post(REFUNDS_URL, json=refund_body())

    result = StripeProvider().refund(refund=make_refund())

    assert (result.reference, result.succeeded) == ("re_3QxYzA2eZvKYlo2C0r1e2f3u", True)
    (call,) = gateway.calls
    assert call.request.headers["Idempotency-Key"] == f"refund-{REFUND_ID}"
    assert form(call.request) == {
        "payment_intent": INTENT_ID,
        "amount": "2500",
        "metadata[refund_id]": str(REFUND_ID),
        "metadata[payment_id]": str(PAYMENT_ID),
    }


def test_a_pending_refund_is_accepted_but_not_yet_succeeded(gateway):
    gateway.post(REFUNDS_URL, json=refund_body(status="pending"))

    result = StripeProvider().refund(refund=make_refund())

    assert (result.reference, result.succeeded) == ("re_3QxYzA2eZvKYlo2C0r1e2f3u", False)


def test_a_charge_already_refunded_counts_as_refunded(gateway):
    gateway.post(
        REFUNDS_URL,
        status=400,
        json=stripe_error("charge_already_refunded", "Charge ch_3QxYzA2eZvKYlo2C1c2h3a4r has already been refunded."),
    )

    result = StripeProvider().refund(refund=make_refund())

    assert result.succeeded is True
    assert len(gateway.calls) == 1


def test_another_refusal_is_a_provider_error_with_stripes_message(gateway):
    gateway.post(
        REFUNDS_URL,
        status=400,
        json=stripe_error("amount_too_large", "Refund amount (€30.00) is greater than charge amount (€25.00)"),
    )

    with pytest.raises(ProviderError, match="greater than charge amount"):
        StripeProvider().refund(refund=make_refund())


def test_a_gateway_500_on_refund_is_retried_then_a_provider_error(gateway, no_backoff):
    gateway.post(REFUNDS_URL, status=500, json=stripe_error("api_error", "An unknown error occurred", kind="api_error"))

    with pytest.raises(ProviderError):
        StripeProvider().refund(refund=make_refund())

    assert len(gateway.calls) == 1 + MAX_NETWORK_RETRIES
    assert {call.request.headers["Idempotency-Key"] for call in gateway.calls} == {f"refund-{REFUND_ID}"}


def test_rate_limiting_on_refund_is_a_provider_error(gateway):
    gateway.post(
        REFUNDS_URL, status=429, json=stripe_error("rate_limit", "Too many requests", kind="invalid_request_error")
    )

    with pytest.raises(ProviderError, match="Too many requests"):
        StripeProvider().refund(refund=make_refund())


def test_a_network_error_on_refund_is_a_provider_error(gateway, no_backoff):
    gateway.post(REFUNDS_URL, body=requests.ConnectTimeout("connect timed out"))

    with pytest.raises(ProviderError):
        StripeProvider().refund(refund=make_refund())


def test_a_payment_without_an_intent_cannot_be_refunded(gateway):
    with pytest.raises(ProviderError, match="no Stripe PaymentIntent"):
        StripeProvider().refund(refund=make_refund(reference=""))

    assert len(gateway.calls) == 0
