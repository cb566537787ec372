"""Render level: every answer set renders, every data file parses, conditional files follow
the answers, and the base image is named exactly once. Every GPU range of each image family
and platform renders with the stack the image matrix gives it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import json5
import pytest
import yaml
from answers import (
    REPO_ROOT,
    all_answer_sets,
    answer_id,
    expected_stack,
    fleet_sets,
    image_matrix,
)
from copier._template import load_template_config

ANSWER_SETS = all_answer_sets()
FLEET_SETS = fleet_sets()
# Any image reference of either family, whatever its version.
IMAGE_REFERENCE = re.compile(r"(?:pytorch/pytorch|nvcr\.io/nvidia/pytorch):[\w.+-]+")
# Jinja left unrendered, written the way this template writes it ("{{ name }}", "{% if %}").
# GitHub Actions' ${{ }} and Go templates such as docker's {{json .Runtimes}} are legitimate.
UNRENDERED = re.compile(r"(?<!\$)\{\{ |\{%-? |-?%\}")


def project_files(project: Path) -> list[Path]:
    return [p for p in sorted(project.rglob("*")) if p.is_file() and ".git" not in p.parts]


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_every_data_file_parses(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    for path in project_files(project):
        text = path.read_text()
        if path.name == "devcontainer.json":
            json5.loads(text)  # JSONC: comments are allowed there
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix in (".yml", ".yaml"):
            list(yaml.safe_load_all(text))
        elif path.suffix == ".toml":
            tomllib.loads(text)


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_nothing_left_unrendered(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    leftovers = [
        f"{path.relative_to(project)}: {match.group(0)!r}"
        for path in project_files(project)
        for match in [UNRENDERED.search(path.read_text())]
        if match
    ]
    assert not leftovers
    assert not [p for p in project_files(project) if p.suffix == ".jinja"]


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_base_image_named_once_in_the_dockerfile(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    references = [
        (path.relative_to(project).as_posix(), match)
        for path in project_files(project)
        for match in IMAGE_REFERENCE.findall(path.read_text())
    ]
    expected = expected_stack(answers)["image"]
    assert references == [(".devcontainer/Dockerfile", expected)]
    dockerfile = (project / ".devcontainer" / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE={expected}\n" in dockerfile
    # Unpinned by digest until the user runs scripts/pin-base-image.sh.
    assert "FROM ${BASE_IMAGE}${BASE_IMAGE_DIGEST} AS base" in dockerfile
    assert "# base image pin: none\nARG BASE_IMAGE_DIGEST=\n" in dockerfile


def read_stack_env(project: Path) -> dict[str, str]:
    return {
        key: value.strip('"')
        for key, _, value in (
            line.partition("=")
            for line in (project / ".devcontainer" / "stack.env").read_text().splitlines()
            if line and not line.startswith("#")
        )
    }


def check_stack_reaches_every_consumer(project: Path, answers: dict[str, Any]) -> None:
    """The resolved stack, driver floor, Python and GPU range in every file that names them."""
    stack = expected_stack(answers)
    matrix = image_matrix()
    oldest = answers.get("gpu_generation", "ampere")
    newest = answers.get("newest_gpu_generation", list(matrix["generations"])[-1])
    generation = matrix["generations"][oldest]
    fleet = matrix["fleets"][f"{oldest}-{newest}"]
    env = read_stack_env(project)
    assert env["CUDA_VERSION"] == stack["cuda"]
    assert env["DRIVER_FLOOR"] == stack["driver_floor"]
    assert env["DRIVER_TOOLKIT"] == (stack["driver_toolkit"] or "")
    assert env["IMAGE_ARCH_LIST"] == stack["arch_list"]
    assert env["PYTHON_VERSION"] == stack["python"]
    assert (env["GPU_GENERATION"], env["NEWEST_GPU_GENERATION"]) == (oldest, newest)
    assert env["FLEET_LABEL"] == fleet["label"]
    module = (project / "src" / "project" / "stack.py").read_text()
    namespace: dict[str, Any] = {}
    exec(compile(module, "stack.py", "exec"), namespace)  # noqa: S102 - our own render
    assert namespace["AMP_DTYPE"] == ("bfloat16" if generation["bf16"] else "float16")
    assert namespace["TF32"] is generation["tf32"]
    assert namespace["CUDA_VERSION"] == stack["cuda"]
    assert namespace["PYTHON_VERSION"] == stack["python"]
    assert namespace["COMPUTE_CAPABILITIES"] == fleet["required_sass"]
    dockerfile = (project / ".devcontainer" / "Dockerfile").read_text()
    # Extensions compile for every GPU of the range, and PTX of the newest for later ones.
    assert f'TORCH_CUDA_ARCH_LIST="{fleet["extension_arch_list"]}"' in dockerfile
    assert fleet["extension_arch_list"] == ";".join(fleet["required_sass"]) + "+PTX"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={stack['python']}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + stack["python"].replace(".", "")
    readme = (project / "README.md").read_text()
    assert f"| Python in the image | {stack['python']} (" in readme
    assert f"| {fleet['label']} ({fleet['sms']}) |" in readme
    for ci in (project / ".github" / "workflows" / "ci.yml", project / ".gitlab-ci.yml"):
        if ci.exists():
            assert f'PYTHON_VERSION: "{stack["python"]}"' in ci.read_text(), ci


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_stack_values_reach_every_consumer(render_cache, answers: dict[str, Any]) -> None:
    check_stack_reaches_every_consumer(render_cache(answers), answers)


@pytest.mark.parametrize("answers", FLEET_SETS, ids=answer_id)
def test_every_gpu_range_renders_its_stack(render_cache, answers: dict[str, Any]) -> None:
    """Every (oldest, newest) pair of each family and platform the template accepts."""
    check_stack_reaches_every_consumer(render_cache(answers), answers)


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_conditional_files_follow_the_answers(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    use_jupyter = answers.get("use_jupyter", True)
    assert (project / "requirements" / "jupyter.txt").exists() == use_jupyter
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    dev_files = pyproject["tool"]["setuptools"]["dynamic"]["optional-dependencies"]["dev"]["file"]
    assert ("requirements/jupyter.txt" in dev_files) == use_jupyter
    task = (project / "requirements" / "task.txt").read_text()
    profiles = yaml.safe_load((REPO_ROOT / "data" / "task-profiles.yml").read_text())
    profile = profiles["task_profiles"]["default"][answers["task_type"]]
    assert [line for line in task.splitlines() if not line.startswith("#")] == profile[
        "pip_packages"
    ]
    for package in profile["apt_packages"]:
        assert package in (project / ".devcontainer" / "Dockerfile").read_text()
    # TensorBoard's port always, JupyterLab's with use_jupyter.
    devcontainer = json5.loads((project / ".devcontainer" / "devcontainer.json").read_text())
    assert devcontainer["forwardPorts"] == [6006, *([8888] if use_jupyter else [])]


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_answers_file_records_every_question(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    for key, value in answers.items():
        assert recorded[key] == value
    # Computed values (`when: false` in copier.yml) are never stored, so `copier update`
    # recomputes the stack; every answered question is.
    config = load_template_config(REPO_ROOT / "copier.yml")
    computed = [key for key, q in config.items() if isinstance(q, dict) and q.get("when") is False]
    assert {"stack", "fleet", "image_matrix"} <= set(computed)
    assert not set(computed) & set(recorded), set(computed) & set(recorded)
    assert ("cluster" in recorded) == (answers["distributed"] == "multi_node")


@pytest.mark.parametrize("task_type", ["cv", "nlp", "audio"])
def test_readme_has_the_path_without_vs_code(render_cache, task_type: str) -> None:
    """A venv with the image's Python, the CPU install with the task's torch companion, the
    tests, a tiny run, this task's data layout, and the torchrun command that works on a CPU."""
    answers = {"task_type": task_type, "distributed": "multi_node"}
    project = render_cache(answers)
    readme = (project / "README.md").read_text()
    stack = expected_stack(answers)
    quickstart = readme.split("### Without VS Code or a container", 1)[1].split("\n## ", 1)[0]
    assert f"python{stack['python']} -m venv .venv" in quickstart
    assert "bash scripts/install-cpu.sh 'torch==" in quickstart
    assert "bash scripts/test.sh" in quickstart
    assert "--config configs/tiny.yaml --device cpu" in quickstart
    layout = {"cv": "one folder per class, any image files", "nlp": "folder of `*.txt` files",
              "audio": "WAV files"}[task_type]  # fmt: skip
    assert layout in quickstart
    assert "torchrun --standalone --nproc-per-node=2 -m project.train --device cpu" in quickstart
    assert "[deploy/README.md](deploy/README.md)" in quickstart
    single = (render_cache({"task_type": task_type}) / "README.md").read_text()
    assert "deploy/README.md" not in single


