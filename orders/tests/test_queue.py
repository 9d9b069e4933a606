"""The queued on-sale of high-demand events: 202 and a place in line, drained in order by workers."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from accounts.tests.test_auth import assert_problem
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import queue
from orders.models import Order, OrderItem, PurchaseRequest

from .conftest import order_body

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"


@pytest.fixture
def hot_event():
    return EventFactory(status=Event.Status.PUBLISHED, high_demand=True)


@pytest.fixture
def hot_tier(hot_event):
    return TicketTypeFactory(event=hot_event, name="GA", price_cents=2500, capacity=3, max_per_order=4)


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def queue_up(event, *lines, user=None, **headers):
    """A new buyer (or ``user``) asks for ``lines``; returns (client, response)."""
    client = client_of(user or UserFactory())
    return client, client.post(ORDERS, order_body(event, *lines), format="json", **headers)


def test_a_high_demand_purchase_waits_in_line_with_a_position_and_a_status_url(hot_event, hot_tier):
    # given a high-demand event
    # when two buyers ask for tickets
    _first_client, first = queue_up(hot_event, (hot_tier, 1))
    second_client, second = queue_up(hot_event, (hot_tier, 2))

    # then each is answered 202 with a place in line and where to ask for the outcome
    assert first.status_code == 202, first.content
    body = first.json()
    assert body["status"] == "queued"
    assert body["event"] == hot_event.pk
    assert body["position"] == 0
    assert body["status_url"].endswith(f"/api/v1/orders/queue/{body['id']}")
    assert first["Location"] == body["status_url"]
    assert int(first["Retry-After"]) >= 1
    assert second.status_code == 202
    assert second.json()["position"] == 1
    # and nothing is held yet: the workers place the orders
    hot_tier.refresh_from_db()
    assert hot_tier.available == 3
    assert not Order.objects.exists()

    polled = second_client.get(second.json()["status_url"])
    assert polled.status_code == 200
    assert polled.json()["status"] == "queued"
    assert polled.json()["position"] == 1
    assert polled.json()["order"] is None
    assert polled.json()["error"] is None
    assert int(polled["Retry-After"]) >= 1


def test_workers_serve_the_line_in_order_and_buyers_learn_the_outcome_by_polling(hot_event, hot_tier):
    # given three buyers in line for 3 tickets: 2, then 2, then 1
    a, first = queue_up(hot_event, (hot_tier, 2))
    b, second = queue_up(hot_event, (hot_tier, 2))
    c, third = queue_up(hot_event, (hot_tier, 1))

    # when a worker drains the line
    assert queue.drain(event_id=hot_event.pk) == 3

    # then the first is placed: a reserved order, as a direct purchase makes it
    placed = a.get(first["Location"]).json()
    assert placed["status"] == "placed"
    assert placed["position"] is None
    assert placed["error"] is None
    assert placed["order"]["status"] == "reserved"
    assert placed["order"]["items"][0]["quantity"] == 2
    assert a.get(f"{ORDERS}/{placed['order']['id']}").json()["id"] == placed["order"]["id"]
    # the second is refused with the problem a direct purchase gets: only 1 was left
    refused = b.get(second["Location"]).json()
    assert refused["status"] == "refused"
    assert refused["order"] is None
    assert refused["error"]["code"] == "sold_out"
    assert refused["error"]["available"] == 1
    assert refused["error"]["detail"]
    # and the third, asking for what was left, gets it: first come, first served
    assert c.get(third["Location"]).json()["status"] == "placed"
    hot_tier.refresh_from_db()
    assert hot_tier.available == 0
    assert Order.objects.count() == 2
    call_command("check_inventory")


def test_the_position_counts_only_the_requests_still_ahead(hot_event, hot_tier, settings):
    settings.ORDER_QUEUE_BATCH_SIZE = 1
    requests = [queue_up(hot_event, (hot_tier, 1))[1].json() for _ in range(3)]
    assert [r["position"] for r in requests] == [0, 1, 2]

    queue.drain_batch(event_id=hot_event.pk)

    last = PurchaseRequest.objects.get(pk=requests[2]["id"])
    assert queue.position_of(last) == 1
    assert queue.position_of(PurchaseRequest.objects.get(pk=requests[0]["id"])) is None


def test_a_known_sold_out_is_answered_at_once_instead_of_queued(hot_event, hot_tier):
    # given a sold-out ticket type and no hold due to expire
    hot_tier.available = 0
    hot_tier.save(update_fields=["available"])

    # when a buyer asks
    _client, response = queue_up(hot_event, (hot_tier, 1))

    # then the answer is the direct purchase's 409, and nobody is queued
    assert_problem(response, 409, "sold_out")
    assert not PurchaseRequest.objects.exists()


def test_with_holds_due_to_expire_a_short_stock_is_queued_and_the_worker_expires_them(hot_event, hot_tier):
    # given all 3 tickets held by an order whose hold ran out (the sweep has not run yet)
    holder = UserFactory()
    Event.objects.filter(pk=hot_event.pk).update(high_demand=False)
    assert client_of(holder).post(ORDERS, order_body(hot_event, (hot_tier, 3)), format="json").status_code == 201
    Event.objects.filter(pk=hot_event.pk).update(high_demand=True)
    Order.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    # when a buyer asks: stock read without a lock is short, but holds are due
    client, response = queue_up(hot_event, (hot_tier, 2))

    # then the request is queued (no web request expires holds under the stock lock) ...
    assert response.status_code == 202, response.content
    # ... and the worker frees the stock and places it
    queue.drain(event_id=hot_event.pk)
    assert client.get(response["Location"]).json()["status"] == "placed"
    assert Order.objects.get(buyer=holder).status == Order.Status.EXPIRED


def test_once_every_ticket_is_sold_the_rest_of_the_line_is_refused_in_bulk(hot_event, hot_tier, settings):
    settings.ORDER_QUEUE_BATCH_SIZE = 2
    ids = [queue_up(hot_event, (hot_tier, 3 if i == 0 else 1))[1].json()["id"] for i in range(7)]

    # the first batch places the first request (all 3 tickets) and meets the sell-out at the second
    answered = queue.drain(event_id=hot_event.pk)

    assert answered == 7
    outcomes = dict(PurchaseRequest.objects.values_list("pk", "status"))
    assert outcomes[uuid.UUID(ids[0])] == "placed"
    assert {outcomes[uuid.UUID(i)] for i in ids[1:]} == {"refused"}
    assert set(PurchaseRequest.objects.exclude(pk=ids[0]).values_list("error_code", flat=True)) == {"sold_out"}
    assert not PurchaseRequest.objects.filter(status="queued").exists()


def test_refusals_record_the_problem_a_direct_purchase_would_get(hot_event, settings):
    tier = TicketTypeFactory(event=hot_event, capacity=10, max_per_buyer=2)
    buyer = UserFactory()
    client = client_of(buyer)
    # the buyer already holds 2 (placed through the line) ...
    first = client.post(ORDERS, order_body(hot_event, (tier, 2)), format="json")
    queue.drain(event_id=hot_event.pk)
    # ... and asks for one more
    second = client.post(ORDERS, order_body(hot_event, (tier, 1)), format="json")
    assert (first.status_code, second.status_code) == (202, 202)
    queue.drain(event_id=hot_event.pk)

    refused = client.get(second["Location"]).json()
    assert refused["status"] == "refused"
    assert refused["error"]["code"] == "limit_exceeded"
    assert refused["error"]["max_per_buyer"] == 2


def test_one_buyer_has_one_queued_request_per_event(hot_event, hot_tier):
    buyer = UserFactory()
    client = client_of(buyer)
    first = client.post(ORDERS, order_body(hot_event, (hot_tier, 1)), format="json")

    # asking again for the same tickets (a second click, a retry without a key) is the same request
    again = client.post(ORDERS, order_body(hot_event, (hot_tier, 1)), format="json")
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again["Location"] == first["Location"]

    # asking for something else while queued is refused, naming the request in line
    other = client.post(ORDERS, order_body(hot_event, (hot_tier, 2)), format="json")
    body = assert_problem(other, 409, "already_queued")
    assert body["purchase_request"] == first.json()["id"]
    assert PurchaseRequest.objects.count() == 1

    # once answered, the buyer may queue again
    queue.drain(event_id=hot_event.pk)
    assert client.post(ORDERS, order_body(hot_event, (hot_tier, 1)), format="json").status_code == 202


def test_an_idempotent_retry_replays_the_202(hot_event, hot_tier):
    client = client_of(UserFactory())
    body = order_body(hot_event, (hot_tier, 1))
    first = client.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    queue.drain(event_id=hot_event.pk)  # answered meanwhile: the retry still replays the first answer

    retry = client.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert PurchaseRequest.objects.count() == 1
    assert Order.objects.count() == 1
    reused = client.post(ORDERS, order_body(hot_event, (hot_tier, 2)), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert_problem(reused, 422, "idempotency_key_reused")


def test_with_eager_tasks_the_line_is_drained_right_after_the_202_commits(
    hot_event, hot_tier, django_capture_on_commit_callbacks
):
    client = client_of(UserFactory())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(ORDERS, order_body(hot_event, (hot_tier, 1)), format="json")

    # the answer says what was true when it was written ...
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert callbacks  # the drainer was kicked on commit
    # ... and the status URL already shows the outcome
    polled = client.get(response["Location"]).json()
    assert polled["status"] == "placed"
    assert polled["order"]["status"] == "reserved"


def test_the_sweep_drains_a_line_whose_kick_was_lost(hot_event, hot_tier):
    _client, response = queue_up(hot_event, (hot_tier, 1))  # the on-commit kick never runs here

    assert queue.sweep() == 1  # one event with a line; eager tasks drain it now

    assert PurchaseRequest.objects.get(pk=response.json()["id"]).status == "placed"


def test_a_request_that_waited_too_long_expires(hot_event, hot_tier, settings):
    settings.ORDER_QUEUE_MAX_WAIT_MINUTES = 30
    client, stale = queue_up(hot_event, (hot_tier, 1))
    _other, fresh = queue_up(hot_event, (hot_tier, 1))
    PurchaseRequest.objects.filter(pk=stale.json()["id"]).update(created_at=timezone.now() - timedelta(minutes=31))

    queue.drain(event_id=hot_event.pk)

    expired = client.get(stale["Location"]).json()
    assert expired["status"] == "expired"
    assert expired["error"]["code"] == "queue_expired"
    assert PurchaseRequest.objects.get(pk=fresh.json()["id"]).status == "placed"
    assert Order.objects.count() == 1


def test_the_sweep_expires_requests_nobody_drained(hot_event, hot_tier, settings, monkeypatch):
    settings.ORDER_QUEUE_MAX_WAIT_MINUTES = 30
    monkeypatch.setattr(queue, "kick", lambda event_id, **kwargs: False)  # no worker at all
    _client, response = queue_up(hot_event, (hot_tier, 1))

    queue.sweep(now=timezone.now() + timedelta(minutes=31))

    assert PurchaseRequest.objects.get(pk=response.json()["id"]).status == "expired"


def test_events_not_marked_high_demand_are_sold_directly(event, tier, client):
    response = client.post(ORDERS, order_body(event, (tier, 1)), format="json")

    assert response.status_code == 201
    assert response.json()["status"] == "reserved"
    assert not PurchaseRequest.objects.exists()


def test_another_buyers_request_is_a_404(hot_event, hot_tier):
    _client, response = queue_up(hot_event, (hot_tier, 1))
    stranger = client_of(UserFactory())

    assert_problem(stranger.get(response["Location"]), 404, "not_found")
    assert_problem(stranger.get(f"{ORDERS}/queue/{uuid.uuid4()}"), 404, "not_found")
    assert_problem(stranger.get(f"{ORDERS}/queue/not-a-uuid"), 404, "not_found")
    assert APIClient().get(response["Location"]).status_code == 401


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"items": [{"ticket_type": 999_999, "quantity": 1}]}, 400, "invalid"),
        ({"items": [{"ticket_type": "TIER", "quantity": 5}]}, 409, "limit_exceeded"),
        ({"items": [{"ticket_type": "TIER", "quantity": 0}]}, 400, "invalid"),
        ({"items": []}, 400, "invalid"),
        ({"seats": [1]}, 400, "invalid"),
        ({"event": 999_999}, 400, "invalid"),
    ],
)
def test_bad_input_is_refused_before_anything_is_queued(hot_event, hot_tier, change, status, code):
    body = {**order_body(hot_event, (hot_tier, 1)), **change}
    for item in body["items"]:
        if item["ticket_type"] == "TIER":
            item["ticket_type"] = hot_tier.pk

    response = client_of(UserFactory()).post(ORDERS, body, format="json")

    assert_problem(response, status, code)
    assert not PurchaseRequest.objects.exists()


def test_a_closed_sales_window_is_refused_before_queueing(hot_event, hot_tier):
    hot_tier.sales_start = timezone.now() + timedelta(days=1)
    hot_tier.save(update_fields=["sales_start"])

    _client, response = queue_up(hot_event, (hot_tier, 1))

    assert_problem(response, 409, "sales_closed")
    assert not PurchaseRequest.objects.exists()


def test_the_organizer_marks_an_event_high_demand(event):
    organizer = client_of(event.organizer.user)

    response = organizer.patch(f"/api/v1/events/{event.pk}", {"high_demand": True}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["high_demand"] is True
    event.refresh_from_db()
    assert event.high_demand is True
    assert_problem(
        organizer.patch(f"/api/v1/events/{event.pk}", {"high_demand": "maybe"}, format="json"), 400, "invalid"
    )


def test_the_back_office_shows_the_line_read_only(hot_event, hot_tier, admin_client):
    _client, response = queue_up(hot_event, (hot_tier, 1))

    listing = admin_client.get("/admin/orders/purchaserequest/")
    page = admin_client.get(f"/admin/orders/purchaserequest/{response.json()['id']}/change/")
    event_page = admin_client.get(f"/admin/events/event/{hot_event.pk}/change/")

    assert listing.status_code == 200
    assert hot_event.title in listing.content.decode()
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # nothing here is edited by hand
    assert b'name="high_demand"' in event_page.content


# --- Several workers on one line, with real threads and real PostgreSQL ---------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
def test_two_drainers_never_serve_one_request_twice_and_never_oversell(settings, monkeypatch):
    # given 40 buyers in line for 25 tickets, and no drainer kicked yet
    settings.ORDER_QUEUE_BATCH_SIZE = 3
    monkeypatch.setattr(queue, "kick", lambda event_id, **kwargs: False)
    event = EventFactory(status=Event.Status.PUBLISHED, high_demand=True)
    tier = TicketTypeFactory(event=event, capacity=25, max_per_order=2)
    ids = []
    for index in range(40):
        _client, response = queue_up(event, (tier, 1 + index % 2))
        assert response.status_code == 202, response.content
        ids.append(response.json()["id"])
    served: list[list[str]] = [[], []]  # what each worker served
    real_serve = queue._serve
    slot_of = threading.local()

    def serve(purchase_request, known):
        served[slot_of.slot].append(str(purchase_request.pk))
        return real_serve(purchase_request, known)

    monkeypatch.setattr(queue, "_serve", serve)

    # when two workers drain the same line at once
    barrier = threading.Barrier(2)

    def worker(slot: int) -> int:
        slot_of.slot = slot
        try:
            barrier.wait(timeout=30)
            return queue.drain(event_id=event.pk)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        answered = list(pool.map(worker, [0, 1]))

    # then both took part, and every request was answered exactly once, by one worker
    assert served[0]
    assert served[1]
    assert not set(served[0]) & set(served[1])
    assert sum(answered) == 40
    assert not PurchaseRequest.objects.filter(status="queued").exists()
    placed = PurchaseRequest.objects.filter(status="placed")
    # and exactly the 25 tickets were sold, each placed request with its own order
    tier.refresh_from_db()
    assert tier.available == 0
    assert sum(OrderItem.objects.filter(order__status="reserved").values_list("quantity", flat=True)) == 25
    assert Order.objects.count() == placed.count() == len(set(placed.values_list("order_id", flat=True)))
    assert set(PurchaseRequest.objects.filter(status="refused").values_list("error_code", flat=True)) == {"sold_out"}
    call_command("check_inventory")
