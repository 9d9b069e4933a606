"""With PROMETHEUS_MULTIPROC_DIR, the values of separate processes (gunicorn's workers, a Celery
worker's pool) add up in one exposition, and a restart starts from an empty directory."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def run(code: str, directory: Path) -> str:
    """``code`` in a fresh interpreter (prometheus_client reads the variable at import)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(  # noqa: S603  (our own interpreter and code)
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


COUNT = """
from observability import metrics
metrics.ORDERS_PLACED.inc({placed})
metrics.SOLD_OUT.labels("api").inc()
metrics.HTTP_DURATION.labels("api/v1/orders", "POST", "2xx").observe(0.02)
"""
SHOW = "import sys; from observability import metrics; sys.stdout.write(metrics.exposition()[0].decode())"


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return None


def test_two_processes_values_add_up_in_a_third_ones_exposition(tmp_path):
    directory = tmp_path / "metrics"  # created by the module when missing
    run(COUNT.format(placed=2), directory)
    run(COUNT.format(placed=3), directory)
    assert len(list(directory.glob("counter_*.db"))) == 2  # one file per process

    text = run(SHOW, directory)
    assert sample(text, "eventflow_orders_placed_total") == 5
    assert sample(text, "eventflow_sold_out_total", source="api") == 2
    count = "eventflow_http_request_duration_seconds_count"
    assert sample(text, count, route="api/v1/orders", method="POST", status="2xx") == 2
    bucket = "eventflow_http_request_duration_seconds_bucket"
    assert sample(text, bucket, route="api/v1/orders", le="0.025") == 2
    assert sample(text, bucket, route="api/v1/orders", le="0.01") == 0


def test_a_dead_workers_values_are_folded_into_the_archive_and_its_files_removed(tmp_path):
    counted = COUNT + "import os; print(os.getpid())"
    first = int(run(counted.format(placed=2), tmp_path))
    second = int(run(counted.format(placed=3), tmp_path))
    before = run(SHOW, tmp_path)
    fold = "import sys; from observability import metrics; metrics.process_exited(int(sys.argv[1]))"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for pid in (first, second):  # what gunicorn's master does when a worker exits (child_exit)
        subprocess.run([sys.executable, "-c", fold, str(pid)], cwd=ROOT, env=env, check=True, timeout=60)  # noqa: S603

    names = sorted(path.name for path in tmp_path.glob("*.db"))
    assert [name for name in names if str(first) in name or str(second) in name] == []
    assert {"counter_archive.db", "histogram_archive.db"} <= set(names)
    after = run(SHOW, tmp_path)
    assert sample(after, "eventflow_orders_placed_total") == sample(before, "eventflow_orders_placed_total") == 5
    for le in ("0.005", "0.025", "+Inf"):
        bucket = "eventflow_http_request_duration_seconds_bucket"
        assert sample(after, bucket, route="api/v1/orders", le=le) == sample(
            before, bucket, route="api/v1/orders", le=le
        )
    assert sample(after, "eventflow_http_request_duration_seconds_sum", route="api/v1/orders") == pytest.approx(0.04)

    # a later worker's values add to the archive's
    third = int(run(counted.format(placed=1), tmp_path))
    subprocess.run([sys.executable, "-c", fold, str(third)], cwd=ROOT, env=env, check=True, timeout=60)  # noqa: S603
    assert sample(run(SHOW, tmp_path), "eventflow_orders_placed_total") == 6
    assert sample(run(SHOW, tmp_path), "eventflow_sold_out_total", source="api") == 3


def test_a_restart_empties_the_directory(tmp_path):
    run(COUNT.format(placed=4), tmp_path)
    # what gunicorn's on_starting hook and a Celery worker's celeryd_init do
    run("from observability import metrics; metrics.reset_multiprocess_dir()", tmp_path)
    assert list(tmp_path.glob("*.db")) == []
    assert sample(run(SHOW, tmp_path), "eventflow_orders_placed_total") == 0  # not the 4 of the last run


def test_gunicorn_hooks_reset_the_directory_and_forget_a_dead_worker(tmp_path):
    run(COUNT.format(placed=1), tmp_path)
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"")  # a dead worker's live gauge
    hooks = f"""
import runpy
conf = runpy.run_path({str(ROOT / "deploy" / "gunicorn.conf.py")!r})
class Worker: pid = 4242
conf["child_exit"](None, Worker())
import os; assert not os.path.exists({str(tmp_path / "gauge_livesum_4242.db")!r})
conf["on_starting"](None)
"""
    run(hooks, tmp_path)
    assert list(tmp_path.glob("*.db")) == []


@pytest.mark.django_db
def test_a_celery_worker_serves_its_own_metrics_under_the_same_rules(settings):
    from observability import metrics
    from observability.worker import serve

    metrics.HOLDS_EXPIRED.inc(0)
    server = serve(0, "127.0.0.1")
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
            assert b"eventflow_holds_expired_total" in response.read()
        settings.METRICS_TOKEN = "worker-token"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 401
        request = urllib.request.Request(url, headers={"Authorization": "Bearer worker-token"})
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            assert response.status == 200
        settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)  # noqa: S310
        assert refused.value.code == 403
    finally:
        server.shutdown()
        server.server_close()
