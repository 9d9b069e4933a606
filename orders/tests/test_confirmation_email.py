"""The confirmation email: sent once per paid order, after commit only, with the tickets attached."""

from __future__ import annotations

import io
import smtplib
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from celery.exceptions import Retry
from django.core.mail.backends.locmem import EmailBackend
from django.db import transaction
from django.utils import timezone
from pypdf import PdfReader

from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import services
from orders.models import Order
from orders.tasks import send_order_confirmation

from .conftest import order_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    starts = (timezone.now() + timedelta(days=20)).replace(hour=1, minute=15, second=0, microsecond=0)
    return EventFactory(
        status=Event.Status.PUBLISHED,
        title="Late Show & Friends",
        timezone="America/New_York",
        starts_at=starts,
        venue_name="Blue Room",
        city="New York",
        country="US",
    )


def reserve(buyer, tier, quantity: int = 2) -> Order:
    return services.order_place(buyer=buyer, event_id=tier.event_id, lines=[services.Line(tier.pk, quantity)])


def test_a_paid_order_gets_one_email_with_its_tickets(
    buyer, event, tier, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    order = reserve(buyer, tier)

    # when: the payment arrives
    with django_capture_on_commit_callbacks(execute=True):
        services.order_mark_paid(order=order)

    # then
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == [buyer.email]
    assert mail.subject == "Your tickets for Late Show & Friends"
    local = event.starts_at.astimezone(ZoneInfo("America/New_York"))
    for text in (mail.body, mail.alternatives[0][0]):
        assert f"{local:%H:%M}" in text  # the venue's clock
        assert "America/New_York" in text
        assert "Blue Room" in text
        assert "2 x GA" in text or "2 &times;" in text
        assert "50.00 EUR" in text
    assert "Late Show & Friends" in mail.body  # plain text is not HTML-escaped
    assert "Late Show &amp; Friends" in mail.alternatives[0][0]
    assert mail.alternatives[0][1] == "text/html"
    ((filename, content, mimetype),) = mail.attachments
    assert (filename, mimetype) == (f"tickets-{str(order.pk)[:8]}.pdf", "application/pdf")
    pages = PdfReader(io.BytesIO(content)).pages
    codes = set(order.tickets.values_list("code", flat=True))
    assert len(pages) == len(codes) == 2
    assert codes == {code for code in codes for page in pages if code in page.extract_text()}
    order.refresh_from_db()
    assert order.confirmation_sent_at is not None


def test_a_free_order_is_confirmed_when_placed(client, buyer, event, mailoutbox, django_capture_on_commit_callbacks):
    free = TicketTypeFactory(event=event, name="Guest list", price_cents=0)

    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/api/v1/orders", order_body(event, (free, 1)))

    assert r.status_code == 201
    assert len(mailoutbox) == 1
    assert "free" in mailoutbox[0].body.lower()
    assert Order.objects.get(pk=r.json()["id"]).confirmation_sent_at is not None


def test_the_email_waits_for_the_commit_and_a_reservation_gets_none(
    buyer, tier, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order = reserve(buyer, tier)
    assert mailoutbox == []  # a reservation is not a purchase

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.order_mark_paid(order=order)
    assert mailoutbox == []  # nothing inside the transaction
    for callback in callbacks:  # the commit
        callback()
    assert len(mailoutbox) == 1


def test_a_rolled_back_payment_sends_nothing(buyer, tier, mailoutbox, django_capture_on_commit_callbacks):
    order = reserve(buyer, tier)

    def pay_then_fail() -> None:
        with transaction.atomic():
            services.order_mark_paid(order=order)
            raise RuntimeError("the payment's own bookkeeping failed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        pay_then_fail()

    assert mailoutbox == []
    order.refresh_from_db()
    assert (order.status, order.confirmation_sent_at) == ("reserved", None)


def test_running_the_task_twice_sends_one_email(buyer, tier, mailoutbox):
    order = services.order_mark_paid(order=reserve(buyer, tier))  # the on-commit send never runs here

    first = send_order_confirmation.delay(str(order.pk)).get()
    second = send_order_confirmation.delay(str(order.pk)).get()

    assert (first, second) == (True, False)
    assert len(mailoutbox) == 1


def test_an_unpaid_or_unknown_order_gets_no_email(buyer, tier, mailoutbox):
    order = reserve(buyer, tier)

    assert send_order_confirmation.delay(str(order.pk)).get() is False
    assert send_order_confirmation.delay("00000000-0000-0000-0000-000000000000").get() is False
    assert mailoutbox == []


def test_a_mail_server_hiccup_is_retried_and_the_retry_sends_once(buyer, tier, mailoutbox, monkeypatch):
    # given: the mail server drops the first attempt
    order = services.order_mark_paid(order=reserve(buyer, tier))
    attempts = []
    send = EmailBackend.send_messages

    def flaky(self, messages):
        attempts.append(len(messages))
        if len(attempts) == 1:
            raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")
        return send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", flaky)

    # when / then: the task asks Celery for a retry, with nothing recorded as sent
    with pytest.raises(Retry):
        send_order_confirmation.delay(str(order.pk))
    assert mailoutbox == []
    order.refresh_from_db()
    assert order.confirmation_sent_at is None

    # when: the retry runs (a worker would, after the backoff)
    assert send_order_confirmation.delay(str(order.pk)).get() is True

    # then
    assert len(attempts) == 2
    assert len(mailoutbox) == 1
    order.refresh_from_db()
    assert order.confirmation_sent_at is not None


def test_a_refused_address_is_not_retried(buyer, tier, mailoutbox, monkeypatch):
    order = services.order_mark_paid(order=reserve(buyer, tier))
    attempts = []

    def refuse(self, messages):
        attempts.append(1)
        raise smtplib.SMTPRecipientsRefused({buyer.email: (550, b"no such user")})

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send_order_confirmation.delay(str(order.pk))

    assert len(attempts) == 1
    order.refresh_from_db()
    assert order.confirmation_sent_at is None


def test_demo_seeding_sends_no_email(mailoutbox, django_capture_on_commit_callbacks):
    from django.core.management import call_command

    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", "--force", stdout=io.StringIO())

    assert Order.objects.filter(status=Order.Status.PAID).exists()
    assert mailoutbox == []
