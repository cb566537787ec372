"""Time `copier copy --defaults` of this template next to a one-file template.

The one-file template is Copier's own floor: interpreter start, imports, reading a copier.yml,
cloning the template's git repository, rendering one file. Both templates are git
repositories (as every template a user copies from is) and run through the same command
line, interleaved round by round so machine noise hits both alike; the script prints the
medians and their ratio. This template is measured as a clean repository holding its
working tree (what a user's clone holds), with its tasks (git init of the project and the
host GPU check) and without.

Usage: python benchmarks/copy_time.py [--rounds N]

Target: ratio <= 1.35 (what the best-known data-science template reaches on these machines).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIER = [sys.executable, "-m", "copier"]


def one_file_template(folder: Path) -> Path:
    (folder / "template").mkdir(parents=True)
    (folder / "copier.yml").write_text(
        "_subdirectory: template\nproject_name:\n  type: str\n  default: demo\n"
    )
    (folder / "template" / "README.md.jinja").write_text("# {{ project_name }}\n")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "one file"]):
        subprocess.run(["git", *command], cwd=folder, check=True, capture_output=True)
    return folder


def snapshot(folder: Path) -> Path:
    """The working tree (tracked and untracked files, minus ignored ones) as a clean repo."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "snapshot"]):
        subprocess.run(["git", *command], cwd=folder, check=True, capture_output=True)
    return folder


def time_copy(template: Path, destination: Path, *extra: str) -> float:
    shutil.rmtree(destination, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [
            *COPIER,
            "copy",
            "--defaults",
            "--trust",
            "--quiet",
            *extra,
            str(template),
            str(destination),
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        baseline = one_file_template(work / "one-file")
        template = snapshot(work / "this-template")
        # Outside any git repository, so the git-init hook really runs, as for a user.
        destination = work / "out"
        runs: dict[str, list[float]] = {
            "one-file template": [],
            "this template": [],
            "this template, --skip-tasks": [],
        }
        time_copy(template, destination)  # warm the file cache and bytecode
        for _ in range(args.rounds):
            runs["one-file template"].append(time_copy(baseline, destination))
            runs["this template"].append(time_copy(template, destination))
            runs["this template, --skip-tasks"].append(time_copy(ROOT, destination, "--skip-tasks"))
    floor = statistics.median(runs["one-file template"])
    print(f"copier copy --defaults, median of {args.rounds} interleaved rounds")
    for name, samples in runs.items():
        median = statistics.median(samples)
        print(f"  {name:30s} {median * 1000:7.0f} ms   ratio {median / floor:4.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
