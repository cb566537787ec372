"""After `copier update`: say so when the update raised the NVIDIA driver the project needs.

Why a migration: of everything an update moves, a newer CUDA line is the one change that can
stop a working machine. The new image refuses to start CUDA on a driver older than its floor
("CUDA driver version is insufficient"), and nothing in the diff says so in those words. This
prints the old and new stack, the driver now needed, and both ways out, once, right after the
update (and in the template-update pull request, which collects lines starting with
"copier-pytorch-cuda:").

Run by copier as a `_migrations` entry after an update, in the project directory:

    python hooks/migrations/driver_notice.py [--project PATH]

It compares `.devcontainer/stack.env` as last committed (copier update needs a clean tree, so
HEAD is the project before the update) with the file now on disk. It only reads and prints:
running it again prints the same, and it always exits 0 so that a notice can never fail an
update. No network.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

STACK_ENV = ".devcontainer/stack.env"
PREFIX = "copier-pytorch-cuda:"


def parse_env(text: str) -> dict[str, str]:
    """KEY=VALUE lines of a stack.env file; comments and anything else are skipped."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier() and not line.startswith("#"):
            values[key] = value.strip().strip('"')
    return values


def version_key(version: str) -> tuple[int, ...]:
    """'525.60.13' -> (525, 60, 13); anything unparsable sorts lowest."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


def committed_stack(project: Path) -> dict[str, str] | None:
    """stack.env as of HEAD, or None outside git or before the file existed."""
    result = subprocess.run(
        ["git", "show", f"HEAD:{STACK_ENV}"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    return parse_env(result.stdout) if result.returncode == 0 else None


def notice(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The lines to print when the driver floor rose from `before` to `after`, else []."""
    old_floor, new_floor = before.get("DRIVER_FLOOR", ""), after.get("DRIVER_FLOOR", "")
    if not new_floor or version_key(new_floor) <= version_key(old_floor):
        return []
    recommended = after.get("DRIVER_TOOLKIT") or "the newest production branch"
    old_line = ".".join(before.get("TORCH_VERSION", "").split(".")[:2])
    lines = [
        f"the image moved from CUDA {before.get('CUDA_VERSION', '?')} (torch "
        f"{before.get('TORCH_VERSION', '?')}) to CUDA {after.get('CUDA_VERSION', '?')} (torch "
        f"{after.get('TORCH_VERSION', '?')}): GPU hosts now need NVIDIA driver {new_floor} or "
        f"newer (was {old_floor or 'unknown'}; recommended: {recommended}).",
        "check a host with `bash .devcontainer/preflight.sh` before rebuilding the dev container.",
    ]
    if old_line:
        lines.append(
            "to stay on the previous image instead: "
            f"`copier update --trust --defaults --data torch_version={old_line}`."
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the project folder")
    args = parser.parse_args(argv)

    current = args.project / STACK_ENV
    before = committed_stack(args.project)
    if before is None or not current.is_file():
        return 0
    for line in notice(before, parse_env(current.read_text())):
        print(f"{PREFIX} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
