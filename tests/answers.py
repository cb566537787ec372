"""Answer sets the render and validate levels run over.

- `full_matrix()`: every task_type x gpu_generation x distributed combination (54), the other
  answers at their defaults.
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


def candidate_lines(answers: dict[str, Any]) -> list[str]:
    """Torch lines the template offers for these answers, newest first ([] if refused)."""
    table = (
        image_matrix()["candidates"]
        .get(answers.get("image_family", "pytorch"), {})
        .get(answers.get("platform", "linux/amd64"), {})
        .get(answers.get("gpu_generation", "ampere"), {})
        .get(answers.get("image_flavor", "runtime"), {})
    )
    return list(table.get("stacks", {}))


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
