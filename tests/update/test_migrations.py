"""The template's `_migrations`: hooks/migrations/driver_notice.py, unit-tested and then run
the way copier runs it, copy-old-then-update: a Volta project copied from template v2 and
updated to v3, where Volta's newest image needs a newer driver (conftest.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from update.repo import REPO_ROOT, TemplateRepo, git, run_script

SCRIPT = REPO_ROOT / "hooks" / "migrations" / "driver_notice.py"
VOLTA = {"gpu_generation": "volta"}


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("driver_notice", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


driver_notice = load_module()

OLD = {"CUDA_VERSION": "12.6", "TORCH_VERSION": "2.14.1", "DRIVER_FLOOR": "525.60.13"}
NEW = {
    "CUDA_VERSION": "13.2",
    "TORCH_VERSION": "2.15.0",
    "DRIVER_FLOOR": "580",
    "DRIVER_TOOLKIT": "595.71.05",
}


def test_parse_env_reads_assignments_and_skips_comments() -> None:
    text = '# comment\nCUDA_VERSION=12.6\nIMAGE_ARCH_LIST="7.0;8.0"\nnot a line\n'
    assert driver_notice.parse_env(text) == {"CUDA_VERSION": "12.6", "IMAGE_ARCH_LIST": "7.0;8.0"}


def test_notice_when_the_driver_floor_rises() -> None:
    lines = driver_notice.notice(OLD, NEW)
    assert "CUDA 12.6 (torch 2.14.1) to CUDA 13.2 (torch 2.15.0)" in lines[0]
    assert "driver 580 or newer (was 525.60.13; recommended: 595.71.05)" in lines[0]
    assert "preflight.sh" in lines[1]
    assert lines[2].endswith("`copier update --trust --defaults --data torch_version=2.14`.")


def test_no_notice_when_the_floor_stays_or_falls() -> None:
    assert driver_notice.notice(NEW, {**NEW, "TORCH_VERSION": "2.15.1"}) == []
    assert driver_notice.notice(NEW, OLD) == []
    assert driver_notice.notice(OLD, {}) == []


def test_outside_git_it_prints_nothing_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / ".devcontainer").mkdir()
    (tmp_path / ".devcontainer" / "stack.env").write_text("DRIVER_FLOOR=580\n")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), f"--project={tmp_path}"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)},
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")


def test_copier_update_runs_the_migration(
    template_repo: TemplateRepo, copy_project, copier_cli
) -> None:
    project = copy_project(VOLTA, ref="v2")
    result = copier_cli("update", "--trust", "--defaults", "--vcs-ref", "v3", cwd=project)
    notes = [line for line in result.stdout.splitlines() if line.startswith("copier-pytorch-cuda:")]
    assert len(notes) == 3, result.stdout + result.stderr
    assert "to CUDA 13.2" in notes[0] and "driver 580 or newer" in notes[0]
    assert "torch_version=" in notes[2]
    # Idempotent: run again on the updated tree, it says the same and changes nothing.
    status = git(project, template_repo.env, "status", "--porcelain")
    again = subprocess.run(
        [sys.executable, str(SCRIPT), f"--project={project}"],
        capture_output=True,
        text=True,
        env=template_repo.env,
        check=True,
    )
    assert again.stdout.splitlines() == notes
    assert git(project, template_repo.env, "status", "--porcelain") == status


def test_migration_note_reaches_the_update_report(
    template_repo: TemplateRepo, copy_project
) -> None:
    project = copy_project(VOLTA, ref="v2")
    report = project / "report.md"
    result = run_script(
        project, template_repo, "template-update.sh", "--vcs-ref", "v3", "--report", str(report)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    body = report.read_text()
    assert "### Notes from the template" in body
    assert "- the image moved from CUDA 12.6" in body
    assert "No conflicts." in body
