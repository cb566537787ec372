"""Bad input: every invalid answer or impossible combination is refused by a validator with
one sentence that says why and what to choose instead, and nothing is written.

Runs the real `copier copy` command line, as a user scripting `--data` would.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from answers import REPO_ROOT

COPIER = [sys.executable, "-m", "copier"]

# (answers, words the refusal must contain)
INVALID = [
    # package_name: not an identifier, a keyword, or shadowing something imported
    ({"package_name": "My-Package"}, "lowercase Python identifier"),
    ({"package_name": "2fast"}, "lowercase Python identifier"),
    ({"package_name": "road signs"}, "lowercase Python identifier"),
    ({"package_name": ""}, "lowercase Python identifier"),
    ({"package_name": "class"}, "Python keyword"),
    ({"package_name": "torch"}, "would shadow the 'torch' package"),
    ({"package_name": "torchvision"}, "would shadow the 'torchvision' package"),
    ({"package_name": "tests"}, "would shadow the 'tests' package"),
    ({"package_name": "test"}, "would shadow the 'test' package"),
    ({"package_name": "json"}, "standard-library module 'json'"),
    ({"package_name": "logging"}, "standard-library module 'logging'"),
    ({"package_name": "typing"}, "standard-library module 'typing'"),
    # project_name
    ({"project_name": "-leading dash"}, "project_name must start with a letter or digit"),
    ({"project_name": 'quote"d'}, "project_name must start with a letter or digit"),
    # unknown choices
    ({"task_type": "rl"}, "'rl' is not in"),
    ({"gpu_generation": "pascal"}, "'pascal' is not in"),
    ({"gpu_generation": "Ampere"}, "'Ampere' is not in"),
    ({"distributed": "multi"}, "'multi' is not in"),
    ({"image_family": "nvidia"}, "'nvidia' is not in"),
    ({"image_flavor": "slim"}, "'slim' is not in"),
    ({"ci_provider": "jenkins"}, "'jenkins' is not in"),
    ({"distributed": "multi_node", "cluster": "nomad"}, "'nomad' is not in"),
    ({"torch_version": "1.13"}, "'1.13' is not in"),
    # impossible combinations
    ({"platform": "linux/arm64"}, "pytorch/pytorch publishes no linux/arm64 CUDA images"),
    (
        {"image_family": "ngc", "platform": "linux/arm64", "gpu_generation": "volta"},
        "no nvcr.io/nvidia/pytorch (NVIDIA NGC) image for linux/arm64 runs Volta",
    ),
    (
        {"gpu_generation": "volta", "torch_version": "2.15"},
        "torch 2.15 ships no CUDA build for Volta (sm_70); choose torch_version 2.14",
    ),
    (
        {"gpu_generation": "blackwell", "torch_version": "2.6"},
        "torch 2.6 ships no CUDA build for Blackwell (sm_100, sm_120)",
    ),
    (
        {"gpu_generation": "blackwell", "torch_version": "2.4"},
        "torch 2.4 ships no CUDA build for Blackwell",
    ),
    (
        {"torch_version": "2.15"},
        "no pytorch/pytorch (Docker Hub) runtime image with torch 2.15 for Ampere is known",
    ),
    (
        {"image_family": "ngc", "torch_version": "2.8"},
        "no nvcr.io/nvidia/pytorch (NVIDIA NGC) image with torch 2.8 for Ampere is known",
    ),
    (
        {"gpu_generation": "volta", "image_flavor": "devel", "torch_version": "2.13"},
        "devel image with torch 2.13 for Volta is known to exist; choose torch_version 2.14",
    ),
    # shm_size
    ({"shm_size": "16GB"}, "shm_size must be a whole number followed by m or g"),
    ({"shm_size": "16"}, "shm_size must be a whole number followed by m or g"),
    ({"shm_size": "1.5g"}, "shm_size must be a whole number followed by m or g"),
    ({"shm_size": "0g"}, "shm_size must be a whole number followed by m or g"),
    ({"shm_size": "16Gi"}, "shm_size must be a whole number followed by m or g"),
    ({"shm_size": "64m"}, "is too small for DataLoader workers; use at least 256m"),
    ({"shm_size": "4096g"}, "more memory than any GPU server has"),
]


def copy(destination: Path, answers: dict[str, str]) -> subprocess.CompletedProcess[str]:
    data = [arg for key, value in answers.items() for arg in ("--data", f"{key}={value}")]
    return subprocess.run(
        [
            *COPIER,
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            *data,
            str(REPO_ROOT),
            str(destination),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_table_is_long_enough() -> None:
    assert len(INVALID) >= 20


@pytest.mark.parametrize(("answers", "message"), INVALID, ids=[str(a) for a, _ in INVALID])
def test_invalid_answer_is_refused_and_nothing_is_written(
    tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    destination = tmp_path / "project"
    result = copy(destination, answers)
    assert result.returncode == 1
    refusal = result.stderr.strip().splitlines()[-1]
    assert message in refusal, refusal
    # One sentence: reason, then what to do instead, on one line.
    assert not re.search(r"[.!?] [A-Z]", refusal), refusal
    assert not destination.exists()


def test_a_valid_combination_next_to_the_refused_ones_renders(tmp_path: Path) -> None:
    """The refusals are specific: the neighbouring valid answers still work."""
    destination = tmp_path / "project"
    result = copy(
        destination,
        {"image_family": "ngc", "platform": "linux/arm64", "gpu_generation": "hopper"},
    )
    assert result.returncode == 0, result.stderr
    assert (destination / ".devcontainer" / "Dockerfile").exists()
