"""The locks the template ships (data/locks/, written by scripts/build_locks.py) are current.

For every task type, image Python and Jupyter choice, a rendered project's own
`python scripts/lock.py --check` passes on the lock it was given: every requirement of its
requirements/*.txt is locked at a version that satisfies it, nothing stale is locked, the
runtime and dev locks agree, and both were resolved for the stack's Python. No network: the
check reads files only. Also: every Python a stack of the image matrix has is shipped, so no
answer renders an include of a missing lock, and what the base image provides stays out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "scripts"))
import build_locks  # noqa: E402 - a script of this repository, not an installed package

VARIANTS = build_locks.variants()


def variant_id(variant: tuple[str, str, bool]) -> str:
    task_type, python, jupyter = variant
    return f"{task_type}-py{python}{'-jupyter' if jupyter else ''}"


@pytest.mark.parametrize("variant", VARIANTS, ids=[variant_id(v) for v in VARIANTS])
def test_a_fresh_project_has_a_current_lock(render_cache, variant) -> None:
    project = render_cache(build_locks.answers(*variant))
    assert build_locks.stack_python(project) == variant[1]
    result = subprocess.run(
        [sys.executable, "scripts/lock.py", "--check"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lock = project / "requirements" / "lock"
    shipped = build_locks.lock_dir(*variant)
    assert (lock / "dev.txt").read_text() == (shipped / "dev.txt").read_text()
    runtime = build_locks.lock_dir(variant[0], variant[1], False) / "runtime.txt"
    assert (lock / "runtime.txt").read_text() == runtime.read_text()


def test_every_python_of_the_image_matrix_has_locks() -> None:
    data = yaml.safe_load((REPO_ROOT / "data" / "image-matrix.yml").read_text())
    matrix = json.loads(data["image_matrix"]["default"])
    pythons = {stack["python"] for stack in matrix["stacks"].values()}
    assert pythons <= set(build_locks.PYTHONS), pythons - set(build_locks.PYTHONS)
    shipped = sorted(path.name for path in build_locks.LOCKS.iterdir())
    assert shipped == sorted(build_locks.lock_dir(*v).name for v in VARIANTS)


@pytest.mark.parametrize("lock", sorted(build_locks.LOCKS.glob("*/*.txt")), ids=str)
def test_shipped_locks_hold_hashes_and_nothing_of_the_image(lock: Path) -> None:
    text = lock.read_text()
    names = [
        line.split("==")[0] for line in text.splitlines() if "==" in line[:80] and line[0].isalnum()
    ]
    assert names, f"{lock} locks nothing"
    image = {"torch", "torchvision", "torchaudio", "triton"}
    assert not [n for n in names if n in image or n.startswith(("nvidia-", "cuda-"))], lock
    entries = text.count("==")
    assert text.count("--hash=sha256:") >= entries, f"{lock}: an entry without a hash"
    # The header is the command that wrote it, with paths inside the project only: what
    # Dependabot reruns in the user's repository.
    header = text.splitlines()[1]
    assert header.lstrip("# ").startswith("uv pip compile requirements/"), header
    assert "/tmp" not in header and str(REPO_ROOT) not in header, header
