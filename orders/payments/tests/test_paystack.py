"""The Paystack provider at its HTTP boundary: what it sends Paystack, and what it makes of the answers.

Paystack's answers are recorded-style JSON bodies (as its API reference shows
them) served by ``responses``; webhooks are signed here as Paystack signs them.
No key, no network.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
import requests
import responses

from orders.models import Payment, Refund
from orders.payments import get_provider
from orders.payments.base import InvalidSignature, ProviderError, WebhookEvent
from orders.payments.paystack import CheckoutUnavailable, PaystackProvider

SECRET_KEY = "sk_test_xxx"
PAYMENT_ID = uuid.UUID("6f1c1a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
REFUND_ID = uuid.UUID("0a9b8c7d-6e5f-4a3b-9c1d-2e3f4a5b6c7d")
REFERENCE = str(PAYMENT_ID)
INITIALIZE_URL = "https://api.paystack.co/transaction/initialize"
VERIFY_URL = f"https://api.paystack.co/transaction/verify/{REFERENCE}"
REFUND_URL = "https://api.paystack.co/refund"


@pytest.fixture(autouse=True)
def _paystack_settings(settings):
    settings.PAYSTACK_SECRET_KEY = SECRET_KEY


@pytest.fixture
def gateway():
    with responses.RequestsMock() as mock:
        yield mock


def make_payment(**fields) -> Payment:
    fields = {
        "id": PAYMENT_ID,
        "order_id": 4242,
        "provider": "paystack",
        "amount_cents": 500000,
        "currency": "NGN",
        **fields,
    }
    return Payment(**fields)


def make_refund(**payment_fields) -> Refund:
    payment = make_payment(**{"reference": REFERENCE, **payment_fields})
    return Refund(id=REFUND_ID, payment=payment, amount_cents=payment.amount_cents, reason="requested_by_buyer")


def sent_json(call) -> dict:
    return json.loads(call.request.body)


def refused(message: str, *, code: str = "", kind: str = "validation_error") -> dict:
    body = {"status": False, "message": message, "meta": {"nextStep": "Try again"}, "type": kind}
    if code:
        body["code"] = code
    return body


def transaction(**fields) -> dict:
    """A transaction as Paystack's verify endpoint and charge.* events carry it (trimmed)."""
    return {
        "id": 4099260516,
        "domain": "test",
        "status": "success",
        "reference": REFERENCE,
        "receipt_number": None,
        "amount": 500000,
        "message": None,
        "gateway_response": "Successful",
        "paid_at": "2026-05-02T09:15:02.000Z",
        "created_at": "2026-05-02T09:14:24.000Z",
        "channel": "card",
        "currency": "NGN",
        "ip_address": "197.210.54.33",
        "metadata": {"payment_id": REFERENCE, "order_id": "4242"},
        "fees": 10283,
        "authorization": {
            "authorization_code": "AUTH_uh8bcl3zbn",
            "bin": "408408",
            "last4": "4081",
            "channel": "card",
            "card_type": "visa ",
            "bank": "TEST BANK",
            "country_code": "NG",
            "brand": "visa",
            "reusable": True,
        },
        "customer": {"id": 181873746, "email": "ada@example.com", "customer_code": "CUS_1rkzaqsv4rrhqo6"},
        **fields,
    }


# --- create_payment ----------------------------------------------------------------------------


def test_the_registry_gives_the_paystack_provider_once_its_key_is_set(settings):
    assert isinstance(get_provider("paystack"), PaystackProvider)

    settings.PAYSTACK_SECRET_KEY = ""

    assert get_provider("paystack") is None


def test_a_payment_initialises_a_transaction_whose_reference_is_the_payment(gateway):
    gateway.post(
        INITIALIZE_URL,
        json={
            "status": True,
            "message": "Authorization URL created",
            "data": {
                "authorization_url": "https://checkout.paystack.com/3ni8kdavz62431k",
                "access_code": "3ni8kdavz62431k",
                "reference": REFERENCE,
            },
        },
    )

    intent = PaystackProvider().create_payment(
        payment=make_payment(), buyer_email="ada@example.com", description="Lagos Jazz Night (4242)"
    )

    assert intent.reference == REFERENCE
    assert intent.checkout_url == "https://checkout.paystack.com/3ni8kdavz62431k"
    assert intent.client_secret == ""
    (call,) = gateway.calls
    assert call.request.method == "POST"
    assert call.request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert sent_json(call) == {
        "email": "ada@example.com",
        "amount": 500000,
        "currency": "NGN",
        "reference": REFERENCE,
        "metadata": {"payment_id": REFERENCE, "order_id": "4242", "description": "Lagos Jazz Night (4242)"},
    }


def test_a_transaction_already_paid_under_this_reference_is_the_payment(gateway):
    gateway.post(
        INITIALIZE_URL, status=400, json=refused("Duplicate Transaction Reference", code="duplicate_reference")
    )
    gateway.get(VERIFY_URL, json={"status": True, "message": "Verification successful", "data": transaction()})

    intent = PaystackProvider().create_payment(payment=make_payment(), buyer_email="ada@example.com", description="x")

    assert (intent.reference, intent.checkout_url) == (REFERENCE, "")
    assert [call.request.method for call in gateway.calls] == ["POST", "GET"]


