"""copier.yml lint: the questions are the template's public interface (users script them
with --data), so their keys, values and defaults are pinned here against DESIGN.md, and
every question must be answerable by a newcomer (a type, a full-question help, choices or a
validator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from answers import REPO_ROOT
from conftest import render_project
from copier._template import load_template_config

CONFIG = load_template_config(REPO_ROOT / "copier.yml")
QUESTIONS = {key: value for key, value in CONFIG.items() if not key.startswith("_")}
ASKED = {key: q for key, q in QUESTIONS.items() if q.get("when") is not False}
COMPUTED = {key: q for key, q in QUESTIONS.items() if q.get("when") is False}

# DESIGN.md, "The answers: public interface": key -> allowed values (None: free text).
PUBLIC_INTERFACE: dict[str, Any] = {
    "project_name": None,
    "package_name": None,
    "task_type": ["cv", "nlp", "audio"],
    "gpu_generation": ["volta", "turing", "ampere", "ada", "hopper", "blackwell"],
    # From gpu_generation up, rendered from the image matrix (the older ones refused).
    "newest_gpu_generation": ["volta", "turing", "ampere", "ada", "hopper", "blackwell"],
    "distributed": ["none", "single_node", "multi_node"],
    "cluster": ["kubernetes", "slurm", "both"],
    "image_family": ["pytorch", "ngc"],
    "platform": ["linux/amd64", "linux/arm64"],
    "torch_version": None,  # 'latest' or a torch line, rendered from the image matrix
    "image_flavor": ["runtime", "devel"],
    "use_jupyter": None,
    "use_ssh": None,
    "ci_provider": ["github", "gitlab", "none"],
    "shm_size": None,
}

DESIGN_DEFAULTS = {
    "task_type": "cv",
    "gpu_generation": "ampere",
    "newest_gpu_generation": "blackwell",
    "distributed": "single_node",
    "image_family": "pytorch",
    "platform": "linux/amd64",
    "torch_version": "latest",
    "image_flavor": "runtime",
    "use_jupyter": True,
    "use_ssh": False,
    "ci_provider": "github",
    "shm_size": "16g",
    "cluster": "both",
}


def choice_values(question: dict[str, Any]) -> list[Any] | None:
    choices = question.get("choices")
    if isinstance(choices, dict):
        return list(choices.values())
    return None


def test_the_asked_questions_are_exactly_the_public_interface() -> None:
    assert set(ASKED) == set(PUBLIC_INTERFACE)


@pytest.mark.parametrize("key", list(ASKED))
def test_every_question_has_a_type_a_help_and_a_constraint(key: str) -> None:
    question = ASKED[key]
    assert question.get("type") in {"str", "bool", "int", "float", "yaml", "json"}
    help_text = question.get("help", "")
    assert "?" in help_text and len(help_text) > 30, f"{key}: help is a full question"
    if question["type"] != "bool":
        assert question.get("choices") or question.get("validator"), key


@pytest.mark.parametrize(
    "key", [k for k, v in PUBLIC_INTERFACE.items() if v is not None and choice_values(ASKED[k])]
)
def test_static_choices_are_the_documented_values(key: str) -> None:
    assert choice_values(ASKED[key]) == PUBLIC_INTERFACE[key]


def test_gpu_generation_help_says_how_to_find_the_gpu() -> None:
    assert "nvidia-smi --query-gpu=name,compute_cap --format=csv" in ASKED["gpu_generation"]["help"]


def test_cluster_is_asked_only_for_multi_node() -> None:
    assert "multi_node" in ASKED["cluster"]["when"]


def test_computed_values_are_never_asked_and_come_after_the_questions() -> None:
    keys = list(QUESTIONS)
    last_question = max(keys.index(k) for k in ASKED)
    data_questions = {"image_matrix", "python_names", "task_profiles"}
    for key in COMPUTED:
        if key not in data_questions:
            assert keys.index(key) > last_question, key
    # The data files are included first, so every later expression can look them up.
    assert keys[: len(data_questions)] and set(keys[:3]) == data_questions


def test_defaults_are_the_documented_ones(tmp_path: Path) -> None:
    project = render_project(tmp_path / "my-project")
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    for key, value in DESIGN_DEFAULTS.items():
        if key == "cluster":
            continue  # only asked for multi_node; checked below
        assert recorded[key] == value, key
    assert recorded["project_name"] == "my-project"
    assert recorded["package_name"] == "my_project"
    multi = render_project(tmp_path / "multi", {"distributed": "multi_node"})
    assert yaml.safe_load((multi / ".copier-answers.yml").read_text())["cluster"] == "both"


def test_the_template_has_tasks_so_trust_is_documented() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert CONFIG["_tasks"]
    assert "copier copy --trust" in readme
