"""Gunicorn settings for the image: ``gunicorn eventflow.wsgi -c deploy/gunicorn.conf.py``.

Gunicorn runs behind nginx (``deploy/nginx``; the ``proxy`` service in
docker-compose.yml). Sync workers serve one connection at a time, start to finish,
so a client that sends half a request holds a whole worker until ``timeout``
kills it. Only nginx, which reads every request and every response completely
before passing it on, may face clients. Without nginx, a few idle sockets stall
the API (``bench/idle_sockets.py`` measures this).

Command-line flags and ``GUNICORN_CMD_ARGS`` override anything here, e.g.
``GUNICORN_CMD_ARGS="--timeout 60"``.
"""

import os

bind = "0.0.0.0:8000"
# Sync workers: simple and predictable. Each one holds a database connection,
# so size this with the database in mind, not just the CPU count. On 2 cores shared with
# PostgreSQL, 2 to 6 workers sold at the same rate (bench/README.md, "Issue 10"): a purchase
# is CPU, and more workers than cores only queue for them.
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))

# A worker that is silent this long is killed and replaced. nginx's
# proxy_read_timeout (35 s) is longer, so gunicorn decides. nginx then answers
# with a 503 problem.
timeout = 30
# On SIGTERM, requests in flight get this long to finish. docker-compose.yml
# gives the web container 30 s (stop_grace_period) before it sends SIGKILL.
graceful_timeout = 25
# Sync workers close every connection (nginx opens a new one per request), so this
# matters only if GUNICORN_CMD_ARGS switches to gthread or gevent workers.
keepalive = 2

# Replace each worker after about this many requests, so a slow leak stays
# bounded. The jitter keeps the workers from restarting all at once.
max_requests = 2000
max_requests_jitter = 200

# The heartbeat file lives in memory. On the container's overlay disk, its
# fchmod can block a worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - a fixed system path, not a temp file

# Trust X-Forwarded-Proto only from private networks, where nginx lives. The web
# container publishes no port. Trust only the header nginx sets: any other
# scheme header comes straight from the client.
forwarded_allow_ips = os.environ.get(
    "FORWARDED_ALLOW_IPS", "127.0.0.1,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
)
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# Access log on stdout. The peer (%(h)s) is nginx, so the line also records the
# client chain (X-Forwarded-For) and the request ID: the response's, which the app
# always sets (nginx's, which it passes on, or one the app minted without nginx).
accesslog = "-"
access_log_format = '%(h)s %({x-forwarded-for}i)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s'

# LOG_FORMAT=json (docker-compose.yml): gunicorn's own lines and its access log as JSON objects,
# like the app's (eventflow/logs.py); the access log's line becomes named fields.
if os.environ.get("LOG_FORMAT") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "eventflow.logs.JsonFormatter"},
            "access": {"()": "eventflow.logs.AccessJsonFormatter"},
        },
        "handlers": {
            "error": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
        },
        "root": {"handlers": ["error"], "level": "INFO"},  # until Django's LOGGING takes over in the workers
        "loggers": {
            "gunicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


# Metrics: with PROMETHEUS_MULTIPROC_DIR set, every worker writes its values to files there and
# /metrics adds them up (observability/metrics.py). The master empties the directory before the
# first worker starts, so a restart's counters begin at zero (Prometheus' rate() reads a reset)
# instead of adding the last run's dead workers. A worker that exits (max_requests above) has its
# counts folded into the directory's archive files and its own files removed, so the files a
# scrape reads stay as many as the live workers.
def on_starting(server):
    from observability.metrics import reset_multiprocess_dir

    reset_multiprocess_dir()


def child_exit(server, worker):
    from observability.metrics import process_exited

    process_exited(worker.pid)
