"""Conditional GET on the catalogue: ETags, 304s, and what must never come back from a cached body.

Real Redis, and writes that commit (``transaction=True``), so invalidation runs
where it does in production: after the writing transaction commits. Time is
not waited for: the availability snapshot's expiry in Redis (at most
``AVAILABILITY_CACHE_SECONDS``) is checked on the key, then done by hand.
"""

import json

import pytest
from django.db import transaction
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from accounts.tests.test_auth import assert_problem
from eventflow.api.throttling import AnonRateThrottle
from events import cache as catalogue_cache
from events.models import Event, TicketType

from .factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = "/api/v1/events"
PUBLIC = "public, no-cache"


@pytest.fixture
def live_event():
    event = EventFactory(status=Event.Status.PUBLISHED, title="Cached show", city="Berlin")
    TicketTypeFactory(event=event, name="GA", capacity=50)
    TicketTypeFactory(event=event, name="VIP", capacity=5, price_cents=9900)
    return event


@pytest.fixture
def owner(live_event) -> APIClient:
    client = APIClient()
    client.force_authenticate(live_event.organizer.user)
    return client


def assert_cacheable(r, cache_control: str = PUBLIC) -> str:
    """A 200 JSON body with a strong ETag, the catalogue's Cache-Control and the security headers kept."""
    assert r.status_code == 200
    assert r["Content-Type"] == "application/json"
    etag = r["ETag"]
    assert etag[0] == etag[-1] == '"'  # strong: no W/
    assert r["Cache-Control"] == cache_control
    assert_security_headers(r)
    return etag


def assert_security_headers(r) -> None:
    assert r["X-Frame-Options"] == "DENY"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert "default-src" in r["Content-Security-Policy"]


def assert_not_modified(r, etag: str, cache_control: str = PUBLIC) -> None:
    assert r.status_code == 304
    assert r.content == b""
    assert r["ETag"] == etag
    assert r["Cache-Control"] == cache_control
    assert_security_headers(r)


def expire_availability(event: Event) -> None:
    """What Redis does on its own once the snapshot's time is up; the snapshot never lives longer than that."""
    key = catalogue_cache.cache.make_key(catalogue_cache._availability_key(event.pk))
    ttl_ms = get_redis_connection("default").pttl(key)
    assert 0 < ttl_ms <= 1000  # AVAILABILITY_CACHE_SECONDS
    catalogue_cache.cache.delete(catalogue_cache._availability_key(event.pk))


# --- List ---------------------------------------------------------------------------------


def test_list_revalidates_with_304_and_no_body(api_client, live_event):
    first = api_client.get(EVENTS)
    etag = assert_cacheable(first)
    assert first.json()["results"][0]["title"] == "Cached show"

    again = api_client.get(EVENTS)  # from the cache: same bytes, same tag
    assert again.content == first.content
    assert again["ETag"] == etag

    assert_not_modified(api_client.get(EVENTS, HTTP_IF_NONE_MATCH=etag), etag)
    assert_not_modified(api_client.get(EVENTS, HTTP_IF_NONE_MATCH=f'"other", W/{etag}'), etag)  # weak comparison
    assert_not_modified(api_client.get(EVENTS, HTTP_IF_NONE_MATCH="*"), etag)
    # a tag that is not current, or a header that is not a list of tags: the full body
    for header in ['"stale"', "garbage, ,", '"unterminated']:
        r = api_client.get(EVENTS, HTTP_IF_NONE_MATCH=header)
        assert r.status_code == 200
        assert r.content == first.content


def test_an_event_edit_changes_the_list_body_and_its_etag(api_client, owner, live_event):
    etag = api_client.get(EVENTS)["ETag"]

    assert owner.patch(f"{EVENTS}/{live_event.pk}", {"title": "Renamed"}).status_code == 200

    r = api_client.get(EVENTS, HTTP_IF_NONE_MATCH=etag)
    new_etag = assert_cacheable(r)
    assert new_etag != etag
    assert r.json()["results"][0]["title"] == "Renamed"
    assert_not_modified(api_client.get(EVENTS, HTTP_IF_NONE_MATCH=new_etag), new_etag)


