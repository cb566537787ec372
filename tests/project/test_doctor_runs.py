"""The generated doctor, really run: the project's own doctor tests, its lint, and the command.

`python -m <package>.doctor` is what the copy message tells users to run first; on this machine
(no GPU, CPU torch) it must report CPU mode and exit 0, with nothing but JSON on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.project

Render = Callable[..., Path]  # the `render` fixture of tests/conftest.py

GENERATIONS = ["volta", "turing", "ampere", "ada", "hopper", "blackwell"]


def package_name(project: Path) -> str:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return answers["package_name"]


def run(command: list[str], project: Path) -> subprocess.CompletedProcess[str]:
    """Run in the project folder with its src/ importable; PIP_CONSTRAINT from the caller's
    shell is dropped so the doctor's report does not depend on it."""
    env = {key: value for key, value in os.environ.items() if key != "PIP_CONSTRAINT"}
    env.update(PYTHONPATH=str(project / "src"), PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
    return subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "answers",
    [{"gpu_generation": generation} for generation in GENERATIONS] + [{"image_family": "ngc"}],
    ids=[*GENERATIONS, "ngc"],
)
def test_generated_doctor_tests_pass(render: Render, project_python: Path, answers: dict) -> None:
    """The project's tests/test_doctor.py, which also checks its stack.py against the doctor's
    capability table, for every generation."""
    project = render(answers)
    pytest_command = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_doctor.py"]
    result = run([str(project_python), *pytest_command], project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_doctor_json_reports_cpu_mode(render: Render, project_python: Path) -> None:
    project = render({"gpu_generation": "hopper"})
    package = package_name(project)
    result = run([str(project_python), "-m", f"{package}.doctor", "--json", "--no-nccl"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    checks = {check["name"]: check for check in report["checks"]}
    assert report["ok"] is True
    assert report["mode"] == "cpu"
    assert checks["cuda"]["detail"] == "CPU mode: CPU build of torch"
    assert checks["workspace"]["status"] == "OK"
    assert report["versions"]["torch"].startswith("2.13.0")
    assert report["versions"]["cuda"] is None
    assert report["versions"]["stack"]["gpu_generation"] == "hopper"
    assert all(set(check) <= {"name", "status", "detail", "fix"} for check in report["checks"])
    assert {check["status"] for check in report["checks"]} <= {"OK", "WARN", "INFO", "SKIP"}


def test_doctor_text_report(render: Render, project_python: Path) -> None:
    project = render()
    package = package_name(project)
    result = run([str(project_python), "-m", f"{package}.doctor", "--no-nccl"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CPU mode" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("ok: 0 failed")
    helped = run([str(project_python), "-m", f"{package}.doctor", "--help"], project)
    assert helped.returncode == 0 and "--no-nccl" in helped.stdout


def test_doctor_files_pass_the_projects_lint(render: Render) -> None:
    """ruff with the generated pyproject's settings: the doctor files are plain Python."""
    project = render()
    files = [f"src/{package_name(project)}/doctor.py", "tests/test_doctor.py"]
    for command in (["check"], ["format", "--check", "--diff"]):
        result = run([sys.executable, "-m", "ruff", *command, *files], project)
        assert result.returncode == 0, result.stdout + result.stderr
