"""Answer sets the render and validate levels run over.

- `full_matrix()`: every task_type x gpu_generation x distributed combination (54), the other
  answers at their defaults (so the GPU range ends at the newest generation).
- `fleet_sets()`: every (gpu_generation, newest_gpu_generation) pair for each image family and
  platform, the ones the template accepts (`fleet_sets(valid=False)`: the ones it refuses).
- `pairwise()`: every pair of values of every two questions appears in at least one answer set,
  restricted to combinations the template accepts (e.g. linux/arm64 only with NGC).

Validity and pinned torch versions come from the image matrix itself, so the sets follow the
data when it changes.
"""

from __future__ import annotations

import itertools
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent

TASK_TYPES = ("cv", "nlp", "audio")
GENERATIONS = ("volta", "turing", "ampere", "ada", "hopper", "blackwell")
DISTRIBUTED = ("none", "single_node", "multi_node")

# The other questions, with the values the pairwise sets combine. "pinned" stands for an
# explicit, valid, non-newest torch line, looked up per combination.
OTHER_VALUES: dict[str, tuple[Any, ...]] = {
    "newest_gpu_generation": GENERATIONS,
    "image_family": ("pytorch", "ngc"),
    "platform": ("linux/amd64", "linux/arm64"),
    "image_flavor": ("runtime", "devel"),
    "torch_version": ("latest", "pinned"),
    "cluster": ("kubernetes", "slurm", "both"),
    "use_jupyter": (True, False),
    "use_ssh": (False, True),
    "ci_provider": ("github", "gitlab", "none"),
    "shm_size": ("16g", "512m"),
}


@cache
def image_matrix() -> dict[str, Any]:
    text = (REPO_ROOT / "data" / "image-matrix.yml").read_text()
    # A copier question whose default is a JSON document (scripts/copier_data.py).
    return json.loads(yaml.safe_load(text)["image_matrix"]["default"])


def table_for(answers: dict[str, Any]) -> dict[str, Any] | None:
    """The image matrix's table of stacks for these answers, or None when refused."""
    matrix = image_matrix()
    oldest = answers.get("gpu_generation", "ampere")
    newest = answers.get("newest_gpu_generation", GENERATIONS[-1])
    table_id = (
        matrix["candidates"]
        .get(answers.get("image_family", "pytorch"), {})
        .get(answers.get("platform", "linux/amd64"), {})
        .get(f"{oldest}-{newest}", {})
        .get(answers.get("image_flavor", "runtime"))
    )
    return matrix["tables"][table_id] if table_id else None


def candidate_lines(answers: dict[str, Any]) -> list[str]:
    """Torch lines the template offers for these answers, newest first ([] if refused)."""
    table = table_for(answers)
    return list(table["lines"]) if table else []


def expected_stack(answers: dict[str, Any]) -> dict[str, Any]:
    """The stack copier should resolve for these answers (the table's entry for torch_version),
    with the fleet's driver floor."""
    table = table_for(answers)
    assert table, answers
    version = answers.get("torch_version", "latest")
    stack_id = (
        next(iter(table["lines"].values())) if version == "latest" else table["choices"][version]
    )
    return {**image_matrix()["stacks"][stack_id], "driver_floor": table["floors"][stack_id]}


def resolve(answers: dict[str, Any]) -> dict[str, Any] | None:
    """Concrete answers for copier, or None when the template would refuse them."""
    lines = candidate_lines(answers)
    if not lines:
        return None
    resolved = dict(answers)
    if resolved.get("torch_version") == "pinned":
        # The oldest line: the furthest from what `latest` picks.
        resolved["torch_version"] = lines[-1]
    if resolved.get("distributed") != "multi_node":
        resolved.pop("cluster", None)
    return resolved


def answer_id(answers: dict[str, Any]) -> str:
    return "-".join(str(value).replace("/", "_") for value in answers.values())


def fleet_sets(valid: bool = True) -> list[dict[str, Any]]:
    """Every GPU range for each image family and platform: the accepted or the refused ones."""
    sets = []
    for family, platform in (
        ("pytorch", "linux/amd64"),
        ("ngc", "linux/amd64"),
        ("ngc", "linux/arm64"),
    ):
        for start, end in itertools.combinations_with_replacement(range(len(GENERATIONS)), 2):
            answers = {
                "image_family": family,
                "platform": platform,
                "gpu_generation": GENERATIONS[start],
                "newest_gpu_generation": GENERATIONS[end],
            }
            if bool(candidate_lines(answers)) == valid:
                sets.append(answers)
    return sets


def full_matrix() -> list[dict[str, Any]]:
    return [
        {"task_type": task, "gpu_generation": gen, "distributed": dist}
        for task, gen, dist in itertools.product(TASK_TYPES, GENERATIONS, DISTRIBUTED)
    ]


@cache
def _pairwise() -> tuple[tuple[tuple[str, Any], ...], ...]:
    parameters = {
        "task_type": TASK_TYPES,
        "gpu_generation": GENERATIONS,
        "distributed": DISTRIBUTED,
        **OTHER_VALUES,
    }
    names = list(parameters)
    pair_bits: dict[tuple, int] = {}

    def pair_mask(row: dict[str, Any]) -> int:
        mask = 0
        for a, b in itertools.combinations(names, 2):
            if b == "cluster" and row["distributed"] != "multi_node":
                continue  # cluster is not asked then
            key = (a, row[a], b, row[b])
            mask |= 1 << pair_bits.setdefault(key, len(pair_bits))
        return mask

    rows = []
    for values in itertools.product(*parameters.values()):
        row = dict(zip(names, values, strict=True))
        if row["distributed"] != "multi_node" and row["cluster"] != "both":
            continue  # one value stands for "not asked"
        if resolve(row) is not None:
            rows.append((row, pair_mask(row)))

    uncovered = 0
    for _, mask in rows:
        uncovered |= mask
    chosen = []
    # Greedy cover: take the row that covers the most uncovered pairs until none are left.
    while uncovered:
        row, mask = max(rows, key=lambda item: (item[1] & uncovered).bit_count())
        uncovered &= ~mask
        chosen.append(tuple(row.items()))
    return tuple(chosen)


def pairwise() -> list[dict[str, Any]]:
    return [resolve(dict(row)) for row in _pairwise()]


def all_answer_sets() -> list[dict[str, Any]]:
    return full_matrix() + pairwise()