def test_query_string_variants_are_cached_separately(api_client, live_event):
    lisbon = EventFactory(status=Event.Status.PUBLISHED, title="Lisbon show", city="Lisbon")
    TicketTypeFactory(event=lisbon)

    berlin = api_client.get(EVENTS, {"city": "Berlin"})
    in_lisbon = api_client.get(EVENTS, {"city": "Lisbon"})
    one_per_page = api_client.get(EVENTS, {"page_size": 1})
    second_page = api_client.get(EVENTS, {"page_size": 1, "page": 2})
    assert [e["title"] for e in berlin.json()["results"]] == ["Cached show"]
    assert [e["title"] for e in in_lisbon.json()["results"]] == ["Lisbon show"]
    assert len(one_per_page.json()["results"]) == len(second_page.json()["results"]) == 1
    assert one_per_page.json()["results"] != second_page.json()["results"]
    tags = {r["ETag"] for r in (berlin, in_lisbon, one_per_page, second_page, api_client.get(EVENTS))}
    assert len(tags) == 5
    # Another variant's tag is not current for this one.
    assert api_client.get(EVENTS, {"city": "Lisbon"}, HTTP_IF_NONE_MATCH=berlin["ETag"]).status_code == 200
    # The order of the parameters does not make another variant.
    a = api_client.get(f"{EVENTS}?page_size=1&city=Berlin")
    b = api_client.get(f"{EVENTS}?city=Berlin&page_size=1")
    assert a["ETag"] == b["ETag"]
    assert a.content == b.content


def test_bad_query_strings_stay_a_clean_400_uncached(api_client, live_event):
    for _ in range(2):  # the second time too: an error body is never cached
        r = api_client.get(EVENTS, {"page_size": "abc"}, HTTP_IF_NONE_MATCH="*")
        assert_problem(r, 400, "invalid")
        assert "ETag" not in r
    assert_problem(api_client.get(EVENTS, {"starts_after": "yesterday"}), 400, "invalid")


