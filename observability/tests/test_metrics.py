"""GET /metrics counts what the business cares about (orders, sold-out answers, expired holds,
payments, refunds, check-ins) and times each request by its URL pattern, for the scraper only."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from checkin.services import ticket_check_in
from eventflow.api.errors import ApplicationError
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import queue
from orders.models import Order, Payment, Refund
from orders.payments import test as gateway
from orders.services import Line, expire_due_holds, order_mark_paid, order_place

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"
LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def scrape(**extra) -> str:
    response = APIClient().get("/metrics", **{**LOCAL, **extra})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def value(text: str, sample: str, **labels: str) -> float:
    """The sample's value in an exposition, 0 if absent (a labelled counter not yet counted). The
    labels given must name one series: the first that matches is read (so give every label that
    other tests' requests may vary, e.g. the status class of a route's requests)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == sample and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return 0.0


class Counted:
    """The change of each sample across a block: ``with Counted() as seen: ...; seen("name") == 1``."""

    def __enter__(self):
        self.before = scrape()
        return self

    def __exit__(self, *exc):
        self.after = scrape()

    def __call__(self, sample: str, **labels: str) -> float:
        return value(self.after, sample, **labels) - value(self.before, sample, **labels)


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _sale(capacity: int = 10, price_cents: int = 2500, **event):
    sale = EventFactory(status=Event.Status.PUBLISHED, **event)
    tier = TicketTypeFactory(event=sale, capacity=capacity, price_cents=price_cents, max_per_buyer=None)
    return sale, tier


def _body(event, tier, quantity=1) -> dict:
    return {"event": event.pk, "items": [{"ticket_type": tier.pk, "quantity": quantity}]}


# --- Business counters -------------------------------------------------------------------------


def test_an_order_placed_through_the_api_is_counted_and_timed_by_its_route(django_capture_on_commit_callbacks):
    event, tier = _sale()
    client = client_of(UserFactory())
    with Counted() as seen:
        with django_capture_on_commit_callbacks(execute=True):
            r = client.post(ORDERS, _body(event, tier, 2), format="json", **LOCAL)
        assert r.status_code == 201, r.content
        order_id = r.json()["id"]
        assert client.get(f"{ORDERS}/{order_id}").status_code == 200

    assert seen("eventflow_orders_placed_total") == 1
    assert seen("eventflow_orders_paid_total") == 0  # held, not paid
    duration = "eventflow_http_request_duration_seconds_count"
    assert seen(duration, route="api/v1/orders", method="POST", status="2xx") == 1
    assert seen(duration, route="api/v1/orders/<anyuuid:pk>", method="GET", status="2xx") == 1
    # the route, never the path: no order id (nor any other raw path) becomes a label
    assert order_id not in seen.after
    assert f"{ORDERS}/{order_id}" not in seen.after


def test_a_free_order_is_placed_and_paid_at_once(django_capture_on_commit_callbacks):
    event, tier = _sale(price_cents=0)
    with Counted() as seen, django_capture_on_commit_callbacks(execute=True):
        r = client_of(UserFactory()).post(ORDERS, _body(event, tier), format="json")
        assert r.status_code == 201, r.content
    assert (seen("eventflow_orders_placed_total"), seen("eventflow_orders_paid_total")) == (1, 1)


