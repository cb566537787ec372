"""After `copier update`: say so when the update changed the checkpoint format under saved runs.

Why a migration: the training code resumes only from checkpoints of its own format (FORMAT in
src/<package>/checkpoint.py). When an update raises it, a run folder full of older checkpoints
is refused by the next training command, in one line, but only then, possibly hours later on
a cluster. Right after the update the project still has both versions at hand (the update is
not committed yet), so this prints it once, with what to do: set the update aside, finish
those runs, take it back; or start them again in new folders.

Run by copier as a `_migrations` entry after an update, in the project directory:

    python hooks/migrations/checkpoint_notice.py [--project PATH]

It compares FORMAT in checkpoint.py as last committed (HEAD is the project before the update)
with the file on disk, and looks for checkpoint files (`*.pt` in a `checkpoints/` folder)
under the project, git-ignored ones included. It only reads and prints, and always exits 0.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

PREFIX = "copier-pytorch-cuda:"
FORMAT = re.compile(r"^FORMAT = (\d+)$", re.MULTILINE)


def checkpoint_format(text: str | None) -> int | None:
    found = FORMAT.search(text or "")
    return int(found.group(1)) if found else None


def committed(project: Path, relative: str) -> str | None:
    result = subprocess.run(
        ["git", "show", f"HEAD:{relative}"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def saved_checkpoints(project: Path) -> list[Path]:
    """Checkpoint files of earlier runs: *.pt in a checkpoints/ folder, outside .git."""
    return sorted(
        path
        for path in project.rglob("checkpoints/*.pt")
        if ".git" not in path.relative_to(project).parts
    )


def notice(old: int | None, new: int | None, checkpoints: list[Path], project: Path) -> list[str]:
    if old is None or new is None or old == new or not checkpoints:
        return []
    folders = sorted({str(path.parent.parent.relative_to(project)) for path in checkpoints})
    shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more" if len(folders) > 3 else "")
    return [
        f"this update changes the checkpoint format from {old} to {new}: the {len(checkpoints)} "
        f"checkpoint(s) in {shown} will not resume with the new code.",
        "to finish them on the old code first: `git stash` (sets this update aside), train them "
        "to the end, then `git stash pop`; or start them again in new --output-dir folders.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the project folder")
    args = parser.parse_args(argv)

    answers_file = args.project / ".copier-answers.yml"
    if not answers_file.is_file():
        return 0
    package = (yaml.safe_load(answers_file.read_text()) or {}).get("package_name")
    relative = f"src/{package}/checkpoint.py"
    current = args.project / relative
    if not package or not current.is_file():
        return 0
    old = checkpoint_format(committed(args.project, relative))
    new = checkpoint_format(current.read_text())
    for line in notice(old, new, saved_checkpoints(args.project), args.project):
        print(f"{PREFIX} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
