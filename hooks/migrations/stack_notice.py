"""After `copier update`: say what moved in the image stack, why, and how to keep the old one.

Why a migration: of everything an update moves, the image stack is what can stop a working
machine or change results: another torch line (new kernels, new defaults), or a newer CUDA line
whose driver floor the GPU hosts do not meet ("CUDA driver version is insufficient"). Nothing in
the diff says so in those words. So right after every update this prints, once:

- when the torch line moved: from which to which, and why (the template knows a newer image;
  the GPU range changed, e.g. the question newest_gpu_generation is new and its default spans
  GPUs no build of the old line carries native code for; or torch_version was answered);
- when the driver floor rose: the driver now needed and the recommended one;
- the exact `copier update --data ...` that keeps the previous torch line, computed from the
  template's image matrix for the project's answers (a line, or a narrower GPU range).

The template-update pull request collects these lines (they start with "copier-pytorch-cuda:").

Run by copier as a `_migrations` entry after an update, in the project directory:

    python hooks/migrations/stack_notice.py --project PATH --matrix TEMPLATE/data/image-matrix.yml

It compares `.devcontainer/stack.env` and `.copier-answers.yml` as last committed (copier update
needs a clean tree, so HEAD is the project before the update) with the files now on disk. It
only reads and prints: running it again prints the same, and it always exits 0 so that a
notice can never fail an update. No network.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

STACK_ENV = ".devcontainer/stack.env"
ANSWERS = ".copier-answers.yml"
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


def torch_line(stack: dict[str, str]) -> str:
    """The torch release line of a stack.env (older files name only TORCH_VERSION)."""
    return stack.get("TORCH_LINE") or ".".join(stack.get("TORCH_VERSION", "").split(".")[:2])


def committed(project: Path, relative: str) -> str | None:
    """A file as of HEAD, or None outside git or before the file existed."""
    result = subprocess.run(
        ["git", "show", f"HEAD:{relative}"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def load_matrix(path: Path) -> dict[str, Any]:
    """The image matrix: a copier question whose default is JSON (scripts/copier_data.py)."""
    return json.loads(yaml.safe_load(path.read_text())["image_matrix"]["default"])


def offered_lines(matrix: dict[str, Any], answers: dict[str, Any], newest: str) -> list[str]:
    """The torch lines offered for these answers with `newest` as newest_gpu_generation."""
    fleet = f"{answers.get('gpu_generation')}-{newest}"
    table_id = (
        matrix["candidates"]
        .get(answers.get("image_family", "pytorch"), {})
        .get(answers.get("platform", "linux/amd64"), {})
        .get(fleet, {})
        .get(answers.get("image_flavor", "runtime"))
    )
    return list(matrix["tables"][table_id]["lines"]) if table_id else []


def keep_command(matrix: dict[str, Any], answers: dict[str, Any], line: str) -> str | None:
    """The `--data` that keeps torch `line` for these answers: the line itself when the GPU
    range still has it, else the widest range (same oldest GPU) whose images still carry it."""
    newest = answers.get("newest_gpu_generation")
    if line in offered_lines(matrix, answers, newest):
        return f"copier update --trust --defaults --data torch_version={line}"
    order = list(matrix["generations"])
    oldest = answers.get("gpu_generation")
    if oldest not in order or newest not in order:
        return None
    for candidate in reversed(order[order.index(oldest) : order.index(newest)]):
        lines = offered_lines(matrix, answers, candidate)
        if line in lines:
            pin = "" if lines[0] == line else f" --data torch_version={line}"
            return f"copier update --trust --defaults --data newest_gpu_generation={candidate}{pin}"
    return None


def describe(stack: dict[str, str]) -> str:
    return f"torch {stack.get('TORCH_VERSION', '?')} (CUDA {stack.get('CUDA_VERSION', '?')})"


def move_reason(before: dict[str, Any], after: dict[str, Any], line: str) -> str:
    """Why the torch line moved, in the user's terms."""
    if "newest_gpu_generation" not in before and "newest_gpu_generation" in after:
        return (
            "the template now asks for the NEWEST GPU generation too (newest_gpu_generation, "
            f"here {after['newest_gpu_generation']}), and the image must carry native code for "
            f"every generation from {after.get('gpu_generation')} to it, which no torch {line} "
            "build does"
        )
    changed = [
        key
        for key in ("gpu_generation", "newest_gpu_generation", "image_family", "platform",
                    "image_flavor", "torch_version")
        if before.get(key) != after.get(key)
    ]  # fmt: skip
    if changed:
        return "the answers changed: " + ", ".join(
            f"{key} {before.get(key, '(unset)')} -> {after.get(key)}" for key in changed
        )
    return "torch_version is 'latest', and the template now knows another image for your answers"


def notice(
    stack_before: dict[str, str],
    stack_after: dict[str, str],
    answers_before: dict[str, Any],
    answers_after: dict[str, Any],
    matrix: dict[str, Any] | None,
) -> list[str]:
    """The lines to print for this update ([] when neither the torch line nor the driver floor
    moved in a way that matters)."""
    old_line, new_line = torch_line(stack_before), torch_line(stack_after)
    old_floor, new_floor = stack_before.get("DRIVER_FLOOR", ""), stack_after.get("DRIVER_FLOOR", "")
    line_moved = bool(old_line and new_line and old_line != new_line)
    floor_rose = bool(new_floor) and version_key(new_floor) > version_key(old_floor)
    if not (line_moved or floor_rose):
        return []
    was, now = describe(stack_before), describe(stack_after)
    lines = []
    if line_moved:
        lines.append(
            f"the image moved from {was} to {now}, another torch line: "
            f"{move_reason(answers_before, answers_after, old_line)}."
        )
    else:
        lines.append(f"the image moved from {was} to {now}.")
    if floor_rose:
        recommended = stack_after.get("DRIVER_TOOLKIT") or "the newest production branch"
        lines.append(
            f"GPU hosts now need NVIDIA driver {new_floor} or newer (was {old_floor or 'unknown'};"
            f" recommended: {recommended}); check a host with `bash .devcontainer/preflight.sh`"
            " before rebuilding the dev container."
        )
    keep = keep_command(matrix, answers_after, old_line) if matrix and old_line else None
    if keep:
        lines.append(f"to keep torch {old_line} instead: `{keep}`.")
    elif old_line:
        lines.append(
            f"no image the template offers for these answers has torch {old_line} any more."
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the project folder")
    parser.add_argument("--matrix", type=Path, help="the template's data/image-matrix.yml")
    args = parser.parse_args(argv)

    current = args.project / STACK_ENV
    stack_before = committed(args.project, STACK_ENV)
    if stack_before is None or not current.is_file():
        return 0
    answers_before = yaml.safe_load(committed(args.project, ANSWERS) or "") or {}
    answers_file = args.project / ANSWERS
    answers_after = yaml.safe_load(answers_file.read_text()) if answers_file.is_file() else {}
    matrix = load_matrix(args.matrix) if args.matrix and args.matrix.is_file() else None
    lines = notice(
        parse_env(stack_before),
        parse_env(current.read_text()),
        answers_before,
        answers_after or {},
        matrix,
    )
    for line in lines:
        print(f"{PREFIX} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
