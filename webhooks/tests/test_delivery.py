"""Deliveries: signed, verified by the README's snippet, retried on a backoff schedule, given up,
endpoints disabled with a notice, and never sent to a non-public address (checked at send time and
pinned against DNS rebinding)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings

from accounts.tests.factories import UserFactory
from checkin.services import ticket_check_in
from events.services import event_cancel
from orders.models import Order
from orders.services import expire_due_holds, order_cancel, order_mark_paid
from webhooks import sending, services, signing, subscriptions
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.signals import delivery_attempted, delivery_failed, endpoint_disabled

from .helpers import API, as_user, body_of, make_organizer, place, readme_snippet, readme_verify, sale, subscribe

pytestmark = pytest.mark.django_db


def test_a_paid_order_reaches_a_local_receiver_signed_and_the_readme_snippet_verifies_it(
    receiver, django_capture_on_commit_callbacks
):
    organizer = make_organizer("Dora Concerts")
    response = as_user(organizer.user).post(API, {"url": receiver.url, "events": ["order.paid"]}, format="json")
    assert response.status_code == 201, response.json()
    secret = response.json()["secret"]
    event, tier = sale(organizer)
    buyer = UserFactory(email="ada@example.com", name="Ada Lovelace")

    with django_capture_on_commit_callbacks(execute=True):
        order = place(tier, buyer, quantity=2)
    assert receiver.requests == []  # subscribed to order.paid only
    with django_capture_on_commit_callbacks(execute=True):
        order_mark_paid(order=order)

    [request] = receiver.requests
    header = request["headers"]["EventFlow-Signature"]
    verify = readme_verify()
    assert verify(secret, request["body"], header)
    assert not verify(secret, request["body"].replace(b"5000", b"5001"), header)  # a changed body
    assert not verify("whsec_not-the-secret", request["body"], header)
    stale = signing.signature(secret, request["body"], int(time.time()) - 600)
    assert not verify(secret, request["body"], stale)  # a replayed capture, out of tolerance
    assert not verify(secret, request["body"], "garbage")

    body = body_of(request)
    delivery = WebhookDelivery.objects.get()
    assert body["type"] == "order.paid"
    assert body["id"] == delivery.event_id == request["headers"]["EventFlow-Event"]
    assert request["headers"]["EventFlow-Delivery"] == str(delivery.pk)
    assert request["headers"]["EventFlow-Event-Type"] == "order.paid"
    assert request["path"] == "/hooks"
    assert body["data"] == {
        "order": {
            "id": str(order.pk),
            "status": "paid",
            "previous_status": "reserved",
            "event_id": event.pk,
            "total_cents": 5000,
            "currency": "EUR",
            "created_at": order.created_at.isoformat(),
            "buyer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        }
    }
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 200, "")
    assert delivery.last_latency_ms is not None
    assert delivery.delivered_at is not None


def test_order_moves_map_to_events_a_free_order_is_placed_and_paid_an_expiry_is_nothing(
    receiver, django_capture_on_commit_callbacks
):
    organizer = make_organizer("Dora Concerts")
    subscribe(organizer, receiver.url, ["order.placed", "order.paid", "order.cancelled", "order.refunded"])
    _event, free = sale(organizer, price_cents=0)
    _event2, paid_tier = sale(organizer)

    with django_capture_on_commit_callbacks(execute=True):
        place(free)
    assert [body_of(r)["type"] for r in receiver.requests] == ["order.placed", "order.paid"]
    assert {body_of(r)["data"]["order"]["status"] for r in receiver.requests} == {"paid"}

    receiver.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        held = place(paid_tier)
        order_cancel(order=held)
    assert [body_of(r)["type"] for r in receiver.requests] == ["order.placed", "order.cancelled"]

    receiver.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        expiring = place(paid_tier)
    Order.objects.filter(pk=expiring.pk).update(expires_at=expiring.created_at - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_due_holds() == 1
    assert [body_of(r)["type"] for r in receiver.requests] == ["order.placed"]  # the expiry: nothing
    assert len({body_of(r)["id"] for r in receiver.requests}) == len(receiver.requests)


def test_check_ins_and_event_cancellation_are_told_without_the_ticket_code(
    receiver, django_capture_on_commit_callbacks
):
    organizer = make_organizer("Dora Concerts")
    subscribe(organizer, receiver.url, ["checkin.created", "event.cancelled"])
    event, tier = sale(organizer)
    with django_capture_on_commit_callbacks(execute=True):
        ticket = order_mark_paid(order=place(tier)).tickets.get()
        check_in = ticket_check_in(event=event, code=ticket.code, scanned_by=organizer.user, gate="North")
    [request] = receiver.requests
    assert body_of(request)["type"] == "checkin.created"
    assert body_of(request)["data"]["check_in"] == {
        "id": check_in.pk,
        "event_id": event.pk,
        "ticket": {"id": ticket.pk, "ticket_type_id": tier.pk, "order_id": str(ticket.order_id)},
        "gate": "North",
        "scanned_at": check_in.scanned_at.isoformat(),
        "source": "online",
    }
    assert ticket.code not in request["body"].decode()

    with django_capture_on_commit_callbacks(execute=True):
        event_cancel(event=event)
    assert [body_of(r)["type"] for r in receiver.requests] == ["checkin.created", "event.cancelled"]
    assert body_of(receiver.requests[-1])["data"]["event"]["id"] == event.pk
    assert body_of(receiver.requests[-1])["data"]["event"]["status"] == "cancelled"


def test_failed_attempts_are_retried_on_the_backoff_schedule_then_given_up(
    receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_MAX_ATTEMPTS = 3
    settings.WEBHOOKS_RETRY_SCHEDULE = [60, 300]
    heard = []
    delivery_failed.connect(lambda sender, **kw: heard.append(kw), weak=False, dispatch_uid="test.failed")
    try:
        organizer = make_organizer("Dora Concerts")
        endpoint = subscribe(organizer, receiver.url, ["order.placed"])
        _event, tier = sale(organizer)
        receiver.statuses = [500, 503, 502]
        with django_capture_on_commit_callbacks(execute=True):
            place(tier)
        delivery = WebhookDelivery.objects.get()
        first = delivery.last_attempt_at
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
        wait = (delivery.next_attempt_at - first).total_seconds()
        assert 54 <= wait <= 66  # 60 s +/- 10 %
        assert wait == pytest.approx(services.retry_delay(delivery_id=delivery.pk, attempts=1))

        # not due yet: nothing is sent, by the task or by beat's sweep
        assert services.delivery_attempt(delivery_id=delivery.pk, now=first + timedelta(seconds=50)) is None
        assert services.deliveries_due(now=first + timedelta(seconds=50)) == []
        assert len(receiver.requests) == 1

        due = delivery.next_attempt_at
        assert services.deliveries_due(now=due) == [delivery.pk]
        with django_capture_on_commit_callbacks(execute=True):
            delivery = services.delivery_attempt(delivery_id=delivery.pk, now=due)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 2, 503)
        assert 270 <= (delivery.next_attempt_at - due).total_seconds() <= 330  # 300 s +/- 10 %

        last = delivery.next_attempt_at
        with django_capture_on_commit_callbacks(execute=True):
            delivery = services.delivery_attempt(delivery_id=delivery.pk, now=last)
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
        assert services.delivery_attempt(delivery_id=delivery.pk, now=last + timedelta(days=1)) is None
        assert len(receiver.requests) == 3
        assert len({r["headers"]["EventFlow-Signature"] for r in receiver.requests}) >= 1
        assert len({r["headers"]["EventFlow-Event"] for r in receiver.requests}) == 1  # one event, retried
        endpoint.refresh_from_db()
        assert endpoint.consecutive_failures == 1
        assert endpoint.is_active
        assert [(h["attempt"], h["status_code"], h["final"]) for h in heard] == [
            (1, 500, False),
            (2, 503, False),
            (3, 502, True),
        ]
    finally:
        delivery_failed.disconnect(dispatch_uid="test.failed")


def test_the_schedule_jitters_within_ten_percent_and_repeats_its_last_wait(settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [60, 300, 1800]
    waits = [services.retry_delay(delivery_id=f"d{n}", attempts=1) for n in range(50)]
    assert all(54 <= wait <= 66 for wait in waits)
    assert len(set(waits)) > 40
    assert 1620 <= services.retry_delay(delivery_id="d", attempts=9) <= 1980
    assert services.retry_delay(delivery_id="d", attempts=2) == services.retry_delay(delivery_id="d", attempts=2)


def test_an_endpoint_failing_delivery_after_delivery_is_disabled_and_its_organizer_emailed(
    receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_MAX_ATTEMPTS = 1
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 2
    disabled = []
    endpoint_disabled.connect(lambda sender, **kw: disabled.append(kw), weak=False, dispatch_uid="test.disabled")
    try:
        organizer = make_organizer("Dora Concerts")
        endpoint = subscribe(organizer, receiver.url, ["order.placed"])
        _event, tier = sale(organizer)
        receiver.statuses = [500, 200, 500, 500]
        with django_capture_on_commit_callbacks(execute=True):
            place(tier)  # fails
            place(tier)  # succeeds: the count starts again
            place(tier)  # fails
        endpoint.refresh_from_db()
        assert endpoint.is_active
        assert endpoint.consecutive_failures == 1
        assert mail.outbox == []

        with django_capture_on_commit_callbacks(execute=True):
            place(tier)  # the second failure in a row
        endpoint.refresh_from_db()
        assert not endpoint.is_active
        assert endpoint.disabled_at is not None
        assert endpoint.consecutive_failures == 2
        assert "2 deliveries" in endpoint.disabled_reason
        assert [(d["endpoint_id"], d["organizer_id"]) for d in disabled] == [(endpoint.pk, organizer.pk)]
        [notice] = mail.outbox
        assert notice.to == [organizer.contact_email]
        assert endpoint.url in notice.subject
        assert "PATCH" in notice.body

        # disabled: nothing more is recorded or sent, and the purchase path knows at once
        assert organizer.pk not in subscriptions.current().get("order.placed", set())
        with django_capture_on_commit_callbacks(execute=True):
            place(tier)
        assert len(receiver.requests) == 4
        assert WebhookDelivery.objects.count() == 4

        # the organizer enables it again
        response = as_user(organizer.user).patch(f"{API}/{endpoint.pk}", {"active": True}, format="json")
        assert response.status_code == 200
        assert response.json()["active"] is True
        assert response.json()["consecutive_failures"] == 0
        with django_capture_on_commit_callbacks(execute=True):
            place(tier)
        assert len(receiver.requests) == 5
    finally:
        endpoint_disabled.disconnect(dispatch_uid="test.disabled")


def test_a_stale_disable_notice_is_not_sent():
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, "https://hooks.example.com/x", ["order.paid"])
    assert services.endpoint_disabled_notice_send(endpoint_id=endpoint.pk, disabled_at="2026-01-01T00:00:00") is False
    assert mail.outbox == []


def test_every_attempt_is_announced_for_metrics(receiver, django_capture_on_commit_callbacks):
    attempts = []
    delivery_attempted.connect(lambda sender, **kw: attempts.append(kw), weak=False, dispatch_uid="test.attempted")
    try:
        organizer = make_organizer("Dora Concerts")
        endpoint = subscribe(organizer, receiver.url, ["order.placed"])
        _event, tier = sale(organizer)
        with django_capture_on_commit_callbacks(execute=True):
            place(tier)
        [attempt] = attempts
        assert attempt["endpoint_id"] == endpoint.pk
        assert attempt["succeeded"] is True
        assert attempt["status_code"] == 200
        assert attempt["event_type"] == "order.placed"
    finally:
        delivery_attempted.disconnect(dispatch_uid="test.attempted")


# --- Server-side request forgery ---------------------------------------------------------------


def _ping(endpoint, django_capture_on_commit_callbacks) -> WebhookDelivery:
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.endpoint_ping(endpoint=endpoint)
    delivery.refresh_from_db()
    return delivery


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["192.168.0.10"],
        ["169.254.169.254"],  # cloud metadata
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["fe80::1"],
        ["0.0.0.0"],  # noqa: S104
        ["224.0.0.1"],
        ["93.184.215.14", "10.0.0.1"],  # one private answer among public ones refuses the lot
        ["::ffff:169.254.169.254"],  # IPv4-mapped
        ["2002:a9fe:a9fe::"],  # 6to4 around 169.254.169.254 (Python 3.11 calls it global)
        ["2002:c0a8:1::1"],  # 6to4 around 192.168.0.1
        ["2002:5db8:d70e::1"],  # 6to4 around a public address: the whole prefix is refused
        ["2001:0:4136:e378:8000:63bf:3fff:fdd2"],  # Teredo
        ["2001::1"],
    ],
)
def test_a_host_resolving_to_a_non_public_address_is_refused_at_send_time(
    addresses, receiver, settings, fake_dns, django_capture_on_commit_callbacks
):
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, f"http://hooks.example:{receiver.port}/hooks", ["order.paid"])
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False  # registered fine: a host name is checked when sending
    fake_dns["answers"]["hooks.example"] = [addresses]

    delivery = _ping(endpoint, django_capture_on_commit_callbacks)

    assert receiver.requests == []
    assert delivery.status == "failed"
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("refused: hooks.example resolves to a non-public address")


def test_dns_rebinding_fails_the_checked_address_is_the_one_connected_to(
    receiver, settings, fake_dns, monkeypatch, django_capture_on_commit_callbacks
):
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, f"http://rebind.example:{receiver.port}/hooks", ["order.paid"])
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    # First answer public, every later one our own machine (where the receiver listens).
    fake_dns["answers"]["rebind.example"] = [["93.184.215.14"], ["127.0.0.1"]]
    connected = []
    real_connect = sending.socket.create_connection

    def create_connection(address, *args, **kwargs):
        if address[0] == "93.184.215.14":
            connected.append(address)
            raise ConnectionRefusedError("no route (test)")  # the public host is not ours to reach
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(sending.socket, "create_connection", create_connection)

    delivery = _ping(endpoint, django_capture_on_commit_callbacks)

    assert fake_dns["lookups"] == ["rebind.example"]  # resolved once, never again
    assert connected == [("93.184.215.14", receiver.port)]
    assert receiver.requests == []
    assert delivery.status == "failed"
    assert "ConnectionRefusedError" in delivery.last_error


def test_the_pinned_connection_keeps_the_host_name_for_the_host_header(
    receiver, fake_dns, django_capture_on_commit_callbacks
):
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, f"http://hooks.example:{receiver.port}/hooks?source=eventflow", ["order.paid"])
    fake_dns["answers"]["hooks.example"] = [["127.0.0.1"]]  # allowed here (the demo setting)

    delivery = _ping(endpoint, django_capture_on_commit_callbacks)

    [request] = receiver.requests
    assert request["headers"]["Host"] == f"hooks.example:{receiver.port}"
    assert request["path"] == "/hooks?source=eventflow"
    assert body_of(request)["type"] == "ping"
    assert delivery.status == "succeeded"


def test_redirects_are_not_followed_and_count_as_failures(receiver, django_capture_on_commit_callbacks):
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, receiver.url, ["order.paid"])
    receiver.statuses = [302]
    delivery = _ping(endpoint, django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == ("failed", 302, "HTTP 302")


def test_an_unreachable_receiver_is_a_failed_attempt_not_an_error(settings, django_capture_on_commit_callbacks):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    organizer = make_organizer("Dora Concerts")
    with socket_bound() as port:  # a port nobody listens on
        endpoint = subscribe(organizer, f"http://127.0.0.1:{port}/x", ["order.paid"])
        delivery = _ping(endpoint, django_capture_on_commit_callbacks)
    assert delivery.status == "failed"
    assert delivery.last_status_code is None
    assert "ConnectionRefusedError" in delivery.last_error
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 0  # a ping never counts


class trickling_server:
    """A receiver that answers 200 a byte at a time (``interval`` seconds apart), each byte well
    within a read timeout, the whole answer far past it."""

    def __init__(self, interval: float = 0.02, padding: int = 150) -> None:
        import socket
        import threading

        self.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: " + b"a" * padding + b"\r\n\r\nok"
        self.interval = interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            connection, _address = self.listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(10)
            try:
                received = b""
                while b"\r\n\r\n" not in received:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    received += chunk
                for byte in self.answer:
                    connection.sendall(bytes([byte]))
                    time.sleep(self.interval)
            except OSError:
                return  # the client gave up

    def __enter__(self) -> trickling_server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()
        self.thread.join(10)


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_timeout_for_the_whole_exchange(
    settings, django_capture_on_commit_callbacks
):
    """The timeout bounds the exchange, not each read: 0.5 s, although every byte comes within 0.02 s."""
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    organizer = make_organizer("Dora Concerts")
    with trickling_server() as server:
        endpoint = subscribe(organizer, f"http://127.0.0.1:{server.port}/hooks", ["order.paid"])
        started = time.monotonic()
        delivery = _ping(endpoint, django_capture_on_commit_callbacks)
        took = time.monotonic() - started
    assert took < 1.5  # the whole answer would take about 3.5 s
    assert delivery.status == "failed"
    assert delivery.last_status_code is None
    assert delivery.last_error == "TimeoutError: no complete answer within 0.5 s"
    assert 450 <= delivery.last_latency_ms < 1500


def test_a_receiver_answering_within_the_timeout_is_not_cut_off(settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 5
    with trickling_server(interval=0.001, padding=20) as server:
        result = sending.post(f"http://127.0.0.1:{server.port}/hooks", body=b"{}", headers={})
    assert (result.status_code, result.error) == (200, "")


def test_the_send_task_ends_before_its_claim_runs_out(settings):
    from webhooks.tasks import send_delivery

    hold = services.claim_hold_seconds()
    assert hold == settings.WEBHOOKS_TIMEOUT_SECONDS * 4 + 30
    assert settings.WEBHOOKS_TIMEOUT_SECONDS < send_delivery.soft_time_limit < send_delivery.time_limit < hold


def test_an_attempt_past_the_tasks_soft_time_limit_is_a_failed_attempt(
    receiver, monkeypatch, django_capture_on_commit_callbacks
):
    from celery.exceptions import SoftTimeLimitExceeded

    def slow(url, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(sending, "post", slow)
    organizer = make_organizer("Dora Concerts")
    delivery = _ping(subscribe(organizer, receiver.url, ["order.paid"]), django_capture_on_commit_callbacks)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, None)
    assert delivery.last_error == "timeout: the attempt took too long"
    assert delivery.locked_until is None


def test_an_attempt_that_lost_its_claim_records_nothing_and_the_new_claimer_counts_once(receiver, monkeypatch):
    """The first attempt outlives its hold; a second claims the delivery and succeeds; the first,
    late, must neither count a second attempt nor overwrite the outcome."""
    from django.utils import timezone

    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, receiver.url, ["order.paid"])
    start = timezone.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id="evt_1", event_type="order.paid", payload={}, next_attempt_at=start
    )
    receiver.statuses = [500]  # the late attempt's answer
    after_the_hold = start + timedelta(seconds=services.claim_hold_seconds() + 1)
    real_post = sending.post
    second = []

    def post_while_the_hold_runs_out(url, **kwargs):
        result = real_post(url, **kwargs)
        monkeypatch.setattr(sending, "post", real_post)
        second.append(services.delivery_attempt(delivery_id=delivery.pk, now=after_the_hold))
        return result

    monkeypatch.setattr(sending, "post", post_while_the_hold_runs_out)
    assert services.delivery_attempt(delivery_id=delivery.pk, now=start) is None  # recorded nothing
    [claimer] = second
    assert (claimer.status, claimer.attempts) == ("succeeded", 1)
    assert len(receiver.requests) == 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "succeeded",
        1,
        200,
        "",
    )
    assert delivery.locked_until is None
    assert delivery.last_attempt_at == after_the_hold
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 0


def test_an_attempt_whose_claim_is_held_by_another_records_nothing(receiver, monkeypatch):
    """Still in flight elsewhere: the other attempt's hold stays, for it to record."""
    from django.utils import timezone

    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, receiver.url, ["order.paid"])
    start = timezone.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id="evt_1", event_type="order.paid", payload={}, next_attempt_at=start
    )
    theirs = start + timedelta(seconds=services.claim_hold_seconds() * 2)
    real_post = sending.post

    def post_then_lose_the_claim(url, **kwargs):
        result = real_post(url, **kwargs)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(locked_until=theirs)
        return result

    monkeypatch.setattr(sending, "post", post_then_lose_the_claim)
    assert services.delivery_attempt(delivery_id=delivery.pk, now=start) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 0, None)
    assert delivery.locked_until == theirs


