"""The shipped locks install, and the project's locker keeps them current.

- Every shipped lock (data/locks/) resolves offline: for the image's platform (Linux x86_64)
  and Python, uv resolves the project's requirements again from a wheelhouse that holds only
  the locked files, with no index, and gets exactly the locked versions. So the lock is a
  complete, consistent resolution, and each of its files is where its hash says.
- Installing a lock into two fresh environments from that wheelhouse (hashes required, as
  the Dockerfile does) gives the same packages at the locked versions, twice.
- `python scripts/lock.py` after a user adds a package locks it in both files, moves nothing
  else, and `--check` says in one line what to run when the lock is behind.

The wheelhouse is downloaded from PyPI once (a few hundred MB) into .cache/ and reused.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from packaging.markers import Marker

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "scripts"))
import build_locks  # noqa: E402 - a script of this repository, not an installed package

pytestmark = pytest.mark.project

TOOLS = Path(sys.executable).parent  # uv and pip of this test run
ENTRY = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)(?: ; (?P<marker>[^\\]+?))? \\$"
)
IMAGE_PACKAGES = ("torch", "torchaudio", "torchvision", "triton")
LOCKS = sorted(build_locks.LOCKS.glob("*/*.txt"))


def target(python: str) -> dict[str, str]:
    """The marker environment of the image: Linux x86_64, CPython `python`."""
    return {
        "python_version": python,
        "python_full_version": f"{python}.3",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def lock_python(lock: Path) -> str:
    return re.search(r"-py(3\.\d+)", lock.parent.name)[1]


def pins_for(lock: Path, python: str) -> list[str]:
    """`name==version --hash=...` of every entry that applies on the image, markers dropped."""
    pins, current = [], None
    for line in lock.read_text().splitlines():
        match = ENTRY.match(line)
        if match:
            marker = match["marker"]
            applies = marker is None or Marker(marker).evaluate(target(python))
            current = [f"{match['name']}=={match['version']}"] if applies else None
            if current is not None:
                pins.append(current)
        elif current is not None and "--hash=" in line:
            current.append(line.strip().rstrip("\\").strip())
    return [" ".join(pin) for pin in pins]


def versions(pins: list[str]) -> dict[str, str]:
    found = {}
    for pin in pins:
        name, version = pin.split()[0].split("==")
        found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def pip_env() -> dict[str, str]:
    """pip from PyPI only: this machine's pip configuration adds local folders and caps."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def platform_args(python: str) -> list[str]:
    tag = python.replace(".", "")
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                 "manylinux1_x86_64", "linux_x86_64"]  # fmt: skip
    return [
        "--only-binary=:all:", f"--python-version={python}", "--implementation=cp",
        f"--abi=cp{tag}", "--abi=abi3", "--abi=none",
        *(f"--platform={platform}" for platform in platforms),
    ]  # fmt: skip


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """Every file the shipped locks pin for the image, downloaded once (hash-checked)."""
    digest = hashlib.sha256(b"".join(lock.read_bytes() for lock in LOCKS)).hexdigest()[:16]
    final = REPO_ROOT / ".cache" / f"lock-wheelhouse-{digest}"
    if final.is_dir():
        return final
    final.parent.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=".wheelhouse-"))
    for python in build_locks.PYTHONS:
        pins = sorted({pin for lock in LOCKS if lock_python(lock) == python
                       for pin in pins_for(lock, python)})  # fmt: skip
        requirements = staging / f"pins-{python}.txt"
        requirements.write_text("\n".join(pins) + "\n")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
             "-r", str(requirements), "-d", str(staging), *platform_args(python)],
            env=pip_env(), capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-4000:]
        requirements.unlink()
    try:
        staging.rename(final)
    except OSError:  # another worker was first
        shutil.rmtree(staging)
    return final


def lock_variant(lock: Path) -> tuple[str, str, bool]:
    name = lock.parent.name
    task_type, rest = name.split("-py", 1)
    return task_type, rest.removesuffix("-jupyter"), rest.endswith("-jupyter")


