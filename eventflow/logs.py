"""Log records that say which request (or the task it queued) they belong to, as JSON or plain lines.

One id follows a request from nginx (which mints or keeps the caller's ``X-Request-ID``)
through Django (``RequestIdMiddleware`` stores it here and returns it) into every log line
of that request, into the Celery tasks it queues (a message header, restored in the worker
around the task), and onto Sentry events. An operator with the id from a client's report
finds every line of that purchase, its confirmation email's task included.

The id lives in a context variable: per thread under gunicorn's sync and gthread workers
and Celery's pools, per task under asyncio. ``RequestIdFilter`` (on the console handler)
copies it onto each record, so it costs one lookup per log line and nothing per request
that logs nothing.

This module is imported by ``LOGGING`` when Django configures logging, before the apps
load: it imports nothing from Django.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar, Token
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

#: The id of the request (or of the request that queued the task) being handled; None outside both.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

#: The Celery message header that carries the id from the request to the task.
TASK_HEADER = "request_id"

# What a caller may send as its own id: the characters nginx keeps too (deploy/nginx), no spaces,
# quotes or line breaks that could forge a log line or a header, at most 200 of them.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")


def sane_request_id(value: str | None) -> str | None:
    """The caller's id if it is safe to log and echo, else None (a new one is minted)."""
    if value and _SANE_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    """32 random hex digits, the shape of a uuid4's hex: 0.7 µs, where ``uuid.uuid4().hex`` costs 4 µs."""
    return os.urandom(16).hex()


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record the handler writes (None outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: timestamp (UTC, ISO 8601), level, logger, message, request_id,
    exc_info when there is an exception, and any ``extra=`` fields of the call.

    ``request_id`` is left out when there is none, so lines of the server's own life
    (start-up, beat's ticks) do not carry a null.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        if log_data.get("request_id", "") is None:
            del log_data["request_id"]
        return log_data


class PlainFormatter(logging.Formatter):
    """The human-readable line of ``make run``, with ``[request_id]`` after the logger when there is one."""

    def __init__(self, fmt: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s%(rid)s %(message)s", *args, **kwargs)

    def formatMessage(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return super().formatMessage(record)


# --- Celery: the id travels with the task -----------------------------------------------
# Connected in eventflow/celery.py. With eager tasks (tests, the embedded default) a task runs
# inside the request that queued it, and the variable is simply still set.

_task_tokens: dict[str, Token] = {}


def on_before_task_publish(headers: dict | None = None, **kwargs: Any) -> None:
    """Celery ``before_task_publish``: the current id goes into the message's headers."""
    rid = request_id.get()
    if rid is not None and headers is not None:
        headers.setdefault(TASK_HEADER, rid)


def on_task_prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    """Celery ``task_prerun``: the worker takes the id from the message for the task's run.

    Custom headers reach ``task.request`` as attributes (protocol 2) or, for a task applied
    with ``headers=``, in ``task.request.headers``. Without one, the current id stays (an
    eager task in a request) and a worker's is None.
    """
    req = getattr(task, "request", None)
    rid = getattr(req, TASK_HEADER, None) or (getattr(req, "headers", None) or {}).get(TASK_HEADER)
    rid = sane_request_id(rid) if isinstance(rid, str) else None
    if task_id is not None:
        _task_tokens[task_id] = request_id.set(rid or request_id.get())


def on_task_postrun(task_id: str | None = None, **kwargs: Any) -> None:
    """Celery ``task_postrun``: back to what the variable held before the task (None in a worker)."""
    token = _task_tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        try:
            request_id.reset(token)
        except ValueError:  # set in another context (cannot happen with Celery's pools)
            request_id.set(None)


class AccessJsonFormatter(JsonFormatter):
    """gunicorn's access log as JSON (deploy/gunicorn.conf.py): one object per request with its fields.

    gunicorn logs each request with its atoms (a dict) as the record's arguments; the line it
    would print becomes named fields. The request id is the response's ``X-Request-ID``, which
    the app always sets (the caller's or nginx's, or one it minted).
    """

    _FIELDS = {
        "remote_addr": "h",
        "forwarded_for": "{x-forwarded-for}i",
        "method": "m",
        "path": "U",
        "query": "q",
        "status": "s",
        "bytes": "B",
        "duration_ms": "M",
        "user_agent": "a",
        "request_id": "{x-request-id}o",
    }

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        atoms = record.args
        if isinstance(atoms, dict):
            log_data["message"] = atoms.get("r", log_data.get("message"))
            for field, atom in self._FIELDS.items():
                value = atoms.get(atom)  # gunicorn lower-cases the header atoms' names
                log_data[field] = None if value in ("-", None) else value
            if isinstance(log_data.get("status"), str) and log_data["status"].isdigit():
                log_data["status"] = int(log_data["status"])
