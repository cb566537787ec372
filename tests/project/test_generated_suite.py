"""The generated project's own test suite and lint, really run, for every task x distributed answer.

Each render runs `pytest` in the project with CPU torch 2.13.0 (the `project_python` venv), as
its CI does without a GPU: unit tests, a 2-rank gloo torchrun run with its held-out evaluation,
a rank killed under `--max-restarts 1` that must end with the uninterrupted run's weights and
best.pt, SIGTERM and Ctrl-C, a corrupt checkpoint, another experiment's checkpoints refused,
predict and export. The junit report is read so that a test that silently skipped or vanished
fails here too. Then `ruff check` and `ruff format --check` with the project's own
configuration, and the package built as a wheel, installed elsewhere and trained from there
(what the image's train stage does), since a test run from the source tree cannot notice a
file missing from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.project

Render = Callable[..., Path]  # the `render` fixture of tests/conftest.py

TASK_TYPES = ("cv", "nlp", "audio")
DISTRIBUTED = ("none", "single_node", "multi_node")

# Tests of the training skeleton that must have run and passed on a CPU, for every answer set.
MUST_PASS = {
    "test_distributed.py": [
        "test_two_ranks_learn_and_report",
        "test_checkpoints_hold_everything_and_load_with_weights_only",
        "test_the_held_out_metric_is_the_same_for_one_process_and_two",
        "test_a_killed_rank_is_restarted_and_nothing_is_lost",
        "test_a_stop_request_saves_at_a_step_boundary_on_every_rank",
        "test_one_rank_under_torchrun",
    ],
    "test_train.py": [
        "test_a_run_writes_checkpoints_metrics_and_a_summary",
        "test_evaluation_runs_on_the_interval_and_at_the_end",
        "test_the_best_checkpoint_is_the_best_evaluation_and_is_never_pruned",
        "test_a_crashed_run_resumes_exactly_and_keeps_its_best_checkpoint",
        "test_a_corrupt_newest_checkpoint_is_skipped",
        "test_a_checkpoint_without_a_registered_part_is_skipped",
        "test_another_experiment_never_resumes_this_ones_checkpoints",
        "test_sigusr1_saves_at_the_next_step_boundary",
        "test_after_a_preemption_repeated_signals_are_ignored_until_exit",
        "test_a_first_ctrl_c_saves_and_a_second_aborts",
        "test_the_banner_eta_and_log_file",
        "test_the_checkpoint_format_follows_the_registration",
    ],
    "test_export.py": [
        "test_the_safetensors_weights_give_the_checkpoints_outputs",
        "test_the_exported_program_gives_the_checkpoints_outputs_at_any_batch_size",
        "test_files_that_are_not_this_projects_checkpoints_get_one_line",
    ],
    "test_task.py": ["test_predict_on_bad_inputs_says_what_to_do"],
    "test_model.py": [
        "test_modules_import_without_side_effects",
        "test_the_task_module_fulfils_the_contract",
    ],
}


def package_name(project: Path) -> str:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]


def run(
    command: list[str], cwd: Path, timeout: int = 600, **env: str
) -> subprocess.CompletedProcess:
    """Run without the caller's PIP_CONSTRAINT or launcher variables (tests may run under
    torchrun-like environments), one thread per process on this shared machine."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PIP_CONSTRAINT", "RANK", "LOCAL_RANK", "WORLD_SIZE", "PYTHONPATH")
        and not key.startswith(("TORCHELASTIC_", "TRAIN_TEST_", "PYTEST_"))
    }
    clean.update(OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", **env)
    return subprocess.run(
        command, cwd=cwd, env=clean, capture_output=True, text=True, timeout=timeout
    )


def junit_outcomes(report: Path) -> dict[str, str]:
    """`file::test` (parametrised ids dropped) -> passed / failed / skipped, from a junit report."""
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1] + ".py"
        name = case.get("name", "").split("[")[0]
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        key = f"{module}::{name}"
        if outcomes.get(key) != "failed":
            outcomes[key] = outcome
    return outcomes


@pytest.mark.parametrize("distributed", DISTRIBUTED)
@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_generated_test_suite_passes(
    render: Render, project_python: Path, tmp_path: Path, task_type: str, distributed: str
) -> None:
    project = render({"task_type": task_type, "distributed": distributed})
    report = tmp_path / "junit.xml"
    result = run(
        [
            str(project_python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
        ],
        project,
    )
    output = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    outcomes = junit_outcomes(report)
    assert "failed" not in outcomes.values(), output
    for module, names in MUST_PASS.items():
        for name in names:
            assert outcomes.get(f"{module}::{name}") == "passed", f"{module}::{name}\n{output}"
    gpu_tests = {key: value for key, value in outcomes.items() if key.startswith("test_gpu.py")}
    assert gpu_tests and set(gpu_tests.values()) == {"skipped"}, "GPU tests skip on a CPU"


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_generated_project_passes_its_lint(render: Render, task_type: str) -> None:
    """ruff with the generated pyproject's settings, over the whole project as its CI runs it."""
    project = render({"task_type": task_type})
    for command in (["check", "."], ["format", "--check", "--diff", "."]):
        result = run([sys.executable, "-m", "ruff", *command], project)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_installed_package_trains(
    render: Render, project_python: Path, tmp_path: Path, task_type: str
) -> None:
    """`pip install --no-deps .` as the image's train stage does, then the entry point from the
    installed copy (not src/), one process, with the shipped tiny config."""
    project = render({"task_type": task_type})
    package = package_name(project)
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    # --ignore-requires-python: the project declares the image's Python (3.12 for current
    # images); this machine's test environment is Python 3.11, which the code supports too.
    built = run(
        [str(project_python), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--ignore-requires-python", "-w", str(wheels), "."],
        project,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("*.whl")
    installed = run(
        [str(project_python), "-m", "pip", "install", "--no-deps", "--ignore-requires-python"]
        + ["-q", "--target", str(site), str(wheel)],
        project,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    trained = run(
        [
            str(project_python),
            "-m",
            f"{package}.train",
            "--config",
            str(project / "configs" / "tiny.yaml"),
        ]
        + ["--device", "cpu", "--max-steps", "4", "--output-dir", str(tmp_path / "out")],
        tmp_path,
        PYTHONPATH=str(site),
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert (site / package / "train.py").is_file() and (site / package / "task.py").is_file()
    assert (tmp_path / "out" / "summary.json").is_file()


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_torch_is_a_floor_and_markers_are_declared(render: Render, task_type: str) -> None:
    """The image provides torch: requirements/image.txt asks for a floor, never a pin that pip
    would 'fix' by replacing the image's CUDA build, and no lock names it."""
    project = render({"task_type": task_type})
    requirements = (project / "requirements" / "image.txt").read_text().splitlines()
    (torch_line,) = [line for line in requirements if line.startswith("torch")]
    assert torch_line.startswith("torch>=") and "==" not in torch_line
    # What the image provides is never locked (the lock would pin PyPI's torch).
    for lock in ("runtime.txt", "dev.txt"):
        text = (project / "requirements" / "lock" / lock).read_text()
        assert not [line for line in text.splitlines() if line.startswith("torch")], lock
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    markers = pyproject["tool"]["pytest"]["ini_options"]["markers"]
    assert any(marker.startswith("gpu:") for marker in markers)
