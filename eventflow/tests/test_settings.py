"""Start-up refuses configuration that is unsafe to run with: placeholders copied from .env.example."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eventflow.tests.fresh_process import django_json

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = dict(
    line.split("=", 1)
    for line in (ROOT / ".env.example").read_text().splitlines()
    if line and not line.startswith("#") and "=" in line
)


def start(tmp_path, **env) -> subprocess.CompletedProcess:
    """`manage.py check` in a clean environment: the settings are read as a deployment would."""
    base = {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_example_secret_key_is_refused(tmp_path):
    result = start(tmp_path, SECRET_KEY=EXAMPLE["SECRET_KEY"])
    assert result.returncode != 0
    assert "SECRET_KEY is still the placeholder from .env.example" in result.stderr


def test_the_example_postgres_password_is_refused(tmp_path):
    url = f"postgres://eventflow:{EXAMPLE['POSTGRES_PASSWORD']}@127.0.0.1:5432/eventflow"
    result = start(tmp_path, SECRET_KEY="k" * 60, DATABASE_URL=url)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_a_placeholder_jwt_key_is_refused(tmp_path):
    result = start(tmp_path, SECRET_KEY="k" * 60, JWT_SIGNING_KEY="replace-me")
    assert result.returncode != 0
    assert "JWT_SIGNING_KEY" in result.stderr


@pytest.mark.parametrize("env", [{}, {"SECRET_KEY": "a-real-secret-" * 5}])
def test_real_or_generated_secrets_start(tmp_path, env):
    result = start(tmp_path, **env)
    assert result.returncode == 0, result.stderr


def _database_settings(tmp_path, **env) -> dict:
    """DATABASES as a deployment with ``env`` would read them (no connection is made)."""
    code = "from django.conf import settings; print(json.dumps(settings.DATABASES))"
    return django_json(code, env={"DATA_DIR": str(tmp_path), "SECRET_KEY": "k" * 60, **env})


def test_behind_pgbouncer_no_session_state_outlives_a_transaction(tmp_path):
    url = "postgres://eventflow:secret@pgbouncer:5432/eventflow"
    replica = "postgres://eventflow:secret@replica:5432/eventflow"
    databases = _database_settings(
        tmp_path, DATABASE_URL=url, DATABASE_POOLER="pgbouncer", DATABASE_REPLICA_URL=replica
    )
    for alias in ("default", "replica"):
        assert databases[alias]["DISABLE_SERVER_SIDE_CURSORS"] is True  # .iterator() would hold a WITH HOLD cursor
        assert databases[alias]["OPTIONS"]["prepare_threshold"] is None  # psycopg would prepare statements
    assert databases["replica"]["HOST"] == "replica"
    assert databases["replica"]["TEST"]["MIRROR"] == "default"


def test_straight_to_postgresql_keeps_server_side_cursors_and_has_no_replica(tmp_path):
    databases = _database_settings(tmp_path, DATABASE_URL="postgres://eventflow:secret@db:5432/eventflow")
    assert set(databases) == {"default"}
    assert databases["default"].get("DISABLE_SERVER_SIDE_CURSORS", False) is False
    assert "prepare_threshold" not in databases["default"]["OPTIONS"]


def test_an_unknown_pooler_is_refused(tmp_path):
    result = start(tmp_path, SECRET_KEY="k" * 60, DATABASE_POOLER="pgpool")
    assert result.returncode != 0
    assert "DATABASE_POOLER" in result.stderr
