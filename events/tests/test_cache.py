"""The catalogue cache in real Redis: cached, invalidated on change, availability at most 1 s old.

These tests commit for real (``transaction=True``) so invalidation runs where it
does in production: after the writing transaction commits.
"""

import time

import pytest
from django.core.cache import cache
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from events.models import Event, TicketType

from .factories import EventFactory, TicketTypeFactory

# transactional, so the read replica (a mirror of the test database) may answer catalogue reads
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

EVENTS = "/api/v1/events"


@pytest.fixture
def live_event():
    event = EventFactory(status=Event.Status.PUBLISHED, title="Cached show")
    TicketTypeFactory(event=event, name="GA", capacity=50)
    return event


@pytest.fixture
def owner(live_event) -> APIClient:
    client = APIClient()
    client.force_authenticate(live_event.organizer.user)
    return client


def redis_keys(pattern: str) -> list[bytes]:
    return get_redis_connection("default").keys(f"*{pattern}*")


def test_list_is_cached_in_redis_and_invalidated_by_a_change(api_client, owner, live_event):
    assert api_client.get(EVENTS).json()["results"][0]["title"] == "Cached show"
    assert redis_keys("events:list:")

    # A write that bypasses the services (and so the invalidation) is not seen: the list is served from cache.
    Event.objects.filter(pk=live_event.pk).update(title="Changed behind the cache's back")
    assert api_client.get(EVENTS).json()["results"][0]["title"] == "Cached show"

    # A change through the API is seen at once.
    assert owner.patch(f"{EVENTS}/{live_event.pk}", {"title": "Renamed"}).status_code == 200
    assert api_client.get(EVENTS).json()["results"][0]["title"] == "Renamed"


def test_detail_is_invalidated_when_a_ticket_type_changes(api_client, owner, live_event):
    tier = live_event.ticket_types.get()
    assert api_client.get(f"{EVENTS}/{live_event.pk}").json()["ticket_types"][0]["price_cents"] == 2500
    TicketType.objects.filter(pk=tier.pk).update(price_cents=1)  # behind the cache's back
    assert api_client.get(f"{EVENTS}/{live_event.pk}").json()["ticket_types"][0]["price_cents"] == 2500

    r = owner.patch(f"{EVENTS}/{live_event.pk}/ticket-types/{tier.pk}", {"price_cents": 1999})
    assert r.status_code == 200
    assert api_client.get(f"{EVENTS}/{live_event.pk}").json()["ticket_types"][0]["price_cents"] == 1999


def test_unpublished_or_deleted_events_leave_the_cache_at_once(api_client, owner, live_event):
    assert api_client.get(f"{EVENTS}/{live_event.pk}").status_code == 200
    assert api_client.get(EVENTS).json()["count"] == 1
    assert owner.delete(f"{EVENTS}/{live_event.pk}").status_code == 204
    assert api_client.get(f"{EVENTS}/{live_event.pk}").status_code == 404
    assert api_client.get(EVENTS).json()["count"] == 0


def test_a_change_through_any_code_path_invalidates(api_client, live_event):
    """The admin and the shell save models directly; the signal still bumps the version."""
    assert api_client.get(f"{EVENTS}/{live_event.pk}").json()["title"] == "Cached show"
    live_event.title = "Edited in the admin"
    live_event.save()
    assert api_client.get(f"{EVENTS}/{live_event.pk}").json()["title"] == "Edited in the admin"


def test_invalidation_bumps_versions_instead_of_flushing(api_client, owner, live_event):
    other = EventFactory(status=Event.Status.PUBLISHED)
    TicketTypeFactory(event=other)
    api_client.get(f"{EVENTS}/{other.pk}")
    other_keys = set(redis_keys(f"events:detail:{other.pk}:"))
    assert other_keys
    owner.patch(f"{EVENTS}/{live_event.pk}", {"title": "Renamed"})
    assert set(redis_keys(f"events:detail:{other.pk}:")) == other_keys  # untouched
    assert api_client.get(f"{EVENTS}/{other.pk}").status_code == 200


def test_availability_is_never_more_than_a_second_stale(api_client, live_event, settings):
    tier = live_event.ticket_types.get()
    detail = f"{EVENTS}/{live_event.pk}"
    assert api_client.get(detail).json()["ticket_types"][0]["available"] == 50
    assert api_client.get(f"{detail}/availability").json()[0]["available"] == 50

    # Stock moves without any catalogue change (as a purchase does).
    TicketType.objects.filter(pk=tier.pk).update(available=7)
    time.sleep(settings.AVAILABILITY_CACHE_SECONDS + 0.1)
    body = api_client.get(detail).json()
    assert body["ticket_types"][0]["available"] == 7  # live number on the cached body
    assert body["ticket_types"][0]["sold_out"] is False
    assert api_client.get(f"{detail}/availability").json()[0]["available"] == 7

    TicketType.objects.filter(pk=tier.pk).update(available=0)
    time.sleep(settings.AVAILABILITY_CACHE_SECONDS + 0.1)
    assert api_client.get(detail).json()["ticket_types"][0]["sold_out"] is True


def test_stock_changed_drops_the_snapshot_at_once(api_client, live_event):
    from django.db import transaction

    from events import cache as catalogue_cache

    tier = live_event.ticket_types.get()
    assert api_client.get(f"{EVENTS}/{live_event.pk}/availability").json()[0]["available"] == 50
    with transaction.atomic():
        TicketType.objects.filter(pk=tier.pk).update(available=49)
        catalogue_cache.stock_changed(live_event.pk)
    assert api_client.get(f"{EVENTS}/{live_event.pk}/availability").json()[0]["available"] == 49


def test_the_cache_ttl_is_configurable(api_client, live_event, settings):
    settings.CATALOGUE_CACHE_SECONDS = 1
    api_client.get(EVENTS)
    Event.objects.filter(pk=live_event.pk).update(title="Later")
    time.sleep(1.1)
    assert api_client.get(EVENTS).json()["results"][0]["title"] == "Later"


def test_redis_down_serves_uncached(api_client, live_event, settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    cache.close()
    r = api_client.get(EVENTS)
    assert r.status_code == 200
    assert r.json()["count"] == 1
    assert api_client.get(f"{EVENTS}/{live_event.pk}").json()["ticket_types"][0]["available"] == 50
