"""The OpenAPI schema and the documentation pages, served without any CDN."""

import json

import pytest
from django.core.management import call_command

from accounts.models import User
from accounts.tests.test_auth import assert_problem

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_schema_endpoint_documents_auth_and_problems(api_client):
    r = api_client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["openapi"].startswith("3.")
    login = schema["paths"]["/api/v1/auth/login"]["post"]
    assert "application/problem+json" in login["responses"]["401"]["content"]
    assert "invalid_credentials" in login["responses"]["401"]["description"]
    assert "429" in login["responses"]
    assert "jwtAuth" in schema["components"]["securitySchemes"]
    # COMPONENT_SPLIT_REQUEST: write-only input components are separate
    assert "RegisterInputRequest" in schema["components"]["schemas"]


def test_schema_lists_what_the_server_answers_before_any_view_runs(api_client):
    """Body limits, media types and every 401 code the authentication can give are documented."""
    r = api_client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    order_create = r.json()["paths"]["/api/v1/orders"]["post"]["responses"]
    assert "`request_too_large`" in order_create["413"]["description"]
    assert "`unsupported_media_type`" in order_create["415"]["description"]
    for code in ("token_expired", "bad_authorization_header", "user_not_found", "user_inactive"):
        assert f"`{code}`" in order_create["401"]["description"]
    # and the server does give them
    token = "Bearer a b"
    assert api_client.get("/api/v1/users/me", HTTP_AUTHORIZATION=token).json()["code"] == "bad_authorization_header"
    assert_problem(api_client.post("/api/v1/auth/login", "x", content_type="text/plain"), 415, "unsupported_media_type")
    big = json.dumps({"email": "a@example.com", "password": "x" * 3_000_000})  # over DATA_UPLOAD_MAX_MEMORY_SIZE
    assert_problem(
        api_client.post("/api/v1/auth/register", big, content_type="application/json"), 413, "request_too_large"
    )
    assert not User.objects.filter(email="a@example.com").exists()


@pytest.mark.parametrize("path", ["/api/docs", "/api/redoc"])
def test_docs_pages_use_local_assets(api_client, path):
    r = api_client.get(path)
    assert r.status_code == 200
    html = r.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr" not in html
    assert "unpkg.com" not in html


def test_sidecar_asset_is_served(client):
    r = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["/api/docs", "/api/redoc", "/admin/login/", "/api/v1/health"])
def test_pages_carry_a_content_security_policy_without_inline_scripts(client, path):
    r = client.get(path)
    assert r.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in r["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    if r["Content-Type"].startswith("text/html"):
        html = r.content.decode()
        # every script is a file from this origin: nothing inline for the policy to refuse
        assert "<script>" not in html
        assert "fonts.googleapis.com" not in html


def test_swagger_ui_set_up_script_is_served_as_a_file(client):
    r = client.get("/api/docs?script=")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in r.content.decode()


def _schema(api_client) -> dict:
    return api_client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def test_every_operation_has_a_summary_and_a_description(api_client):
    operations = [op for ops in _schema(api_client)["paths"].values() for op in ops.values()]
    assert len(operations) >= 34
    for op in operations:
        assert op.get("summary"), op["operationId"]
        assert len(op.get("description", "")) > 20, op["operationId"]


def test_tags_come_in_reading_order_with_staff_last(api_client):
    tags = [tag["name"] for tag in _schema(api_client)["tags"]]
    assert tags == ["auth", "users", "organizers", "events", "orders", "payments", "system", "staff"]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/events", "post"),
        ("/api/v1/events/{event_pk}/ticket-types", "post"),
        ("/api/v1/orders", "post"),
    ],
)
def test_main_writes_carry_request_examples(api_client, path, method):
    body = _schema(api_client)["paths"][path][method]["requestBody"]["content"]["application/json"]
    assert body["examples"]


def test_the_api_description_promises_only_what_exists(api_client):
    description = _schema(api_client)["info"]["description"]
    for not_yet in ("check-in", "payment", "refund", "waiting list", "seat"):
        assert not_yet not in description.lower()
    assert "token_expired" in _schema(api_client)["paths"]["/api/v1/users/me"]["get"]["responses"]["401"]["description"]
