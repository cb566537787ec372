"""Write the README's "GPU -> image" table from data/image-matrix.yml.

The table sits between the markers `<!-- gpu-image-table:start -->` and
`<!-- gpu-image-table:end -->` in README.md; everything else in the README is hand-written.
A test runs `--check`, so the table cannot drift from the data copier actually uses.

One row per image family, platform and oldest GPU generation: the image `latest` resolves to
for the default range (up to the newest generation the template knows, runtime flavor), and
what a range that ends earlier gets instead.

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
ROWS = (("pytorch", "linux/amd64"), ("ngc", "linux/amd64"), ("ngc", "linux/arm64"))


def latest(matrix: dict, family: str, platform: str, fleet: str) -> tuple[dict, dict] | None:
    """(table, stack) of `latest` for a range, runtime flavor (devel where only it exists)."""
    flavors = matrix["candidates"].get(family, {}).get(platform, {}).get(fleet, {})
    table_id = flavors.get("runtime") or flavors.get("devel")
    if not table_id:
        return None
    table = matrix["tables"][table_id]
    return table, matrix["stacks"][next(iter(table["lines"].values()))]


def short(stack: dict) -> str:
    return f"torch {stack['torch_line']} (CUDA {stack['cuda']})"


def table(matrix: dict) -> str:
    order = list(matrix["generations"])
    newest = order[-1]
    rows = [
        f"| Oldest GPU (`gpu_generation`) | Examples | Image for the range up to {newest.title()}"
        " (`latest`) | torch / CUDA / Python | Driver (recommended / minimum) | AMP "
        "| A range that ends earlier |",
        "|---|---|---|---|---|---|---|",
    ]
    for family, platform in ROWS:
        for index, key in enumerate(order):
            generation = matrix["generations"][key]
            found = latest(matrix, family, platform, f"{key}-{newest}")
            if not found:
                continue
            table_, stack = found
            earlier = []
            for end in reversed(order[index:-1]):
                narrower = latest(matrix, family, platform, f"{key}-{end}")
                differs = narrower and short(narrower[1]) != short(stack)
                if differs and not (earlier and earlier[-1].endswith(short(narrower[1]))):
                    label = matrix["generations"][end]["label"]
                    earlier.append(f"to {label}: {short(narrower[1])}")
            where = "" if family == "pytorch" else f" ({platform.split('/')[1]})"
            sid = next(iter(table_["lines"].values()))
            rows.append(
                f"| `{key}` {generation['label']} ({generation['sms']}) "
                f"| {', '.join(generation['examples'][:3])} "
                f"| `{stack['image']}`{where} "
                f"| {stack['torch']} / {stack['cuda']} / {stack['python']} "
                f"| {stack['driver_toolkit'] or 'not published'} / {table_['floors'][sid]} "
                f"| {'bf16' if generation['bf16'] else 'fp16'} "
                f"| {'; '.join(earlier) or 'the same'} |"
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
    if START not in README.read_text() or END not in README.read_text():
        print(f"README.md lacks the markers {START} ... {END}", file=sys.stderr)
        return 1
    text = rendered_readme()
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
