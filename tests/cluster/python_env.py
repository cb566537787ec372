"""The Python the cluster's jobs run: a venv on Debian's /usr/bin/python3 with CPU torch.

Jobs run as an unprivileged user, who cannot read a Python under /root (where the test tools'
interpreter may live) or, in CI, the checkout itself. So this venv lives in CACHE, readable by
everyone, and is built once per machine and requirements (`pip install torch==2.13.0` takes
the CPU wheel for Python 3.11 from local disk). A lock keeps parallel runs from building it
twice; a marker file written last means a half-built venv is built again, not used.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

CACHE = Path("/var/cache/copier-pytorch-cuda")
SYSTEM_PYTHON = Path("/usr/bin/python3")
# What the generated training imports at run time (tensorboard and tqdm are optional there).
REQUIREMENTS = ("torch==2.13.0", "numpy", "pyyaml")


class PythonEnvError(RuntimeError):
    """The venv could not be built; the message says what failed."""


def job_python() -> Path:
    """The python of the jobs' venv, built on first use."""
    version = subprocess.run(
        [str(SYSTEM_PYTHON), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    key = hashlib.sha256("\n".join([version, *REQUIREMENTS]).encode()).hexdigest()[:12]
    venv = CACHE / f"cluster-venv-{key}"
    python, ready = venv / "bin" / "python", venv / ".ready"
    CACHE.mkdir(parents=True, exist_ok=True)
    CACHE.chmod(0o755)
    with open(CACHE / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], "python3 -m venv (python3-venv)")
            run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], "pip install")
            # Whatever umask this runs under, the job user must be able to read and run it.
            run(["chmod", "-R", "a+rX", str(venv)], "chmod")
            ready.write_text("\n".join(REQUIREMENTS) + "\n")
    return python


def run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if result.returncode != 0:
        raise PythonEnvError(f"{what} failed: {(result.stderr or result.stdout)[-3000:]}")