def test_an_unpaid_transaction_already_started_cannot_be_resumed(gateway):
    gateway.post(
        INITIALIZE_URL, status=400, json=refused("Duplicate Transaction Reference", code="duplicate_reference")
    )
    gateway.get(
        VERIFY_URL,
        json={
            "status": True,
            "message": "Verification successful",
            "data": transaction(status="abandoned", gateway_response="The transaction was not completed", paid_at=None),
        },
    )

    with pytest.raises(CheckoutUnavailable, match="start a new payment") as raised:
        PaystackProvider().create_payment(payment=make_payment(), buyer_email="ada@example.com", description="x")

    assert isinstance(raised.value, ProviderError)  # the services' one catch still applies


def test_another_refusal_on_create_is_a_provider_error_with_paystacks_message(gateway):
    gateway.post(INITIALIZE_URL, status=400, json=refused("Currency not supported by merchant"))

    with pytest.raises(ProviderError, match="Currency not supported"):
        PaystackProvider().create_payment(payment=make_payment(), buyer_email="ada@example.com", description="x")


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"status": 502, "body": "<html>Bad Gateway</html>"}, id="5xx without JSON"),
        pytest.param({"body": requests.ConnectionError("Connection reset by peer")}, id="network error"),
        pytest.param({"body": requests.ReadTimeout("read timed out")}, id="timeout"),
    ],
)
def test_an_unreachable_paystack_on_create_is_a_provider_error(gateway, answer):
    gateway.post(INITIALIZE_URL, **answer)

    with pytest.raises(ProviderError):
        PaystackProvider().create_payment(payment=make_payment(), buyer_email="ada@example.com", description="x")


# --- parse_webhook -----------------------------------------------------------------------------


def signed(payload: dict, *, secret: str = SECRET_KEY) -> tuple[bytes, dict[str, str]]:
    """A webhook as Paystack posts it: the header is HMAC-SHA512 of the raw body under the secret key."""
    body = json.dumps(payload, indent=2).encode()
    return body, {"X-Paystack-Signature": hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()}


def charge_success() -> dict:
    return {"event": "charge.success", "data": transaction()}


def test_a_successful_charge_is_a_verified_success_for_our_payment():
    body, headers = signed(charge_success())

    event = PaystackProvider().parse_webhook(body=body, headers=headers)

    assert event.kind == WebhookEvent.SUCCEEDED
    assert event.event_id == "charge.success:4099260516"
    assert (event.reference, event.payment_id) == (REFERENCE, REFERENCE)
    assert (event.amount_cents, event.currency) == (500000, "NGN")
    assert event.payload["data"]["id"] == 4099260516


def test_a_redelivered_event_keeps_its_id():
    body, headers = signed(charge_success())
    first = PaystackProvider().parse_webhook(body=body, headers=headers)

    again = PaystackProvider().parse_webhook(body=body, headers=headers)

    assert again.event_id == first.event_id


def test_a_processed_refund_is_a_refund_of_our_payment():
    payload = {
        "event": "refund.processed",
        "data": {
            "status": "processed",
            "transaction_reference": REFERENCE,
            "refund_reference": "132013318360",
            "amount": "500000",
            "currency": "NGN",
            "processor": "mpgs_zen",
            "customer": {"first_name": "Ada", "last_name": "Obi", "email": "ada@example.com"},
            "integration": 412829,
            "domain": "test",
        },
    }
    body, headers = signed(payload)

    event = PaystackProvider().parse_webhook(body=body, headers=headers)

    assert event.kind == WebhookEvent.REFUNDED
    assert event.event_id == f"refund.processed:{REFERENCE}:132013318360"
    assert (event.reference, event.payment_id) == (REFERENCE, REFERENCE)
    assert (event.amount_cents, event.currency) == (500000, "NGN")


def test_a_pending_refund_changes_nothing():
    payload = {
        "event": "refund.pending",
        "data": {
            "status": "pending",
            "transaction_reference": REFERENCE,
            "refund_reference": None,
            "amount": "500000",
            "currency": "NGN",
            "integration": 412829,
            "domain": "test",
        },
    }
    body, headers = signed(payload)

    event = PaystackProvider().parse_webhook(body=body, headers=headers)

    assert (event.kind, event.event_id) == (WebhookEvent.IGNORED, f"refund.pending:{REFERENCE}:")


def test_an_event_type_we_do_not_handle_is_ignored_but_verified():
    payload = {
        "event": "transfer.success",
        "data": {"id": 37272792, "amount": 30000, "currency": "NGN", "reference": "1jhbs3ozmen0k7y5efmw"},
    }
    body, headers = signed(payload)

    event = PaystackProvider().parse_webhook(body=body, headers=headers)

    assert (event.kind, event.event_id) == (WebhookEvent.IGNORED, "transfer.success:37272792")


