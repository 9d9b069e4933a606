"""Every error leaves as RFC 9457 problem details with a stable code."""

import pytest

from accounts.tests.test_auth import assert_problem

pytestmark = pytest.mark.django_db


def test_400_validation_lists_fields(api_client):
    body = assert_problem(api_client.post("/api/v1/auth/register", {"email": "not-an-email"}), 400, "invalid")
    assert set(body["errors"]) == {"email", "password"}
    assert body["instance"] == "/api/v1/auth/register"


@pytest.mark.parametrize("payload", ['{"email": "a@b.c", ', "[1, 2", "\x00\xff", "null"])
def test_malformed_json_is_400_not_500(api_client, payload):
    r = api_client.post("/api/v1/auth/login", payload, content_type="application/json")
    assert r.status_code == 400
    assert r["Content-Type"] == "application/problem+json"
    assert r.json()["code"] in {"parse_error", "invalid"}


def test_json_array_body_is_a_validation_error(api_client):
    r = api_client.post("/api/v1/auth/login", "[]", content_type="application/json")
    assert_problem(r, 400, "invalid")


def test_unsupported_media_type(api_client):
    r = api_client.post("/api/v1/auth/login", "email=a", content_type="application/x-www-form-urlencoded")
    assert_problem(r, 415, "unsupported_media_type")


def test_401(api_client):
    r = api_client.get("/api/v1/users/me")
    assert_problem(r, 401, "not_authenticated")
    assert r["WWW-Authenticate"] == 'Bearer realm="api"'


def test_404_unknown_api_path(api_client):
    body = assert_problem(api_client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert body["instance"] == "/api/v1/no-such-thing"


def test_405(api_client):
    r = api_client.delete("/api/v1/auth/login")
    assert_problem(r, 405, "method_not_allowed")
    assert "POST" in r["Allow"]


@pytest.mark.urls("eventflow.tests.urls")
def test_403(api_client):
    assert_problem(api_client.get("/api/v1/_probe/forbidden"), 403, "permission_denied")


@pytest.mark.urls("eventflow.tests.urls")
def test_domain_conflict_carries_its_code_and_extra_members(api_client):
    body = assert_problem(api_client.get("/api/v1/_probe/conflict"), 409, "sold_out")
    assert body["detail"] == "Sold out."
    assert body["left"] == 0


@pytest.mark.urls("eventflow.tests.urls")
def test_unexpected_exception_is_a_logged_500_problem(api_client, caplog):
    body = assert_problem(api_client.get("/api/v1/_probe/boom"), 500, "server_error")
    assert "missing" not in body["detail"]  # no internals leak to the client
    assert any("Unhandled exception" in rec.message and rec.exc_info for rec in caplog.records)


def test_non_api_404_stays_html(api_client):
    r = api_client.get("/not-api")
    assert r.status_code == 404
    assert r["Content-Type"].startswith("text/html")
