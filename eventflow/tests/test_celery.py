"""A real Celery worker consumes EventFlow tasks from the Redis broker."""

import time
from datetime import timedelta

import pytest
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
