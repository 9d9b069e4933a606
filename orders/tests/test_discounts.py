"""Buying with a discount code: prices, refusals, uses claimed once and given back exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from accounts.tests.test_auth import assert_problem
from events.discounts import discount_for, uses_report
from events.models import DiscountCode, Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import queue
from orders.models import Order, Payment, Refund, Ticket
from orders.services import expire_due_holds

from .conftest import order_body
from .test_concurrency import run_concurrently

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"


def code_of(event, text="SAVE", **fields) -> DiscountCode:
    if "percent_off" not in fields and "amount_off_cents" not in fields:
        fields["percent_off"] = 10
    types = fields.pop("ticket_types", None)
    code = DiscountCode.objects.create(event=event, code=text, **fields)
    if types:
        code.ticket_types.set(types)
    return code


def buy(client, event, *lines, code=None, **headers):
    body = order_body(event, *lines)
    if code is not None:
        body["discount_code"] = code
    return client.post(ORDERS, body, format="json", **headers)


def client_of(user=None) -> APIClient:
    client = APIClient()
    client.force_authenticate(user or UserFactory())
    return client


def clean() -> None:
    call_command("check_inventory")  # raises on any drift, discount uses included
    assert uses_report() == []


def uses(code: DiscountCode) -> int:
    code.refresh_from_db()
    return code.uses


# --- Prices -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "amount", "eligible", "off"),
    [
        (10, None, 5000, 500),
        (33, None, 999, 330),  # 329.67 rounded up: the buyer's favour
        (1, None, 1, 1),
        (100, None, 4321, 4321),
        (None, 500, 5000, 500),
        (None, 5000, 1200, 1200),  # capped at what it applies to
        (50, None, 0, 0),
    ],
)
def test_discount_arithmetic(percent, amount, eligible, off):
    assert discount_for(percent_off=percent, amount_off_cents=amount, eligible_cents=eligible) == off


def test_a_percentage_comes_off_the_eligible_lines_only(client, event):
    ga = TicketTypeFactory(event=event, price_cents=999, capacity=10)
    vip = TicketTypeFactory(event=event, price_cents=5000, capacity=10)
    code = code_of(event, "VIP33", percent_off=33, ticket_types=[ga])
    r = buy(client, event, (ga, 1), (vip, 1), code="vip33")
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["subtotal_cents"], body["discount_cents"], body["total_cents"]) == (5999, 330, 5669)
    assert body["discount_code"] == "VIP33"
    assert body["status"] == "reserved"
    order = Order.objects.get(pk=body["id"])
    assert (order.discount_code_id, order.discount_cents, order.total_cents) == (code.pk, 330, 5669)
    assert uses(code) == 1
    assert client.get(f"{ORDERS}/{order.pk}").json() == body  # the hand-built 201 is what reading gives
    clean()


def test_a_fixed_amount_comes_off_once_and_never_below_zero(event):
    tier = TicketTypeFactory(event=event, price_cents=700, capacity=10)
    code_of(event, "FIVE", amount_off_cents=500)
    big = buy(client_of(), event, (tier, 3), code="FIVE").json()
    assert (big["subtotal_cents"], big["discount_cents"], big["total_cents"]) == (2100, 500, 1600)
    code_of(event, "HUGE", amount_off_cents=10_000)
    small = buy(client_of(), event, (tier, 1), code="HUGE").json()
    assert (small["subtotal_cents"], small["discount_cents"], small["total_cents"]) == (700, 700, 0)
    clean()


def test_free_after_discount_is_paid_at_once_with_its_tickets(client, event):
    tier = TicketTypeFactory(event=event, price_cents=2500, capacity=10)
    code = code_of(event, "COMP", percent_off=100)
    r = buy(client, event, (tier, 2), code="comp")
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["status"], body["total_cents"], body["discount_cents"], body["expires_at"]) == ("paid", 0, 5000, None)
    assert Ticket.objects.filter(order_id=body["id"]).count() == 2
    assert_problem(client.post(f"{ORDERS}/{body['id']}/pay"), 409, "order_not_payable")
    tier.refresh_from_db()
    assert tier.available == 8
    assert uses(code) == 1
    clean()


def test_payment_charges_the_discounted_total(client, event):
    tier = TicketTypeFactory(event=event, price_cents=2500, capacity=10)
    code_of(event, "TEN", percent_off=10)
    order = buy(client, event, (tier, 2), code="TEN").json()
    payment = client.post(f"{ORDERS}/{order['id']}/pay")
    assert payment.status_code == 200, payment.content
    assert Payment.objects.get().amount_cents == 4500
    assert client.post(f"/api/v1/payments/test/{payment.json()['payment']['id']}/complete").status_code == 200
    assert Order.objects.get(pk=order["id"]).status == Order.Status.PAID
    clean()


# --- Refusals ---------------------------------------------------------------------------------------


def test_codes_match_whatever_their_case_and_surrounding_spaces(event, tier):
    code = code_of(event, "Summer-Sale")
    for text in ("summer-sale", "SUMMER-SALE", "  sUmMeR-sAlE "):
        r = buy(client_of(), event, (tier, 1), code=text)
        assert r.status_code == 201, r.content
        assert r.json()["discount_code"] == "Summer-Sale"
    assert uses(code) == 3
    clean()


@pytest.mark.parametrize("text", ["NOPE", "OTHER", "OFF", "GONE", "é-code", "x" * 64, "SAVE'--", "%"])
def test_an_unknown_code_is_a_400_and_holds_nothing(client, event, tier, text):
    code_of(EventFactory(status=Event.Status.PUBLISHED), "OTHER")  # another event's
    code_of(event, "OFF", active=False)
    code_of(event, "GONE", deleted_at=timezone.now(), active=False)
    problem = assert_problem(buy(client, event, (tier, 1), code=text), 400, "invalid")
    assert "discount_code" in problem["errors"]
    assert problem["reason"] == "unknown"
    assert not Order.objects.exists()
    tier.refresh_from_db()
    assert tier.available == tier.capacity


def test_a_code_is_valid_within_its_window_only(client, event, tier):
    now = timezone.now()
    code = code_of(event, "WINDOW", valid_from=now + timedelta(hours=1), valid_until=now + timedelta(hours=2))
    problem = assert_problem(buy(client, event, (tier, 1), code="window"), 400, "invalid")
    assert problem["reason"] == "not_yet_valid"
    with mock.patch("django.utils.timezone.now", return_value=now + timedelta(hours=1, minutes=1)):
        assert buy(client, event, (tier, 1), code="window").status_code == 201
    with mock.patch("django.utils.timezone.now", return_value=now + timedelta(hours=2)):
        problem = assert_problem(buy(client_of(), event, (tier, 1), code="window"), 400, "invalid")
    assert problem["reason"] == "expired"
    assert uses(code) == 1
    assert Order.objects.count() == 1


def test_a_code_for_other_ticket_types_is_refused(client, event):
    ga = TicketTypeFactory(event=event, capacity=10)
    vip = TicketTypeFactory(event=event, capacity=10)
    code_of(event, "VIPONLY", ticket_types=[vip])
    problem = assert_problem(buy(client, event, (ga, 2), code="viponly"), 400, "invalid")
    assert problem["reason"] == "not_applicable"
    assert "discount_code" in problem["errors"]
    assert not Order.objects.exists()


def test_an_exhausted_code_is_a_409_and_holds_nothing(client, event, tier):
    code = code_of(event, "ONCE", max_uses=1)
    assert buy(client_of(), event, (tier, 1), code="once").status_code == 201
    assert_problem(buy(client, event, (tier, 1), code="ONCE"), 409, "discount_code_exhausted")
    assert Order.objects.count() == 1
    tier.refresh_from_db()
    assert tier.available == tier.capacity - 1
    assert uses(code) == 1
    clean()


def test_a_code_switched_off_between_checks_and_claim_is_refused_under_the_lock(client, event, tier):
    """The lock-free check passed, then the organizer switched the code off: the claim refuses it."""
    from events import discounts

    code = code_of(event, "RACE", max_uses=3)
    real = discounts.claim

    def switched_off_first(discount):
        DiscountCode.objects.filter(pk=code.pk).update(active=False)
        return real(discount)

    with mock.patch.object(discounts, "claim", switched_off_first):
        assert_problem(buy(client, event, (tier, 1), code="race"), 400, "invalid")
    assert not Order.objects.exists()
    assert uses(code) == 0
    tier.refresh_from_db()
    assert tier.available == tier.capacity


def test_nothing_is_claimed_when_the_order_fails_after_the_claim(client, event):
    tier = TicketTypeFactory(event=event, capacity=1)
    code = code_of(event, "LATE", max_uses=5)
    TicketTypeFactory._meta.model.objects.filter(pk=tier.pk).update(available=0, capacity=0)
    tier.refresh_from_db()
    # Validation reads the stock unlocked; make it see a ticket so the purchase reaches the claim.
    with mock.patch("orders.services.refuse_if_sold_out", return_value=False):
        assert_problem(buy(client, event, (tier, 1), code="late"), 409, "sold_out")
    assert uses(code) == 0
    assert not Order.objects.exists()


# --- Uses given back ----------------------------------------------------------------------------------


def test_a_use_is_given_back_when_the_hold_expires(client, event, tier):
    code = code_of(event, "TWICE", max_uses=1)
    order = buy(client, event, (tier, 2), code="twice").json()
    assert uses(code) == 1
    assert expire_due_holds(now=timezone.now() + timedelta(minutes=1)) == 0  # not due yet
    assert uses(code) == 1
    assert expire_due_holds(now=timezone.now() + timedelta(hours=1)) == 1
    assert Order.objects.get(pk=order["id"]).status == Order.Status.EXPIRED
    assert uses(code) == 0
    assert expire_due_holds(now=timezone.now() + timedelta(hours=2)) == 0  # exactly once
    assert uses(code) == 0
    assert buy(client_of(), event, (tier, 1), code="twice").status_code == 201
    assert uses(code) == 1
    clean()


def test_a_use_is_given_back_when_the_order_is_cancelled_and_only_once(client, event, tier):
    code = code_of(event, "BACK", max_uses=1)
    order = buy(client, event, (tier, 1), code="back").json()
    assert client.post(f"{ORDERS}/{order['id']}/cancel").status_code == 200
    assert uses(code) == 0
    assert_problem(client.post(f"{ORDERS}/{order['id']}/cancel"), 409, "order_not_cancellable")
    assert uses(code) == 0
    clean()


def test_a_refunded_order_gives_its_use_back(client, event, tier):
    Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=1)
    code = code_of(event, "REFUND", max_uses=1, percent_off=20)
    order = buy(client, event, (tier, 2), code="refund").json()
    payment = client.post(f"{ORDERS}/{order['id']}/pay").json()["payment"]
    assert client.post(f"/api/v1/payments/test/{payment['id']}/complete").status_code == 200
    assert uses(code) == 1
    r = client.post(f"{ORDERS}/{order['id']}/cancel")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "refunded"
    assert Refund.objects.get().amount_cents == 4000  # what was paid
    assert uses(code) == 0
    clean()


def test_paid_after_expiry_takes_the_use_again_or_is_refunded(event, tier):
    from orders.payments import test as gateway
    from orders.payments.services import webhook_receive

    code = code_of(event, "LATEPAY", max_uses=1)
    first = client_of()
    order = buy(first, event, (tier, 1), code="latepay").json()
    payment = Payment.objects.get(pk=first.post(f"{ORDERS}/{order['id']}/pay").json()["payment"]["id"])
    assert expire_due_holds(now=timezone.now() + timedelta(hours=1)) == 1
    assert uses(code) == 0
    assert buy(client_of(), event, (tier, 1), code="latepay").status_code == 201  # someone else takes the use
    delivery = gateway.signed_event(payment, True)
    result = webhook_receive(provider_name="test", body=delivery["body"], headers=delivery["headers"])
    assert result.outcome == "refunded_sold_out"  # no use left: the late payment goes back
    assert Order.objects.get(pk=order["id"]).status == Order.Status.EXPIRED
    assert uses(code) == 1
    clean()


def test_deleting_a_used_code_keeps_it_for_its_orders(client, event, tier):
    code = code_of(event, "KEEP")
    order = buy(client, event, (tier, 1), code="keep").json()
    owner = client_of(event.organizer.user)
    assert owner.delete(f"/api/v1/events/{event.pk}/discount-codes/{code.pk}").status_code == 204
    code.refresh_from_db()
    assert code.deleted_at is not None
    assert client.get(f"{ORDERS}/{order['id']}").json()["discount_code"] == "KEEP"
    assert_problem(buy(client_of(), event, (tier, 1), code="keep"), 400, "invalid")
    # The text is free again for a new code; the old order's expiry still gives its use back.
    again = owner.post(f"/api/v1/events/{event.pk}/discount-codes", {"code": "keep", "percent_off": 5}, format="json")
    assert again.status_code == 201, again.content
    assert expire_due_holds(now=timezone.now() + timedelta(hours=1)) == 1
    assert uses(code) == 0
    clean()


def test_an_idempotent_retry_replays_the_discounted_order_and_claims_once(client, event, tier):
    code = code_of(event, "KEYED", max_uses=2)
    first = buy(client, event, (tier, 1), code="keyed", HTTP_IDEMPOTENCY_KEY="k1")
    again = buy(client, event, (tier, 1), code="keyed", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert uses(code) == 1


def test_a_queued_purchase_keeps_its_code(event):
    Event.objects.filter(pk=event.pk).update(high_demand=True)
    tier = TicketTypeFactory(event=event, price_cents=1000, capacity=5)
    code = code_of(event, "QUEUED", amount_off_cents=300, max_uses=1)
    client = client_of()
    r = buy(client, event, (tier, 1), code="queued")
    assert r.status_code == 202, r.content
    assert_problem(buy(client_of(), event, (tier, 1), code="nope"), 400, "invalid")  # refused before queueing
    queue.drain(event_id=event.pk)
    polled = client.get(r.json()["status_url"]).json()
    assert polled["status"] == "placed", polled
    assert (polled["order"]["discount_code"], polled["order"]["total_cents"]) == ("QUEUED", 700)
    assert uses(code) == 1
    clean()


# --- Reports --------------------------------------------------------------------------------------------


def test_sales_and_payouts_are_net_of_discounts(event, settings, django_capture_on_commit_callbacks):
    settings.PLATFORM_FEE_PERCENT = 10
    settings.PLATFORM_FEE_FIXED_CENTS = 0
    Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=1)
    tier = TicketTypeFactory(event=event, price_cents=2500, capacity=20, max_per_buyer=None)
    code_of(event, "QUARTER", percent_off=25)
    paid = []
    for quantity, code in ((2, "quarter"), (1, None), (2, "QUARTER")):
        client = client_of()
        order = buy(client, event, (tier, quantity), code=code).json()
        payment = client.post(f"{ORDERS}/{order['id']}/pay").json()["payment"]
        assert client.post(f"/api/v1/payments/test/{payment['id']}/complete").status_code == 200
        paid.append((client, order))
    with django_capture_on_commit_callbacks(execute=True):
        client, order = paid[2]
        assert client.post(f"{ORDERS}/{order['id']}/cancel").json()["status"] == "refunded"
    buy(client_of(), event, (tier, 1), code="quarter")  # reserved: not a sale

    owner = client_of(event.organizer.user)
    sales = owner.get(f"/api/v1/events/{event.pk}/sales").json()
    assert sales["gross_cents"] == 5 * 2500  # sold at list price (the refunded order included)
    assert sales["discounts_cents"] == 1250 + 1250
    assert sales["refunds_cents"] == 3750  # what was paid back
    assert sales["fees_cents"] == 375 + 250  # on the orders still paid
    assert sales["net_cents"] == 12500 - 2500 - 625 - 3750 == 5625  # the two paid orders, less fees
    assert sales["ticket_types"][0]["gross_cents"] == 3 * 2500  # per type: paid tickets at list price
    assert sum(day["gross_cents"] - day["discounts_cents"] for day in sales["days"]) == 3750 + 2500

    staff = client_of(UserFactory(is_staff=True, is_superuser=True))
    (payout,) = staff.get("/api/v1/admin/payouts").json()
    assert {key: payout[key] for key in ("gross_cents", "discounts_cents", "fees_cents", "refunds_cents")} == {
        "gross_cents": 12500,
        "discounts_cents": 2500,
        "fees_cents": 625,
        "refunds_cents": 3750,
    }
    assert payout["net_cents"] == sales["net_cents"]
    (revenue,) = staff.get("/api/v1/admin/stats").json()["revenue"]
    assert revenue["net_cents"] == sales["net_cents"]


# --- Concurrency -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_fifty_buyers_race_for_five_uses_of_a_code():
    event = EventFactory(status=Event.Status.PUBLISHED)
    tier = TicketTypeFactory(event=event, capacity=100, price_cents=2000)
    code = code_of(event, "FIRST5", percent_off=50, max_uses=5)
    users = UserFactory.create_batch(50)

    def purchase(user):
        def call():
            r = buy(client_of(user), event, (tier, 1), code="first5")
            return r.status_code, r.json().get("code")

        return call

    results = run_concurrently([purchase(user) for user in users], workers=50)
    assert Counter(results) == {(201, None): 5, (409, "discount_code_exhausted"): 45}
    assert uses(code) == 5
    assert Order.objects.filter(discount_code=code).count() == 5
    assert Order.objects.count() == 5  # the refused hold nothing
    tier.refresh_from_db()
    assert tier.available == 95
    assert set(Order.objects.values_list("total_cents", flat=True)) == {1000}
    clean()


# --- Documents ----------------------------------------------------------------------------------------


def test_the_confirmation_and_the_pdf_show_the_discount(client, event, mailoutbox, django_capture_on_commit_callbacks):
    import io

    from pypdf import PdfReader

    tier = TicketTypeFactory(event=event, price_cents=2500, capacity=10)
    code_of(event, "Friends", amount_off_cents=1000)
    order = buy(client, event, (tier, 2), code="friends").json()
    payment = client.post(f"{ORDERS}/{order['id']}/pay").json()["payment"]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/payments/test/{payment['id']}/complete").status_code == 200
    (message,) = mailoutbox
    assert "Discount code Friends: -10.00 EUR" in message.body
    assert "Subtotal: 50.00 EUR" in message.body
    assert "Total: 40.00 EUR" in message.body
    assert "Discount code Friends:" in message.alternatives[0][0]
    pdf = client.get(f"{ORDERS}/{order['id']}/tickets.pdf")
    assert pdf.status_code == 200
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Discount code Friends: -10.00 EUR (list price 50.00 EUR, paid 40.00 EUR)" in text


def test_check_inventory_reports_a_code_whose_uses_drift(event, tier):
    from django.core.management.base import CommandError

    code = code_of(event, "DRIFT")
    order_place_with_code = buy(client_of(), event, (tier, 1), code="drift")
    assert order_place_with_code.status_code == 201
    clean()
    DiscountCode.objects.filter(pk=code.pk).update(uses=0)
    with pytest.raises(CommandError, match="1 discount codes drift"):
        call_command("check_inventory")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the hand-written statements are PostgreSQL's")
def test_a_discounted_purchase_costs_two_statements_more_than_a_plain_one(client, event):
    """A plain purchase is pinned (test_orders_api); a code adds its lookup (with its ticket types) and
    the claim of a use, nothing else (bench/README.md, "Discount codes")."""
    from django.test.utils import CaptureQueriesContext

    tier = TicketTypeFactory(event=event, capacity=10, max_per_buyer=None)
    code_of(event, "COUNTED", max_uses=5, ticket_types=[tier])
    buy(client, event, (tier, 1))  # warm
    with CaptureQueriesContext(connection) as plain:
        assert buy(client_of(), event, (tier, 1)).status_code == 201
    with CaptureQueriesContext(connection) as discounted:
        assert buy(client_of(), event, (tier, 1), code="counted").status_code == 201

    def work(queries):
        return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]

    assert len(work(discounted)) == len(work(plain)) + 2, "\n".join(sql[:100] for sql in work(discounted))


def test_a_seated_order_takes_a_code_and_gives_its_use_back_with_its_seats(client, event):
    from .test_seating import lay_out, seated_type

    stalls = seated_type(event, price_cents=3000)
    seats = lay_out(event, stalls, {"A": 4})
    code = code_of(event, "SEATED", percent_off=50, max_uses=1)
    body = {"event": event.pk, "seats": [seats[("A", "1")].pk, seats[("A", "2")].pk], "discount_code": "seated"}
    r = client.post(ORDERS, body, format="json")
    assert r.status_code == 201, r.content
    order = r.json()
    assert (order["subtotal_cents"], order["discount_cents"], order["total_cents"]) == (6000, 3000, 3000)
    assert order["discount_code"] == "SEATED"
    assert client.get(f"{ORDERS}/{order['id']}").json() == order
    assert uses(code) == 1
    other = {"event": event.pk, "seats": [seats[("A", "3")].pk], "discount_code": "SEATED"}
    assert_problem(client_of().post(ORDERS, other, format="json"), 409, "discount_code_exhausted")
    assert client.post(f"{ORDERS}/{order['id']}/cancel").status_code == 200
    assert uses(code) == 0
    clean()
