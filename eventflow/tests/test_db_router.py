"""The read replica answers public catalogue reads only; writes, reads in a transaction, the
purchase path, live availability and organizers' own views stay on the primary.

`make test` configures the replica as a mirror of the test database (Django's TEST MIRROR):
the same rows through a second connection, so which connection ran a query shows the routing.
"""

from contextlib import contextmanager

import pytest
from django.core.signals import request_started
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import OrganizerProfile
from accounts.tests.factories import UserFactory
from eventflow import db
from eventflow.db import REPLICA, PrimaryReplicaRouter, catalogue_db
from events import cache as catalogue_cache
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory

EVENTS = "/api/v1/events"

pytestmark = [
    pytest.mark.skipif(
        REPLICA not in connections.settings, reason="DATABASE_REPLICA_URL is not set (make test sets it)"
    ),
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


@pytest.fixture(autouse=True)
def _replica_trusted_at_once(settings):
    """Rows made by a test are read back at once: no waiting out the lag allowance."""
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 0
    db._replica_down_until = 0.0
    request_started.send(sender=None)  # a fresh request: nothing written yet
    yield
    db._replica_down_until = 0.0


@contextmanager
def queries():
    """The SQL each database ran: {"default": [...], "replica": [...]}."""
    with (
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as replica,
    ):
        ran = {}
        yield ran
    ran[DEFAULT_DB_ALIAS] = [q["sql"] for q in primary.captured_queries]
    ran[REPLICA] = [q["sql"] for q in replica.captured_queries]


def touching(sqls: list[str], table: str) -> list[str]:
    return [sql for sql in sqls if f'"{table}"' in sql]


@pytest.fixture
def live_event():
    event = EventFactory(status=Event.Status.PUBLISHED)
    TicketTypeFactory(event=event, name="GA", capacity=50)
    return event


def test_the_public_event_list_is_read_from_the_replica(live_event):
    with queries() as ran:
        r = APIClient().get(EVENTS)
    assert r.status_code == 200
    assert r.json()["count"] == 1
    assert touching(ran[REPLICA], "events_event")  # the page and its count
    assert not touching(ran[DEFAULT_DB_ALIAS], "events_event")


def test_a_public_event_detail_is_built_from_the_replica(live_event):
    with queries() as ran:
        r = APIClient().get(f"{EVENTS}/{live_event.pk}")
    assert r.status_code == 200
    assert r.json()["ticket_types"][0]["available"] == 50
    assert touching(ran[REPLICA], "events_event")
    assert touching(ran[REPLICA], "events_tickettype")  # prefetched with the event, on the replica
    # the live stock overlaid on the (cacheable) body is read from the primary
    assert touching(ran[DEFAULT_DB_ALIAS], "events_tickettype")


def test_detail_live_stock_and_availability_come_from_the_primary(live_event):
    client = APIClient()
    client.get(f"{EVENTS}/{live_event.pk}")  # the body is cached; stock is overlaid live
    catalogue_cache.stock_changed(live_event.pk)
    with queries() as ran:
        availability = client.get(f"{EVENTS}/{live_event.pk}/availability")
    assert availability.status_code == 200
    assert touching(ran[DEFAULT_DB_ALIAS], "events_tickettype")
    assert ran[REPLICA] == []


def test_public_ticket_type_list_is_read_from_the_replica(live_event):
    with queries() as ran:
        r = APIClient().get(f"{EVENTS}/{live_event.pk}/ticket-types")
    assert r.status_code == 200
    assert [t["name"] for t in r.json()["results"]] == ["GA"]
    assert touching(ran[REPLICA], "events_tickettype")
    assert not touching(ran[DEFAULT_DB_ALIAS], "events_tickettype")


def test_a_purchase_never_reads_the_replica(live_event):
    tier = live_event.ticket_types.get()
    client = APIClient()
    client.force_authenticate(UserFactory())
    with queries() as ran:
        r = client.post("/api/v1/orders", {"event": live_event.pk, "items": [{"ticket_type": tier.pk, "quantity": 1}]})
    assert r.status_code == 201, r.content
    assert ran[REPLICA] == []


def test_an_organizers_own_list_is_read_from_the_primary(live_event):
    owner = live_event.organizer.user
    client = APIClient()
    client.force_authenticate(owner)
    with queries() as ran:
        r = client.get(f"{EVENTS}?mine=true")
    assert r.status_code == 200
    assert r.json()["count"] == 1
    assert ran[REPLICA] == []


def test_what_changed_moments_ago_is_read_from_the_primary(live_event, settings):
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 5
    with transaction.atomic():
        catalogue_cache.catalogue_changed(live_event.pk)  # bumped on commit: "changed now"
    with queries() as ran:
        r = APIClient().get(f"{EVENTS}/{live_event.pk}")
    assert r.status_code == 200
    assert touching(ran[DEFAULT_DB_ALIAS], "events_event")
    assert ran[REPLICA] == []


def test_reads_inside_a_transaction_or_after_a_write_use_the_primary():
    assert catalogue_db() == REPLICA
    with transaction.atomic():
        assert catalogue_db() == DEFAULT_DB_ALIAS
    assert catalogue_db() == REPLICA
    OrganizerProfile.objects.create(user=UserFactory(), display_name="Wrote")  # this "request" writes
    assert catalogue_db() == DEFAULT_DB_ALIAS
    request_started.send(sender=None)  # the next request starts clean
    assert catalogue_db() == REPLICA


def test_an_unreachable_replica_is_skipped_for_a_while(monkeypatch, settings):
    settings.DATABASE_REPLICA_RETRY_SECONDS = 60
    calls = []

    def down():
        calls.append(1)
        raise OperationalError("replica down")

    monkeypatch.setattr(connections[REPLICA], "ensure_connection", down)
    assert catalogue_db() == DEFAULT_DB_ALIAS
    assert catalogue_db() == DEFAULT_DB_ALIAS
    assert len(calls) == 1  # not tried again during the pause


def test_rows_read_from_the_replica_are_written_to_the_primary(live_event):
    event = Event.objects.using(REPLICA).get(pk=live_event.pk)
    assert event._state.db == REPLICA
    event.title = "Renamed"
    event.save(update_fields=["title"])
    assert Event.objects.using(DEFAULT_DB_ALIAS).get(pk=live_event.pk).title == "Renamed"
    router = PrimaryReplicaRouter()
    assert router.db_for_write(TicketType, instance=event) == DEFAULT_DB_ALIAS
    assert router.allow_migrate(REPLICA, "events") is False
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "events") is True


def test_the_test_replica_mirrors_the_test_database():
    assert connections[REPLICA].settings_dict["NAME"] == connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