def test_mine_is_private_and_still_revalidates(owner, live_event):
    draft = EventFactory(organizer=live_event.organizer, title="My draft")
    r = owner.get(EVENTS, {"mine": "true"})
    etag = assert_cacheable(r, "private, no-cache")
    assert {e["title"] for e in r.json()["results"]} == {"Cached show", "My draft"}
    assert_not_modified(owner.get(EVENTS, {"mine": "true"}, HTTP_IF_NONE_MATCH=etag), etag, "private, no-cache")
    draft.title = "My renamed draft"
    draft.save()
    assert owner.get(EVENTS, {"mine": "true"}, HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_mine_needs_sign_in_even_with_an_etag(api_client, live_event):
    assert_problem(api_client.get(EVENTS, {"mine": "true"}, HTTP_IF_NONE_MATCH="*"), 401, "not_authenticated")


# --- Detail -------------------------------------------------------------------------------


def test_detail_revalidates_and_a_ticket_type_change_makes_a_new_etag(api_client, owner, live_event):
    detail = f"{EVENTS}/{live_event.pk}"
    first = api_client.get(detail)
    etag = assert_cacheable(first)
    assert api_client.get(detail).content == first.content
    assert_not_modified(api_client.get(detail, HTTP_IF_NONE_MATCH=etag), etag)

    tier = live_event.ticket_types.get(name="GA")
    assert owner.patch(f"{detail}/ticket-types/{tier.pk}", {"price_cents": 1999}).status_code == 200

    r = api_client.get(detail, HTTP_IF_NONE_MATCH=etag)
    assert assert_cacheable(r) != etag
    assert {t["name"]: t["price_cents"] for t in r.json()["ticket_types"]} == {"GA": 1999, "VIP": 9900}


def test_detail_carries_live_stock_within_a_second_and_its_etag_follows(api_client, live_event):
    detail = f"{EVENTS}/{live_event.pk}"
    etag = api_client.get(detail)["ETag"]
    vip = live_event.ticket_types.get(name="VIP")

    # Stock moves without any catalogue change (as a purchase does): the snapshot may serve the old
    # numbers until it expires, which is never more than a second away.
    TicketType.objects.filter(pk=vip.pk).update(available=0)
    assert_not_modified(api_client.get(detail, HTTP_IF_NONE_MATCH=etag), etag)
    expire_availability(live_event)

    r = api_client.get(detail, HTTP_IF_NONE_MATCH=etag)
    sold_out_etag = assert_cacheable(r)
    assert sold_out_etag != etag
    tiers = {t["name"]: (t["available"], t["sold_out"]) for t in r.json()["ticket_types"]}
    assert tiers == {"GA": (50, False), "VIP": (0, True)}
    assert_not_modified(api_client.get(detail, HTTP_IF_NONE_MATCH=sold_out_etag), sold_out_etag)

    # A purchase or a release says so after commit (stock_changed): seen at once, no wait at all.
    with transaction.atomic():
        TicketType.objects.filter(pk=vip.pk).update(available=2)
        catalogue_cache.stock_changed(live_event.pk)
    r = api_client.get(detail, HTTP_IF_NONE_MATCH=sold_out_etag)
    assert r.status_code == 200
    assert {t["name"]: (t["available"], t["sold_out"]) for t in r.json()["ticket_types"]}["VIP"] == (2, False)
    # Back to the numbers of the first body: back to its tag.
    with transaction.atomic():
        TicketType.objects.filter(pk=vip.pk).update(available=5)
        catalogue_cache.stock_changed(live_event.pk)
    assert_not_modified(api_client.get(detail, HTTP_IF_NONE_MATCH=etag), etag)


def test_a_cached_detail_is_exactly_what_the_serializer_renders(api_client, live_event):
    """Live numbers are spliced into the cached bytes: text that looks like the splice points stays text."""
    TicketType.objects.filter(event=live_event, name="GA").update(
        name='"0123456789abcdef:0:a" sold_out', description="available: true"
    )
    detail = f"{EVENTS}/{live_event.pk}"
    built = api_client.get(detail)  # builds and stores the body
    cached = api_client.get(detail)  # splices into the stored one
    assert cached.content == built.content
    body = json.loads(cached.content)
    ga = next(t for t in body["ticket_types"] if t["price_cents"] == 2500)
    assert ga["name"] == '"0123456789abcdef:0:a" sold_out'
    assert ga["description"] == "available: true"
    assert (ga["available"], ga["sold_out"]) == (50, False)
    assert body["title"] == "Cached show"


def test_unpublished_or_deleted_events_never_come_back_from_the_cache(api_client, owner, live_event):
    detail = f"{EVENTS}/{live_event.pk}"
    detail_etag = api_client.get(detail)["ETag"]
    list_etag = api_client.get(EVENTS)["ETag"]

    assert owner.delete(detail).status_code == 204

    for header in (detail_etag, "*"):
        assert_problem(api_client.get(detail, HTTP_IF_NONE_MATCH=header), 404, "not_found")
    r = api_client.get(EVENTS, HTTP_IF_NONE_MATCH=list_etag)
    assert assert_cacheable(r) != list_etag
    assert r.json()["count"] == 0


def test_a_draft_is_private_to_its_organizer_and_404_for_everyone_else(api_client, live_event):
    draft = EventFactory(organizer=live_event.organizer, title="Secret draft")
    TicketTypeFactory(event=draft)
    organizer = APIClient()
    organizer.force_authenticate(live_event.organizer.user)

    assert_problem(api_client.get(f"{EVENTS}/{draft.pk}", HTTP_IF_NONE_MATCH="*"), 404, "not_found")
    r = organizer.get(f"{EVENTS}/{draft.pk}")
    etag = assert_cacheable(r, "private, no-cache")
    assert r.json()["title"] == "Secret draft"
    assert_not_modified(organizer.get(f"{EVENTS}/{draft.pk}", HTTP_IF_NONE_MATCH=etag), etag, "private, no-cache")
    # Seen by its organizer, still not cached for anyone else.
    assert_problem(api_client.get(f"{EVENTS}/{draft.pk}"), 404, "not_found")
    assert not api_client.get(EVENTS).json()["results"][1:]


# --- What still runs in front of a cached body ---------------------------------------------


def test_cached_bodies_and_304s_are_still_throttled(api_client, live_event, monkeypatch):
    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "3/min")
    etag = api_client.get(EVENTS)["ETag"]
    assert api_client.get(EVENTS).status_code == 200
    assert api_client.get(f"{EVENTS}/{live_event.pk}").status_code == 200
    r = api_client.get(EVENTS, HTTP_IF_NONE_MATCH=etag)
    assert_problem(r, 429, "throttled")
    assert int(r["Retry-After"]) >= 1


def test_a_bad_token_is_still_401_on_a_cached_body(api_client, live_event):
    assert api_client.get(f"{EVENTS}/{live_event.pk}").status_code == 200
    r = api_client.get(f"{EVENTS}/{live_event.pk}", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert_problem(r, 401, "token_not_valid")


def test_an_unacceptable_accept_header_is_still_406(api_client, live_event):
    assert api_client.get(EVENTS).status_code == 200
    assert api_client.get(EVENTS, HTTP_ACCEPT="text/csv").status_code == 406