def test_a_sold_out_answer_is_counted_with_its_problem_code(django_capture_on_commit_callbacks):
    event, tier = _sale(capacity=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert client_of(UserFactory()).post(ORDERS, _body(event, tier), format="json").status_code == 201
    with Counted() as seen:
        r = client_of(UserFactory()).post(ORDERS, _body(event, tier), format="json")
    assert r.status_code == 409
    assert r.json()["code"] == "sold_out"
    assert seen("eventflow_sold_out_total", source="api") == 1
    assert seen("eventflow_api_errors_total", status="409", code="sold_out") == 1
    assert seen("eventflow_orders_placed_total") == 0
    assert (
        seen("eventflow_http_request_duration_seconds_count", route="api/v1/orders", method="POST", status="4xx") == 1
    )


def test_queued_purchases_refused_sold_out_by_the_worker_are_counted(django_capture_on_commit_callbacks, settings):
    settings.ORDER_QUEUE_BATCH_SIZE = 2
    event, tier = _sale(capacity=3, high_demand=True)
    for quantity in (3, 1, 1, 1, 1):
        r = client_of(UserFactory()).post(ORDERS, _body(event, tier, quantity), format="json")
        assert r.status_code == 202, r.content
    with Counted() as seen, django_capture_on_commit_callbacks(execute=True):
        assert queue.drain(event_id=event.pk) == 5
    assert seen("eventflow_orders_placed_total") == 1
    assert seen("eventflow_sold_out_total", source="queue") == 4
    assert seen("eventflow_sold_out_total", source="api") == 0


def test_an_expired_hold_is_counted(django_capture_on_commit_callbacks):
    event, tier = _sale()
    order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(tier.pk, 2)])
    with Counted() as seen, django_capture_on_commit_callbacks(execute=True):
        assert expire_due_holds(now=timezone.now() + timedelta(hours=1)) == 1
    assert seen("eventflow_holds_expired_total") == 1
    assert seen("eventflow_orders_placed_total") == 0


def test_a_first_check_in_is_counted_and_a_second_scan_is_not(django_capture_on_commit_callbacks):
    event, tier = _sale()
    order = order_mark_paid(order=order_place(buyer=UserFactory(), event_id=event.pk, lines=[Line(tier.pk, 1)]))
    ticket = order.tickets.get()
    with Counted() as seen, django_capture_on_commit_callbacks(execute=True):
        ticket_check_in(event=event, code=ticket.code, scanned_by=event.organizer.user)
    assert seen("eventflow_checkins_total") == 1
    with Counted() as seen, django_capture_on_commit_callbacks(execute=True), pytest.raises(ApplicationError) as again:
        ticket_check_in(event=event, code=ticket.code, scanned_by=event.organizer.user)
    assert again.value.code == "already_checked_in"
    assert seen("eventflow_checkins_total") == 0


def test_a_payment_its_refund_and_a_failed_payment_are_counted(django_capture_on_commit_callbacks):
    event, tier = _sale()
    Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=48)
    client = client_of(UserFactory())
    with Counted() as seen, django_capture_on_commit_callbacks(execute=True):
        order = client.post(ORDERS, _body(event, tier, 2), format="json").json()
        payment = client.post(f"{ORDERS}/{order['id']}/pay").json()["payment"]
        assert client.post(f"/api/v1/payments/test/{payment['id']}/complete").status_code == 200
    assert seen("eventflow_payments_total", outcome="succeeded") == 1
    assert seen("eventflow_orders_paid_total") == 1

    with Counted() as seen, django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"{ORDERS}/{order['id']}/cancel")
        assert r.status_code == 200, r.content
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    assert seen("eventflow_refunds_total", outcome="requested") == 1
    assert seen("eventflow_refunds_total", outcome="succeeded") == 1
    assert seen("eventflow_refunds_total", outcome="failed") == 0

    other = client.post(ORDERS, _body(event, tier, 1), format="json").json()
    unpaid = client.post(f"{ORDERS}/{other['id']}/pay").json()["payment"]
    with Counted() as seen, django_capture_on_commit_callbacks(execute=True):
        assert gateway.deliver(Payment.objects.get(pk=unpaid["id"]), succeeded=False).outcome == "failed"
    assert seen("eventflow_payments_total", outcome="failed") == 1
    assert seen("eventflow_payments_total", outcome="succeeded") == 0
    assert Order.objects.get(pk=other["id"]).status == Order.Status.RESERVED


def test_a_refund_given_up_on_is_counted_failed(django_capture_on_commit_callbacks, monkeypatch):
    from orders.payments.base import ProviderError
    from orders.payments.services import refund_send
    from orders.payments.test import TestProvider

    event, tier = _sale()
    Event.objects.filter(pk=event.pk).update(refundable_until_hours_before=48)
    client = client_of(UserFactory())
    order = client.post(ORDERS, _body(event, tier, 1), format="json").json()
    payment = client.post(f"{ORDERS}/{order['id']}/pay").json()["payment"]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/payments/test/{payment['id']}/complete").status_code == 200
    with django_capture_on_commit_callbacks(execute=False):  # the refund is recorded, not yet sent
        assert client.post(f"{ORDERS}/{order['id']}/cancel").status_code == 200
    refund = Refund.objects.get()

    def down(self, *, refund):
        raise ProviderError("the gateway is down")

    monkeypatch.setattr(TestProvider, "refund", down)
    with Counted() as seen, django_capture_on_commit_callbacks(execute=True), pytest.raises(ProviderError):
        refund_send(refund_id=refund.pk, final_attempt=True)
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.FAILED
    assert seen("eventflow_refunds_total", outcome="failed") == 1


