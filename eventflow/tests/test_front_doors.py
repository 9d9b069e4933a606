"""What a person or a client meets first: the site root, the API root, paths with a trailing slash."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_site_root_is_a_page_of_links(client):
    r = client.get("/")
    assert r.status_code == 200
    html = r.content.decode()
    for link in ("/api/docs", "/api/redoc", "/api/v1/", "/api/v1/schema", "/admin/", "/api/v1/health"):
        assert f'href="{link}"' in html


def test_the_api_root_lists_its_resources(api_client):
    r = api_client.get("/api/v1/")
    assert r.status_code == 200
    body = r.json()
    assert body["events"] == "http://testserver/api/v1/events"
    assert body["orders"] == "http://testserver/api/v1/orders"
    assert body["docs"] == "http://testserver/api/docs"
    for url in body.values():  # every link leads somewhere real (GET or, for writes, 405)
        assert api_client.get(url.removeprefix("http://testserver")).status_code in (200, 401, 405)


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/api/v1/events/", "/api/v1/events"),
        ("/api/v1/events/?city=Berlin&page=1", "/api/v1/events?city=Berlin&page=1"),
        ("/api/v1/health/", "/api/v1/health"),
        ("/api/docs/", "/api/docs"),
        ("/api/v1/events//", "/api/v1/events"),
    ],
)
def test_a_get_with_a_trailing_slash_redirects_to_the_canonical_path(api_client, path, location):
    r = api_client.get(path)
    assert r.status_code == 301
    assert r["Location"] == location


@pytest.mark.parametrize("path", ["/api/v1/nothing/", "/%2F%2Fevil.example/", "/api//evil.example/"])
def test_no_redirect_to_what_does_not_exist(api_client, path):
    r = api_client.get(path)
    assert r.status_code == 404
    assert "Location" not in r
    if path.startswith("/api/"):
        assert r.json()["code"] == "not_found"


def test_writes_with_a_trailing_slash_are_not_redirected(api_client):
    r = api_client.post("/api/v1/auth/login/", {"email": "a@b.cd", "password": "x"})
    assert r.status_code == 404
    assert r["Content-Type"] == "application/problem+json"
    assert r.json()["code"] == "not_found"


def test_the_admin_keeps_its_slashes_and_view_site_goes_home(admin_client):
    r = admin_client.get("/admin/")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'href="/"' in html  # "View site"
    assert "EventFlow" in html
    assert admin_client.get("/admin").status_code == 301  # Django's APPEND_SLASH, for the admin
