"""A real Celery worker consumes EventFlow tasks from the Redis broker."""

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import yaml
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from accounts.models import TokenFamily
from accounts.tasks import purge_expired_sessions
from accounts.tests.factories import UserFactory
from eventflow.celery import app


def test_app_is_configured_from_settings(settings):
    assert app.conf.broker_url == settings.CELERY_BROKER_URL
    assert app.conf.broker_url.startswith("redis://")
    assert app.conf.task_acks_late is True
    # each test run consumes its own queue (conftest.py), so two runs never take each other's tasks
    assert app.conf.task_default_queue == settings.CELERY_TASK_DEFAULT_QUEUE
    assert app.conf.task_default_queue.startswith("eventflow-test-")
    assert "purge-expired-sessions" in app.conf.beat_schedule
    assert "accounts.tasks.purge_expired_sessions" in app.tasks


@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_task_sent_through_redis(monkeypatch):
    user = UserFactory()
    now = timezone.now()
    expired = TokenFamily.objects.create(
        user=user, current_jti="expired", created_at=now - timedelta(days=9), expires_at=now - timedelta(days=2)
    )
    live = TokenFamily.objects.create(user=user, current_jti="live", expires_at=now + timedelta(days=7))
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        purge_expired_sessions.delay()
        deadline = time.monotonic() + 15
        while TokenFamily.objects.filter(pk=expired.pk).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not TokenFamily.objects.filter(pk=expired.pk).exists()
    assert TokenFamily.objects.filter(pk=live.pk).exists()


# --- Queues: a backlog of one kind of work never delays another ------------------------------

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("orders.tasks.expire_reservations", "expiry"),
        ("orders.tasks.refund_send", "payments"),
        ("orders.tasks.refund_cancelled_event", "payments"),
        ("orders.tasks.resend_stuck_refunds", "payments"),
        ("orders.tasks.send_order_confirmation", "email"),
        ("orders.tasks.send_order_refund_notice", "email"),
    ],
)
def test_each_task_is_routed_to_its_queue(settings, task, queue):
    assert task in app.tasks  # the routing table names real tasks
    routed = app.amqp.router.route({}, task)["queue"].name
    # this run's own queue of that name (conftest.py), as CELERY_QUEUE_PREFIX makes it
    assert routed == f"{settings.CELERY_QUEUE_PREFIX}{queue}" == f"eventflow-test-{os.getpid()}-{queue}"


def test_housekeeping_goes_to_the_default_queue(settings):
    for task in ("orders.tasks.purge_idempotency_records", "accounts.tasks.purge_expired_sessions"):
        assert app.amqp.router.route({}, task)["queue"].name == settings.CELERY_TASK_DEFAULT_QUEUE


def test_every_routed_task_exists_and_every_task_has_a_queue(settings):
    ours = {
        name for name in app.tasks if name.split(".")[0] in {"orders", "accounts", "events", "eventflow", "webhooks"}
    }
    assert set(settings.TASK_QUEUES) <= ours
    assert "orders.tasks.expire_reservations" in settings.TASK_QUEUES


def test_beat_sends_the_expiry_sweep_to_the_expiry_queue(settings):
    queues = {
        name: app.amqp.router.route(dict(entry.get("options", {})), entry["task"])["queue"].name
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    }
    assert queues["expire-reservations"] == f"{settings.CELERY_QUEUE_PREFIX}expiry"
    assert queues["resend-stuck-refunds"] == f"{settings.CELERY_QUEUE_PREFIX}payments"
    assert queues["purge-expired-sessions"] == settings.CELERY_TASK_DEFAULT_QUEUE


def test_a_worker_without_q_reads_every_queue(settings):
    """A single worker (a small deployment, `celery -A eventflow worker`) still runs everything."""
    names = {queue.name for queue in app.conf.task_queues}
    prefix = settings.CELERY_QUEUE_PREFIX
    assert names == {
        settings.CELERY_TASK_DEFAULT_QUEUE,
        *(f"{prefix}{queue}" for queue in ("expiry", "onsale", "payments", "email", "webhooks")),
    }


def _compose_worker_queues() -> dict[str, set[str]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    workers = {}
    for name, service in compose["services"].items():
        command = service.get("command") or []
        if command[:4] == ["celery", "-A", "eventflow", "worker"]:
            assert "-Q" in command, f"{name} reads no named queue"
            workers[name] = set(command[command.index("-Q") + 1].split(","))
    return workers


def test_compose_runs_a_worker_for_every_queue_and_expiry_shares_its_worker_with_nothing(settings):
    workers = _compose_worker_queues()
    consumed = set().union(*workers.values())
    # Compose sets no prefix and keeps the default queue's default name
    assert consumed == {"celery", *settings.TASK_QUEUES.values()}
    expiry_workers = [queues for queues in workers.values() if "expiry" in queues]
    assert expiry_workers == [{"expiry"}]
    assert all("email" not in queues or queues == {"email"} for queues in workers.values())


@pytest.mark.django_db(transaction=True)
def test_an_email_backlog_does_not_delay_the_expiry_sweep(monkeypatch, settings):
    """Given 200 confirmation emails waiting (their worker is stuck or gone), when beat sends the
    expiry sweep, then the expiry worker runs it at once and the held ticket is back on sale."""
    from events.models import Event
    from events.tests.factories import EventFactory, TicketTypeFactory
    from orders.models import Order
    from orders.services import Line, order_place
    from orders.tasks import expire_reservations, send_order_confirmation

    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=1, price_cents=1000)
    order = order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(tier.pk, 1)])
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    email_queue = f"{settings.CELERY_QUEUE_PREFIX}email"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        for _ in range(200):
            send_order_confirmation.delay(str(order.pk))
        assert broker.llen(email_queue) == 200
        expiry_only = [f"{settings.CELERY_QUEUE_PREFIX}expiry"]  # as worker-expiry's -Q expiry in Compose
        # the worker narrows the app's queue selection; later workers in this run read every queue again
        monkeypatch.setattr(app.amqp.queues, "_consume_from", app.amqp.queues._consume_from)
        with start_worker(app, pool="solo", queues=expiry_only, perform_ping_check=False, shutdown_timeout=10):
            expire_reservations.delay()
            deadline = time.monotonic() + 15
            while Order.objects.get(pk=order.pk).status == "reserved" and time.monotonic() < deadline:
                time.sleep(0.1)
        order.refresh_from_db()
        tier.refresh_from_db()
        assert (order.status, tier.available) == ("expired", 1)
        assert broker.llen(email_queue) == 200  # the backlog is still there, untouched
    finally:
        broker.delete(email_queue)
