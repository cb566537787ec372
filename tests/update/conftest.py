"""Fixtures for update tests: a throw-away git repository of this template with three tags.

- v0: v1 with an older checkpoint format (FORMAT in checkpoint.py), for the checkpoint notice.
- v1: the working tree as it is (tracked and untracked files that git does not ignore).
- v2: v1 plus a newer image at the head of every candidate table of the image matrix: the
  next torch line on the same CUDA (pytorch/pytorch) or the next monthly release (NGC). This
  is what a routine template release looks like to a project with `torch_version: latest`.
- v3: v2, where Volta's newest image also moves to a newer CUDA line with a higher driver
  floor (not a real image: it exercises the driver-notice migration).

Projects are copied and updated with copier's CLI in a subprocess, as a user runs it, with a
git identity and a HOME of their own, so nothing from this machine's git config leaks in.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from update.repo import (
    CHECKPOINT_MODULE,
    MATRIX,
    REPO_ROOT,
    TEMPLATE_PARTS,
    TemplateRepo,
    add_newer_images,
    commit_all,
    git,
    isolated_env,
    load_matrix,
    raise_volta_driver_floor,
    save_matrix,
)


def template_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [
        Path(name)
        for name in listed.split("\0")
        if name
        and Path(name).parts[0] in TEMPLATE_PARTS
        and (REPO_ROOT / name).is_file()  # listed but deleted in the working tree
        and "__pycache__" not in Path(name).parts
    ]


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    """The template as a git repository tagged v1, v2 and v3 (see the module docstring)."""
    root = tmp_path_factory.mktemp("update")
    env = isolated_env(root / "home")
    repo = root / "copier-pytorch-cuda"
    for relative in template_files():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, repo / relative)
    git(repo, env, "init", "--quiet", "--initial-branch=main")
    # v0: an older checkpoint format, the one thing that differs from v1.
    checkpoint = repo / CHECKPOINT_MODULE
    current = checkpoint.read_text()
    older = re.sub(r"^FORMAT = (\d+)$", lambda m: f"FORMAT = {int(m[1]) - 1}", current, flags=re.M)
    assert older != current, "checkpoint.py names its FORMAT"
    checkpoint.write_text(older)
    git(repo, env, "add", "--all")
    git(repo, env, "commit", "--quiet", "--message", "template v0")
    git(repo, env, "tag", "v0")
    checkpoint.write_text(current)
    for tag, change in (("v1", None), ("v2", add_newer_images), ("v3", raise_volta_driver_floor)):
        if change:
            matrix = load_matrix(repo / MATRIX)
            change(matrix)
            save_matrix(repo / MATRIX, matrix)
        git(repo, env, "add", "--all")
        git(repo, env, "commit", "--quiet", "--message", f"template {tag}")
        git(repo, env, "tag", tag)
    return TemplateRepo(repo, env)


CopierRun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def copier_cli(template_repo: TemplateRepo) -> CopierRun:
    """Run `python -m copier ARGS` in `cwd` with the isolated git environment."""

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "copier", *args],
            cwd=cwd,
            env=template_repo.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"copier {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result

    return run


def data_args(answers: dict[str, Any]) -> list[str]:
    args = []
    for key, value in answers.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["--data", f"{key}={text}"]
    return args


@pytest.fixture
def copy_project(
    template_repo: TemplateRepo, copier_cli: CopierRun, tmp_path: Path
) -> Callable[..., Path]:
    """Copy the template at `ref` with `answers` into a fresh git repository, committed, as
    init_git would leave it (tasks are skipped: they are tested in tests/unit); with
    commit=False, a plain folder to compare against."""

    def copy_(
        answers: dict[str, Any], ref: str = "v1", name: str = "my-project", commit: bool = True
    ) -> Path:
        # Same folder name everywhere: it is the default project and package name.
        project = tmp_path / name / "my-project"
        copier_cli(
            "copy", "--trust", "--defaults", "--skip-tasks", "--vcs-ref", ref,
            *data_args(answers), str(template_repo.path), str(project),
            cwd=tmp_path,
        )  # fmt: skip
        if commit:
            git(project, template_repo.env, "init", "--quiet", "--initial-branch=main")
            commit_all(project, template_repo.env, "Initial commit from copier-pytorch-cuda")
        return project

    return copy_
