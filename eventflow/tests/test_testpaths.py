"""Every app's tests are in the suite `make test` runs: pytest's ``testpaths`` names each app with tests."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_app_with_tests_is_in_the_suite():
    testpaths = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"])
    apps_with_tests = {path.parent.parent.name for path in ROOT.glob("*/tests/__init__.py")}
    assert apps_with_tests <= testpaths, f"not run by make test: {sorted(apps_with_tests - testpaths)}"