# --- Who may read them ---------------------------------------------------------------------------


def assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"], body["instance"]) == (status, code, "/metrics")


def test_metrics_are_served_to_this_machine_only_by_default():
    client = APIClient()
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
    assert_problem(client.get("/metrics", REMOTE_ADDR="203.0.113.9"), 403, "permission_denied")
    assert_problem(client.get("/metrics", REMOTE_ADDR="10.1.2.3"), 403, "permission_denied")
    assert_problem(client.get("/metrics", REMOTE_ADDR="2001:db8::1"), 403, "permission_denied")
    assert_problem(client.get("/metrics", REMOTE_ADDR=""), 403, "permission_denied")


def test_metrics_answers_carry_the_request_id_like_any_other():
    client = APIClient()
    served = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_REQUEST_ID="scrape-1")
    assert served.status_code == 200
    assert served["X-Request-ID"] == "scrape-1"
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_REQUEST_ID="scrape-2")
    assert refused.status_code == 403
    assert refused["X-Request-ID"] == "scrape-2"
    assert re.fullmatch(r"[0-9a-f-]{32,36}", client.get("/metrics", REMOTE_ADDR="127.0.0.1")["X-Request-ID"])


def test_behind_a_proxy_the_real_client_is_judged_not_the_proxy(settings):
    settings.NUM_PROXIES = 1
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12"]
    client = APIClient()
    # the internet through nginx (a private peer): refused, whatever the client wrote further left
    through_proxy = {"REMOTE_ADDR": "172.18.0.5", "HTTP_X_FORWARDED_FOR": "127.0.0.1, 203.0.113.9"}
    assert_problem(client.get("/metrics", **through_proxy), 403, "permission_denied")
    # Prometheus on the Compose network, straight to the web container, which it calls by its IP
    # (a Host that ALLOWED_HOSTS does not list: the scrape is not refused for it)
    assert client.get("/metrics", REMOTE_ADDR="172.18.0.9", HTTP_HOST="172.18.0.5:8000").status_code == 200


def test_with_a_token_only_the_right_bearer_reads_them(settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    client = APIClient()
    missing = client.get("/metrics", **LOCAL)
    assert_problem(missing, 401, "not_authenticated")
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert_problem(client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **LOCAL), 401, "not_authenticated")
    assert_problem(client.get("/metrics", HTTP_AUTHORIZATION="Basic czNjcmV0", **LOCAL), 401, "not_authenticated")
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", **LOCAL)
    assert ok.status_code == 200
    assert b"eventflow_orders_placed_total" in ok.content
    # the network rule still holds with the token
    outside = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", REMOTE_ADDR="203.0.113.9")
    assert_problem(outside, 403, "permission_denied")
    settings.METRICS_ALLOWED_NETWORKS = ["*"]  # the token alone then
    assert (
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", REMOTE_ADDR="203.0.113.9").status_code
        == 200
    )


def test_only_get_and_head_are_answered():
    client = APIClient()
    r = client.post("/metrics", {}, **LOCAL)
    assert_problem(r, 405, "method_not_allowed")
    assert r["Allow"] == "GET, HEAD"
    assert client.head("/metrics", **LOCAL).status_code == 200


def test_a_malformed_network_stops_the_start(settings):
    from observability.checks import metrics_networks

    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "not-a-network"]
    assert [error.id for error in metrics_networks(None)] == ["observability.E001"]
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "::1"]
    assert metrics_networks(None) == []


def test_the_metrics_endpoint_is_not_in_the_api_schema():
    schema = APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/json").content.decode()
    assert "/metrics" not in schema


