"""Idempotency-Key on POST /orders: replay, reuse with another body, scope, expiry, takeover."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from accounts.tests.test_auth import assert_problem
from events.models import TicketType
from orders.models import IdempotencyRecord, Order
from orders.services import purge_expired_idempotency_records

from .conftest import order_body

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"


def post(client, body, key):
    return client.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_same_key_and_body_replays_the_first_response(client, event, tier):
    body = order_body(event, (tier, 2))
    first = post(client, body, "k-1")
    assert first.status_code == 201
    again = post(client, body, "k-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    tier.refresh_from_db()
    assert tier.available == 8


def test_same_key_other_body_is_422(client, event, tier):
    assert post(client, order_body(event, (tier, 1)), "k-2").status_code == 201
    assert_problem(post(client, order_body(event, (tier, 2)), "k-2"), 422, "idempotency_key_reused")
    assert Order.objects.count() == 1


def test_errors_below_500_are_replayed_too(client, event, tier):
    TicketType.objects.filter(pk=tier.pk).update(capacity=1, available=1)
    body = order_body(event, (tier, 2))
    first = post(client, body, "k-3")
    assert_problem(first, 409, "sold_out")
    TicketType.objects.filter(pk=tier.pk).update(capacity=10, available=10)  # stock arrives
    again = post(client, body, "k-3")
    assert_problem(again, 409, "sold_out")  # the same answer, not a new attempt
    assert again.json() == first.json()
    assert Order.objects.count() == 0
    assert post(client, body, "k-4").status_code == 201  # a new key is a new attempt


def test_keys_are_scoped_per_user(client, event, tier):
    body = order_body(event, (tier, 1))
    other = APIClient()
    other.force_authenticate(UserFactory())
    first, second = post(client, body, "shared"), post(other, body, "shared")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert Order.objects.count() == 2


def test_a_key_still_in_progress_is_409(client, buyer, event, tier):
    body = order_body(event, (tier, 1))
    assert post(client, body, "k-5").status_code == 201
    IdempotencyRecord.objects.filter(key="k-5").update(state=IdempotencyRecord.State.IN_PROGRESS)
    r = post(client, body, "k-5")
    assert_problem(r, 409, "idempotency_in_progress")
    assert r["Retry-After"] == "1"  # the client is told when to try again


def test_an_abandoned_claim_is_taken_over(client, buyer, event, tier, settings):
    """A request that died before committing left only its claim: a later retry does the work once."""
    body = order_body(event, (tier, 1))
    first = post(client, body, "k-6")
    IdempotencyRecord.objects.filter(key="k-6").update(
        state=IdempotencyRecord.State.IN_PROGRESS, created_at=timezone.now() - timedelta(minutes=10)
    )
    Order.objects.filter(pk=first.json()["id"]).update(status=Order.Status.CANCELLED)  # as if never committed
    retry = post(client, body, "k-6")
    assert retry.status_code == 201
    assert retry.json()["id"] != first.json()["id"]
    assert post(client, body, "k-6").json()["id"] == retry.json()["id"]


def test_keys_expire_after_the_ttl(client, event, tier):
    body = order_body(event, (tier, 1))
    first = post(client, body, "k-7")
    IdempotencyRecord.objects.filter(key="k-7").update(expires_at=timezone.now() - timedelta(seconds=1))
    second = post(client, body, "k-7")
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert purge_expired_idempotency_records() == 1
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "bad\nkey"])
def test_malformed_keys_are_400(client, event, tier, key):
    body = assert_problem(client.post(ORDERS, order_body(event, (tier, 1)), HTTP_IDEMPOTENCY_KEY=key), 400, "invalid")
    assert "Idempotency-Key" in body["errors"]
    assert Order.objects.count() == 0


def test_validation_errors_with_a_key_are_stored_and_replayed(client, event, tier):
    first = post(client, {"event": event.pk, "items": []}, "k-8")
    assert_problem(first, 400, "invalid")
    assert post(client, {"event": event.pk, "items": []}, "k-8").json() == first.json()


def test_without_a_key_every_post_is_a_new_order(client, event, tier):
    body = order_body(event, (tier, 1))
    assert client.post(ORDERS, body).status_code == 201
    assert client.post(ORDERS, body).status_code == 201
    assert Order.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 0


def test_a_retry_after_the_stock_is_gone_replays_the_order_it_made(client, event, tier):
    """The key is claimed inside the order's transaction, so a retry runs up to the claim and
    replays: it neither buys again nor reports the sold-out state it now finds."""
    body = order_body(event, (tier, 2))
    first = post(client, body, "k-9")
    assert first.status_code == 201
    TicketType.objects.filter(pk=tier.pk).update(available=0)
    again = post(client, body, "k-9")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert IdempotencyRecord.objects.get(key="k-9").state == IdempotencyRecord.State.COMPLETED


def test_a_purchase_that_rolls_back_leaves_no_claim(client, event, tier, monkeypatch):
    """The stored response commits with the order or not at all: a failure after the claim (here
    the stock statement) leaves the key free for the retry."""
    from orders import sql

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(sql, "take_one", broken)
    body = order_body(event, (tier, 1))
    assert post(client, body, "k-10").status_code == 500
    assert IdempotencyRecord.objects.filter(key="k-10").count() == 0
    assert Order.objects.count() == 0
    monkeypatch.undo()
    assert post(client, body, "k-10").status_code == 201
