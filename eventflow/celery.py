"""The Celery application, configured from Django settings (``CELERY_*``).

Tasks go to named queues (``settings.TASK_QUEUES``: expiry, onsale, payments, email) or the default
queue, so each kind of work has its own workers and a backlog of one never delays another.
A worker started without ``-Q`` reads every queue (the single-worker set-up keeps working);
docker-compose.yml starts one worker per queue group with ``-Q``.
"""

import logging.config
import os

from celery import Celery, signals
from kombu import Exchange, Queue

from eventflow import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventflow.settings")

app = Celery("eventflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Metrics: empties PROMETHEUS_MULTIPROC_DIR at start, serves /metrics on METRICS_PORT (observability/worker.py).
import observability.worker  # noqa: E402, F401


def queue_name(queue: str) -> str:
    """The broker's name for one of ``TASK_QUEUES``' queues (``CELERY_QUEUE_PREFIX`` + name)."""
    from django.conf import settings

    return f"{settings.CELERY_QUEUE_PREFIX}{queue}"


def route_task(name: str, args, kwargs, options, task=None, **kw) -> dict | None:
    """Celery router (``CELERY_TASK_ROUTES``): the task's queue from ``settings.TASK_QUEUES``.

    Read when a task is sent, not when settings load, so the prefix a test run sets for itself
    (conftest.py) holds for every queue. Beat sends through the same router."""
    from django.conf import settings

    queue = settings.TASK_QUEUES.get(name)
    return {"queue": queue_name(queue)} if queue else None


@app.on_after_configure.connect
def _declare_queues(sender: Celery, **kwargs) -> None:
    """Declare the default queue and every named one: a worker without ``-Q`` consumes them all."""
    from django.conf import settings

    names = [sender.conf.task_default_queue, *sorted({queue_name(q) for q in settings.TASK_QUEUES.values()})]
    sender.conf.task_queues = [Queue(name, Exchange(name), routing_key=name) for name in names]


# --- Logs and request ids (issue 12) ---------------------------------------------------
# The id of the request that queued a task rides in the message and is set around the task's
# run in the worker, so the task's log lines (and Sentry events) carry it (eventflow/logs.py).
signals.before_task_publish.connect(logs.on_before_task_publish, weak=False)
signals.task_prerun.connect(logs.on_task_prerun, weak=False)
signals.task_postrun.connect(logs.on_task_postrun, weak=False)


@signals.setup_logging.connect(weak=False)
def _log_as_django_does(**kwargs) -> None:
    """Worker and beat log through Django's LOGGING (JSON or plain, with request ids), not Celery's own.

    With a receiver for this signal Celery leaves logging alone; without it, Celery puts its
    own handler on its task loggers (``celery.task``, not propagated), whose lines would
    escape the JSON format. LOG_LEVEL sets the level; ``--loglevel`` no longer does.
    """
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


# Beat's heartbeat for /api/v1/health: registered here, as it belongs to no app.
import eventflow.heartbeat  # noqa: E402, F401
