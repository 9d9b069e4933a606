"""The webhooks back office: an endpoint is deleted with its delivery log, the endpoint's page reads
well (headed deliveries table in local time, a wide URL input), and an organizer's lists leave out
the organizer column (always themselves) while a platform admin's keep it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import formats, timezone

from accounts.models import User
from accounts.tests.factories import UserFactory
from orders.tests.test_admin import listed, logged_in, messages_of
from webhooks import services, subscriptions
from webhooks.models import WebhookDelivery, WebhookEndpoint

from .helpers import make_organizer, sale, subscribe

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/webhooks/webhookendpoint/"
DELIVERIES = "/admin/webhooks/webhookdelivery/"


def deliver(endpoint: WebhookEndpoint, event_id: str, **fields) -> WebhookDelivery:
    return WebhookDelivery.objects.create(endpoint=endpoint, event_id=event_id, event_type="ping", payload={}, **fields)


@pytest.fixture
def deletions(monkeypatch) -> list[int]:
    """The endpoints the webhooks service was asked to delete (and deleted)."""
    deleted: list[int] = []
    real = services.endpoint_delete

    def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
        deleted.append(endpoint.pk)
        real(endpoint=endpoint)

    monkeypatch.setattr(services, "endpoint_delete", endpoint_delete)
    return deleted


def test_an_organizer_deletes_an_endpoint_with_its_delivery_log(deletions):
    # given an organizer's endpoint that has deliveries (read-only for them), subscribed to an event
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, "https://hooks.example.com/a", ["order.paid"])
    deliver(endpoint, "evt_1")
    deliver(endpoint, "evt_2")
    event, _tier = sale(organizer)
    assert subscriptions.subscriber(event_id=event.pk, event_type="order.paid") == organizer.pk
    client = logged_in(organizer.user)

    # when they open its delete page
    page = client.get(f"{ENDPOINTS}{endpoint.pk}/delete/")

    # then it asks to confirm, naming the deliveries that go with it, without a missing permission
    assert page.status_code == 200
    assert not page.context["perms_lacking"]
    assert dict(page.context["model_count"]) == {"webhook endpoints": 1, "webhook deliveries": 2}
    content = page.content.decode()
    assert "permission" not in content
    assert '<input type="hidden" name="post" value="yes">' in content

    # and confirming deletes the endpoint and its deliveries through the service
    response = client.post(f"{ENDPOINTS}{endpoint.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert deletions == [endpoint.pk]
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert listed(response) == set()
    assert subscriptions.subscriber(event_id=event.pk, event_type="order.paid") is None  # the memo kept current


def test_the_delete_selected_action_takes_the_delivery_logs_too(deletions):
    # given two endpoints of an organizer with deliveries, and a rival's endpoint with one
    organizer, rival = make_organizer("Dora Concerts"), make_organizer("Rival Live")
    first = subscribe(organizer, "https://hooks.example.com/a", ["order.paid"])
    second = subscribe(organizer, "https://hooks.example.com/b", ["order.paid"])
    theirs = subscribe(rival, "https://rival.example.com/a", ["order.paid"])
    deliver(first, "evt_1")
    deliver(second, "evt_1")
    their_delivery = deliver(theirs, "evt_1")
    client = logged_in(organizer.user)
    selection = {"action": "delete_selected", "_selected_action": [first.pk, second.pk, theirs.pk]}

    # when they choose "Delete selected" on all three (the rival's is not theirs to see)
    page = client.post(ENDPOINTS, selection)

    # then the confirmation lists their two endpoints and deliveries, and no missing permission
    assert page.status_code == 200
    assert not page.context["perms_lacking"]
    assert {e.pk for e in page.context["queryset"]} == {first.pk, second.pk}
    assert dict(page.context["model_count"]) == {"webhook endpoints": 2, "webhook deliveries": 2}
    assert "permission" not in page.content.decode()

    # and confirming deletes exactly those, through the service
    response = client.post(ENDPOINTS, {**selection, "post": "yes"}, follow=True)
    assert response.status_code == 200
    assert sorted(deletions) == sorted([first.pk, second.pk])
    assert "Successfully deleted 2 webhook endpoints." in messages_of(response)
    assert list(WebhookEndpoint.objects.all()) == [theirs]
    assert list(WebhookDelivery.objects.all()) == [their_delivery]
    assert listed(response) == set()


def test_a_user_without_the_delete_permission_still_cannot_delete_an_endpoint():
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, "https://hooks.example.com/a", ["order.paid"])
    deliver(endpoint, "evt_1")
    staff = UserFactory(is_staff=True, is_superuser=False)
    staff.user_permissions.add(*_permissions("view_webhookendpoint", "view_webhookdelivery"))
    client = logged_in(User.objects.get(pk=staff.pk))
    assert client.get(f"{ENDPOINTS}{endpoint.pk}/delete/").status_code == 403
    assert WebhookEndpoint.objects.count() == 1


def _permissions(*codenames: str):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="webhooks", codename__in=codenames)


def test_the_endpoint_page_heads_its_deliveries_and_shows_local_times(settings):
    # given an endpoint with a delivery made at a known time, and a time zone that is not UTC
    settings.TIME_ZONE = "Europe/Berlin"
    organizer = make_organizer("Dora Concerts")
    endpoint = subscribe(organizer, "https://hooks.example.com/a", ["order.paid", "order.refunded"])
    delivery = deliver(endpoint, "evt_1", status="failed", attempts=3, last_status_code=500, last_error="HTTP 500")
    made = datetime(2026, 12, 3, 7, 59, 46, 939982, tzinfo=UTC)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=made)
    client = logged_in(organizer.user)

    # when the organizer opens the endpoint
    page = client.get(f"{ENDPOINTS}{endpoint.pk}/change/")

    # then the latest deliveries have headings and one row in the admin's date format, in local time
    assert page.status_code == 200
    content = page.content.decode()
    with timezone.override("Europe/Berlin"):
        shown = formats.localize(timezone.localtime(made))
    assert "08:59" in shown or "8:59" in shown  # Berlin is UTC+1 in December
    headings = "".join(
        f'<th scope="col">{h}</th>'
        for h in ("created", "event type", "status", "attempts", "last response status", "last error")
    )
    assert f"<table><thead><tr>{headings}</tr></thead><tbody>" in content
    assert (
        f"<tr><td>{shown}</td><td>ping</td><td>Failed (every attempt)</td><td>3</td><td>500</td><td>HTTP 500</td></tr>"
        in content
    )
    assert content.count("<td>ping</td>") == 1
    assert "+00:00" not in content
    assert "2026-12-03 07:59:46" not in content

    # and the URL input is the admin's wide one, the event checkboxes laid out as a list
    assert 'class="vURLField"' in content
    assert 'size="60"' in content
    assert '<div id="id_events" class="radiolist">' in content


def test_an_organizers_lists_leave_out_the_organizer_column():
    organizer, rival = make_organizer("Dora Concerts"), make_organizer("Rival Live")
    endpoint = subscribe(organizer, "https://hooks.example.com/" + "a" * 120, ["order.paid"])
    theirs = subscribe(rival, "https://rival.example.com/a", ["order.paid"])
    delivery = deliver(endpoint, "evt_1")
    their_delivery = deliver(theirs, "evt_1")
    client = logged_in(organizer.user)

    endpoints = client.get(ENDPOINTS)
    assert endpoints.status_code == 200
    assert endpoints.context["cl"].list_display == [
        "action_checkbox",
        "short_url",
        "event_list",
        "is_active",
        "failures",
        "created",
    ]
    assert listed(endpoints) == {endpoint.pk}
    content = endpoints.content.decode()
    assert "column-organizer" not in content
    assert "Dora Concerts" not in content
    # a long URL is shortened in the list (its row's link; the checkbox's label keeps it whole)
    assert f'<a href="{ENDPOINTS}{endpoint.pk}/change/">https://hooks.example.com/{"a" * 21}…</a>' in content

    log = client.get(DELIVERIES)
    assert log.status_code == 200
    assert log.context["cl"].list_display == [
        "action_checkbox",
        "created",
        "event_type",
        "endpoint_url",
        "status",
        "attempts",
        "response",
    ]
    assert listed(log) == {delivery.pk}
    content = log.content.decode()
    assert "column-organizer" not in content
    assert f'<td class="field-endpoint_url">hooks.example.com/{"a" * 17}…</td>' in content
    shown = formats.localize(timezone.localtime(WebhookDelivery.objects.get(pk=delivery.pk).created_at))
    assert f'<a href="{DELIVERIES}{delivery.pk}/change/">{shown}</a>' in content

    admin_user = UserFactory(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
    as_admin = logged_in(admin_user)
    endpoints = as_admin.get(ENDPOINTS)
    assert endpoints.status_code == 200
    assert "organizer" in endpoints.context["cl"].list_display
    assert listed(endpoints) == {endpoint.pk, theirs.pk}
    assert "Rival Live" in endpoints.content.decode()
    log = as_admin.get(DELIVERIES)
    assert log.status_code == 200
    assert "organizer" in log.context["cl"].list_display
    assert listed(log) == {delivery.pk, their_delivery.pk}
    assert "Rival Live" in log.content.decode()
