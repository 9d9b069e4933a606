"""Schema-driven fuzzing: every operation of the OpenAPI document, as an attendee and as an organizer.

Schemathesis generates requests from the schema (valid ones, boundary values and
deliberately invalid ones) and sends them through the whole Django stack in
process. Every built-in check runs on every response: no 5xx, the status code,
content type, headers and body are the ones the schema documents for the
operation, invalid data is refused and valid data is not. A failure prints the
reproducing request.

Bounded so the suite stays fast: ``FUZZ_MAX_EXAMPLES`` examples per operation
and phase (default 25; CI may raise it), no deadline per example.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.config import SchemathesisConfig

from accounts.tests.factories import OrganizerProfileFactory, UserFactory
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))

pytestmark = pytest.mark.django_db

# A schema can say a field is a string of at most 64 characters, not that it names an IANA time
# zone, that ends_at follows starts_at or that a refresh token is genuine: schema-valid data may
# still be refused for what only the server knows, with a 4xx. Everything else runs as built in:
# no 5xx, documented status codes, content types, headers and bodies, and schema-*invalid* data
# always refused.
# A conditional GET the schema documents (If-None-Match, e.g. `*`) is answered 304, not refused.
# Undeclared *query* parameters are ignored by design (a cache-busting ?_=123 must not break a
# client; the events list documents it), so the fuzzer does not send them as invalid input.
# Undeclared *body* fields are still refused and still fuzzed (additionalProperties: false).
CONFIG = SchemathesisConfig.from_str(
    """
[generation]
allow-extra-parameters = false

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "304", "400", "401", "403", "404", "409", "422", "429"]
"""
)

# Loaded once at collection: serving the schema touches no database.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema", get_wsgi_application(), config=CONFIG)


STATUSES: Counter = Counter()
OPERATIONS: set[str] = set()


def summary() -> str | None:
    """What the run covered and got back; printed at the end of the test session (conftest.py)."""
    if not STATUSES:
        return None
    by_class = Counter(f"{status // 100}xx" for status in STATUSES.elements())
    return (
        f"fuzz: {len(OPERATIONS)} operations as attendee and organizer, {sum(STATUSES.values())} requests; "
        f"{dict(sorted(by_class.items()))}; by status {dict(sorted(STATUSES.items()))}"
    )


def _call(case, role: str) -> None:
    response = case.call_and_validate(headers=_bearer(role))
    OPERATIONS.add(f"{case.operation.method.upper()} {case.operation.path}")
    STATUSES[response.status_code] += 1


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Requests go through the real WSGI handler, which closes the database connection when a
    request finishes; inside a test that would end the test's transaction. Django's own test
    client unhooks the same signal handler."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _unthrottled(monkeypatch):
    # The fuzzer is one client sending thousands of requests: lift the per-client
    # throttles so it explores the API instead of collecting 429s.
    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "1000000/min")
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "1000000/min")


def _bearer(role: str) -> dict[str, str]:
    """A signed-in caller, with something to find: a published event with a ticket type."""
    if role == "organizer":
        profile = OrganizerProfileFactory()
        user = profile.user
        event = EventFactory(organizer=profile, status=Event.Status.PUBLISHED)
    else:
        user = UserFactory()
        event = EventFactory(status=Event.Status.PUBLISHED)
    TicketTypeFactory(event=event)
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@schema.parametrize()
@BOUNDED
def test_api_conforms_to_its_schema_as_an_attendee(case):
    _call(case, "attendee")


@schema.parametrize()
@BOUNDED
def test_api_conforms_to_its_schema_as_an_organizer(case):
    _call(case, "organizer")
