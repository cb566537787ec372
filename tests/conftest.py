"""Shared fixtures: render the template with given answers, find the vendored reference files.

Rendering goes through copier's Python API (what the CLI calls) against the working tree,
with tasks skipped unless a test asks for them, so each render costs well under a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from copier import run_copy

REPO_ROOT = Path(__file__).resolve().parent.parent

Render = Callable[..., Path]


def render_project(
    destination: Path, answers: dict[str, Any] | None = None, *, tasks: bool = False
) -> Path:
    """Copy the template into `destination` with `answers` on top of the defaults."""
    run_copy(
        str(REPO_ROOT),
        str(destination),
        data=answers or {},
        defaults=True,
        unsafe=True,
        skip_tasks=not tasks,
        quiet=True,
        vcs_ref="HEAD",
    )
    return destination


@pytest.fixture
def render(tmp_path: Path) -> Render:
    """Render into a fresh folder under tmp_path: `render({"task_type": "nlp"})`."""
    counter = iter(range(1000))

    def _render(answers: dict[str, Any] | None = None, *, tasks: bool = False) -> Path:
        return render_project(tmp_path / f"project{next(counter)}", answers, tasks=tasks)

    return _render


@pytest.fixture(scope="session")
def render_cache(tmp_path_factory: pytest.TempPathFactory) -> Render:
    """Render once per answer set per test run, shared by every test and xdist worker.

    Several levels (render checks, validators, the project's own tests) look at the same
    answer sets; rendering each once keeps the suite fast. Renders land in a temporary
    folder first and are moved into place atomically, so parallel workers never see a
    half-written project. Treat the result as read-only: copy it before changing it.
    """
    # Under xdist each worker's base temp is a child of this run's folder, which they all
    # share; without xdist the base temp itself is this run's folder (its parent would
    # outlive the run and serve stale renders to the next one).
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "render-cache"
    root.mkdir(exist_ok=True)

    def _cached(answers: dict[str, Any] | None = None) -> Path:
        key = hashlib.sha256(json.dumps(answers or {}, sort_keys=True).encode()).hexdigest()
        # The folder name becomes the default project and package name: keep it valid.
        final = root / f"p{key[:12]}" / "project"
        if not final.exists():
            staging = Path(tempfile.mkdtemp(dir=root))
            render_project(staging / "project", answers)
            try:
                final.parent.mkdir()
                (staging / "project").rename(final)
            except FileExistsError:
                pass  # another worker won the race; its render is identical
            shutil.rmtree(staging, ignore_errors=True)
        return final

    return _cached


def tool(name: str) -> str:
    """Path of a validator; the suite fails (never skips) when one is missing."""
    local = REPO_ROOT / "node_modules" / ".bin" / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed; run the test command from README.md")
    return found


def vendored(relative: str) -> Path:
    """A reference file this repository keeps (facts under data/sources/, schemas under
    tests/schemas/): read from the checkout, never downloaded, so a clone anywhere runs the
    suite offline. Fails, never skips, when the file is missing."""
    path = REPO_ROOT / relative
    if not path.is_file():
        pytest.fail(f"{relative} is missing from the checkout; restore it with git")
    return path


def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Refuse to run when --dist loadgroup does not group: the container tests share their
    image builds through one xdist group and the cluster tests one Slurm cluster through
    another, and a pytest/xdist pair that silently ignores groups (pytest 9.2 with xdist 3.8,
    pytest-xdist#1386) would run them on every worker."""
    if node.config.getoption("dist", None) != "loadgroup":
        return
    mark = re.compile(r'xdist_group\("(\w+)"\)')
    grouped = {}
    for path in (REPO_ROOT / "tests").glob("*/test_*.py"):
        found = mark.search(path.read_text())
        if found:
            grouped[path.relative_to(REPO_ROOT).as_posix()] = found.group(1)
    ungrouped = [
        i for i in ids if i.split("::")[0] in grouped and f"@{grouped[i.split('::')[0]]}" not in i
    ]
    if ungrouped:
        raise pytest.UsageError(
            f"pytest-xdist did not group {len(ungrouped)} tests ({ungrouped[0]}); install the "
            "versions pyproject.toml's test group names (bash scripts/test.sh does)"
        )
