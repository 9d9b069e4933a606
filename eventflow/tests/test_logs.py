"""Request ids (X-Request-ID) on every answer, in every log line, and in the tasks a request queues."""

from __future__ import annotations

import io
import json
import logging
import re
import time

import pytest
from celery import shared_task
from celery.contrib.testing.worker import start_worker
from django.db import connection
from django.urls import path
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from eventflow import logs
from eventflow.celery import app
from eventflow.logs import JsonFormatter, PlainFormatter, RequestIdFilter, request_id
from eventflow.urls import urlpatterns as real_urlpatterns

pytestmark = pytest.mark.django_db

log = logging.getLogger("eventflow.tests.logs")
MINTED = re.compile(r"[0-9a-f]{32}")


@shared_task(name="eventflow.tests.test_logs.log_in_a_task", ignore_result=True)
def log_in_a_task(order_id: int) -> None:
    log.info("task for order %s", order_id)


class _Log(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        log.info("inside the view", extra={"order": 7})
        return Response({"ok": True})


class _Queue(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        log_in_a_task.delay(41)
        return Response(status=202)


class _Throttled(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise Throttled(wait=3)


class _Boom(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        return {}["missing"]


urlpatterns = [
    path("api/v1/_probe/log", _Log.as_view()),
    path("api/v1/_probe/queue", _Queue.as_view()),
    path("api/v1/_probe/throttled", _Throttled.as_view()),
    path("api/v1/_probe/boom", _Boom.as_view()),
    *real_urlpatterns,
]
handler404 = "eventflow.api.errors.page_not_found"
handler500 = "eventflow.api.errors.server_error"


@pytest.fixture(autouse=True)
def _no_request_id():
    """Each test starts outside any request, whatever a test before it left (a request that raised)."""
    request_id.set(None)


@pytest.fixture
def json_lines():
    """What the console handler of LOG_FORMAT=json writes, for the loggers these tests use."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    loggers = [logging.getLogger(name) for name in ("eventflow.tests.logs", "django.request", "eventflow.api")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


# --- The header -------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace.id:1_2", "a" * 200])
def test_a_sane_request_id_is_echoed(api_client, sent):
    r = api_client.get("/api/v1/health", HTTP_X_REQUEST_ID=sent)
    assert r["X-Request-ID"] == sent


@pytest.mark.parametrize(
    "sent",
    [
        None,
        "",
        "a" * 201,
        "x" * 10_240,
        "abc\r\nSet-Cookie: sessionid=stolen",  # header injection
        'id" level="CRITICAL',  # a forged log field
        "spaces are not allowed",
        "unicodé",
    ],
)
def test_an_absent_or_insane_request_id_is_replaced_by_a_new_one(api_client, sent):
    extra = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    r = api_client.get("/api/v1/health", **extra)
    assert r.status_code == 200
    assert MINTED.fullmatch(r["X-Request-ID"])
    assert "Set-Cookie" not in r
    assert api_client.get("/api/v1/health", **extra)["X-Request-ID"] != r["X-Request-ID"]  # one per request


@pytest.mark.urls(__name__)
def test_every_kind_of_answer_carries_it(api_client):
    def rid(r) -> str:
        return r["X-Request-ID"]

    assert rid(api_client.get("/api/v1/no-such-thing", HTTP_X_REQUEST_ID="r-404")) == "r-404"
    r = api_client.post("/api/v1/auth/login", {"nope": 1}, format="json", HTTP_X_REQUEST_ID="r-400")
    assert (r.status_code, rid(r)) == (400, "r-400")
    r = api_client.get("/api/v1/_probe/throttled", HTTP_X_REQUEST_ID="r-429")
    assert (r.status_code, rid(r)) == (429, "r-429")
    r = api_client.get("/api/v1/_probe/boom", HTTP_X_REQUEST_ID="r-500")
    assert (r.status_code, rid(r)) == (500, "r-500")
    assert r.json()["request_id"] == "r-500"  # a 5xx body names it, to be quoted in a report
    r = api_client.get("/not-api", HTTP_X_REQUEST_ID="r-html-404")
    assert (r.status_code, rid(r)) == (404, "r-html-404")
    assert "request_id" not in api_client.get("/api/v1/no-such-thing").json()  # a 4xx body does not


@pytest.mark.django_db(transaction=True)
def test_a_503_for_a_database_that_is_down_carries_it(api_client):
    connection.close()
    real_port = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = "1"
    try:
        r = api_client.post(
            "/api/v1/auth/login", {"email": "a@example.com", "password": "whatever-it-is"}, HTTP_X_REQUEST_ID="r-503"
        )
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port
    assert (r.status_code, r["X-Request-ID"]) == (503, "r-503")
    assert r.json()["code"] == "database_unavailable"
    assert r.json()["request_id"] == "r-503"


# --- Log lines --------------------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_a_line_logged_in_a_request_carries_its_id_as_json(api_client, json_lines):
    r = api_client.get("/api/v1/_probe/log", HTTP_X_REQUEST_ID="req-7")
    assert r.status_code == 200
    (line,) = [line for line in json_lines() if line["logger"] == "eventflow.tests.logs"]
    assert line["message"] == "inside the view"
    assert line["level"] == "INFO"
    assert line["request_id"] == "req-7"
    assert line["order"] == 7  # extra= fields come along
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", line["timestamp"])  # UTC, ISO 8601
    assert request_id.get() is None  # the response is finished: nothing leaks into what follows


@pytest.mark.urls(__name__)
def test_an_error_line_has_the_id_and_the_exception(api_client, json_lines):
    api_client.get("/api/v1/_probe/boom", HTTP_X_REQUEST_ID="req-boom")
    (line,) = [line for line in json_lines() if line["logger"] == "eventflow.api"]
    assert line["level"] == "ERROR"
    assert line["request_id"] == "req-boom"
    assert "KeyError: 'missing'" in line["exc_info"]


def test_djangos_own_4xx_line_carries_it(api_client, json_lines):
    """Django logs "Not Found" after the middleware chain has returned: the id is still set then."""
    api_client.get("/api/v1/no-such-thing", HTTP_X_REQUEST_ID="req-404")
    (line,) = [line for line in json_lines() if line["logger"] == "django.request"]
    assert (line["level"], line["message"], line["request_id"]) == (
        "WARNING",
        "Not Found: /api/v1/no-such-thing",
        "req-404",
    )


def test_a_line_outside_any_request_has_no_request_id(json_lines):
    log.warning("between requests")
    (line,) = json_lines()
    assert line["message"] == "between requests"
    assert "request_id" not in line


def test_the_plain_format_shows_the_id_when_there_is_one():
    formatter = PlainFormatter()
    record = logging.LogRecord("x.y", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    RequestIdFilter().filter(record)
    assert formatter.format(record).endswith(" INFO x.y hello there")
    token = request_id.set("abc")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    assert formatter.format(record).endswith(" INFO x.y [abc] hello there")


def test_settings_log_json_with_the_filter_on_the_console(settings):
    # the suite runs with DATABASE_URL (a server database): JSON, as a deployment would
    assert settings.LOG_FORMAT == "json"
    console = settings.LOGGING["handlers"]["console"]
    assert console["formatter"] == "json"
    assert console["filters"] == ["request_id"]
    # outermost: before every middleware that may answer by itself (/metrics answered by its timer)
    assert settings.MIDDLEWARE[0] == "eventflow.middleware.RequestIdMiddleware"
    assert settings.MIDDLEWARE[1] == "observability.middleware.RequestMetricsMiddleware"


# --- Into Celery tasks ------------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_an_eager_task_queued_in_a_request_logs_its_id(api_client, json_lines):
    r = api_client.post("/api/v1/_probe/queue", HTTP_X_REQUEST_ID="req-task")
    assert r.status_code == 202
    (line,) = [line for line in json_lines() if line["logger"] == "eventflow.tests.logs"]
    assert (line["message"], line["request_id"]) == ("task for order 41", "req-task")


def test_the_id_goes_into_the_message_and_the_worker_sets_it_around_the_task(json_lines):
    headers: dict = {}
    logs.on_before_task_publish(headers=headers)  # outside a request: nothing to carry
    assert headers == {}
    token = request_id.set("req-publish")
    try:
        logs.on_before_task_publish(headers=headers)
    finally:
        request_id.reset(token)
    assert headers == {"request_id": "req-publish"}

    # the worker's side: no id of its own, the message's for the task's run, none after it
    assert request_id.get() is None
    log_in_a_task.apply(args=(5,), headers=headers)
    assert request_id.get() is None
    (line,) = json_lines()
    assert (line["message"], line["request_id"]) == ("task for order 5", "req-publish")


def test_an_insane_id_in_a_message_is_not_used(json_lines):
    log_in_a_task.apply(args=(6,), headers={"request_id": "x\nforged"})
    (line,) = json_lines()
    assert "request_id" not in line


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_logs_the_id_of_the_request_that_queued_the_task(api_client, json_lines, monkeypatch):
    """Through Redis: the id travels in the message's headers to a worker thread that never saw the request."""
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        r = api_client.post("/api/v1/_probe/queue", HTTP_X_REQUEST_ID="req-through-redis")
        assert r.status_code == 202
        deadline = time.monotonic() + 15
        while not any(line["logger"] == "eventflow.tests.logs" for line in json_lines()):
            assert time.monotonic() < deadline, "the worker did not run the task"
            time.sleep(0.05)
    (line,) = [line for line in json_lines() if line["logger"] == "eventflow.tests.logs"]
    assert (line["message"], line["request_id"]) == ("task for order 41", "req-through-redis")