# --- The request histogram ----------------------------------------------------------------------


def test_unknown_paths_and_odd_methods_share_bounded_labels():
    client = APIClient()
    junk = f"/api/v1/no-such-thing-{uuid.uuid4().hex}"
    with Counted() as seen:
        assert client.get(junk).status_code == 404
        client.generic("BREW", "/api/v1/health")
    assert junk not in seen.after
    assert "BREW" not in seen.after
    assert seen("eventflow_http_request_duration_seconds_count", route="unmatched", method="GET", status="4xx") == 1
    assert (
        seen("eventflow_http_request_duration_seconds_count", route="api/v1/health", method="other", status="4xx") == 1
    )


def test_a_regex_route_is_labelled_like_a_path_pattern():
    from observability.middleware import route_label

    event, _tier = _sale()
    with Counted() as seen:
        assert APIClient().get(f"/api/v1/events/{event.pk}").status_code == 200
    assert (
        seen("eventflow_http_request_duration_seconds_count", route="api/v1/events/<pk>", method="GET", status="2xx")
        == 1
    )
    assert f"/api/v1/events/{event.pk}" not in seen.after
    assert route_label(r"api/v1/events/(?P<event_id>[0-9]{1,18})/check-ins$") == "api/v1/events/<event_id>/check-ins"
    assert route_label(r"^media/(?P<path>.*)$") == "media/<path>"
    assert route_label(r"api/v1/tickets/(?P<ticket_id>[0-9]{1,18})/qr\.svg$") == "api/v1/tickets/<ticket_id>/qr.svg"


# --- The Grafana dashboard reads only metrics that exist -------------------------------------------


def test_every_metric_the_dashboard_queries_is_exposed(django_capture_on_commit_callbacks):
    import json
    from pathlib import Path

    from django.conf import settings as django_settings

    dashboard = json.loads(
        (Path(django_settings.BASE_DIR) / "deploy" / "grafana" / "dashboards" / "eventflow.json").read_text()
    )
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", []) if "expr" in target
    ]
    assert len(expressions) >= 9
    exposed: set[str] = set()
    for family in text_string_to_metric_families(scrape()):
        exposed.add(family.name)
        if family.type == "counter":
            exposed.add(f"{family.name}_total")
        if family.type == "histogram":
            exposed.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
    used = {name for expr in expressions for name in re.findall(r"\beventflow_[a-z_]+", expr)}
    assert used, expressions
    assert used <= exposed, used - exposed
    # and the panels the issue asks for are there
    titles = " ".join(panel.get("title", "") for panel in dashboard["panels"]).lower()
    for word in (
        "orders",
        "sold out",
        "holds expired",
        "payments",
        "refunds",
        "webhook",
        "check-ins",
        "latency",
        "5xx",
    ):
        assert word in titles, word


def test_prometheus_scrapes_every_web_and_worker_service_of_the_compose_file():
    from pathlib import Path

    import yaml
    from django.conf import settings as django_settings

    root = Path(django_settings.BASE_DIR)
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    prometheus = yaml.safe_load((root / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}

    def scraped(job: str) -> tuple[set[str], set[int]]:
        configs = jobs[job]["dns_sd_configs"]
        return {name for config in configs for name in config["names"]}, {config["port"] for config in configs}

    services = compose["services"]
    workers = {
        name
        for name, service in services.items()
        if service.get("command", [])[:3] == ["celery", "-A", "eventflow"] and "worker" in service["command"]
    }
    assert workers >= {"worker", "worker-expiry", "worker-payments"}
    names, ports = scraped("eventflow-workers")
    assert names == workers  # a worker service added later must be scraped too
    assert ports == {int(services[name]["environment"]["METRICS_PORT"]) for name in workers}
    assert scraped("eventflow-web") == ({"web"}, {8000})
    for name in ("web", *workers):
        environment = services[name]["environment"]
        assert environment["PROMETHEUS_MULTIPROC_DIR"]
        assert "172.16.0.0/12" in environment["METRICS_ALLOWED_NETWORKS"]  # the Compose network
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"]
        assert ":" in services[name]["image"]
        assert not services[name]["image"].endswith(":latest")
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"])
