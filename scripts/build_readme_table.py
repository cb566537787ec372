"""Write the README's "GPU -> image" table from data/image-matrix.yml.

The table sits between the markers `<!-- gpu-image-table:start -->` and
`<!-- gpu-image-table:end -->` in README.md; everything else in the README is hand-written.
A test runs `--check`, so the table cannot drift from the data copier actually uses.

Usage: python scripts/build_readme_table.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MATRIX = ROOT / "data" / "image-matrix.yml"
START = "<!-- gpu-image-table:start -->"
END = "<!-- gpu-image-table:end -->"


def table(matrix: dict) -> str:
    rows = [
        "| GPU generation (answer) | Examples | Image with `torch_version: latest` | CUDA | "
        "Driver (toolkit / minimum) | AMP | Also offered |",
        "|---|---|---|---|---|---|---|",
    ]
    for family in ("pytorch", "ngc"):
        for key, generation in matrix["generations"].items():
            tables = matrix["candidates"][family]["linux/amd64"].get(key, {})
            runtime = tables.get("runtime") or tables.get("devel")
            if not runtime:
                continue
            lines = list(runtime["stacks"])
            stack = matrix["stacks"][runtime["stacks"][lines[0]]]
            arm = "linux/arm64" in stack["platforms"] and family == "ngc"
            rows.append(
                f"| `{key}` {generation['label']} ({generation['sms']}) "
                f"| {', '.join(generation['examples'][:3])} "
                f"| `{stack['image']}`{' (amd64, arm64)' if arm else ''} "
                f"| {stack['cuda']} "
                f"| {stack['driver_toolkit'] or 'not published'} / {stack['driver_floor']} "
                f"| {'bf16' if generation['bf16'] else 'fp16'} "
                f"| torch {', '.join(lines[1:]) or '-'} |"
            )
    return "\n".join(rows)


def rendered_readme() -> str:
    text = README.read_text()
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    matrix = json.loads(yaml.safe_load(MATRIX.read_text())["image_matrix"]["default"])
    return f"{before}{START}\n{table(matrix)}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is stale")
    args = parser.parse_args(argv)
    text = rendered_readme()
    if START not in README.read_text() or END not in README.read_text():
        print(f"README.md lacks the markers {START} ... {END}", file=sys.stderr)
        return 1
    if args.check:
        if README.read_text() != text:
            print("README.md's GPU table is out of date: run scripts/build_readme_table.py")
            return 1
        return 0
    README.write_text(text)
    print("updated the GPU table in README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
