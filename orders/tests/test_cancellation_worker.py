"""An event's cancellation refunds every paid order exactly once, even when the Celery worker doing
it is killed half-way (SIGKILL) and the task is delivered again to a new worker process."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction

from accounts.tests.factories import UserFactory
from events.models import Event
from events.services import event_cancel
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.confirmation import confirmations_suppressed
from orders.models import Order, Payment, Refund, Ticket
from orders.payments import services as payment_services
from orders.payments import test as gateway
from orders.selectors import inventory_report, payments_report
from orders.services import Line, order_place

ROOT = Path(__file__).resolve().parents[2]
PAID_ORDERS = 200


def _worker(env: dict, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "eventflow", "worker", "--pool", "solo", "--loglevel", "WARNING"]
    # Every queue of this run (the refunds go to its payments queue, their notices to its email queue).
    from eventflow.celery import app

    queues = ",".join(queue.name for queue in app.conf.task_queues)
    queue = ["-Q", queues, "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
        [*command, *queue],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _wait(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; the workers said:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_neither_loses_nor_doubles_a_refund(monkeypatch, tmp_path):
    # given an event with 200 paid orders
    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=PAID_ORDERS, price_cents=1500, max_per_buyer=None)
    buyer = UserFactory()
    with confirmations_suppressed():  # 200 confirmation PDFs are not what this test is about
        for _ in range(PAID_ORDERS):
            order = order_place(buyer=buyer, event_id=event.pk, lines=[Line(tier.pk, 1)])
            gateway.deliver(payment_services.payment_start(order=order), succeeded=True)
    paid = sorted(Order.objects.filter(status=Order.Status.PAID).values_list("pk", flat=True))
    assert len(paid) == PAID_ORDERS

    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "CELERY_QUEUE_PREFIX": settings.CELERY_QUEUE_PREFIX,
        "CELERY_VISIBILITY_TIMEOUT": "3",  # the killed worker's task comes back after 3 s
        "CELERY_UNACKED_RESTORE_SECONDS": "1",  # found by the new worker within a second of that
        "ORDER_LOCK_TIMEOUT_MS": "60000",
        "DATA_DIR": str(Path(settings.DATA_DIR)),
    }
    from eventflow.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", False)
    blocker = connection.copy()  # a second connection that holds one order's lock, to stop the worker there
    blocker.connect()
    log = tmp_path / "worker.log"
    first = _worker(env, log)
    try:
        stop_at = paid[PAID_ORDERS // 2]
        with blocker.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT 1 FROM orders_order WHERE id = %s FOR UPDATE", [stop_at])

            # when the organizer cancels and the worker gets half-way before it is killed
            with transaction.atomic():
                event_cancel(event=event)  # queues the refunds on commit
            _wait(
                lambda: Order.objects.filter(status=Order.Status.REFUNDED).count() == PAID_ORDERS // 2,
                60,
                "the first half of the refunds",
                log,
            )
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            cursor.execute("ROLLBACK")
        assert Order.objects.filter(status=Order.Status.PAID).count() == PAID_ORDERS // 2

        # then a new worker gets the task again and finishes it
        second = _worker(env, log)
        try:
            _wait(
                lambda: Refund.objects.filter(status=Refund.Status.SUCCEEDED).count() == PAID_ORDERS,
                90,
                "every refund to succeed",
                log,
            )
            time.sleep(1)  # anything doubled would show up now
        finally:
            second.terminate()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
        blocker.close()

    # every order refunded once, one refund per payment, the money and the stock add up
    assert Order.objects.filter(status=Order.Status.REFUNDED).count() == PAID_ORDERS
    assert Refund.objects.count() == Payment.objects.filter(status=Payment.Status.SUCCEEDED).count() == PAID_ORDERS
    assert sum(Refund.objects.values_list("amount_cents", flat=True)) == PAID_ORDERS * 1500
    assert not Ticket.objects.filter(status=Ticket.Status.VALID).exists()
    tier.refresh_from_db()
    assert tier.available == PAID_ORDERS
    assert all(row["problems"] == [] for row in inventory_report(event_id=event.pk))
    assert payments_report() == []
    # the gateway saw one refund per refund id (its idempotency key), never a second one
    from django.core.cache import cache

    for refund in Refund.objects.all():
        assert cache.get(f"payments:test:refund:{refund.pk}") == refund.reference
