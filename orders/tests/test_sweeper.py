"""Holds expire on time without beat: the embedded default sweeps in the server process."""

import threading
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.signals import request_started
from django.utils import timezone

from orders import sweeper
from orders.models import Order
from orders.services import Line, order_place

pytestmark = pytest.mark.django_db


def test_one_sweep_expires_due_holds_and_returns_the_stock(event, tier, buyer, api_client, monkeypatch):
    monkeypatch.setattr(sweeper, "close_old_connections", lambda: None)  # the test's own connection stays
    order = order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, 3)])
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_client.get(f"/api/v1/events/{event.pk}/availability").json()[0]["available"] == 7
    assert sweeper.sweep_once() == 1
    order.refresh_from_db()
    assert order.status == Order.Status.EXPIRED
    tier.refresh_from_db()
    assert tier.available == 10


def test_a_failing_sweep_is_logged_and_the_loop_goes_on(monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(sweeper.services, "expire_due_holds", broken)
    assert sweeper.sweep_once() == 0
    assert "sweep failed" in caplog.text


def test_the_loop_sweeps_every_interval_until_stopped(monkeypatch, settings):
    settings.EXPIRY_SWEEP_SECONDS = 0  # the loop waits on an event, so no clock is raced
    calls, stop = [], threading.Event()

    def sweep():
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        return 0

    monkeypatch.setattr(sweeper, "sweep_once", sweep)
    sweeper._loop(stop)
    assert len(calls) == 3


def test_the_thread_starts_once_per_process(monkeypatch):
    monkeypatch.setattr(sweeper, "_started", threading.Event())
    stop = threading.Event()
    stop.set()  # the thread ends at once
    assert sweeper.start(stop) is True
    assert sweeper.start(stop) is False


def _connected() -> bool:
    return any(receiver[0][0] == "orders.sweeper" for receiver in request_started.receivers)


def test_it_starts_on_a_request_only_where_there_is_no_broker(settings, monkeypatch, client):
    # the suite runs with a broker (Redis): beat's job, nothing is connected
    assert not settings.EXPIRY_SWEEP_IN_PROCESS
    assert not _connected()
    # the embedded default (no broker): the app connects it, and the first request starts the thread
    started = []
    monkeypatch.setattr(sweeper, "start", lambda: started.append(1))
    settings.EXPIRY_SWEEP_IN_PROCESS = True
    try:
        apps.get_app_config("orders").ready()
        assert _connected()
        client.get("/api/v1/health")
        assert started
    finally:
        request_started.disconnect(dispatch_uid="orders.sweeper")
    assert not _connected()
