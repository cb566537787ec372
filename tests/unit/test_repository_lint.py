"""The repository's own Python (hooks, scripts, benchmarks, tests) passes ruff, as the generated
projects' code must: `ruff check` and `ruff format --check` with pyproject.toml's settings."""

from __future__ import annotations

import subprocess

import pytest
from conftest import REPO_ROOT, tool

FOLDERS = ("hooks", "scripts", "benchmarks", "tests")


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_passes(command: list[str]) -> None:
    result = subprocess.run(
        [tool("ruff"), *command, *FOLDERS],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
