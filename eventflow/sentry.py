"""Error reporting to Sentry, on only when ``SENTRY_DSN`` is set (settings.py calls ``init``).

Errors of the web processes and of the workers (Celery) are reported, each tagged with the
request id of eventflow/logs.py, so an event leads to the request's log lines (gunicorn's
access line among them: method, path, status) and back. No personal data is sent
(``send_default_pii=False``).

What a purchase pays for it decides the integrations (bench/purchase_cost.py, callgrind,
instructions per purchase: 5.48 M without Sentry):

- by default, errors reach Sentry through the logging integration: every unhandled exception
  is logged at ERROR with its traceback (eventflow/api/errors.py, ``django.request``), and
  Celery's integration reports failed tasks. A purchase: 5.51 M (+0.5 %).
- ``SENTRY_DJANGO=true`` adds Sentry's Django integration: the request's URL, method and
  headers on each event, and transactions when tracing is on. Even with tracing off it forks
  scopes and records breadcrumbs for every request and SQL statement: 7.88 M (+44 %). It is
  on by default when ``SENTRY_TRACES_SAMPLE_RATE`` is set, which needs it.

Sessions (release health) and the integrations Sentry enables by itself (Redis: a wrapper
around every command) are off: they cost every request and nobody asked for them.
"""

from __future__ import annotations

import logging
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from eventflow.logs import request_id


def tag_request_id(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """``before_send``: the event carries the request id it happened in (a tag, searchable).

    Read when an event is sent, not set per request, so requests without errors pay nothing.
    """
    rid = request_id.get()
    if rid is not None:
        tags = event.get("tags")
        if isinstance(tags, dict):
            tags.setdefault("request_id", rid)
        else:
            event["tags"] = {"request_id": rid}
    return event


def init(
    *,
    dsn: str,
    environment: str,
    traces_sample_rate: float | None = None,
    release: str | None = None,
    django: bool = False,
    **options: Any,
) -> None:
    """Start the Sentry client. ``options`` go to ``sentry_sdk.init`` as they are (tests pass a transport)."""
    integrations = [LoggingIntegration(level=logging.INFO, event_level=logging.ERROR), CeleryIntegration()]
    if django:
        # No spans around each middleware and signal receiver: they cost every request even
        # when no trace is sampled.
        integrations.append(DjangoIntegration(middleware_spans=False, signals_spans=False))
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=tag_request_id,
        integrations=integrations,
        auto_enabling_integrations=False,
        auto_session_tracking=False,
        **options,
    )
