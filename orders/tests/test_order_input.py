"""POST /orders' body is checked by hand for its usual shape: it must agree with the serializer."""

from __future__ import annotations

import json

import pytest
from rest_framework.exceptions import ValidationError

from orders.serializers import OrderCreateInputSerializer, order_create_input

GOOD = [
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}]},
    {"event": 2**62, "items": [{"quantity": 100, "ticket_type": 2**62}]},
    {"event": 7, "items": [{"ticket_type": n, "quantity": 3} for n in range(1, 21)]},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}], "discount_code": "Summer-25"},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}], "discount_code": "  padded  "},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}], "discount_code": ""},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}], "discount_code": None},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}], "discount_code": "x" * 64},
]
BAD = [
    {},
    [],
    "x",
    {"event": 1},
    {"event": 1, "items": []},
    {"event": 0, "items": [{"ticket_type": 2, "quantity": 1}]},
    {"event": 2**62 + 1, "items": [{"ticket_type": 2, "quantity": 1}]},
    {"event": True, "items": [{"ticket_type": 2, "quantity": 1}]},
    {"event": "1", "items": [{"ticket_type": 2, "quantity": 1}]},
    {"event": 1.0, "items": [{"ticket_type": 2, "quantity": 1}]},
    {"event": None, "items": [{"ticket_type": 2, "quantity": 1}]},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 0}]},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 101}]},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": False}]},
    {"event": 1, "items": [{"ticket_type": 2}]},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1, "seat": 4}]},
    {"event": 1, "items": [[2, 1]]},
    {"event": 1, "items": {"ticket_type": 2, "quantity": 1}},
    {"event": 1, "items": [{"ticket_type": n, "quantity": 1} for n in range(1, 22)]},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}], "status": "paid"},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}], "discount_code": 5},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}], "discount_code": ["A"]},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}], "discount_code": "x" * 65},
    {"event": 1, "items": [{"ticket_type": 2, "quantity": 1}], "discount_code": "A", "coupon": "A"},
]


def _serializer(data):
    serializer = OrderCreateInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return json.loads(json.dumps(serializer.validated_data))


@pytest.mark.parametrize("data", GOOD)
def test_a_usual_body_gives_what_the_serializer_gives(data):
    assert order_create_input(data) == _serializer(data)


@pytest.mark.parametrize("data", BAD, ids=[str(i) for i in range(len(BAD))])
def test_anything_else_is_the_serializer_s_400(data):
    with pytest.raises(ValidationError) as by_hand:
        order_create_input(data)
    with pytest.raises(ValidationError) as by_serializer:
        _serializer(data)
    assert by_hand.value.detail == by_serializer.value.detail