def inputs(project: Path, lock: Path) -> list[str]:
    """The project's files that `lock` was compiled from, as its header names them."""
    command = lock.read_text().splitlines()[1].lstrip("# ").split()
    return [word for word in command[3:] if word.startswith("requirements/")] + [
        word for word in command if word.startswith("--constraint=")
    ]


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_shipped_lock_resolves_offline_to_itself(render_cache, wheelhouse: Path, lock: Path):
    task_type, python, jupyter = lock_variant(lock)
    project = render_cache(build_locks.answers(task_type, python, jupyter))
    result = subprocess.run(
        [str(TOOLS / "uv"), "pip", "compile", *inputs(project, lock), "--offline", "--no-index",
         f"--find-links={wheelhouse}", f"--python-version={python}",
         "--python-platform=x86_64-manylinux_2_28", "--no-header", "--no-annotate",
         *(f"--no-emit-package={name}" for name in IMAGE_PACKAGES),
         "--cache-dir", str(wheelhouse.parent / "uv-offline-cache")],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    resolved = versions([line for line in result.stdout.splitlines() if "==" in line])
    assert resolved == versions(pins_for(lock, python))


def installed(folder: Path) -> dict[str, str]:
    found = {}
    for info in folder.glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def install_command(lock: Path, python: str, wheelhouse: Path, folder: Path) -> list[str]:
    """pip, as the Dockerfile runs it, where this interpreter is the lock's Python; uv for
    another Python, since pip evaluates markers for the Python it runs under, whatever
    --python-version says."""
    source = ["--no-index", f"--find-links={wheelhouse}", "--require-hashes", "-r", str(lock)]
    if python == f"{sys.version_info.major}.{sys.version_info.minor}":
        return [sys.executable, "-m", "pip", "install", "--quiet", *source, "--target", str(folder)]
    return [str(TOOLS / "uv"), "pip", "install", "--quiet", *source, "--target", str(folder),
            f"--python-version={python}", "--python-platform=x86_64-manylinux_2_28",
            "--cache-dir", str(folder.parent / "uv-cache")]  # fmt: skip


@pytest.mark.parametrize("variant", [("cv", "3.12", True), ("nlp", "3.11", False)], ids=str)
def test_a_lock_installs_the_same_twice(wheelhouse: Path, tmp_path: Path, variant) -> None:
    lock = build_locks.lock_dir(*variant) / "dev.txt"
    python = variant[1]
    results = []
    for attempt in ("first", "second"):
        folder = tmp_path / attempt
        command = install_command(lock, python, wheelhouse, folder)
        result = subprocess.run(command, env=pip_env(), capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-4000:]
        results.append(installed(folder))
    assert results[0] == results[1]
    assert results[0] == versions(pins_for(lock, python))


def run_locker(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**pip_env(), "PATH": f"{TOOLS}:{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "scripts/lock.py", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_adding_a_package_locks_it_and_moves_nothing_else(render_cache, tmp_path: Path):
    project = tmp_path / "project"
    shutil.copytree(render_cache({}), project)
    lock_dir = project / "requirements" / "lock"
    before = {
        name: versions(pins_for(lock_dir / name, "3.12")) for name in ("runtime.txt", "dev.txt")
    }
    # Unchanged requirements: the locker keeps every version and the command in the header.
    # (Hashes may grow when a project uploads another wheel for a release it locked.)
    headers = {path.name: path.read_text().splitlines()[:2] for path in lock_dir.iterdir()}
    result = run_locker(project)
    assert result.returncode == 0, result.stderr
    for name, old in before.items():
        assert versions(pins_for(lock_dir / name, "3.12")) == old, name
    assert {path.name: path.read_text().splitlines()[:2] for path in lock_dir.iterdir()} == headers

    with (project / "requirements" / "base.txt").open("a") as file:
        file.write("rich>=13\n")
    stale = run_locker(project, "--check")
    assert stale.returncode == 1
    lines = stale.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "rich (requirements/base.txt) is not in requirements/lock/runtime.txt" in lines[0]
    assert "run `python scripts/lock.py` and commit requirements/lock/ (1 more" in lines[0]
    verbose = run_locker(project, "--check", "--verbose")
    assert (
        "also: rich (requirements/base.txt) is not in requirements/lock/dev.txt" in verbose.stderr
    )

    result = run_locker(project)
    assert result.returncode == 0, result.stderr
    for name, old in before.items():
        new = versions(pins_for(lock_dir / name, "3.12"))
        assert "rich" in new, name
        assert {key: new[key] for key in old} == old, f"{name}: the locker moved other packages"
    assert run_locker(project, "--check").returncode == 0
