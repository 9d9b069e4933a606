import socket, threading, time
import pytest
from accounts.tests.factories import UserFactory
from orders.tests.test_admin import logged_in
from webhooks import sending
from webhooks.models import WebhookEndpoint
from .helpers import API, as_user, make_organizer, subscribe

pytestmark = pytest.mark.django_db
ENDPOINTS = "/admin/webhooks/webhookendpoint/"


def test_admin_add_over_limit(settings):
    settings.WEBHOOKS_MAX_ENDPOINTS = 1
    organizer = make_organizer("Dora")
    subscribe(organizer, "https://a.example.com/x", ["order.paid"])
    client = logged_in(organizer.user)
    client.raise_request_exception = False
    r = client.post(f"{ENDPOINTS}add/", {"url": "https://hooks.example.com/x", "events": ["order.paid"], "description": ""})
    print("ADMIN OVER LIMIT", r.status_code, r.get("Location"))
    assert r.status_code < 500


@pytest.mark.parametrize("kind,body,ctype", [
    ("text", "hello", "text/plain"),
    ("list", "[]", "application/json"),
    ("bad json", "{", "application/json"),
    ("null", "null", "application/json"),
    ("str", '"x"', "application/json"),
    ("unknown event", '{"url":"https://h.example.com/","events":["nope"]}', "application/json"),
    ("events str", '{"url":"https://h.example.com/","events":"order.paid"}', "application/json"),
    ("events dict", '{"url":"https://h.example.com/","events":{"a":1}}', "application/json"),
    ("events null item", '{"url":"https://h.example.com/","events":[null]}', "application/json"),
    ("events list item", '{"url":"https://h.example.com/","events":[["order.paid"]]}', "application/json"),
    ("port0", '{"url":"https://h.example.com:0/","events":["order.paid"]}', "application/json"),
    ("port65536", '{"url":"https://h.example.com:65536/","events":["order.paid"]}', "application/json"),
    ("port99999", '{"url":"https://h.example.com:99999/","events":["order.paid"]}', "application/json"),
    ("ipv6 mapped", '{"url":"https://[::ffff:127.0.0.1]/","events":["order.paid"]}', "application/json"),
    ("6to4", '{"url":"https://[2002:a9fe:a9fe::]/","events":["order.paid"]}', "application/json"),
    ("unicode host", '{"url":"https://\u4f8b\u3048.\u30c6\u30b9\u30c8/","events":["order.paid"]}', "application/json"),
    ("huge", '{"url":"https://h.example.com/' + "a" * 5000 + '","events":["order.paid"]}', "application/json"),
    ("url int", '{"url":5,"events":["order.paid"]}', "application/json"),
    ("localhost", '{"url":"https://localhost/","events":["order.paid"]}', "application/json"),
    ("nested localhost", '{"url":"https://a.localhost/","events":["order.paid"]}', "application/json"),
    ("unknown field", '{"url":"https://h.example.com/","events":["order.paid"],"secret":"x"}', "application/json"),
    ("dup events", '{"url":"https://h.example.com/","events":["order.paid","order.paid","order.paid","order.paid","order.paid","order.paid","order.paid","order.paid","order.paid","order.paid","order.paid","order.paid","order.paid"]}', "application/json"),
    ("desc nul", '{"url":"https://h.example.com/","events":["order.paid"],"description":"a\\u0000b"}', "application/json"),
    ("nonascii path", '{"url":"https://h.example.com/\u00fc","events":["order.paid"]}', "application/json"),
])
def test_odd_create(kind, body, ctype, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    settings.WEBHOOKS_ALLOW_HTTP = False
    organizer = make_organizer("Dora")
    c = as_user(organizer.user)
    c.raise_request_exception = False
    r = c.generic("POST", API, body.encode(), content_type=ctype)
    try:
        j = r.json()
    except Exception:
        j = r.content[:200]
    print("CREATE", kind, r.status_code, j.get("code") if isinstance(j, dict) else j, (j.get("errors") if isinstance(j, dict) else ""), j.get("url") if isinstance(j, dict) else "")
    assert r.status_code < 500


def test_odd_paths():
    organizer = make_organizer("Dora")
    e = subscribe(organizer, "https://a.example.com/x", ["order.paid"])
    c = as_user(organizer.user)
    c.raise_request_exception = False
    for method, path, body in [
        ("get", f"{API}/999999999999999999", None),
        ("get", f"{API}/0", None),
        ("patch", f"{API}/{e.pk}", "[]"),
        ("patch", f"{API}/{e.pk}", '{"active":"maybe"}'),
        ("patch", f"{API}/{e.pk}", '{"url":null}'),
        ("patch", f"{API}/{e.pk}", '{"events":[]}'),
        ("post", f"{API}/{e.pk}/deliveries/00000000000000000000000000000000/replay", None),
        ("post", f"{API}/{e.pk}/ping", '{"x":1}'),
        ("get", f"{API}/{e.pk}/deliveries?page=abc", None),
        ("get", f"{API}/{e.pk}/deliveries?page_size=100000", None),
        ("get", f"{API}/", None),
        ("delete", f"{API}", None),
        ("put", f"{API}/{e.pk}", '{}'),
    ]:
        r = getattr(c, method)(path, data=body, content_type="application/json") if body is not None else getattr(c, method)(path)
        try:
            code = r.json().get("code")
        except Exception:
            code = r.content[:80]
        print("PATH", method, path[-40:], body, r.status_code, code)
        assert r.status_code < 500


def test_anonymous():
    from rest_framework.test import APIClient
    c = APIClient()
    r = c.get(API)
    print("ANON", r.status_code, r.json().get("code"))
    r = c.post(API, {}, format="json")
    print("ANON POST", r.status_code, r.json().get("code"))


def test_slow_drip_exceeds_timeout(settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(8):  # one header byte every 0.3 s: each read is within the timeout
            time.sleep(0.3)
            conn.sendall(b"X")
        conn.sendall(b": y\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    started = time.monotonic()
    result = sending.post(f"http://127.0.0.1:{port}/", body=b"{}", headers={})
    took = time.monotonic() - started
    print("DRIP", result, round(took, 2), "timeout", settings.WEBHOOKS_TIMEOUT_SECONDS)
    assert took < settings.WEBHOOKS_TIMEOUT_SECONDS * 2


def test_port0_goes_to_443(monkeypatch, settings):
    seen = {}
    def fake_resolve(host, port):
        seen["port"] = port
        raise sending.Refused("stop")
    monkeypatch.setattr(sending, "resolve", fake_resolve)
    sending.post("https://h.example.com:0/", body=b"{}", headers={})
    print("PORT0 ->", seen)