def test_at_send_time_a_stored_url_no_longer_allowed_is_a_failed_attempt_never_a_request(
    receiver, settings, fake_dns, django_capture_on_commit_callbacks
):
    """What registration refuses today may be stored from before (or the setting changed since)."""
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, receiver.url, ["order.paid"])
    fake_dns["answers"]["strasse.de"] = [["127.0.0.1"]]
    fake_dns["answers"]["straße.de"] = [["127.0.0.1"]]
    cases = [
        (receiver.url, {"WEBHOOKS_ALLOW_HTTP": False}, "refused: http:// URLs are not allowed"),
        (f"http://straße.de:{receiver.port}/hooks", {}, "refused: the host name is not ASCII"),
        ("http://127.0.0.1:0/hooks", {}, "refused: the URL's port is not valid"),
        ("http://127.0.0.1:99999/hooks", {}, "refused: the URL's port is not valid"),
    ]
    for url, overrides, error in cases:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=url)
        endpoint.refresh_from_db()
        with override_settings(**overrides):
            delivery = _ping(endpoint, django_capture_on_commit_callbacks)
        assert (delivery.status, delivery.last_status_code) == ("failed", None), url
        assert delivery.last_error.startswith(error), (url, delivery.last_error)
    assert receiver.requests == []
    assert fake_dns["lookups"] == []


