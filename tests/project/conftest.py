"""Fixtures for project-level tests, which run the generated project's own tests and tools.

They need torch. `project_python` builds one virtual environment with the CPU torch wheel
(`pip install torch==2.13.0` takes it from local disk in about 30 s) and reuses it across tests
and sessions: it lives under .cache/ at the repository root, keyed by what it installs.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache"

# Always pin torch: an unpinned `pip install torch` would pull a multi-GB CUDA build.
# jupyter_server, nbclient and ipykernel: the generated Jupyter config is served for real and
# the starter notebooks are executed (tests/project/test_jupyter.py).
# tensorboard, safetensors and pillow: the generated requirements (the event files are read back,
# the export is loaded, the image task reads files).
PROJECT_REQUIREMENTS = (
    "torch==2.13.0",
    "pytest",
    "numpy",
    "pyyaml",
    "tensorboard",
    "safetensors",
    "pillow",
    "jupyter_server",
    "nbclient",
    "ipykernel",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "project: runs the generated project's own tests and tools (installs CPU torch once)",
    )


def _pip_install(python: Path, requirements: tuple[str, ...]) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *requirements],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        pytest.fail(f"pip install {' '.join(requirements)} failed:\n{result.stderr[-4000:]}")


# The generated cv and audio projects' tests of real files with the task's torch companion
# installed (torchvision's ImageFolder, torchaudio's resampling), in their own venvs: the CPU
# index of PyTorch is out of reach here, so these are PyPI's builds (CUDA builds that run on
# the CPU, from local disk on this machine), each install step one pip call. torchaudio's last
# release lines pair with torch 2.9 here (the facts file: "maintenance mode").
COMPANION_STEPS = {
    "cv": (("torch==2.14.1", "torchvision==0.29.1"),),
    "audio": (("torch==2.9.1", "torchvision==0.24.1"), ("torch==2.9.1", "torchaudio==2.9.*")),
}
# What the generated tests import besides torch and the companion.
COMPANION_EXTRAS = ("pytest", "numpy", "pyyaml", "tensorboard", "safetensors", "pillow")


def cached_venv(steps: tuple[tuple[str, ...], ...]) -> Path:
    """The python of a virtual environment under .cache/ made by one `pip install` per step.

    Built once and reused while the Python version and the steps stay the same; a file lock
    keeps parallel workers (pytest-xdist) from building it twice, and a marker file written
    last means a half-built environment is rebuilt rather than used.
    """
    lines = ["\n".join(step) for step in steps]
    key = hashlib.sha256("\n".join([sys.version, *lines]).encode()).hexdigest()
    venv = CACHE_DIR / f"project-venv-{key[:12]}"
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    CACHE_DIR.mkdir(exist_ok=True)
    with open(CACHE_DIR / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            for step in steps:
                _pip_install(python, step)
            ready.write_text("\n\n".join(lines) + "\n")
    return python


@pytest.fixture(scope="session")
def project_python() -> Path:
    """The python of a virtual environment with torch (CPU), pytest, numpy, pyyaml,
    tensorboard, safetensors, pillow and the Jupyter server, client and kernel."""
    return cached_venv((PROJECT_REQUIREMENTS,))


def companion_python(task_type: str) -> Path:
    """The python of the venv with the task's torch companion (see COMPANION_STEPS)."""
    *first, last = COMPANION_STEPS[task_type]
    return cached_venv((*first, (*last, *COMPANION_EXTRAS)))
