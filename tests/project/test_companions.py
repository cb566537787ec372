"""The generated cv and audio projects with their torch companion installed: the tests of real
files (ImageFolder through torchvision, resampling through torchaudio) really run and pass.

In the default project venv (torch alone) the ImageFolder tests skip, as they would in a CI
that never installs torchvision; here nothing of tests/test_task.py may skip except the test of
the message for a missing torchvision. The venvs hold PyPI's builds of torch and the companion
(tests/project/conftest.py, COMPANION_STEPS), since PyTorch's CPU index, which the generated
scripts/install-cpu.sh uses, is out of reach here; test_scripts.py pins that script's commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import companion_python
from .test_generated_suite import junit_outcomes, run

pytestmark = pytest.mark.project

Render = Callable[..., Path]

# The tests that need the companion, by task: they must pass, not skip.
NEEDS_COMPANION = {
    "cv": [
        "test_images_are_cropped_to_the_configured_size",
        "test_the_evaluation_view_equals_torchvisions_resize_and_centre_crop",
        "test_training_on_an_image_folder_evaluates_and_predicts",
        "test_a_class_count_mismatch_says_what_to_pass",
    ],
    "audio": [
        "test_files_are_resampled_and_cut_to_one_clip",
        "test_training_on_a_folder_of_audio_evaluates_and_predicts",
    ],
}
# Skipped by design where the companion is installed.
EXPECTED_SKIPS = {"test_task.py::test_image_folders_need_torchvision"}


@pytest.mark.parametrize("task_type", sorted(NEEDS_COMPANION))
def test_real_file_tests_run_with_the_torch_companion(
    render: Render, tmp_path: Path, task_type: str
) -> None:
    python = companion_python(task_type)
    project = render({"task_type": task_type})
    report = tmp_path / "junit.xml"
    result = run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
        + ["tests/test_task.py"],
        project,
    )
    output = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    outcomes = junit_outcomes(report)
    skipped = {key for key, outcome in outcomes.items() if outcome == "skipped"}
    assert skipped <= EXPECTED_SKIPS, output
    for name in NEEDS_COMPANION[task_type]:
        assert outcomes.get(f"test_task.py::{name}") == "passed", f"{name}\n{output}"
    companion = "torchvision" if task_type == "cv" else "torchaudio"
    imported = run(
        [str(python), "-c", f"import {companion}; print({companion}.__version__)"], project
    )
    assert imported.returncode == 0, imported.stderr
