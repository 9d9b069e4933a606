"""Running code in a fresh interpreter whose Django reads only the environment given: what a
deployment with those variables would see (settings, start-up), without this test process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRELUDE = (
    "import json, os, django\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'eventflow.settings')\ndjango.setup()\n"
)


def django_json(code: str, *, env: dict[str, str]) -> dict:
    """Run ``code`` after ``django.setup()`` with ``env`` (and PATH) only; it prints one JSON object last."""
    result = subprocess.run(  # noqa: S603 - the tests' own code, run by this interpreter
        [sys.executable, "-c", PRELUDE + code],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
