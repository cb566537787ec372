"""Lock every package the project adds to the base image, with hashes: requirements/lock/.

    python scripts/lock.py            # after editing requirements/*.txt: resolve again
    python scripts/lock.py --check    # is the lock current? (CI runs this; exit 1 if not)
    python scripts/lock.py --upgrade  # move every locked package to its newest release

Two locks, resolved by uv (`uv pip compile`) for the image's Python, on every platform at
once (--universal: the Linux image, CI, and a macOS or Windows laptop read the same file):

  requirements/lock/runtime.txt  base.txt + task.txt: the image's base stage installs it
  requirements/lock/dev.txt      the same versions, plus dev.txt (and jupyter.txt): the dev
                                 container, CI and scripts/install-cpu.sh install it

What the base image provides (requirements/image.txt: torch, and the CUDA libraries with
it) stays out of both: it is pinned by the image, not here. Each lock's first lines are the
exact uv command that wrote it, which is also what Dependabot reruns to bump it.

A lock is current when every requirement in its input files has a locked version that
satisfies it, nothing is locked for a requirement that was removed, both locks agree on the
versions they share, and they were resolved for the Python the stack has (PYTHON_VERSION in
.devcontainer/stack.env). --check tests that without a network.

uv is used where it is on PATH at UV_VERSION; otherwise it is installed once into a cached
virtual environment (~/.cache/pinned-uv/<version>) from PyPI.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

# The locker's version, pinned so that every machine writes the same files.
UV_VERSION = "0.13.9"
ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = Path("requirements")
LOCK_DIR = REQUIREMENTS / "lock"
RUNTIME_LOCK = LOCK_DIR / "runtime.txt"
DEV_LOCK = LOCK_DIR / "dev.txt"
# Installed with the base image, so never locked, whatever asks for them.
IMAGE_PACKAGES = ("torch", "torchvision", "torchaudio", "triton")
# What the image ships beside torch under these names (PyPI's CUDA wheels) is the image's too.
IMAGE_PREFIXES = ("nvidia-", "cuda-", "pytorch-triton")
CHECK_HINT = "run `python scripts/lock.py` and commit requirements/lock/"

# One entry of a lock: "name==version ; markers \" (hashes and comments follow).
ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;\\]+)")


def runtime_inputs() -> list[Path]:
    return [REQUIREMENTS / "base.txt", REQUIREMENTS / "task.txt"]


def dev_inputs() -> list[Path]:
    extra = [REQUIREMENTS / "dev.txt", REQUIREMENTS / "jupyter.txt"]
    return runtime_inputs() + [path for path in extra if (ROOT / path).is_file()]


def stack_python() -> str:
    """PYTHON_VERSION from .devcontainer/stack.env: the Python of the image."""
    text = (ROOT / ".devcontainer" / "stack.env").read_text()
    match = re.search(r"^PYTHON_VERSION=(\S+)$", text, re.MULTILINE)
    if not match:
        raise SystemExit("lock.py: .devcontainer/stack.env has no PYTHON_VERSION line")
    return match[1]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def is_image_package(name: str) -> bool:
    name = normalize(name)
    return name in IMAGE_PACKAGES or name.startswith(IMAGE_PREFIXES)


def uv_command() -> list[str]:
    """uv at UV_VERSION: from PATH if it is that version, else from a cached venv."""
    found = shutil.which("uv")
    if found:
        version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
        if version.split()[1:2] == [UV_VERSION]:
            return [found]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    env = cache / "pinned-uv" / UV_VERSION
    uv = env / ("Scripts" if os.name == "nt" else "bin") / "uv"
    if not uv.exists():
        print(f"lock.py: installing uv {UV_VERSION} into {env}", file=sys.stderr)
        venv.create(env, with_pip=True, clear=True)
        python = env / ("Scripts" if os.name == "nt" else "bin") / "python"
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"], check=True
        )
    return [str(uv)]


def compile_lock(
    inputs: list[Path], output: Path, python: str, extra: list[str], upgrade: bool
) -> None:
    """One `uv pip compile`; run from the project root, so the header names relative paths."""
    excluded = sorted(set(IMAGE_PACKAGES) | image_names_in(output))
    command = [
        "uv", "pip", "compile", *map(str, inputs), *extra,
        "--universal", f"--python-version={python}", "--generate-hashes",
        *(f"--no-emit-package={name}" for name in excluded),
        f"--output-file={output}",
    ]  # fmt: skip
    if upgrade:
        command.append("--upgrade")
    (ROOT / output).parent.mkdir(parents=True, exist_ok=True)
    run = [*uv_command(), *command[1:]]
    # The header shows `uv pip compile ...` whichever uv ran, so every machine writes it alike.
    env = {**os.environ, "UV_CUSTOM_COMPILE_COMMAND": shlex.join(command)}
    subprocess.run([*run, "--quiet"], cwd=ROOT, env=env, check=True)
    leaked = image_names_in(output) - set(excluded)
    if leaked:
        # A package that needs torch brought the image's CUDA wheels in: resolve again,
        # leaving those out as well.
        compile_lock(inputs, output, python, extra, upgrade=False)


def image_names_in(lock: Path) -> set[str]:
    path = ROOT / lock
    if not path.is_file():
        return set()
    return {name for name, _ in entries(path.read_text()) if is_image_package(name)}


def entries(text: str) -> list[tuple[str, str]]:
    """(normalized name, version) of every locked package, in file order."""
    found = []
    for line in text.splitlines():
        match = ENTRY.match(line)
        if match:
            found.append((normalize(match["name"]), match["version"]))
    return found


def direct_names(text: str, inputs: list[Path]) -> set[str]:
    """The locked names uv annotates as coming from one of `inputs` (`# via -r <file>`)."""
    names, current = set(), None
    sources = {f"-r {path.as_posix()}" for path in inputs}
    for line in text.splitlines():
        match = ENTRY.match(line)
        if match:
            current = normalize(match["name"])
            continue
        comment = line.strip().lstrip("#").strip()
        if comment.startswith("via "):
            comment = comment[4:]
        if current and comment in sources:
            names.add(current)
    return names


def requirements_of(paths: list[Path]) -> list[tuple[Path, str]]:
    """(file, requirement line) for every requirement in the files, comments dropped."""
    found = []
    for path in paths:
        for line in (ROOT / path).read_text().splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith(("#", "-")):
                found.append((path, line))
    return found


def load_packaging():
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:  # pip carries a copy, and pip is everywhere this runs
        from pip._vendor.packaging.requirements import Requirement
        from pip._vendor.packaging.version import Version
    return Requirement, Version


def problems(lock: Path, inputs: list[Path], python: str) -> list[str]:
    """Why `lock` is not current for `inputs`; empty when it is."""
    path = ROOT / lock
    if not path.is_file():
        return [f"{lock} is missing"]
    text = path.read_text()
    if "<<<<<<<" in text or ">>>>>>>" in text:
        return [f"{lock} has merge conflict markers"]
    found = []
    header = "\n".join(text.splitlines()[:4])
    if f"--python-version={python}" not in header:
        found.append(f"{lock} was not resolved for Python {python} (the image's)")
    Requirement, Version = load_packaging()
    locked: dict[str, list[str]] = {}
    for name, version in entries(text):
        locked.setdefault(name, []).append(version)
    wanted = set()
    for source, line in requirements_of(inputs):
        requirement = Requirement(line)
        name = normalize(requirement.name)
        if is_image_package(name):
            continue
        wanted.add(name)
        versions = locked.get(name)
        if not versions:
            found.append(f"{requirement.name} ({source}) is not in {lock}")
            continue
        for version in versions:
            if not requirement.specifier.contains(Version(version), prereleases=True):
                found.append(f"{lock} has {name}=={version}, {source} asks {line}")
    for name in sorted(direct_names(text, inputs) - wanted):
        found.append(f"{lock} still locks {name}, which no requirements file asks for")
    return found


def disagreements() -> list[str]:
    """Versions the two locks both hold but differ on (they must not)."""
    runtime, dev = (ROOT / RUNTIME_LOCK), (ROOT / DEV_LOCK)
    if not (runtime.is_file() and dev.is_file()):
        return []
    dev_versions = {}
    for name, version in entries(dev.read_text()):
        dev_versions.setdefault(name, set()).add(version)
    found = []
    for name, version in entries(runtime.read_text()):
        if name in dev_versions and version not in dev_versions[name]:
            found.append(f"{DEV_LOCK} has another {name} than {RUNTIME_LOCK} ({version})")
    return found


def check(python: str, verbose: bool = False) -> int:
    found = problems(RUNTIME_LOCK, runtime_inputs(), python)
    found += problems(DEV_LOCK, dev_inputs(), python)
    found += disagreements()
    if not found:
        print(f"lock.py: requirements/lock/ is current (Python {python})")
        return 0
    more = f" ({len(found) - 1} more: --check --verbose)" if len(found) > 1 and not verbose else ""
    print(
        f"lock.py: requirements/lock/ is out of date: {found[0]}; {CHECK_HINT}{more}",
        file=sys.stderr,
    )
    if verbose:
        for problem in found[1:]:
            print(f"  also: {problem}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="check only; exit 1 if stale")
    parser.add_argument("--upgrade", action="store_true", help="newest releases of everything")
    parser.add_argument("--verbose", action="store_true", help="with --check: every problem")
    parser.add_argument(
        "--if-stale",
        action="store_true",
        help="resolve only when --check would fail (copier update runs this)",
    )
    args = parser.parse_args(argv)
    python = stack_python()
    if args.check:
        return check(python, args.verbose)
    if args.if_stale and not (
        problems(RUNTIME_LOCK, runtime_inputs(), python)
        or problems(DEV_LOCK, dev_inputs(), python)
        or disagreements()
    ):
        return 0
    # A lock with conflict markers (after a merge) cannot guide the resolver: start afresh.
    for lock in (RUNTIME_LOCK, DEV_LOCK):
        path = ROOT / lock
        if path.is_file() and "<<<<<<<" in path.read_text():
            path.unlink()
    compile_lock(runtime_inputs(), RUNTIME_LOCK, python, [], args.upgrade)
    # The dev lock keeps the runtime lock's versions, so the dev container runs what the
    # training image runs.
    compile_lock(dev_inputs(), DEV_LOCK, python, [f"--constraint={RUNTIME_LOCK}"], args.upgrade)
    return check(python)


if __name__ == "__main__":
    sys.exit(main())
