"""Sentry: started only with SENTRY_DSN, no personal data, and each event tagged with its request id.

Sentry patches Django and Celery process-wide when it starts, so every run with a DSN is a
child process; none sends anything over the network (a transport that keeps the envelopes,
and a DSN on a local port where nothing listens).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import sentry_sdk

from eventflow.logs import request_id
from eventflow.sentry import tag_request_id
from eventflow.tests.fresh_process import django_json

ROOT = Path(__file__).resolve().parents[2]
DSN = "http://public@127.0.0.1:9/1"


def run(script: str, tmp_path, **env) -> dict:
    """Run ``script`` with Django set up from a clean environment; it prints one JSON object."""
    base = {"DATA_DIR": str(tmp_path), "ALLOWED_HOSTS": "testserver"}
    if "REDIS_URL" in os.environ:
        base["REDIS_URL"] = os.environ["REDIS_URL"]
    return django_json(textwrap.dedent(script), env={**base, **env})


CLIENT_STATE = """
import sentry_sdk
client = sentry_sdk.get_client()
integrations = sorted(getattr(client, "integrations", {}) or {})
print(json.dumps({
    "active": client.is_active(),
    "dsn": client.options.get("dsn"),
    "environment": client.options.get("environment"),
    "pii": client.options.get("send_default_pii"),
    "traces": client.options.get("traces_sample_rate"),
    "sessions": client.options.get("auto_session_tracking"),
    "django": "django" in integrations,
    "logging": "logging" in integrations,
    "celery": "celery" in integrations,
    "redis": "redis" in integrations,
}))
"""


def test_without_a_dsn_sentry_is_not_started(tmp_path):
    state = run(CLIENT_STATE, tmp_path)
    assert state["active"] is False
    assert state["dsn"] is None
    # nor in this test run (no SENTRY_DSN)
    assert not sentry_sdk.get_client().is_active()


def test_with_a_dsn_it_starts_without_personal_data_or_traces(tmp_path):
    state = run(CLIENT_STATE, tmp_path, SENTRY_DSN=DSN, SENTRY_ENVIRONMENT="staging")
    assert state == {
        "active": True,
        "dsn": DSN,
        "environment": "staging",
        "pii": False,
        "traces": None,  # no tracing at all, not an unsampled transaction per request
        "sessions": False,
        "django": False,  # errors come through logging: Django's integration costs every request
        "logging": True,
        "celery": True,
        "redis": False,  # nor a wrapper around every Redis command
    }


def test_sentry_django_adds_djangos_integration(tmp_path):
    state = run(CLIENT_STATE, tmp_path, SENTRY_DSN=DSN, SENTRY_DJANGO="true")
    assert (state["active"], state["django"], state["celery"], state["traces"]) == (True, True, True, None)


@pytest.mark.parametrize("django", [False, True])
def test_an_error_in_a_request_is_reported_with_the_request_id(tmp_path, django):
    events = run(
        """
        import sentry_sdk
        from django.conf import settings
        from django.test import Client
        from sentry_sdk.transport import Transport
        from eventflow import sentry

        envelopes = []

        class KeepEnvelopes(Transport):
            def capture_envelope(self, envelope):
                envelopes.append(envelope)

        sentry.init(dsn=settings.SENTRY_DSN, environment="test", transport=KeepEnvelopes, django=DJANGO)
        settings.ROOT_URLCONF = "eventflow.tests.urls"
        response = Client().get("/api/v1/_probe/boom", HTTP_X_REQUEST_ID="req-sentry-1")
        sentry_sdk.flush()
        events = [item.payload.json for env in envelopes for item in env.items if item.type == "event"]
        def summary(e):
            exception = e.get("exception", {}).get("values", [{}])[-1].get("type")
            return {"tags": e.get("tags"), "user": e.get("user"), "exception": exception}

        print(json.dumps({"status": response.status_code, "events": [summary(e) for e in events]}))
        """.replace("DJANGO", str(django)),
        tmp_path,
        SENTRY_DSN=DSN,
    )
    assert events["status"] == 500
    assert events["events"], "no event was captured"
    assert "KeyError" in [event["exception"] for event in events["events"]]  # with its traceback
    for event in events["events"]:  # Django's own "Internal Server Error" line may be one more
        assert event["tags"]["request_id"] == "req-sentry-1"
        assert not event["user"]  # no personal data: no address, no user


def test_before_send_tags_the_current_request_id():
    assert tag_request_id({"message": "x"}) == {"message": "x"}  # outside a request: no tag
    token = request_id.set("req-42")
    try:
        assert tag_request_id({"tags": {"a": "b"}})["tags"] == {"a": "b", "request_id": "req-42"}
        assert tag_request_id({})["tags"] == {"request_id": "req-42"}
    finally:
        request_id.reset(token)


def test_a_traces_rate_is_taken_when_given(tmp_path):
    state = run(CLIENT_STATE, tmp_path, SENTRY_DSN=DSN, SENTRY_TRACES_SAMPLE_RATE="0.25", SENTRY_DJANGO="")
    assert (state["active"], state["traces"], state["environment"]) == (True, 0.25, "production")
    assert state["django"] is True  # tracing needs Django's integration: on with a rate
