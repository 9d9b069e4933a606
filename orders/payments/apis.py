"""Payment endpoints: the gateways' webhooks, and the simulated gateway's buttons."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from eventflow.api.schema import problems
from eventflow.api.serializers import StrictInputSerializer
from orders import selectors
from orders.serializers import OrderOutputSerializer, PaymentOutputSerializer

from . import PROVIDERS, services
from . import test as test_gateway


class WebhookOutputSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    duplicate = serializers.BooleanField(help_text="This event was delivered before; nothing changed.")
    outcome = serializers.CharField(help_text="What the event did, e.g. `paid`, `failed`, `refunded_sold_out`.")


class WebhookApi(APIView):
    """Gateways call this; who they are is proven by the signature, not by a login."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []

    @extend_schema(
        tags=["payments"],
        operation_id="payments_webhook",
        auth=[],
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("provider", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(PROVIDERS))],
        responses={
            200: WebhookOutputSerializer,
            **problems({400: ["invalid_signature"], 404: ["not_found"], 409: ["payment_unknown"], 503: ["busy"]}),
        },
        description="A payment gateway's notification. The signature is checked over the raw body (test "
        'provider: `EventFlow-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, 5 minutes\' '
        "tolerance; Stripe: `Stripe-Signature`; Paystack: `X-Paystack-Signature`). Each event is applied once "
        "per provider and event id; a redelivery is answered 200 with `duplicate: true`. 409 `payment_unknown` "
        "asks the gateway to deliver again later.",
    )
    def post(self, request: Request, provider: str) -> Response:
        if provider not in PROVIDERS:
            raise Http404
        result = services.webhook_receive(provider_name=provider, body=request.body, headers=request.headers)
        return Response(WebhookOutputSerializer({"received": True, **vars(result)}).data)


class TestPaymentInputSerializer(StrictInputSerializer):
    amount_cents = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, help_text="Report another amount than was asked."
    )
    currency = serializers.CharField(min_length=3, max_length=3, required=False)


class TestPaymentOutputSerializer(serializers.Serializer):
    payment = PaymentOutputSerializer()
    order = OrderOutputSerializer()
    webhook = WebhookOutputSerializer()


# The simulated gateway's endpoints are in the schema only where they exist.
_TEST_SCHEMA = {
    "tags": ["payments"],
    "request": TestPaymentInputSerializer,
    "responses": {200: TestPaymentOutputSerializer, **problems({400: ["invalid"], 404: ["not_found"]})},
    "exclude": not settings.TEST_PAYMENTS_ENABLED,
}


class TestPaymentApi(APIView):
    """The simulated gateway's "pay" and "decline" buttons, for development and demos."""

    succeeded: bool

    def post(self, request: Request, payment_id) -> Response:
        if not settings.TEST_PAYMENTS_ENABLED:
            raise Http404
        payment = selectors.payment_of(
            buyer=request.user, payment_id=payment_id, provider=test_gateway.TestProvider.name
        )
        data = TestPaymentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = test_gateway.deliver(payment, succeeded=self.succeeded, **data.validated_data)
        payment.refresh_from_db()
        order = selectors.order_of(buyer=request.user, order_id=payment.order_id)
        return Response(
            TestPaymentOutputSerializer(
                {"payment": payment, "order": order, "webhook": {"received": True, **vars(result)}}
            ).data
        )


class TestPaymentCompleteApi(TestPaymentApi):
    succeeded = True

    @extend_schema(
        **_TEST_SCHEMA,
        operation_id="payments_test_complete",
        description="Only while the test provider is enabled: the simulated gateway takes the money and "
        "delivers its signed `payment.succeeded` webhook, which pays the order and issues its tickets.",
    )
    def post(self, request: Request, payment_id) -> Response:
        return super().post(request, payment_id)


class TestPaymentFailApi(TestPaymentApi):
    succeeded = False

    @extend_schema(
        **_TEST_SCHEMA,
        operation_id="payments_test_fail",
        description="Only while the test provider is enabled: the simulated gateway declines the payment and "
        "delivers its signed `payment.failed` webhook; the order stays reserved and may be paid again.",
    )
    def post(self, request: Request, payment_id) -> Response:
        return super().post(request, payment_id)
