"""Error reporting to Sentry, on only when ``SENTRY_DSN`` is set (settings.py calls ``init``).

Errors of the web processes (Django) and of the workers (Celery) are reported, each tagged
with the request id of eventflow/logs.py, so an event leads to the request's log lines and
back. No personal data is sent (``send_default_pii=False``: no cookies, no user's email or
address) and no performance traces unless ``SENTRY_TRACES_SAMPLE_RATE`` asks for some:
a purchase must not pay for spans nobody reads.
"""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

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
    **options: Any,
) -> None:
    """Start the Sentry client. ``options`` go to ``sentry_sdk.init`` as they are (tests pass a transport)."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=tag_request_id,
        integrations=[
            # No spans around each middleware and signal receiver: they cost every request even
            # when no trace is sampled.
            DjangoIntegration(middleware_spans=False, signals_spans=False),
            CeleryIntegration(),
        ],
        **options,
    )
