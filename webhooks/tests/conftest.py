"""A real HTTP receiver on 127.0.0.1 (with private networks allowed, as in the README's demo) and a
fresh subscriptions memo for every test (the database rolls back between tests; the memo does not)."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from webhooks import sending, subscriptions


class Receiver:
    """Records each POST (path, headers, body); answers with the next of ``statuses`` (then 200)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOKS_ALLOW_HTTP = True
    subscriptions.forget()
    subscriptions._event_organizers.clear()
    yield settings
    subscriptions.forget()
    subscriptions._event_organizers.clear()


@pytest.fixture
def fake_dns(monkeypatch):
    """``answers[host]``: the addresses DNS gives for ``host``, one list per lookup (the last repeats);
    every other host resolves for real (PostgreSQL, Redis). ``lookups`` counts the fake ones."""
    real = socket.getaddrinfo
    state = {"answers": {}, "lookups": []}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in state["answers"]:
            return real(host, port, *args, **kwargs)
        state["lookups"].append(host)
        answers = state["answers"][host]
        ips = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]

    monkeypatch.setattr(sending.socket, "getaddrinfo", getaddrinfo)
    return state
