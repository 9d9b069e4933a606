"""The organizer's webhook endpoints over the API and in the back office: register (URL policy),
list without secrets, edit, ping, deliveries, replay, rotate, remove; other organizers' are 404s."""

from __future__ import annotations

import pytest

from accounts.tests.factories import UserFactory
from orders.tests.test_admin import listed, logged_in
from webhooks import subscriptions
from webhooks.models import WebhookDelivery, WebhookEndpoint

from .helpers import API, as_user, body_of, make_organizer, place, readme_verify, sale, subscribe

pytestmark = pytest.mark.django_db


def create(user, **body):
    return as_user(user).post(API, body, format="json")


def test_an_attendee_is_not_an_organizer():
    attendee = UserFactory()
    for response in (as_user(attendee).get(API), create(attendee, url="https://x.example.com", events=["order.paid"])):
        assert response.status_code == 403
        assert response.json()["code"] == "not_organizer"
    assert as_user(attendee).get(f"{API}/1").json()["code"] == "not_organizer"
    assert WebhookEndpoint.objects.count() == 0


def test_the_secret_is_never_listed_and_listing_is_the_callers_own(django_assert_max_num_queries):
    organizer, rival = make_organizer("Dora Concerts"), make_organizer("Rival Live")
    subscribe(rival, "https://rival.example.com/hooks", ["order.paid"])
    response = create(
        organizer.user,
        url="https://hooks.example.com/eventflow",
        events=["order.refunded", "order.paid", "order.paid"],
        description="CRM",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"]) > 40
    assert created["events"] == ["order.paid", "order.refunded"]  # unique, in the documented order
    assert created["active"] is True
    assert created["secret_hint"] == "…" + created["secret"][-4:]
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.organizer == organizer
    assert endpoint.secret == created["secret"]

    for n in range(3):
        subscribe(organizer, f"https://hooks.example.com/{n}", ["order.placed"])
    with django_assert_max_num_queries(4):
        listing = as_user(organizer.user).get(API)
    assert listing.status_code == 200
    results = listing.json()["results"]
    assert next(r["url"] for r in results) == "https://hooks.example.com/eventflow"
    assert len(results) == 4
    assert all("secret" not in r for r in results)
    detail = as_user(organizer.user).get(f"{API}/{endpoint.pk}").json()
    assert detail["secret"] == created["secret"]  # on the endpoint's own page, never in the list
    assert detail["recent_deliveries"] == []


@pytest.mark.parametrize(
    ("url", "allow_http"),
    [
        ("http://hooks.example.com/x", False),  # https only
        ("ftp://hooks.example.com/x", True),
        ("https://user:pass@hooks.example.com/x", False),
        ("https://127.0.0.1/x", False),
        ("https://10.0.0.8:8443/x", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("https://[::1]/x", False),
        ("https://localhost/x", False),
        ("https://api.localhost./x", False),
        ("https://[2002:a9fe:a9fe::]/x", False),  # 6to4 around 169.254.169.254
        ("https://[2002:c0a8:1::1]/x", False),  # 6to4 around 192.168.0.1
        ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x", False),  # Teredo
        ("https://[::ffff:169.254.169.254]/x", False),  # IPv4-mapped
    ],
)
def test_urls_that_can_never_be_safe_targets_are_refused_at_registration(url, allow_http, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    settings.WEBHOOKS_ALLOW_HTTP = allow_http
    organizer = make_organizer("Dora Concerts")
    response = create(organizer.user, url=url, events=["order.paid"])
    assert response.status_code == 400, response.json()
    assert response.json()["code"] in {"webhook_url_not_allowed", "invalid"}
    assert "url" in response.json()["errors"]
    assert WebhookEndpoint.objects.count() == 0


def test_a_url_policy_refusal_has_its_stable_code(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    organizer = make_organizer("Dora Concerts")
    response = create(organizer.user, url="https://10.0.0.8/x", events=["order.paid"])
    assert response.json()["code"] == "webhook_url_not_allowed"
    assert response.json()["errors"] == {"url": ["Webhook URLs must point to a public address."]}


@pytest.mark.parametrize("url", ["http://straße.de/hooks", "https://bücher.example/hooks", "https://例え.jp/x"])
def test_a_host_name_that_is_not_ascii_is_refused_asking_for_its_punycode_form(url, settings):
    """The standard library would encode it with IDNA 2003: straße.de would be sent to strasse.de."""
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    organizer = make_organizer("Dora Concerts")
    response = create(organizer.user, url=url, events=["order.paid"])
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "webhook_url_not_allowed"
    [message] = response.json()["errors"]["url"]
    assert "punycode" in message
    assert "xn--" in message
    assert WebhookEndpoint.objects.count() == 0
    # Its punycode form is a host name like any other.
    punycode = create(organizer.user, url="https://xn--strae-oqa.de/hooks", events=["order.paid"])
    assert punycode.status_code == 201, punycode.json()


def test_port_zero_is_refused_at_registration(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    organizer = make_organizer("Dora Concerts")
    for url in ("https://h.example.com:0/", "https://h.example.com:00/x"):
        response = create(organizer.user, url=url, events=["order.paid"])
        assert response.status_code == 400, response.json()
        assert response.json()["code"] == "webhook_url_not_allowed"
        assert response.json()["errors"] == {"url": ["The URL's port is not valid."]}
    endpoint = subscribe(organizer, "https://h.example.com/", ["order.paid"])
    patched = as_user(organizer.user).patch(f"{API}/{endpoint.pk}", {"url": "https://h.example.com:0/"}, format="json")
    assert patched.status_code == 400
    assert patched.json()["code"] == "webhook_url_not_allowed"
    assert WebhookEndpoint.objects.get().url == "https://h.example.com/"


def test_bad_input_is_a_400_naming_the_fields():
    organizer = make_organizer("Dora Concerts")
    response = create(organizer.user, url="https://hooks.example.com", events=["order.shipped"], secret="mine")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"secret"}  # an unknown field is named first
    response = create(organizer.user, url="https://hooks.example.com", events=["order.shipped"])
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"events.0"}
    response = create(organizer.user, url="https://hooks.example.com", events=[])
    assert response.status_code == 400
    assert "events" in response.json()["errors"]
    response = as_user(organizer.user).post(API, [1, 2], format="json")
    assert response.status_code == 400
    assert WebhookEndpoint.objects.count() == 0


def test_an_organizer_has_a_bounded_number_of_endpoints(settings):
    settings.WEBHOOKS_MAX_ENDPOINTS = 1
    organizer = make_organizer("Dora Concerts")
    assert create(organizer.user, url="https://a.example.com", events=["order.paid"]).status_code == 201
    response = create(organizer.user, url="https://b.example.com", events=["order.paid"])
    assert response.status_code == 409
    assert response.json()["code"] == "too_many_webhook_endpoints"


def test_another_organizers_endpoint_is_not_found_whatever_is_asked(receiver):
    organizer, rival = make_organizer("Dora Concerts"), make_organizer("Rival Live")
    theirs = subscribe(rival, receiver.url, ["order.paid"])
    delivery = WebhookDelivery.objects.create(endpoint=theirs, event_id="evt_1", event_type="ping", payload={})
    client = as_user(organizer.user)
    for response in (
        client.get(f"{API}/{theirs.pk}"),
        client.patch(f"{API}/{theirs.pk}", {"url": "https://mine.example.com"}, format="json"),
        client.delete(f"{API}/{theirs.pk}"),
        client.post(f"{API}/{theirs.pk}/ping", {}, format="json"),
        client.post(f"{API}/{theirs.pk}/rotate-secret", {}, format="json"),
        client.get(f"{API}/{theirs.pk}/deliveries"),
        client.post(f"{API}/{theirs.pk}/deliveries/{delivery.pk}/replay", {}, format="json"),
        client.get(f"{API}/999999999"),
    ):
        assert response.status_code == 404, response.json()
        assert response.json()["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.url == receiver.url
    assert receiver.requests == []


def test_ping_deliveries_replay_and_rotation(
    receiver, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    organizer = make_organizer("Dora Concerts")
    client = as_user(organizer.user)
    created = create(organizer.user, url=receiver.url, events=["order.paid"]).json()
    endpoint_url = f"{API}/{created['id']}"

    with django_capture_on_commit_callbacks(execute=True):
        ping = client.post(f"{endpoint_url}/ping", {}, format="json")
    assert ping.status_code == 202
    [request] = receiver.requests
    assert body_of(request)["type"] == "ping"
    assert body_of(request)["data"]["endpoint"]["id"] == created["id"]
    assert readme_verify()(created["secret"], request["body"], request["headers"]["EventFlow-Signature"])
    detail = client.get(endpoint_url).json()
    [recent] = detail["recent_deliveries"]
    assert recent["status"] == "succeeded"
    assert recent["last_status_code"] == 200
    assert recent["event_type"] == "ping"

    with django_capture_on_commit_callbacks(execute=True):
        replay = client.post(f"{endpoint_url}/deliveries/{recent['id']}/replay", {}, format="json")
    assert replay.status_code == 202
    assert replay.json()["id"] == recent["id"]
    assert WebhookDelivery.objects.get(pk=recent["id"]).status == "succeeded"
    assert len(receiver.requests) == 2
    assert receiver.requests[1]["body"] == request["body"]  # the same event, as it was
    assert receiver.requests[1]["headers"]["EventFlow-Delivery"] == recent["id"]

    rotated = client.post(f"{endpoint_url}/rotate-secret", {}, format="json").json()
    assert rotated["secret"] != created["secret"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{endpoint_url}/ping", {}, format="json")
    last = receiver.requests[-1]
    verify = readme_verify()
    assert verify(rotated["secret"], last["body"], last["headers"]["EventFlow-Signature"])
    assert not verify(created["secret"], last["body"], last["headers"]["EventFlow-Signature"])

    with django_assert_max_num_queries(5):
        deliveries = client.get(f"{endpoint_url}/deliveries").json()
    assert deliveries["count"] == 2
    assert all(d["payload"]["type"] == "ping" for d in deliveries["results"])
    assert client.post(f"{endpoint_url}/ping", {"extra": 1}, format="json").status_code == 400


def test_a_disabled_endpoint_is_not_pinged_nor_replayed_until_enabled(receiver):
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, receiver.url, ["order.paid"])
    client = as_user(organizer.user)
    paused = client.patch(f"{API}/{endpoint.pk}", {"active": False}, format="json")
    assert paused.status_code == 200
    assert paused.json()["active"] is False
    assert paused.json()["disabled_at"]
    response = client.post(f"{API}/{endpoint.pk}/ping", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "webhook_endpoint_disabled"
    assert client.patch(f"{API}/{endpoint.pk}", {"active": True}, format="json").json()["active"] is True


def test_editing_and_removing_keep_the_subscriptions_memo_current(receiver):
    organizer = make_organizer("Dora Concerts")
    event, _tier = sale(organizer)
    endpoint = subscribe(organizer, receiver.url, ["order.paid"])
    client = as_user(organizer.user)
    assert subscriptions.subscriber(event_id=event.pk, event_type="order.paid") == organizer.pk
    assert subscriptions.subscriber(event_id=event.pk, event_type="order.placed") is None

    response = client.patch(f"{API}/{endpoint.pk}", {"events": ["order.placed"]}, format="json")
    assert response.status_code == 200
    assert response.json()["events"] == ["order.placed"]
    assert subscriptions.subscriber(event_id=event.pk, event_type="order.paid") is None
    assert subscriptions.subscriber(event_id=event.pk, event_type="order.placed") == organizer.pk

    assert client.delete(f"{API}/{endpoint.pk}").status_code == 204
    assert subscriptions.subscriber(event_id=event.pk, event_type="order.placed") is None
    assert not WebhookEndpoint.objects.exists()


# --- The back office ---------------------------------------------------------------------------

ENDPOINTS = "/admin/webhooks/webhookendpoint/"
DELIVERIES = "/admin/webhooks/webhookdelivery/"


def test_the_admin_replays_deliveries_and_enables_endpoints_of_the_organizers_own(
    receiver, django_capture_on_commit_callbacks
):
    organizer, rival = make_organizer("Dora Concerts"), make_organizer("Rival Live")
    endpoint = subscribe(organizer, receiver.url, ["order.placed"])
    theirs = subscribe(rival, receiver.url, ["order.placed"])
    _event, tier = sale(organizer)
    receiver.statuses = [500]
    with django_capture_on_commit_callbacks(execute=True):
        place(tier)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.attempts == 1
    their_delivery = WebhookDelivery.objects.create(endpoint=theirs, event_id="evt_x", event_type="ping", payload={})
    client = logged_in(organizer.user)

    assert listed(client.get(ENDPOINTS)) == {endpoint.pk}
    assert listed(client.get(DELIVERIES)) == {delivery.pk}
    page = client.get(f"{ENDPOINTS}{endpoint.pk}/change/")
    assert page.status_code == 200
    assert "order.placed" in page.content.decode()
    assert client.get(f"{DELIVERIES}{delivery.pk}/change/").status_code == 200  # read-only view

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            DELIVERIES, {"action": "replay", "_selected_action": [delivery.pk, their_delivery.pk]}, follow=True
        )
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert len(receiver.requests) == 2
    their_delivery.refresh_from_db()
    assert their_delivery.status == "pending"
    assert their_delivery.attempts == 0

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False, consecutive_failures=5)
    client.post(ENDPOINTS, {"action": "enable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.is_active
    assert endpoint.consecutive_failures == 0


def test_the_admin_adds_an_endpoint_through_the_same_rules(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    organizer = make_organizer("Dora Concerts")
    client = logged_in(organizer.user)
    refused = client.post(f"{ENDPOINTS}add/", {"url": "https://10.1.1.1/x", "events": ["order.paid"]})
    assert refused.status_code == 200
    assert "public address" in refused.content.decode()
    response = client.post(
        f"{ENDPOINTS}add/", {"url": "https://hooks.example.com/x", "events": ["order.paid"], "description": ""}
    )
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.organizer == organizer
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.events == ["order.paid"]


def test_the_admin_refuses_an_endpoint_past_the_limit_with_a_form_error_and_saves_nothing(settings):
    from django.contrib.admin.models import LogEntry

    settings.WEBHOOKS_MAX_ENDPOINTS = 1
    organizer = make_organizer("Dora Concerts")
    subscribe(organizer, "https://a.example.com/x", ["order.paid"])
    admin = UserFactory(is_staff=True, is_superuser=True)
    form = {"url": "https://b.example.com/x", "events": ["order.paid"], "description": ""}
    for client, data in ((logged_in(organizer.user), form), (logged_in(admin), {**form, "organizer": organizer.pk})):
        response = client.post(f"{ENDPOINTS}add/", data, follow=True)
        assert response.status_code == 200
        page = response.content.decode()
        assert "as many webhook endpoints as allowed" in page
        assert "errornote" in page  # the form is shown again with its error
        assert "added successfully" not in page
        assert [str(m) for m in response.context["messages"]] == []
    assert WebhookEndpoint.objects.count() == 1
    assert not LogEntry.objects.exists()
    # Another organizer (the platform admin chooses whose) is under the limit.
    rival = make_organizer("Rival Live")
    added = logged_in(admin).post(f"{ENDPOINTS}add/", {**form, "organizer": rival.pk})
    assert added.status_code == 302
    assert WebhookEndpoint.objects.filter(organizer=rival).count() == 1


def test_removing_an_endpoint_while_its_delivery_is_in_flight_records_nothing(receiver, monkeypatch):
    from webhooks import sending, services

    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, receiver.url, ["order.paid"])
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event_id="evt_1", event_type="ping", payload={})
    real_post = sending.post

    def post_then_remove(url, **kwargs):
        result = real_post(url, **kwargs)
        services.endpoint_delete(endpoint=endpoint)  # the organizer removes it meanwhile
        return result

    monkeypatch.setattr(sending, "post", post_then_remove)
    assert services.delivery_attempt(delivery_id=delivery.pk) is None
    assert len(receiver.requests) == 1
    assert not WebhookDelivery.objects.exists()