def test_a_charge_eventflow_did_not_start_is_ignored():
    body, headers = signed({"event": "charge.success", "data": transaction(reference="T685312322670591")})

    event = PaystackProvider().parse_webhook(body=body, headers=headers)

    assert (event.kind, event.payment_id) == (WebhookEvent.IGNORED, "")


def test_the_signature_header_is_found_in_any_case():
    body, headers = signed(charge_success())
    lowercase = {"x-paystack-signature": headers["X-Paystack-Signature"]}

    assert PaystackProvider().parse_webhook(body=body, headers=lowercase).kind == WebhookEvent.SUCCEEDED


def test_a_webhook_without_a_signature_is_refused():
    body, _ = signed(charge_success())

    with pytest.raises(InvalidSignature):
        PaystackProvider().parse_webhook(body=body, headers={})


def test_a_webhook_signed_with_another_key_is_refused():
    body, headers = signed(charge_success(), secret="sk_test_someone_else")

    with pytest.raises(InvalidSignature):
        PaystackProvider().parse_webhook(body=body, headers=headers)


def test_a_tampered_body_is_refused():
    body, headers = signed(charge_success())
    tampered = body.replace(b'"amount": 500000', b'"amount": 5000000')
    assert tampered != body

    with pytest.raises(InvalidSignature):
        PaystackProvider().parse_webhook(body=tampered, headers=headers)


def test_a_non_ascii_signature_is_refused_not_an_error():
    body, _ = signed(charge_success())

    with pytest.raises(InvalidSignature):
        PaystackProvider().parse_webhook(body=body, headers={"X-Paystack-Signature": "é" * 128})


def test_a_signed_body_that_is_not_an_event_is_refused():
    body = b"[1, 2, 3]"
    headers = {"X-Paystack-Signature": hmac.new(SECRET_KEY.encode(), body, hashlib.sha512).hexdigest()}

    with pytest.raises(InvalidSignature):
        PaystackProvider().parse_webhook(body=body, headers=headers)


# --- refund ------------------------------------------------------------------------------------


def refund_answer(status: str) -> dict:
    """Paystack's answer to POST /refund (trimmed)."""
    return {
        "status": True,
        "message": "Refund has been queued for processing",
        "data": {
            "transaction": {"id": 4099260516, "domain": "test", "reference": REFERENCE, "amount": 500000},
            "integration": 412829,
            "deducted_amount": 0,
            "channel": None,
            "merchant_note": f"EventFlow refund {REFUND_ID}",
            "customer_note": f"Refund for transaction {REFERENCE}",
            "status": status,
            "refunded_by": "ops@example.com",
            "expected_at": "2026-05-12T09:21:17.016Z",
            "currency": "NGN",
            "domain": "test",
            "amount": 500000,
            "fully_deducted": False,
            "id": 3018284,
            "createdAt": "2026-05-02T09:21:17.122Z",
            "updatedAt": "2026-05-02T09:21:17.122Z",
        },
    }


def test_a_refund_is_asked_for_the_payments_transaction(gateway):
    gateway.post(REFUND_URL, json=refund_answer("pending"))

    result = PaystackProvider().refund(refund=make_refund())

    (call,) = gateway.calls
    assert call.request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert sent_json(call) == {
        "transaction": REFERENCE,
        "amount": 500000,
        "merchant_note": f"EventFlow refund {REFUND_ID}",
    }
    assert (result.reference, result.succeeded) == ("3018284", False)  # queued: refund.processed confirms it


def test_a_refund_processed_at_once_has_succeeded(gateway):
    gateway.post(REFUND_URL, json=refund_answer("processed"))

    result = PaystackProvider().refund(refund=make_refund())

    assert (result.reference, result.succeeded) == ("3018284", True)


def test_a_transaction_already_fully_reversed_counts_as_refunded(gateway):
    gateway.post(
        REFUND_URL,
        status=400,
        json=refused("Transaction has been fully reversed", code="transaction_reversed", kind="api_error"),
    )

    result = PaystackProvider().refund(refund=make_refund())

    assert result.succeeded is True


def test_another_refund_refusal_is_a_provider_error(gateway):
    gateway.post(REFUND_URL, status=400, json=refused("Insufficient balance to fulfill this refund. Please top up."))

    with pytest.raises(ProviderError, match="Insufficient balance"):
        PaystackProvider().refund(refund=make_refund())


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            {"status": 500, "json": {"status": False, "message": "An error occurred"}}, id="500 with Paystack's JSON"
        ),
        pytest.param({"status": 503, "body": "Service Unavailable"}, id="503 without JSON"),
        pytest.param({"body": requests.ConnectionError("Connection refused")}, id="network error"),
    ],
)
def test_a_gateway_failure_on_refund_is_a_provider_error(gateway, answer):
    gateway.post(REFUND_URL, **answer)

    with pytest.raises(ProviderError):
        PaystackProvider().refund(refund=make_refund())


def test_the_secret_key_never_appears_in_an_error(gateway):
    gateway.post(REFUND_URL, body=requests.ConnectionError("Connection refused"))

    with pytest.raises(ProviderError) as raised:
        PaystackProvider().refund(refund=make_refund())

    assert SECRET_KEY not in str(raised.value)