def test_an_explicit_port_is_used_and_only_a_missing_one_defaults(monkeypatch, settings):
    settings.WEBHOOKS_ALLOW_HTTP = True
    asked = []

    def resolve(host, port):
        asked.append(port)
        raise sending.Refused("test")

    monkeypatch.setattr(sending, "resolve", resolve)
    for url in (
        "https://h.example.com:0/",
        "https://h.example.com/",
        "http://h.example.com/",
        "https://h.example.com:8443/",
    ):
        sending.post(url, body=b"{}", headers={})
    assert asked == [443, 80, 8443]


class socket_bound:
    """A free local port, closed (so connecting to it is refused)."""

    def __enter__(self) -> int:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        return port

    def __exit__(self, *exc) -> None:
        return None


def test_without_a_worker_the_command_sends_what_is_due(receiver, django_capture_on_commit_callbacks):
    from io import StringIO

    from django.core.management import call_command

    organizer = make_organizer("Dora Concerts")
    subscribe(organizer, receiver.url, ["order.placed"])
    _event, tier = sale(organizer)
    receiver.statuses = [500]
    with django_capture_on_commit_callbacks(execute=True):
        place(tier)
    delivery = WebhookDelivery.objects.get()
    out = StringIO()
    call_command("send_due_webhooks", stdout=out)
    assert "0 delivery attempt(s)" in out.getvalue()  # the retry is not due yet
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.last_attempt_at)
    call_command("send_due_webhooks", stdout=out)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert delivery.attempts == 2
    assert len(receiver.requests) == 2


