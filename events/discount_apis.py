"""``/events/{id}/discount-codes``: the owner's discount codes (events/discounts.py holds the rules)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from eventflow.api.schema import problems
from eventflow.api.serializers import DateTimeField, StrictInputSerializer

from . import discounts, selectors
from .models import MAX_PRICE_CENTS, DiscountCode, Event

ID = "[0-9]{1,18}"
MANAGE_ERRORS = {403: ["permission_denied"], 404: ["not_found"]}


class DiscountCodeInputSerializer(StrictInputSerializer):
    """Create (``code`` and one of ``percent_off`` / ``amount_off_cents`` required) and PATCH."""

    code = serializers.RegexField(
        discounts.CODE_PATTERN,
        max_length=discounts.MAX_CODE_LENGTH,
        help_text="What buyers type: letters, digits, - and _, starting with a letter or digit. Matched "
        "case-insensitively, and unique per event in that sense (400 `discount_code_taken`).",
    )
    percent_off = serializers.IntegerField(
        min_value=1, max_value=100, required=False, allow_null=True, help_text="1-100 % off. Give this or amount."
    )
    amount_off_cents = serializers.IntegerField(
        min_value=1,
        max_value=MAX_PRICE_CENTS,
        required=False,
        allow_null=True,
        help_text="A fixed amount off the order, in the event's currency's minor units. Give this or percent_off.",
    )
    max_uses = serializers.IntegerField(
        min_value=1,
        max_value=discounts.MAX_USES,
        required=False,
        allow_null=True,
        help_text="How many live orders may carry the code at once; null: unlimited. Never below `uses` (409).",
    )
    valid_from = DateTimeField(required=False, allow_null=True, help_text="null: valid at once.")
    valid_until = DateTimeField(required=False, allow_null=True, help_text="Exclusive; null: no end.")
    ticket_types = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62),
        max_length=100,
        required=False,
        help_text="Ids of the event's ticket types the code takes money off; empty: all of them.",
    )
    active = serializers.BooleanField(required=False, help_text="false: buyers cannot use the code.")

    def validate(self, attrs):
        if attrs.get("percent_off") is not None and attrs.get("amount_off_cents") is not None:
            raise serializers.ValidationError({"percent_off": ["Give either percent_off or amount_off_cents."]})
        if not self.partial and attrs.get("percent_off") is None and attrs.get("amount_off_cents") is None:
            raise serializers.ValidationError({"percent_off": ["Give either percent_off or amount_off_cents."]})
        return attrs


class DiscountCodeOutputSerializer(serializers.ModelSerializer):
    ticket_types = serializers.SerializerMethodField(help_text="Ids; empty: the code applies to every type.")
    uses = serializers.IntegerField(
        read_only=True,
        help_text="Live (reserved and paid) orders carrying the code; given back on expiry, cancellation and refund.",
    )

    class Meta:
        model = DiscountCode
        fields = [
            "id",
            "code",
            "percent_off",
            "amount_off_cents",
            "max_uses",
            "uses",
            "valid_from",
            "valid_until",
            "ticket_types",
            "active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_ticket_types(self, obj: DiscountCode) -> list[int]:
        return sorted(tt.pk for tt in obj.ticket_types.all())


WRITE_ERRORS = {400: ["invalid", "discount_code_taken"], **MANAGE_ERRORS, 409: ["event_cancelled"]}


class DiscountCodeViewSet(viewsets.GenericViewSet):
    """An event's discount codes: its owner (or a platform admin) only; others get 403, or 404 for a
    draft they cannot see, as for the event's other management endpoints."""

    queryset = DiscountCode.objects.none()
    serializer_class = DiscountCodeOutputSerializer
    lookup_value_regex = ID

    def _event(self) -> Event:
        return selectors.event_get_manageable(event_id=int(self.kwargs["event_pk"]), user=self.request.user)

    def _code(self, pk: str) -> DiscountCode:
        return discounts.code_get(event=self._event(), code_id=int(pk))

    def _out(self, code: DiscountCode, code_status: int = status.HTTP_200_OK) -> Response:
        fresh = discounts.code_get(event=code.event, code_id=code.pk)
        return Response(DiscountCodeOutputSerializer(fresh).data, status=code_status)

    @extend_schema(
        operation_id="discount_codes_list",
        responses={200: DiscountCodeOutputSerializer(many=True), **problems(MANAGE_ERRORS)},
        description="Owner only: the event's discount codes with their `uses`.",
    )
    def list(self, request: Request, event_pk: str) -> Response:
        page = self.paginate_queryset(discounts.codes_of(event=self._event()))
        return self.get_paginated_response(DiscountCodeOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="discount_codes_create",
        request=DiscountCodeInputSerializer,
        responses={201: DiscountCodeOutputSerializer, **problems(WRITE_ERRORS)},
        description="Owner only. `code` and exactly one of `percent_off` / `amount_off_cents` (both or neither: "
        "400 on `percent_off`); `ticket_types` must be the event's (400 on `ticket_types`); a code the event "
        "already has, in any case, is 400 `discount_code_taken`.",
    )
    def create(self, request: Request, event_pk: str) -> Response:
        event = self._event()
        data = DiscountCodeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        code = discounts.discount_code_create(event=event, by=request.user, **data.validated_data)
        return self._out(code, status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="discount_codes_retrieve",
        responses={200: DiscountCodeOutputSerializer, **problems(MANAGE_ERRORS)},
        description="Owner only: one discount code.",
    )
    def retrieve(self, request: Request, event_pk: str, pk: str) -> Response:
        return Response(DiscountCodeOutputSerializer(self._code(pk)).data)

    @extend_schema(
        operation_id="discount_codes_update",
        request=DiscountCodeInputSerializer(partial=True),
        responses={
            200: DiscountCodeOutputSerializer,
            **problems({**WRITE_ERRORS, 409: ["max_uses_below_uses", "event_cancelled"]}),
        },
        description="Owner only; send the fields to change. Sending `percent_off` alone turns a fixed-amount code "
        "into a percentage one (and the reverse); `ticket_types` replaces the list. `max_uses` below the "
        "current `uses` is 409 `max_uses_below_uses`. Orders placed already keep their discount.",
    )
    def partial_update(self, request: Request, event_pk: str, pk: str) -> Response:
        code = self._code(pk)
        data = DiscountCodeInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        code = discounts.discount_code_update(discount_code=code, by=request.user, **data.validated_data)
        return self._out(code)

    @extend_schema(
        operation_id="discount_codes_destroy",
        responses={204: None, **problems(MANAGE_ERRORS)},
        description="Owner only. Buyers can no longer use the code and it leaves the list. A code that orders "
        "carry stays in the database for them (their totals and the sales report keep it).",
    )
    def destroy(self, request: Request, event_pk: str, pk: str) -> Response:
        discounts.discount_code_delete(discount_code=self._code(pk), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
