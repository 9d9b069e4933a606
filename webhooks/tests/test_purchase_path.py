"""The purchase path pays nothing for webhooks nobody subscribed to: no SQL, no cache read within the
memo's lifetime, no task queued."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache

from orders.signals import OrderChange
from webhooks import receivers, subscriptions

from .helpers import make_organizer, sale, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    sent = []
    from webhooks import tasks

    monkeypatch.setattr(tasks.emit_events, "delay", lambda *args: sent.append(args))
    return sent


def change(event, status="reserved", previous=None) -> OrderChange:
    return OrderChange(uuid.uuid4(), event.pk, 1, status, previous)


def test_with_no_endpoint_anywhere_a_purchase_signal_costs_no_sql(django_assert_num_queries, queued):
    event, _tier = sale(make_organizer("Dora Concerts"))
    receivers.on_order_status_changed(None, changes=[change(event)])  # the memo is built once per process
    with django_assert_num_queries(0):
        for _ in range(50):
            receivers.on_order_status_changed(None, changes=[change(event), change(event, "paid", None)])
    assert queued == []


def test_another_organizers_endpoint_costs_one_lookup_per_event_then_nothing(
    django_assert_num_queries, queued, monkeypatch
):
    mine, rival = make_organizer("Dora Concerts"), make_organizer("Rival Live")
    subscribe(rival, "https://rival.example.com/hooks", ["order.placed", "order.paid"])
    event, _tier = sale(mine)
    with django_assert_num_queries(2):  # the memo (endpoints) and this event's organizer
        receivers.on_order_status_changed(None, changes=[change(event)])
    reads = []
    monkeypatch.setattr(cache, "get", lambda *args, **kwargs: reads.append(args))
    with django_assert_num_queries(0):
        for _ in range(50):
            receivers.on_order_status_changed(None, changes=[change(event), change(event, "paid", "reserved")])
    assert queued == []
    assert reads == []


def test_the_subscribed_organizer_gets_one_task_per_commit_with_the_events(queued, django_assert_num_queries):
    organizer = make_organizer("Dora Concerts")
    subscribe(organizer, "https://hooks.example.com/x", ["order.placed", "order.paid"])
    event, _tier = sale(organizer)
    receivers.on_order_status_changed(None, changes=[change(event)])
    queued.clear()
    free = change(event, "paid", None)
    with django_assert_num_queries(0):
        receivers.on_order_status_changed(None, changes=[free])
    [(organizer_id, events)] = queued
    assert organizer_id == organizer.pk
    assert [e["type"] for e in events] == ["order.placed", "order.paid"]
    assert events[0]["facts"] == {"order_id": str(free.order_id), "status": "paid", "previous_status": None}
    assert events[0]["id"] != events[1]["id"]
    assert events[0]["id"].startswith("evt_")


def test_other_processes_follow_an_endpoint_change_through_the_version_key(settings, queued):
    settings.WEBHOOKS_SUBSCRIPTIONS_TTL_SECONDS = 0  # every question checks the version
    organizer = make_organizer("Dora Concerts")
    event, _tier = sale(organizer)
    assert subscriptions.subscriber(event_id=event.pk, event_type="order.paid") is None
    # Another process adds an endpoint: our memo is not told, but the version moves after its commit.
    from webhooks.models import WebhookEndpoint

    WebhookEndpoint.objects.create(organizer=organizer, url="https://x.example.com", events=["order.paid"], secret="s")
    assert subscriptions.subscriber(event_id=event.pk, event_type="order.paid") is None  # still current for us
    cache.set(subscriptions.VERSION_KEY, 1, timeout=None)
    assert subscriptions.subscriber(event_id=event.pk, event_type="order.paid") == organizer.pk