def test_the_demo_receiver_uses_the_readme_snippet_and_accepts_a_real_delivery(
    settings, django_capture_on_commit_callbacks
):
    """The README's demo: webhooks/demo_receiver.py (run as a program, as the walkthrough does)
    verifies a real order.paid delivery with the snippet and answers 204."""
    import subprocess
    import sys
    from pathlib import Path

    source = (Path(settings.BASE_DIR) / "webhooks" / "demo_receiver.py").read_text()
    snippet = readme_snippet()
    assert snippet[snippet.index("def verify") :] in source

    with socket_bound() as port:
        pass
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, f"http://127.0.0.1:{port}/", ["order.paid"])
    env = {"WEBHOOK_SECRET": endpoint.secret, "PATH": "/usr/bin:/bin"}
    demo = subprocess.Popen(  # noqa: S603 (our own script)
        [sys.executable, "-u", "-m", "webhooks.demo_receiver", str(port)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout.readline().startswith("listening")
        _event, tier = sale(organizer)
        with django_capture_on_commit_callbacks(execute=True):
            order = order_mark_paid(order=place(tier))
        line = demo.stdout.readline()
    finally:
        demo.terminate()
        demo.wait(5)
    assert line.startswith("verified order.paid evt_")
    assert str(order.pk) in line
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded"
    assert delivery.last_status_code == 204


def _forged_headers(now: int) -> list[str]:
    return [
        "",
        "garbage",
        ",,,",
        "=",
        "t=",
        "v1=abc",
        f"t={now}",
        "t=abc,v1=00",
        f"t={now},v1=",
        f"t={now},v1=é",
        f"t={now},v1=" + "ü" * 64,
        f"t={now},v1=\udc80",
        f"t={now},v1=\x00",
        "t=١٢٣,v1=00",  # Unicode digits parse as an int: an old time
        "t=" + "9" * 400 + ",v1=00",  # a time too large for a float
        "t=" + "9" * 5000 + ",v1=00",  # too many digits for an int
        f"t=-{now},v1=00",
        f"t={now},v1=" + "0" * 64,
        f"t={now},v1={'a' * 64},v1",
    ]


def test_the_readme_snippet_and_the_demo_receiver_say_false_to_forged_headers_never_raise():
    from webhooks import demo_receiver

    secret, body, now = signing.new_secret(), b'{"id":"evt_1"}', int(time.time())
    for verify in (readme_verify(), demo_receiver.verify):
        for header in _forged_headers(now):
            assert verify(secret, body, header) is False, header
        good = signing.signature(secret, body, now)
        assert verify(secret, body, good) is True
        assert verify(secret, body + b" ", good) is False
        assert verify(signing.new_secret(), body, good) is False


def test_https_connects_to_the_checked_address_with_the_host_name_for_sni_and_the_certificate(monkeypatch):
    """TLS to the pinned address: SNI and certificate verification are for the URL's host name."""
    seen = {}

    class Refusing:
        def wrap_socket(self, sock, *, server_hostname):
            seen["server_hostname"] = server_hostname
            raise ConnectionResetError("handshake refused (test)")

    class Socket:
        def settimeout(self, timeout):
            seen["handshake_timeout"] = timeout

    def create_connection(address, timeout):
        seen["address"] = address
        return Socket()

    monkeypatch.setattr(sending.socket, "create_connection", create_connection)
    connection = sending._PinnedHTTPSConnection("hooks.example.com", 443, ip="93.184.215.14", timeout=1)
    assert connection._context.check_hostname is True
    assert connection._context.verify_mode == sending.ssl.CERT_REQUIRED
    connection._context = Refusing()
    with pytest.raises(ConnectionResetError):
        connection.connect()
    assert 0 < seen.pop("handshake_timeout") <= 1  # what is left of the exchange's time
    assert seen == {"address": ("93.184.215.14", 443), "server_hostname": "hooks.example.com"}


def test_a_failed_attempt_is_counted_in_the_metrics(receiver, django_capture_on_commit_callbacks):
    from observability.tests.test_metrics import Counted

    receiver.statuses = [500]
    organizer = make_organizer("Dora Concerts")
    subscribe(organizer, receiver.url, ["order.placed"])
    _event, tier = sale(organizer)
    with Counted() as seen, django_capture_on_commit_callbacks(execute=True):
        place(tier)
    assert seen("eventflow_webhook_failures_total") == 1
    assert WebhookDelivery.objects.get().attempts == 1
