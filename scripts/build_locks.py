"""Regenerate the dependency locks the template ships: data/locks/<task>-py<python>[-jupyter]/.

A generated project gets requirements/lock/runtime.txt and dev.txt copied from here (by
template/requirements/lock/*.jinja), so that its first image build installs exactly these
versions. They are written by the generated project's own locker, so a project and the
template can never lock differently: for every task type, image Python and Jupyter choice,
this script renders a project, runs its `scripts/lock.py` there (uv resolves from PyPI, the
shipped lock's pins kept where they still fit, or every package moved with --upgrade) and
copies the result back.

    python scripts/build_locks.py [--upgrade]    # at release time; then commit data/locks/

tests/unit/test_shipped_locks.py checks that every shipped lock is current for what its
project renders (as the project's `lock.py --check` does) and tests/project/test_lock.py
that it installs, the same twice, offline from a wheelhouse.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from copier import run_copy

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCKS = REPO_ROOT / "data" / "locks"
TASK_TYPES = ("cv", "nlp", "audio")
# The Pythons the image matrix's stacks have, each with answers that resolve to one
# (pytorch/pytorch 2.10+ and NGC: 3.12; pytorch/pytorch up to 2.9, conda: 3.11).
PYTHONS = {"3.12": {}, "3.11": {"torch_version": "2.9"}}


def lock_dir(task_type: str, python: str, jupyter: bool) -> Path:
    return LOCKS / f"{task_type}-py{python}{'-jupyter' if jupyter else ''}"


def variants() -> list[tuple[str, str, bool]]:
    return [
        (task_type, python, jupyter)
        for task_type in TASK_TYPES
        for python in PYTHONS
        for jupyter in (False, True)
    ]


def answers(task_type: str, python: str, jupyter: bool) -> dict:
    return {"task_type": task_type, "use_jupyter": jupyter, **PYTHONS[python]}


def ensure_placeholders() -> list[Path]:
    """Empty lock files where none is shipped yet, so that a first render has something to
    include; returns those it made (they are replaced or removed below)."""
    made = []
    for task_type, python, jupyter in variants():
        names = ["dev.txt"] if jupyter else ["runtime.txt", "dev.txt"]
        for name in names:
            path = lock_dir(task_type, python, jupyter) / name
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("")
                made.append(path)
    return made


def render(destination: Path, data: dict) -> Path:
    run_copy(
        str(REPO_ROOT),
        str(destination),
        data=data,
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
        vcs_ref="HEAD",
    )
    return destination


def stack_python(project: Path) -> str:
    for line in (project / ".devcontainer" / "stack.env").read_text().splitlines():
        if line.startswith("PYTHON_VERSION="):
            return line.split("=", 1)[1]
    raise SystemExit(f"{project}: stack.env has no PYTHON_VERSION")


def build(task_type: str, python: str, jupyter: bool, upgrade: bool, workdir: Path) -> None:
    data = answers(task_type, python, jupyter)
    project = render(workdir / lock_dir(task_type, python, jupyter).name, data)
    if stack_python(project) != python:
        raise SystemExit(f"{data} gives Python {stack_python(project)}, not {python}")
    lock = project / "requirements" / "lock"
    for path in lock.glob("*.txt"):
        if not path.read_text().strip():
            path.unlink()  # a placeholder: nothing to keep
    command = [sys.executable, "scripts/lock.py", *(["--upgrade"] if upgrade else [])]
    subprocess.run(command, cwd=project, check=True)
    target = lock_dir(task_type, python, jupyter)
    shutil.copyfile(lock / "dev.txt", target / "dev.txt")
    if not jupyter:
        shutil.copyfile(lock / "runtime.txt", target / "runtime.txt")
    print(f"{target.relative_to(REPO_ROOT)}: locked")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upgrade", action="store_true", help="newest releases of everything")
    args = parser.parse_args(argv)
    ensure_placeholders()
    with tempfile.TemporaryDirectory(prefix="build-locks-") as tmp:
        # The runtime locks first: the Jupyter variants render them too, so theirs must be
        # real before those renders.
        ordered = sorted(variants(), key=lambda variant: variant[2])
        for task_type, python, jupyter in ordered:
            build(task_type, python, jupyter, args.upgrade, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
