"""Paying orders through the simulated gateway, its signed webhooks, refunds and event cancellation."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from accounts.tests.test_auth import assert_problem
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import InventoryEntry, Order, Payment, Refund, Ticket, WebhookEvent
from orders.payments import test as gateway
from orders.payments.base import ProviderError
from orders.payments.base import WebhookEvent as ProviderEvent
from orders.payments.services import refund_retry
from orders.payments.test import TestProvider
from orders.selectors import inventory_report
from orders.services import expire_due_holds

from .conftest import order_body

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"
WEBHOOK = "/api/v1/payments/webhooks/test"


def reserve(client, event, tier, quantity=2) -> dict:
    r = client.post(ORDERS, order_body(event, (tier, quantity)))
    assert r.status_code == 201, r.content
    return r.json()


def pay(client, order_id, **headers) -> dict:
    r = client.post(f"{ORDERS}/{order_id}/pay", **headers)
    assert r.status_code == 200, r.content
    return r.json()["payment"]


def post_webhook(body: bytes, headers: dict, client=None):
    client = client or APIClient()
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    return client.generic("POST", WEBHOOK, body, content_type="application/json", **extra)


def signed(payment: Payment, *, succeeded=True, **overrides) -> tuple[bytes, dict]:
    delivery = gateway.signed_event(payment, succeeded, **overrides)
    return delivery["body"], delivery["headers"]


def no_drift(tier) -> None:
    row = next(r for r in inventory_report(event_id=tier.event_id) if r["ticket_type"] == tier.pk)
    assert row["problems"] == [], row


# --- Paying --------------------------------------------------------------------------------------


def test_pay_then_the_gateway_completes_it(client, buyer, event, tier, settings):
    settings.PLATFORM_FEE_PERCENT = 5
    settings.PLATFORM_FEE_FIXED_CENTS = 30
    order = reserve(client, event, tier, 2)

    payment = pay(client, order["id"])
    assert payment["provider"] == "test"
    assert payment["status"] == "pending"
    assert payment["amount_cents"] == 5000
    assert payment["currency"] == "EUR"
    assert payment["client_secret"].startswith("tp_")
    row = Payment.objects.get(pk=payment["id"])
    assert row.fee_cents == 250 + 30

    r = client.post(f"/api/v1/payments/test/{payment['id']}/complete")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["order"]["status"] == "paid"
    assert body["payment"]["status"] == "succeeded"
    assert body["webhook"] == {"received": True, "duplicate": False, "outcome": "paid"}

    stored = Order.objects.get(pk=order["id"])
    assert stored.status == Order.Status.PAID
    assert stored.fee_cents == 280
    assert Ticket.objects.filter(order=stored, status=Ticket.Status.VALID, holder=buyer).count() == 2
    assert list(InventoryEntry.objects.filter(order=stored).values_list("kind", "quantity")) == [
        ("hold", 2),
        ("sell", 2),
    ]
    assert WebhookEvent.objects.get().outcome == "paid"
    tier.refresh_from_db()
    assert tier.available == 8
    no_drift(tier)
    tickets = client.get(f"{ORDERS}/{order['id']}/tickets").json()["results"]
    assert len(tickets) == 2


def test_paying_again_reuses_the_pending_payment_with_or_without_a_key(client, event, tier):
    order = reserve(client, event, tier)
    first = pay(client, order["id"], HTTP_IDEMPOTENCY_KEY="pay-1")
    r = client.post(f"{ORDERS}/{order['id']}/pay", HTTP_IDEMPOTENCY_KEY="pay-1")
    assert r.status_code == 200
    assert r.headers["Idempotent-Replayed"] == "true"
    assert r.json()["payment"] == first
    assert pay(client, order["id"])["id"] == first["id"]  # no key: still the one open payment
    assert Payment.objects.count() == 1


def test_a_declined_payment_leaves_the_order_payable(client, event, tier):
    order = reserve(client, event, tier)
    payment = pay(client, order["id"])
    r = client.post(f"/api/v1/payments/test/{payment['id']}/fail")
    assert r.status_code == 200, r.content
    assert r.json()["order"]["status"] == "reserved"
    assert Payment.objects.get(pk=payment["id"]).status == Payment.Status.FAILED
    again = pay(client, order["id"])
    assert again["id"] != payment["id"]
    assert again["status"] == "pending"


@pytest.mark.parametrize("state", ["expired", "cancelled", "paid"])
def test_only_a_live_reservation_can_be_paid(client, event, tier, state):
    order = reserve(client, event, tier)
    if state == "expired":
        Order.objects.filter(pk=order["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif state == "cancelled":
        assert client.post(f"{ORDERS}/{order['id']}/cancel").status_code == 200
    else:
        client.post(f"/api/v1/payments/test/{pay(client, order['id'])['id']}/complete")
    payments_before = Payment.objects.count()
    r = client.post(f"{ORDERS}/{order['id']}/pay")
    assert_problem(r, 409, "order_not_payable")
    assert Payment.objects.count() == payments_before


def test_someone_elses_order_or_payment_is_a_404(client, event, tier):
    order = reserve(client, event, tier)
    payment = pay(client, order["id"])
    stranger = APIClient()
    stranger.force_authenticate(UserFactory())
    assert_problem(stranger.post(f"{ORDERS}/{order['id']}/pay"), 404, "not_found")
    assert_problem(stranger.post(f"/api/v1/payments/test/{payment['id']}/complete"), 404, "not_found")
    assert Order.objects.get(pk=order["id"]).status == Order.Status.RESERVED


def test_the_test_gateway_exists_only_while_enabled(client, event, tier, settings):
    order = reserve(client, event, tier)
    payment = pay(client, order["id"])
    settings.TEST_PAYMENTS_ENABLED = False
    assert_problem(client.post(f"/api/v1/payments/test/{payment['id']}/complete"), 404, "not_found")
    body, headers = signed(Payment.objects.get(pk=payment["id"]))
    assert_problem(post_webhook(body, headers), 404, "not_found")
    assert Order.objects.get(pk=order["id"]).status == Order.Status.RESERVED


# --- Webhooks ------------------------------------------------------------------------------------


@pytest.fixture
def pending(client, event, tier) -> Payment:
    return Payment.objects.get(pk=pay(client, reserve(client, event, tier)["id"])["id"])


def _unchanged(payment: Payment) -> None:
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert payment.order.status == Order.Status.RESERVED
    assert WebhookEvent.objects.count() == 0
    assert Ticket.objects.count() == 0


@pytest.mark.parametrize("tamper", ["body", "signature", "missing", "stale", "future", "garbage"])
def test_a_bad_signature_is_a_400_and_changes_nothing(pending, tamper):
    body, headers = signed(pending)
    if tamper == "body":
        body = body.replace(b'"amount_cents":5000', b'"amount_cents":1')
    elif tamper == "signature":
        headers = {gateway.SIGNATURE_HEADER: headers[gateway.SIGNATURE_HEADER][:-2] + "00"}
    elif tamper == "missing":
        headers = {}
    elif tamper in ("stale", "future"):
        shift = -3600 if tamper == "stale" else 3600
        headers = {gateway.SIGNATURE_HEADER: gateway.signature_header(body, timestamp=int(time.time()) + shift)}
    else:
        headers = {gateway.SIGNATURE_HEADER: "t=,v1=\x7f,,==="}
    assert_problem(post_webhook(body, headers), 400, "invalid_signature")
    _unchanged(pending)


def test_the_same_event_twice_changes_the_order_once(pending, mailoutbox, django_capture_on_commit_callbacks):
    body, headers = signed(pending)
    with django_capture_on_commit_callbacks(execute=True):
        first = post_webhook(body, headers)
        second = post_webhook(body, headers)
    assert len(mailoutbox) == 1  # one confirmation, with the tickets
    assert mailoutbox[0].to == [pending.order.buyer.email]
    assert mailoutbox[0].attachments[0][0].endswith(".pdf")
    assert first.status_code == second.status_code == 200
    assert first.json()["duplicate"] is False
    assert second.json() == {"received": True, "duplicate": True, "outcome": "duplicate"}
    assert WebhookEvent.objects.count() == 1
    assert Ticket.objects.filter(order=pending.order).count() == 2
    assert InventoryEntry.objects.filter(order=pending.order, kind="sell").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_concurrently_is_applied_once(mailoutbox):
    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=10, price_cents=1000)
    buyer = UserFactory()
    client = APIClient()
    client.force_authenticate(buyer)
    payment = Payment.objects.get(pk=pay(client, reserve(client, event, tier, 3)["id"])["id"])
    body, headers = signed(payment)
    barrier = threading.Barrier(4)
    answers = []

    def deliver():
        try:
            barrier.wait()
            answers.append(post_webhook(body, headers))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in answers) == [200] * 4
    assert sorted(r.json()["duplicate"] for r in answers) == [False, True, True, True]
    assert WebhookEvent.objects.count() == 1
    assert Ticket.objects.filter(order=payment.order).count() == 3
    assert InventoryEntry.objects.filter(order=payment.order, kind="sell").get().quantity == 3
    assert len(mailoutbox) == 1
    no_drift(tier)


def test_a_failure_after_success_leaves_the_order_paid(pending):
    body, headers = signed(pending)
    assert post_webhook(body, headers).status_code == 200
    body, headers = signed(pending, succeeded=False)
    r = post_webhook(body, headers)
    assert r.status_code == 200
    assert r.json()["outcome"] == "ignored_succeeded"
    pending.refresh_from_db()
    assert pending.status == Payment.Status.SUCCEEDED
    assert pending.order.status == Order.Status.PAID
    assert Ticket.objects.filter(order=pending.order, status=Ticket.Status.VALID).count() == 2


def test_an_event_for_a_payment_not_visible_yet_is_refused_until_it_is(pending):
    ghost = Payment(
        pk=uuid.uuid4(), order=pending.order, provider="test", amount_cents=5000, currency="EUR", reference=""
    )
    body, headers = signed(ghost)
    assert_problem(post_webhook(body, headers), 409, "payment_unknown")
    assert WebhookEvent.objects.count() == 0  # not stored: the gateway's retry is applied
    Payment.objects.filter(pk=pending.pk).update(status=Payment.Status.FAILED)
    ghost.save()  # the payment's transaction commits
    r = post_webhook(body, headers)
    assert r.status_code == 200
    assert r.json()["outcome"] == "paid"
    assert Order.objects.get(pk=pending.order_id).status == Order.Status.PAID


@pytest.mark.parametrize(("amount", "currency"), [(4999, "EUR"), (5000, "USD"), (50000, "EUR")])
def test_a_payment_of_the_wrong_amount_or_currency_is_flagged_not_paid(pending, amount, currency):
    body, headers = signed(pending, amount_cents=amount, currency=currency)
    r = post_webhook(body, headers)
    assert r.status_code == 200
    assert r.json()["outcome"] == "flagged"
    pending.refresh_from_db()
    assert pending.needs_review is True
    assert str(amount) in pending.review_note
    assert pending.order.status == Order.Status.RESERVED
    assert Ticket.objects.count() == 0


def test_an_unknown_event_type_is_stored_and_ignored(pending):
    body = gateway.webhook_body(
        event_id="evt_other", kind="customer.created", payment_id="", reference="", amount_cents=0, currency=""
    )
    r = post_webhook(body, {gateway.SIGNATURE_HEADER: gateway.signature_header(body)})
    assert r.status_code == 200
    assert r.json()["outcome"] == "ignored"
    assert WebhookEvent.objects.get().kind == ProviderEvent.IGNORED
    _unchanged_order = Order.objects.get(pk=pending.order_id)
    assert _unchanged_order.status == Order.Status.RESERVED


# --- Paid after the hold expired ------------------------------------------------------------------


def _expire(order_id) -> None:
    Order.objects.filter(pk=order_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_due_holds() == 1


def test_paid_after_expiry_retakes_stock_when_some_is_left(client, event, tier):
    order = reserve(client, event, tier, 2)
    payment = Payment.objects.get(pk=pay(client, order["id"])["id"])
    _expire(order["id"])
    tier.refresh_from_db()
    assert tier.available == 10

    r = post_webhook(*signed(payment))
    assert r.json()["outcome"] == "paid_after_expiry"
    stored = Order.objects.get(pk=order["id"])
    assert stored.status == Order.Status.PAID
    assert stored.closed_at is None
    assert Ticket.objects.filter(order=stored).count() == 2
    tier.refresh_from_db()
    assert tier.available == 8
    assert Refund.objects.count() == 0
    no_drift(tier)


def test_paid_after_expiry_with_nothing_left_is_refunded(client, event, tier, django_capture_on_commit_callbacks):
    order = reserve(client, event, tier, 2)
    payment = Payment.objects.get(pk=pay(client, order["id"])["id"])
    _expire(order["id"])
    other = APIClient()
    other.force_authenticate(UserFactory())
    TicketTypeFactory  # noqa: B018  (the other buyer takes what was released)
    tier.max_per_buyer = None
    tier.save()
    assert other.post(ORDERS, order_body(event, (tier, 6))).status_code == 201
    third = APIClient()
    third.force_authenticate(UserFactory())
    assert third.post(ORDERS, order_body(event, (tier, 4))).status_code == 201
    tier.refresh_from_db()
    assert tier.available == 0

    with django_capture_on_commit_callbacks(execute=True):
        r = post_webhook(*signed(payment))
    assert r.json()["outcome"] == "refunded_sold_out"
    stored = Order.objects.get(pk=order["id"])
    assert stored.status == Order.Status.EXPIRED
    refund = Refund.objects.get(payment=payment)
    assert refund.reason == Refund.Reason.LATE_PAYMENT
    assert refund.status == Refund.Status.SUCCEEDED  # tasks run eagerly in tests
    assert refund.amount_cents == 5000
    tier.refresh_from_db()
    assert tier.available == 0  # never an oversell
    assert Ticket.objects.filter(order=stored).count() == 0
    no_drift(tier)


def test_a_second_payment_for_a_paid_order_is_refunded(client, event, tier):
    order = reserve(client, event, tier)
    first = Payment.objects.get(pk=pay(client, order["id"])["id"])
    second = Payment.objects.create(
        order=first.order, provider="test", amount_cents=5000, currency="EUR", status=Payment.Status.FAILED
    )
    assert post_webhook(*signed(first)).json()["outcome"] == "paid"
    assert post_webhook(*signed(second)).json()["outcome"] == "refunded_paid"
    assert Refund.objects.get().payment == second
    assert Refund.objects.get().reason == Refund.Reason.DUPLICATE_PAYMENT
    assert Ticket.objects.filter(order=first.order).count() == 2


# --- Refunds -------------------------------------------------------------------------------------


def _paid(client, event, tier, quantity=2) -> Order:
    order = reserve(client, event, tier, quantity)
    payment = pay(client, order["id"])
    assert client.post(f"/api/v1/payments/test/{payment['id']}/complete").status_code == 200
    return Order.objects.get(pk=order["id"])


def test_cancelling_a_paid_order_within_the_policy_refunds_it(client, event, tier, django_capture_on_commit_callbacks):
    Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=48)
    order = _paid(client, event, tier)
    with django_capture_on_commit_callbacks() as callbacks:
        r = client.post(f"{ORDERS}/{order.pk}/cancel")
    assert Refund.objects.get().status == Refund.Status.PENDING  # the gateway is asked after commit only
    for callback in callbacks:
        callback()
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "refunded"
    refund = Refund.objects.get()
    assert (refund.status, refund.reason, refund.amount_cents) == ("succeeded", "requested_by_buyer", 5000)
    assert refund.reference.startswith("tr_")
    assert cache.get(f"payments:test:refund:{refund.pk}:calls") == 1
    assert set(Ticket.objects.filter(order=order).values_list("status", flat=True)) == {"void"}
    tier.refresh_from_db()
    assert tier.available == 10
    assert InventoryEntry.objects.filter(order=order, kind="refund").get().quantity == 2
    no_drift(tier)
    # Asking again refunds nothing more.
    assert_problem(client.post(f"{ORDERS}/{order.pk}/cancel"), 409, "order_not_cancellable")
    assert Refund.objects.count() == 1
    tier.refresh_from_db()
    assert tier.available == 10


@pytest.mark.parametrize("hours", [None, 24 * 40])
def test_cancelling_a_paid_order_outside_the_policy_is_refused(client, event, tier, hours):
    Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=hours)
    order = _paid(client, event, tier)
    assert_problem(client.post(f"{ORDERS}/{order.pk}/cancel"), 409, "not_refundable")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Refund.objects.count() == 0
    assert Ticket.objects.filter(order=order, status="valid").count() == 2


def test_without_a_worker_a_refused_refund_is_failed_for_staff(
    client, event, tier, monkeypatch, django_capture_on_commit_callbacks
):
    Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=1)
    order = _paid(client, event, tier)
    calls = []

    def down(self, *, refund):
        calls.append(refund.pk)
        raise ProviderError("gateway down")

    monkeypatch.setattr(TestProvider, "refund", down)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"{ORDERS}/{order.pk}/cancel")
    assert r.status_code == 200, r.content  # refunded on our side; the money follows when the gateway is back
    refund = Refund.objects.get()
    assert (refund.status, refund.attempts, refund.last_error) == ("failed", 1, "gateway down")
    assert len(calls) == 1

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        refund_retry(refund=refund)  # what the admin's "retry refund" does
    refund.refresh_from_db()
    assert (refund.status, refund.attempts, refund.last_error) == ("succeeded", 2, "")


@pytest.mark.django_db(transaction=True)
def test_a_worker_retries_a_refused_refund_with_backoff_then_marks_it_failed(settings, monkeypatch):
    from celery.contrib.testing.worker import start_worker

    from eventflow.celery import app
    from orders.tasks import refund_send

    settings.REFUND_MAX_RETRIES = 3
    settings.REFUND_RETRY_BASE_SECONDS = 0
    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=5, price_cents=1000)
    client = APIClient()
    client.force_authenticate(UserFactory())
    order = _paid(client, event, tier, 1)
    payment = order.payments.get()
    refund = Refund.objects.create(payment=payment, amount_cents=1000, reason=Refund.Reason.STAFF)
    calls = []

    def down(self, *, refund):
        calls.append(time.monotonic())
        raise ProviderError("gateway down")

    monkeypatch.setattr(TestProvider, "refund", down)
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        refund_send.delay(str(refund.pk))
        deadline = time.monotonic() + 20
        while Refund.objects.get(pk=refund.pk).status == "pending" and time.monotonic() < deadline:
            time.sleep(0.1)
    refund.refresh_from_db()
    assert (refund.status, refund.attempts) == ("failed", 4)  # the first try and three retries
    assert len(calls) == 4
    assert "gateway down" in refund.last_error


# --- Event cancellation --------------------------------------------------------------------------


def test_cancelling_an_event_refunds_every_paid_order_once_and_releases_holds(
    event, tier, django_capture_on_commit_callbacks, mailoutbox
):
    tier.capacity = tier.available = 40
    tier.max_per_buyer = None
    tier.save()
    Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=None)  # cancellation ignores the policy
    buyers = [APIClient() for _ in range(4)]
    for client in buyers:
        client.force_authenticate(UserFactory())
    paid = [_paid(client, event, tier, 3) for client in buyers[:3]]
    held = reserve(buyers[3], event, tier, 2)
    organizer = APIClient()
    organizer.force_authenticate(event.organizer.user)

    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        r = organizer.post(f"/api/v1/events/{event.pk}/cancel")
    assert r.status_code == 202, r.content
    notices = sorted(mail.to[0] for mail in mailoutbox)
    assert notices == sorted(order.buyer.email for order in paid)  # each buyer told once
    assert all("cancelled" in mail.subject and "refunded" in mail.body for mail in mailoutbox)
    body = organizer.get(f"/api/v1/events/{event.pk}/sales").json()
    assert r.json()["status"] == "cancelled"
    assert body["refund_progress"] == {
        "paid_orders_to_refund": 0,
        "refunds_succeeded": 3,
        "refunds_pending": 0,
        "refunds_failed": 0,
        "refunded_cents": 3 * 7500,
    }
    assert set(Order.objects.filter(pk__in=[o.pk for o in paid]).values_list("status", flat=True)) == {"refunded"}
    assert Order.objects.get(pk=held["id"]).status == Order.Status.CANCELLED
    assert Ticket.objects.filter(status="valid").count() == 0
    tier.refresh_from_db()
    assert tier.available == 40
    no_drift(tier)

    # Again (a redelivered task, an impatient organizer): nothing is refunded twice.
    with django_capture_on_commit_callbacks(execute=True):
        assert organizer.post(f"/api/v1/events/{event.pk}/cancel").status_code == 202
    assert Refund.objects.count() == 3
    assert len(mailoutbox) == 3
    for refund in Refund.objects.all():
        assert cache.get(f"payments:test:refund:{refund.pk}:calls") == 1
    sales = organizer.get(f"/api/v1/events/{event.pk}/sales").json()
    assert sales["refund_progress"]["refunds_succeeded"] == 3
    assert (sales["gross_cents"], sales["refunds_cents"], sales["fees_cents"], sales["net_cents"]) == (
        22500,
        22500,
        0,
        0,
    )
    assert_problem(buyers[3].post(f"{ORDERS}/{held['id']}/pay"), 409, "order_not_payable")


def test_only_the_owner_cancels_an_event(event, tier):
    stranger = APIClient()
    stranger.force_authenticate(UserFactory())
    assert_problem(stranger.post(f"/api/v1/events/{event.pk}/cancel"), 403, "permission_denied")
    event.refresh_from_db()
    assert event.status == Event.Status.PUBLISHED
    draft = EventFactory(organizer=event.organizer)  # a draft is not on sale: delete it instead
    owner = APIClient()
    owner.force_authenticate(event.organizer.user)
    assert_problem(owner.post(f"/api/v1/events/{draft.pk}/cancel"), 409, "invalid_status_transition")
    draft.refresh_from_db()
    assert draft.status == Event.Status.DRAFT


def test_a_payment_landing_after_its_event_was_cancelled_is_refunded(client, event, tier):
    order = reserve(client, event, tier)
    payment = Payment.objects.get(pk=pay(client, order["id"])["id"])
    Event.objects.filter(pk=event.pk).update(status=Event.Status.CANCELLED)  # the cancellation commits first
    r = post_webhook(*signed(payment))
    assert r.json()["outcome"] == "refunded_event_cancelled"
    assert Order.objects.get(pk=order["id"]).status == Order.Status.CANCELLED
    assert Refund.objects.get().reason == Refund.Reason.EVENT_CANCELLED
    tier.refresh_from_db()
    assert tier.available == tier.capacity
    no_drift(tier)


# --- Money adds up -------------------------------------------------------------------------------


def test_sales_and_payouts_add_up(event, tier, settings, django_capture_on_commit_callbacks):
    settings.PLATFORM_FEE_PERCENT = 10
    settings.PLATFORM_FEE_FIXED_CENTS = 0
    tier.max_per_buyer = None
    tier.save()
    Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=1)
    clients = [APIClient() for _ in range(3)]
    for c in clients:
        c.force_authenticate(UserFactory())
    orders = [_paid(c, event, tier, q) for c, q in zip(clients, (1, 2, 3), strict=True)]
    with django_capture_on_commit_callbacks(execute=True):
        assert clients[1].post(f"{ORDERS}/{orders[1].pk}/cancel").status_code == 200

    organizer = APIClient()
    organizer.force_authenticate(event.organizer.user)
    sales = organizer.get(f"/api/v1/events/{event.pk}/sales").json()
    assert sales["gross_cents"] == 6 * 2500
    assert sales["refunds_cents"] == 2 * 2500
    assert sales["fees_cents"] == 250 + 750
    assert sales["net_cents"] == sales["gross_cents"] - sales["fees_cents"] - sales["refunds_cents"] == 9000

    staff = APIClient()
    staff.force_authenticate(UserFactory(is_staff=True, is_superuser=True))
    payouts = staff.get("/api/v1/admin/payouts")
    assert payouts.status_code == 200, payouts.content
    assert payouts.json() == [
        {
            "currency": "EUR",
            "gross_cents": 15000,
            "discounts_cents": 0,
            "fees_cents": 1000,
            "refunds_cents": 5000,
            "net_cents": 9000,
            "organizer": event.organizer_id,
            "organizer_name": event.organizer.display_name,
            "paid_orders": 2,
        }
    ]
    assert_problem(organizer.get("/api/v1/admin/payouts"), 403, "permission_denied")


# --- Found in review -------------------------------------------------------------------------------


def test_a_non_ascii_signature_is_a_400(pending):
    body, _headers = signed(pending)
    assert_problem(post_webhook(body, {gateway.SIGNATURE_HEADER: "t=1,v1=é"}), 400, "invalid_signature")
    _unchanged(pending)


def test_an_overlong_event_id_is_a_400(pending):
    body = gateway.webhook_body(
        event_id="e" * 300, kind="payment.failed", payment_id=str(pending.pk), reference="", amount_cents=0, currency=""
    )
    r = post_webhook(body, {gateway.SIGNATURE_HEADER: gateway.signature_header(body)})
    assert r.status_code == 400
    _unchanged(pending)


@pytest.mark.django_db(transaction=True)
def test_a_webhook_never_locks_the_event_row_purchases_need():
    """Paying locks the order (and later stock rows), not the event: every purchase's foreign-key
    check takes KEY SHARE on the event row, which FOR UPDATE on it would block."""
    from django.db import connections, transaction

    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=10, price_cents=1000, max_per_buyer=None)
    client = APIClient()
    client.force_authenticate(UserFactory())
    payment = Payment.objects.get(pk=pay(client, reserve(client, event, tier, 1)["id"])["id"])
    from orders.payments.services import _lock

    with transaction.atomic():
        _lock(payment)  # what a webhook, a refund or staff hold while they work
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SET lock_timeout = '500ms'")
                cursor.execute("SELECT 1 FROM events_event WHERE id = %s FOR KEY SHARE", [event.pk])
                assert cursor.fetchone() == (1,)
        finally:
            other.close()


def test_staff_never_refund_the_payment_that_pays_an_order(client, event, tier):
    order = reserve(client, event, tier)
    flagged = Payment.objects.get(pk=pay(client, order["id"])["id"])
    post_webhook(*signed(flagged, amount_cents=1))  # flagged: the order stays reserved
    paying = Payment.objects.get(pk=pay(client, order["id"])["id"])
    assert post_webhook(*signed(paying)).json()["outcome"] == "paid"
    from orders.errors import NotRefundable
    from orders.payments.services import payment_refund

    with pytest.raises(NotRefundable):
        payment_refund(payment=paying)
    assert payment_refund(payment=flagged).reason == Refund.Reason.STAFF  # the flagged one may go back
    assert Order.objects.get(pk=order["id"]).status == Order.Status.PAID


def test_a_lost_intent_starts_a_new_payment(client, event, tier, monkeypatch):
    from orders.payments.base import IntentLost

    order = reserve(client, event, tier)
    calls = []
    real = TestProvider.create_payment

    def lost_once(self, *, payment, buyer_email, description):
        calls.append(payment.pk)
        if len(calls) == 1:
            raise IntentLost("an earlier answer was lost")
        return real(self, payment=payment, buyer_email=buyer_email, description=description)

    monkeypatch.setattr(TestProvider, "create_payment", lost_once)
    payment = pay(client, order["id"])
    assert payment["id"] == str(calls[1]) != str(calls[0])
    assert Payment.objects.get(pk=calls[0]).status == Payment.Status.FAILED
    assert payment["status"] == "pending"