def test_message_after_copy_gives_both_paths(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--skip-tasks",
         "--vcs-ref", "HEAD", "--data", "distributed=multi_node", str(REPO_ROOT),
         str(tmp_path / "demo")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    message = result.stdout + result.stderr
    assert "Dev Containers: Reopen in Container" in message
    assert f"python{expected_stack({})['python']} -m venv .venv" in message
    assert "bash scripts/install-cpu.sh 'torch==" in message
    assert "python -m demo.train --config configs/tiny.yaml --device cpu" in message
    assert "Clusters (Slurm, Kubernetes): deploy/README.md" in message


def test_one_gpu_projects_differ_where_it_matters(render_cache) -> None:
    """distributed: none starts one process (the image's command, the README, CI's smoke), the
    other answers torchrun over every GPU; the training code is the same."""
    none, single = (
        render_cache({"distributed": "none"}),
        render_cache({"distributed": "single_node"}),
    )
    assert (
        'CMD ["python", "-m", "project.train"]' in (none / ".devcontainer/Dockerfile").read_text()
    )
    assert (
        'CMD ["torchrun", "--standalone", "--nproc-per-node=gpu", "-m", "project.train"]'
        in (single / ".devcontainer/Dockerfile").read_text()
    )
    ci = ".github/workflows/ci.yml"
    assert "smoke.sh --nproc 1 --max-steps 20" in (none / ci).read_text()
    assert "smoke.sh --nproc 2 --max-steps 20" in (single / ci).read_text()
    first = "```bash\npython -m project.train "
    assert first in (none / "README.md").read_text()
    assert first not in (single / "README.md").read_text()
    assert (none / "scripts/smoke.sh").read_text() != (single / "scripts/smoke.sh").read_text()
    for path in ("src/project/train.py", "src/project/dist.py"):
        assert (none / path).read_text() == (single / path).read_text()
