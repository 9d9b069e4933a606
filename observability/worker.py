"""Metrics of a Celery worker: its processes count holds expired by the sweep, queued purchases
placed or refused, refunds sent. They are other processes (other containers, in Compose) than
gunicorn's, so the worker serves its own ``/metrics`` on ``METRICS_PORT`` when that is set.

With ``PROMETHEUS_MULTIPROC_DIR`` set, the pool's processes write their values to that directory
and the worker's main process adds them up for each scrape (``metrics.exposition``); the main
process empties it when the worker starts (``celeryd_init``, before the pool forks). Give each
worker its own directory: Compose's containers each have their own.

The access rules are the web's (``METRICS_ALLOWED_NETWORKS``, ``METRICS_TOKEN``), on the peer's
address (no proxy stands in front of a worker). Connected from ``eventflow/celery.py``; this
module imports nothing from Django at import time.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery.signals import celeryd_init, worker_ready

from . import metrics

logger = logging.getLogger("eventflow.metrics")

_server: WSGIServer | None = None


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # a scrape every 15 s is not news
        pass


def metrics_app(environ: dict, start_response) -> list[bytes]:
    """WSGI: the worker's metrics, under the same access rules as the web's ``/metrics``."""
    from django.conf import settings

    from .access import address_allowed, client_address, parse_networks, token_matches

    if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not found\n"]
    address = client_address({"REMOTE_ADDR": environ.get("REMOTE_ADDR", "")}, 0)
    if not address_allowed(address, parse_networks(tuple(settings.METRICS_ALLOWED_NETWORKS))):
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"Forbidden\n"]
    token = settings.METRICS_TOKEN
    if token and not token_matches(environ.get("HTTP_AUTHORIZATION", ""), token):
        start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
        return [b"Unauthorized\n"]
    body, content_type = metrics.exposition()
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def serve(port: int, address: str = "0.0.0.0") -> WSGIServer:  # noqa: S104 - reached only on the Compose network
    """Serve the worker's metrics in a daemon thread; returns the server (``server_port`` if 0)."""
    global _server
    server = make_server(address, port, metrics_app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    _server = server
    return server


@celeryd_init.connect(dispatch_uid="observability.worker_reset")
def _reset(**kwargs: Any) -> None:
    metrics.reset_multiprocess_dir()


@worker_ready.connect(dispatch_uid="observability.worker_serve")
def _serve_metrics(**kwargs: Any) -> None:
    port = os.environ.get("METRICS_PORT", "")
    if not port or _server is not None:
        return
    try:
        server = serve(int(port))
    except (OSError, ValueError) as exc:  # the worker works without its metrics
        logger.error("Worker metrics not served on METRICS_PORT=%r: %s", port, exc)
        return
    logger.info("Worker metrics on :%s/metrics", server.server_port)
    if not metrics.multiprocess_dir():
        logger.warning(
            "METRICS_PORT without PROMETHEUS_MULTIPROC_DIR: this process serves only its own counts, "
            "not those of a prefork pool's processes (set the variable, or run --pool threads or solo)"
        )
