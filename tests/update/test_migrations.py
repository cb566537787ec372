"""The template's `_migrations`: hooks/migrations/stack_notice.py, unit-tested and then run the
way copier runs it, copy-old-then-update:

- a Volta project copied from template v2 and updated to v3, where Volta's newest image needs a
  newer driver (conftest.py): the driver notice, with the command that keeps the old image;
- a project as the template wrote it before `newest_gpu_generation` existed (its answers file
  lacks the key): the update gives it the default range up to Blackwell, which moves a Volta
  project from torch 2.14 to an older line. That move is never silent: the notice says what
  moved, why, and the `--data` that keeps torch 2.14.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

from update.repo import MATRIX, REPO_ROOT, TemplateRepo, commit_all, git, load_matrix, run_script

SCRIPT = REPO_ROOT / "hooks" / "migrations" / "stack_notice.py"
VOLTA = {"gpu_generation": "volta"}


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stack_notice", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stack_notice = load_module()
MATRIX_DATA = load_matrix(REPO_ROOT / MATRIX)

OLD = {"CUDA_VERSION": "12.6", "TORCH_VERSION": "2.14.1", "DRIVER_FLOOR": "525.60.13"}
NEW = {
    "CUDA_VERSION": "13.2",
    "TORCH_VERSION": "2.14.1",
    "TORCH_LINE": "2.14",
    "DRIVER_FLOOR": "580",
    "DRIVER_TOOLKIT": "595.71.05",
}
ANSWERS = {"gpu_generation": "ampere", "newest_gpu_generation": "blackwell"}


def notes(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("copier-pytorch-cuda:")]


def test_parse_env_reads_assignments_and_skips_comments() -> None:
    text = '# comment\nCUDA_VERSION=12.6\nIMAGE_ARCH_LIST="7.0;8.0"\nnot a line\n'
    assert stack_notice.parse_env(text) == {"CUDA_VERSION": "12.6", "IMAGE_ARCH_LIST": "7.0;8.0"}


def test_torch_line_from_old_and_new_files() -> None:
    assert stack_notice.torch_line(OLD) == "2.14"  # older stack.env: no TORCH_LINE
    assert stack_notice.torch_line({"TORCH_LINE": "2.10", "TORCH_VERSION": "2.10.0"}) == "2.10"


def test_notice_when_the_driver_floor_rises() -> None:
    lines = stack_notice.notice(OLD, NEW, ANSWERS, ANSWERS, MATRIX_DATA)
    assert lines[0] == "the image moved from torch 2.14.1 (CUDA 12.6) to torch 2.14.1 (CUDA 13.2)."
    assert "driver 580 or newer (was 525.60.13; recommended: 595.71.05)" in lines[1]
    assert "preflight.sh" in lines[1]
    assert lines[2] == (
        "to keep torch 2.14 instead: `copier update --trust --defaults --data torch_version=2.14`."
    )


def test_no_notice_when_nothing_that_matters_moved() -> None:
    assert stack_notice.notice(NEW, {**NEW, "TORCH_VERSION": "2.14.2"}, {}, {}, None) == []
    assert stack_notice.notice(NEW, OLD, {}, {}, None) == []  # floor fell, same line
    assert stack_notice.notice(OLD, {}, {}, {}, None) == []


def test_keep_command_narrows_the_range_when_the_line_is_gone() -> None:
    """Volta to Blackwell has no torch 2.14; Volta to Hopper does (CUDA 12.6)."""
    answers = {"gpu_generation": "volta", "newest_gpu_generation": "blackwell"}
    assert stack_notice.keep_command(MATRIX_DATA, answers, "2.14") == (
        "copier update --trust --defaults --data newest_gpu_generation=hopper"
    )
    assert stack_notice.keep_command(MATRIX_DATA, answers, "2.10") == (
        "copier update --trust --defaults --data torch_version=2.10"
    )
    assert stack_notice.keep_command(MATRIX_DATA, answers, "1.13") is None


def test_move_reason_names_the_new_question() -> None:
    before = {"gpu_generation": "volta"}
    after = {"gpu_generation": "volta", "newest_gpu_generation": "blackwell"}
    reason = stack_notice.move_reason(before, after, "2.14")
    assert "newest_gpu_generation" in reason and "no torch 2.14 build does" in reason
    changed = stack_notice.move_reason(
        ANSWERS, {**ANSWERS, "newest_gpu_generation": "hopper"}, "2.14"
    )
    assert changed == "the answers changed: newest_gpu_generation blackwell -> hopper"
    assert "'latest'" in stack_notice.move_reason(ANSWERS, ANSWERS, "2.14")


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
    found = notes(result.stdout)
    assert len(found) == 3, result.stdout + result.stderr
    assert "to torch" in found[0] and "(CUDA 13.2)" in found[0]
    assert "driver 580 or newer" in found[1]
    assert "torch_version=" in found[2]
    # Idempotent: run again on the updated tree, it says the same and changes nothing.
    status = git(project, template_repo.env, "status", "--porcelain")
    again = subprocess.run(
        [sys.executable, str(SCRIPT), f"--project={project}",
         f"--matrix={template_repo.path / MATRIX}"],
        capture_output=True, text=True, env=template_repo.env, check=True,
    )  # fmt: skip
    assert notes(again.stdout) == found
    assert git(project, template_repo.env, "status", "--porcelain") == status


def test_a_project_from_before_the_gpu_range_is_told_what_moved(
    template_repo: TemplateRepo, copy_project, copier_cli
) -> None:
    """As the template before newest_gpu_generation wrote a Volta project: torch 2.14 on CUDA
    12.6, and no newest_gpu_generation in its answers file."""
    project = copy_project({"gpu_generation": "volta", "newest_gpu_generation": "volta"})
    answers_file = project / ".copier-answers.yml"
    answers = yaml.safe_load(answers_file.read_text())
    del answers["newest_gpu_generation"]
    answers_file.write_text(yaml.safe_dump(answers, sort_keys=False))
    commit_all(project, template_repo.env, "The answers of a project made before the GPU range")

    result = copier_cli("update", "--trust", "--defaults", "--vcs-ref", "v2", cwd=project)
    found = notes(result.stdout)
    assert found, result.stdout + result.stderr
    assert "from torch 2.14.1 (CUDA 12.6)" in found[0] and "another torch line" in found[0]
    assert "newest_gpu_generation" in found[0] and "no torch 2.14 build does" in found[0]
    keep = found[-1]
    assert "--data newest_gpu_generation=hopper" in keep and "torch_version=2.14" in keep
    after = yaml.safe_load(answers_file.read_text())
    assert after["newest_gpu_generation"] == "blackwell"

    # The printed command does what it says: back on torch 2.14.
    command = keep.split("`")[1].split()
    commit_all(project, template_repo.env, "Update from the template")
    copier_cli(*command[1:], cwd=project)
    stack = (project / ".devcontainer" / "stack.env").read_text()
    assert "TORCH_LINE=2.14\n" in stack and "CUDA_VERSION=12.6\n" in stack


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
    assert "- the image moved from torch" in body
    assert "No conflicts." in body


def test_checkpoint_format_change_under_saved_runs_is_announced(
    template_repo: TemplateRepo, copy_project, copier_cli
) -> None:
    """v0 writes an older checkpoint format than v1: a project with saved runs hears it once,
    with what to do; without saved runs, nothing is said."""
    quiet = copy_project({}, ref="v0", name="no-runs")
    result = copier_cli("update", "--trust", "--defaults", "--vcs-ref", "v1", cwd=quiet)
    assert not [n for n in notes(result.stdout) if "checkpoint format" in n]

    project = copy_project({}, ref="v0")
    for run in ("outputs", "outputs/lr-3e-4"):
        folder = project / run / "checkpoints"
        folder.mkdir(parents=True)
        (folder / "step_00000100.pt").write_bytes(b"an older checkpoint")
    result = copier_cli("update", "--trust", "--defaults", "--vcs-ref", "v1", cwd=project)
    found = [n for n in notes(result.stdout) if "checkpoint" in n or "git stash" in n]
    assert len(found) == 2, result.stdout
    assert "checkpoint format from 1 to 2" in found[0] and "2 checkpoint(s)" in found[0]
    assert "outputs, outputs/lr-3e-4" in found[0]
    assert "`git stash`" in found[1]
