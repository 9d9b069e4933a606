"""GET /events: the public catalogue, its filters, search, distance and bad input."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.tests.test_auth import assert_problem
from events.models import Category, Event

from .factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"
PUBLISHED = Event.Status.PUBLISHED


def published(**kwargs) -> Event:
    event = EventFactory(status=PUBLISHED, **kwargs)
    TicketTypeFactory(event=event)
    return event


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["title"] for item in response.json()["results"]]


def test_lists_only_published_alive_events_soonest_first(api_client):
    now = timezone.now()
    later = published(title="Later", starts_at=now + timedelta(days=20))
    published(title="Sooner", starts_at=now + timedelta(days=2))
    EventFactory(title="Draft")
    EventFactory(title="Cancelled", status=Event.Status.CANCELLED)
    published(title="Deleted", deleted_at=now)
    published(title="Over", starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    r = api_client.get(EVENTS)
    assert titles(r) == ["Sooner", "Later"]
    body = r.json()
    assert body["count"] == 2
    assert set(body) == {"count", "next", "previous", "results"}
    item = body["results"][1]
    assert item["id"] == later.pk
    assert item["organizer"]["display_name"] == later.organizer.display_name
    assert (item["min_price_cents"], item["has_availability"], item["distance_km"]) == (2500, True, None)


def test_search_matches_title_description_venue_city_by_prefix(api_client):
    published(title="Jazz Night", description="Smooth saxophones", venue_name="Blue Note", city="Paris")
    published(title="Rock Arena", description="Loud guitars", venue_name="Stadium", city="Lyon")
    assert titles(api_client.get(EVENTS, {"search": "jazz"})) == ["Jazz Night"]
    assert titles(api_client.get(EVENTS, {"search": "saxophone"})) == ["Jazz Night"]  # prefix of a word
    assert titles(api_client.get(EVENTS, {"search": "blue"})) == ["Jazz Night"]
    assert titles(api_client.get(EVENTS, {"search": "lyon"})) == ["Rock Arena"]
    assert titles(api_client.get(EVENTS, {"search": "jazz lyon"})) == []  # every word must match


def test_search_ranks_title_matches_first(api_client):
    now = timezone.now()
    published(title="Open air", description="with a piano", starts_at=now + timedelta(days=1))
    published(title="Piano recital", starts_at=now + timedelta(days=9))
    assert titles(api_client.get(EVENTS, {"search": "piano"})) == ["Piano recital", "Open air"]


def test_search_operators_are_plain_text(api_client):
    published(title="Sold & Gold")
    for text in ["'&|!:*()", "gold & !sold", "a:*b", "<->"]:
        r = api_client.get(EVENTS, {"search": text})
        assert r.status_code == 200, text


def test_city_category_and_date_filters(api_client):
    now = timezone.now()
    published(title="A", city="Berlin", category=Category.MUSIC, starts_at=now + timedelta(days=1))
    published(title="B", city="berlin", category=Category.SPORTS, starts_at=now + timedelta(days=10))
    published(title="C", city="Paris", category=Category.MUSIC, starts_at=now + timedelta(days=20))
    assert titles(api_client.get(EVENTS, {"city": "BERLIN"})) == ["A", "B"]
    assert titles(api_client.get(EVENTS, {"category": "music"})) == ["A", "C"]
    after = (now + timedelta(days=5)).isoformat()
    before = (now + timedelta(days=15)).isoformat()
    assert titles(api_client.get(EVENTS, {"starts_after": after})) == ["B", "C"]
    assert titles(api_client.get(EVENTS, {"starts_after": after, "starts_before": before})) == ["B"]
    assert titles(api_client.get(EVENTS, {"starts_before": (now + timedelta(days=2)).date().isoformat()})) == ["A"]


def test_available_and_price_filters_and_price_ordering(api_client):
    cheap = EventFactory(title="Cheap", status=PUBLISHED)
    TicketTypeFactory(event=cheap, price_cents=1000)
    pricey = EventFactory(title="Pricey", status=PUBLISHED)
    TicketTypeFactory(event=pricey, price_cents=9000)
    TicketTypeFactory(event=pricey, price_cents=5000, capacity=10, available=0)
    gone = EventFactory(title="Gone", status=PUBLISHED)
    TicketTypeFactory(event=gone, price_cents=3000, capacity=5, available=0)
    assert titles(api_client.get(EVENTS, {"available": "true"})) == ["Cheap", "Pricey"]
    assert titles(api_client.get(EVENTS, {"min_price_cents": 4000})) == ["Pricey"]
    assert titles(api_client.get(EVENTS, {"max_price_cents": 3000})) == ["Cheap", "Gone"]
    assert titles(api_client.get(EVENTS, {"min_price_cents": 2000, "max_price_cents": 6000})) == ["Pricey", "Gone"]
    assert titles(api_client.get(EVENTS, {"ordering": "price"})) == ["Cheap", "Gone", "Pricey"]
    assert titles(api_client.get(EVENTS, {"ordering": "-price"})) == ["Pricey", "Gone", "Cheap"]
    r = api_client.get(EVENTS, {"ordering": "price"})
    assert [e["min_price_cents"] for e in r.json()["results"]] == [1000, 3000, 5000]
    assert [e["has_availability"] for e in r.json()["results"]] == [True, False, True]


def test_near_filters_by_radius_and_orders_by_distance(api_client):
    berlin = (Decimal("52.520008"), Decimal("13.404954"))
    published(title="Potsdam", latitude=Decimal("52.390569"), longitude=Decimal("13.064473"))  # ~27 km
    published(title="Mitte", latitude=Decimal("52.521918"), longitude=Decimal("13.413215"))  # ~0.6 km
    published(title="Hamburg", latitude=Decimal("53.551086"), longitude=Decimal("9.993682"))  # ~255 km
    published(title="Nowhere")  # no coordinates
    near = f"{berlin[0]},{berlin[1]}"
    r = api_client.get(EVENTS, {"near": near, "radius_km": 50, "ordering": "distance"})
    assert titles(r) == ["Mitte", "Potsdam"]
    distances = [e["distance_km"] for e in r.json()["results"]]
    assert 0.4 < distances[0] < 0.8
    assert 25 < distances[1] < 30
    assert titles(api_client.get(EVENTS, {"near": near, "radius_km": 300, "ordering": "distance"})) == [
        "Mitte",
        "Potsdam",
        "Hamburg",
    ]
    assert titles(api_client.get(EVENTS, {"near": near, "radius_km": 5})) == ["Mitte"]
    assert set(titles(api_client.get(EVENTS, {"near": near}))) == {"Mitte", "Potsdam"}  # default 50 km


def test_near_across_the_antimeridian(api_client):
    published(title="Fiji west", latitude=Decimal("-17.8"), longitude=Decimal("179.9"))
    published(title="Fiji east", latitude=Decimal("-17.8"), longitude=Decimal("-179.9"))
    assert set(titles(api_client.get(EVENTS, {"near": "-17.8,179.95", "radius_km": 50}))) == {"Fiji west", "Fiji east"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"near": "abc"}, "near"),
        ({"near": "91,0"}, "near"),
        ({"near": "1,2,3"}, "near"),
        ({"near": "nan,1"}, "near"),
        ({"near": "52.5,13.4", "radius_km": -1}, "radius_km"),
        ({"near": "52.5,13.4", "radius_km": "far"}, "radius_km"),
        ({"starts_after": "yesterday"}, "starts_after"),
        ({"starts_before": "2026-13-45"}, "starts_before"),
        ({"category": "knitting"}, "category"),
        ({"available": "maybe"}, "available"),
        ({"min_price_cents": -5}, "min_price_cents"),
        ({"ordering": "title"}, "ordering"),
        ({"ordering": "distance"}, "ordering"),
    ],
)
def test_malformed_filters_are_400_naming_the_field(api_client, params, field):
    body = assert_problem(api_client.get(EVENTS, params), 400, "invalid")
    assert field in body["errors"], body


def test_unknown_filters_are_ignored(api_client):
    published(title="Kept")
    assert titles(api_client.get(EVENTS, {"colour": "blue", "page_size": 5})) == ["Kept"]


def test_page_size_is_capped_at_100(api_client):
    organizer = EventFactory().organizer
    EventFactory.create_batch(105, organizer=organizer, status=PUBLISHED)
    body = api_client.get(EVENTS, {"page_size": 1000}).json()
    assert body["count"] == 105
    assert len(body["results"]) == 100
    assert body["next"] is not None
    assert_problem(api_client.get(EVENTS, {"page": 99}), 404, "not_found")


def test_list_query_count_does_not_grow_with_events(api_client, django_assert_max_num_queries):
    for _ in range(3):
        published()
    with django_assert_max_num_queries(2):  # count + one page with organizers and prices
        assert api_client.get(EVENTS).status_code == 200
    for _ in range(30):
        published()
    with django_assert_max_num_queries(2):
        r = api_client.get(EVENTS, {"page_size": 50, "ordering": "price", "available": "true", "search": "event"})
    assert r.json()["count"] == 33


def test_mine_lists_own_events_including_drafts(api_client):
    mine = EventFactory(title="My draft")
    published(title="My live", organizer=mine.organizer)
    published(title="Someone else's")
    api_client.force_authenticate(mine.organizer.user)
    assert sorted(titles(api_client.get(EVENTS, {"mine": "true"}))) == ["My draft", "My live"]
    assert sorted(titles(api_client.get(EVENTS))) == ["My live", "Someone else's"]


def test_mine_needs_an_organizer(api_client):
    assert_problem(api_client.get(EVENTS, {"mine": "true"}), 401, "not_authenticated")
    from accounts.tests.factories import UserFactory

    api_client.force_authenticate(UserFactory())
    assert_problem(api_client.get(EVENTS, {"mine": "true"}), 403, "not_organizer")
