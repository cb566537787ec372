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
from answers import REPO_ROOT, answer_id, fleet_sets

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
    ({"package_name": "__future__"}, "standard-library module '__future__'"),
    ({"package_name": "_thread"}, "standard-library module '_thread'"),
    ({"package_name": "sitecustomize"}, "would shadow the 'sitecustomize' package"),
    ({"package_name": "usercustomize"}, "would shadow the 'usercustomize' package"),
    # The project's own dependencies, by the name they are imported as.
    ({"package_name": "numpy"}, "would shadow the 'numpy' package"),
    ({"package_name": "yaml"}, "would shadow the 'yaml' package"),
    ({"package_name": "tqdm"}, "would shadow the 'tqdm' package"),
    ({"package_name": "pytest"}, "would shadow the 'pytest' package"),
    ({"package_name": "pil"}, "would shadow the 'pil' package"),
    ({"package_name": "cv2"}, "would shadow the 'cv2' package"),
    ({"task_type": "nlp", "package_name": "tokenizers"}, "would shadow the 'tokenizers' package"),
    ({"task_type": "audio", "package_name": "soundfile"}, "would shadow the 'soundfile' package"),
    # Too long for the file names it becomes.
    ({"package_name": "a" * 300}, "more than the 64 that fit in file names"),
    ({"package_name": "a" * 65}, "more than the 64 that fit in file names"),
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
    ({"torch_version": "2.14+cu128"}, "'2.14+cu128' is not in"),
    # The GPU range
    (
        {"gpu_generation": "hopper", "newest_gpu_generation": "ampere"},
        "'ampere' is not in ['hopper', 'blackwell']",
    ),
    (
        {"image_family": "ngc", "platform": "linux/arm64", "gpu_generation": "turing"},
        "no nvcr.io/nvidia/pytorch (NVIDIA NGC) image for linux/arm64 carries native code for "
        "every GPU from Turing to Blackwell",
    ),
    (
        {"image_family": "ngc", "gpu_generation": "volta"},
        "choose gpu_generation turing or image_family pytorch",
    ),
    (
        {"gpu_generation": "volta", "torch_version": "2.14"},
        "torch 2.14 has no CUDA build for volta-blackwell; choose 2.10",
    ),
    # impossible combinations
    ({"platform": "linux/arm64"}, "pytorch/pytorch has no arm64 CUDA images; use image_family ngc"),
    (
        {"image_family": "ngc", "platform": "linux/arm64", "gpu_generation": "volta"},
        "no nvcr.io/nvidia/pytorch (NVIDIA NGC) image for linux/arm64 carries native code for "
        "every GPU from Volta to Blackwell",
    ),
    (
        {"gpu_generation": "volta", "newest_gpu_generation": "volta", "torch_version": "2.15"},
        "torch 2.15 has no CUDA build for volta; choose 2.14",
    ),
    (
        {"gpu_generation": "blackwell", "torch_version": "2.6"},
        "torch 2.6 has no CUDA build for blackwell; choose 2.14",
    ),
    (
        {"gpu_generation": "blackwell", "torch_version": "2.4"},
        "torch 2.4 has no CUDA build for blackwell",
    ),
    (
        {"torch_version": "2.15"},
        "no runtime image of torch 2.15 is known; choose 2.14",
    ),
    (
        {"image_family": "ngc", "torch_version": "2.8"},
        "no NGC image of torch 2.8 is known; choose 2.14",
    ),
    (
        {
            "gpu_generation": "volta",
            "newest_gpu_generation": "volta",
            "image_flavor": "devel",
            "torch_version": "2.13",
        },
        "no devel image of torch 2.13 is known; choose 2.14",
    ),
    # shm_size
    ({"shm_size": "16GB"}, "shm_size must be a whole number followed by m or g"),
    ({"shm_size": "16"}, "shm_size must be a whole number followed by m or g"),
    ({"shm_size": "1.5g"}, "shm_size must be a whole number followed by m or g"),
    ({"shm_size": "0g"}, "shm_size must be a whole number followed by m or g"),
    ({"shm_size": "16Gi"}, "shm_size must be a whole number followed by m or g"),
    ({"shm_size": "64m"}, "is too small for DataLoader workers; use at least 256m"),
    ({"shm_size": "4096g"}, "more memory than any GPU server has"),
    ({"shm_size": "1048577m"}, "more memory than any GPU server has"),
    ({"shm_size": "99999999m"}, "more memory than any GPU server has"),
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


def assert_refused(result: subprocess.CompletedProcess[str], message: str = "") -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    refusal = result.stderr.strip().splitlines()[-1]
    assert message in refusal, refusal
    assert not re.search(r"[.!?] [A-Z]", refusal), refusal
    return refusal


@pytest.mark.parametrize("answers", fleet_sets(valid=False), ids=answer_id)
def test_every_refused_gpu_range_names_a_choice_that_works(
    tmp_path: Path, answers: dict[str, str]
) -> None:
    refusal = assert_refused(copy(tmp_path / "project", answers), "; choose ")
    assert "carries native code for" in refusal
    assert not (tmp_path / "project").exists()


def test_a_refusal_leaves_an_existing_destination_as_it_was(tmp_path: Path) -> None:
    """Copier removes a destination it created; one the user made stays untouched."""
    destination = tmp_path / "project"
    destination.mkdir()
    (destination / "notes.txt").write_text("mine\n")
    assert_refused(copy(destination, {"package_name": "a" * 300}), "more than the 64")
    assert [p.name for p in destination.iterdir()] == ["notes.txt"]


def test_dependency_names_are_refused_only_for_their_task(tmp_path: Path) -> None:
    result = copy(tmp_path / "project", {"task_type": "cv", "package_name": "tokenizers"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "project" / "src" / "tokenizers").is_dir()


def test_the_largest_shm_size_in_either_unit_is_accepted(tmp_path: Path) -> None:
    for value, name in (("1024g", "g"), ("1048576m", "m")):
        result = copy(tmp_path / name, {"shm_size": value})
        assert result.returncode == 0, result.stderr


def test_a_valid_combination_next_to_the_refused_ones_renders(tmp_path: Path) -> None:
    """The refusals are specific: the neighbouring valid answers still work."""
    destination = tmp_path / "project"
    result = copy(
        destination,
        {"image_family": "ngc", "platform": "linux/arm64", "gpu_generation": "hopper"},
    )
    assert result.returncode == 0, result.stderr
    assert (destination / ".devcontainer" / "Dockerfile").exists()
