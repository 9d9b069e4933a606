"""A real Celery worker consumes EventFlow tasks from the Redis broker."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.tasks import flush_expired_tokens
from accounts.tests.factories import UserFactory
from eventflow.celery import app


def test_app_is_configured_from_settings(settings):
    assert app.conf.broker_url == settings.CELERY_BROKER_URL
    assert app.conf.broker_url.startswith("redis://")
    assert app.conf.task_acks_late is True
    assert "flush-expired-tokens" in app.conf.beat_schedule
    assert "accounts.tasks.flush_expired_tokens" in app.tasks


@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_task_sent_through_redis(monkeypatch):
    user = UserFactory()
    now = timezone.now()
    expired = OutstandingToken.objects.create(
        user=user, jti="expired", token="x", created_at=now - timedelta(days=9), expires_at=now - timedelta(days=2)
    )
    live = OutstandingToken.objects.create(
        user=user, jti="live", token="y", created_at=now, expires_at=now + timedelta(days=7)
    )
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        flush_expired_tokens.delay()
        deadline = time.monotonic() + 15
        while OutstandingToken.objects.filter(pk=expired.pk).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not OutstandingToken.objects.filter(pk=expired.pk).exists()
    assert OutstandingToken.objects.filter(pk=live.pk).exists()
