"""`copier update` and requirements/lock/: a dependency the user added survives, locked.

- A user adds a package to requirements/base.txt and locks it (`python scripts/lock.py`);
  `copier update` to v2 (a newer image) keeps the package in the requirements and in both
  locks, with no conflict marker anywhere, and `lock.py --check` passes.
- A lock that the merge left with conflict markers (both sides changed it) is resolved again
  by the relock migration for the merged requirements: no markers, the user's package and
  the template's kept, the check passes.
- When it cannot resolve (no network), the migration says so in one line with the command to
  run, and the update still ends with exit 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from update.repo import MARKER, TemplateRepo, assert_clean_merge, commit_all

REPO_ROOT = Path(__file__).resolve().parents[2]
RELOCK = REPO_ROOT / "hooks" / "migrations" / "relock.py"
TOOLS = Path(sys.executable).parent  # uv of this test run
USER_PACKAGE = "rich>=13"


def tool_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with this run's uv first on PATH and pip's machine-wide configuration off."""
    clean = {key: value for key, value in env.items() if not key.startswith("PIP_")}
    return {**clean, "PATH": f"{TOOLS}:{env['PATH']}", "PIP_CONFIG_FILE": os.devnull}


def locker(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/lock.py", *args],
        cwd=project, env=tool_env(env), capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip


def add_user_package(project: Path, env: dict[str, str]) -> None:
    with (project / "requirements" / "base.txt").open("a") as file:
        file.write(f"# Added by the project's user.\n{USER_PACKAGE}\n")
    result = locker(project, env)
    assert result.returncode == 0, result.stderr


def locked_names(project: Path, name: str) -> set[str]:
    text = (project / "requirements" / "lock" / name).read_text()
    return {line.split("==")[0] for line in text.splitlines() if "==" in line and line[0].isalnum()}


def test_update_keeps_the_users_locked_dependency(
    template_repo: TemplateRepo, copy_project, tmp_path: Path
) -> None:
    project = copy_project({})
    add_user_package(project, template_repo.env)
    commit_all(project, template_repo.env, "Add rich")

    result = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--trust", "--defaults", "--vcs-ref", "v2"],
        cwd=project, env=tool_env(template_repo.env), capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert_clean_merge(project)
    assert USER_PACKAGE in (project / "requirements" / "base.txt").read_text()
    for name in ("runtime.txt", "dev.txt"):
        assert "rich" in locked_names(project, name), name
    check = locker(project, template_repo.env, "--check")
    assert check.returncode == 0, check.stderr


def conflict(path: Path) -> None:
    """Markers around the first entry, as git's inline merge writes them."""
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line[0].isalnum())
    end = next(i for i in range(start + 1, len(lines)) if lines[i][0].isalnum())
    block = "".join(lines[start:end])
    merged = f"<<<<<<< before updating\n{block}=======\n{block}>>>>>>> after updating\n"
    path.write_text("".join(lines[:start]) + merged + "".join(lines[end:]))


def relock(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RELOCK), f"--project={project}"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_relock_migration_resolves_a_conflicted_lock(
    template_repo: TemplateRepo, copy_project
) -> None:
    project = copy_project({})
    add_user_package(project, template_repo.env)
    for name in ("runtime.txt", "dev.txt"):
        conflict(project / "requirements" / "lock" / name)
    assert locker(project, template_repo.env, "--check").returncode == 1

    result = relock(project, tool_env(template_repo.env))
    assert result.returncode == 0, result.stderr
    assert "requirements/lock/ resolved again" in result.stdout
    for name in ("runtime.txt", "dev.txt"):
        text = (project / "requirements" / "lock" / name).read_text()
        assert not MARKER.search(text), name
        assert {"rich", "numpy", "tensorboard"} <= locked_names(project, name), name
    assert locker(project, template_repo.env, "--check").returncode == 0
    # A current lock is left alone, silently.
    again = relock(project, tool_env(template_repo.env))
    assert (again.returncode, again.stdout) == (0, "")


def test_relock_migration_offline_says_what_to_run(
    template_repo: TemplateRepo, copy_project, tmp_path: Path
) -> None:
    project = copy_project({})
    with (project / "requirements" / "base.txt").open("a") as file:
        file.write(f"{USER_PACKAGE}\n")
    env = {**tool_env(template_repo.env), "UV_OFFLINE": "1", "UV_CACHE_DIR": str(tmp_path / "c")}
    before = (project / "requirements" / "lock" / "runtime.txt").read_text()

    result = relock(project, env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    assert "does not match the merged requirements and could not be resolved" in lines[0]
    assert lines[0].endswith("then run `python scripts/lock.py`"), lines[0]
    assert (project / "requirements" / "lock" / "runtime.txt").read_text() == before
