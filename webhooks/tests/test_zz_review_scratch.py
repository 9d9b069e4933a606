import socket
import pytest
from webhooks import sending
from .helpers import API, as_user, make_organizer

pytestmark = pytest.mark.django_db


def test_idna2003_host(receiver, monkeypatch, settings, django_capture_on_commit_callbacks):
    organizer = make_organizer("Dora")
    r = as_user(organizer.user).post(API, {"url": f"http://straße.de:{receiver.port}/hooks", "events": ["order.paid"]}, format="json")
    print("CREATE", r.status_code, r.json().get("url"))
    asked = []
    real = socket.getaddrinfo
    def gai(host, port, *a, **k):
        asked.append(host)
        return real("127.0.0.1", port, *a, **k)
    monkeypatch.setattr(sending.socket, "getaddrinfo", gai)
    res = sending.post(f"http://straße.de:{receiver.port}/hooks", body=b"{}", headers={})
    print("SENT", res, "resolver asked", asked, "Host header", receiver.requests[-1]["headers"].get("Host"))
