"""Warn when this machine's GPU belongs to another generation than the answer.

Run by copier after the first copy (a `_tasks` entry):

    python hooks/check_host_gpu.py --generation ampere --matrix data/image-matrix.yml

If `nvidia-smi` reports GPUs whose compute capability maps to another generation, it says
whether the project still runs there (the answer is the oldest generation to support) and
prints the exact `copier recopy` command that regenerates the project for them. It only warns
(exit 0): a project is often generated on a laptop for a cluster's GPUs. No GPU, no
`nvidia-smi`, or a failing one: nothing is printed. No network is needed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

QUERY = ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"]


def detected_gpus() -> list[tuple[str, str]]:
    """(name, compute capability) per GPU, or [] when none can be queried."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        result = subprocess.run(QUERY, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if result.returncode != 0:
        return []
    gpus = []
    for line in result.stdout.splitlines():
        name, _, capability = line.rpartition(",")
        if name.strip() and capability.strip():
            gpus.append((name.strip(), capability.strip()))
    return gpus


def generation_of(capability: str, generations: dict) -> str | None:
    for key, generation in generations.items():
        if capability in generation["compute_capabilities"]:
            return key
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generation", required=True, help="the gpu_generation answer")
    parser.add_argument("--matrix", type=Path, required=True, help="data/image-matrix.yml")
    parser.add_argument("--destination", default=".", help="the generated project")
    args = parser.parse_args(argv)

    gpus = detected_gpus()
    if not gpus:
        return 0
    # The matrix file is a copier question whose default is JSON (see copier_data.py).
    question = yaml.safe_load(args.matrix.read_text())["image_matrix"]
    generations = json.loads(question["default"])["generations"]
    for name, capability in gpus:
        found = generation_of(capability, generations)
        if found == args.generation:
            continue
        if found is None:
            print(
                f"check_host_gpu: this machine's {name} (compute capability {capability}) is "
                "not a generation this template supports (Volta 7.0 and newer); the project "
                f"targets {generations[args.generation]['label']}."
            )
            continue
        order = list(generations)
        target = generations[args.generation]["label"]
        if order.index(found) < order.index(args.generation):
            verdict = (
                f"older than the {target} GPUs the project targets, so the chosen image may "
                "not run on it"
            )
        else:
            verdict = (
                f"newer than {target}, so the project runs on it; if {target} GPUs are not "
                "needed, a newer stack fits better"
            )
        print(
            f"check_host_gpu: this machine's {name} (compute capability {capability}) is "
            f"{generations[found]['label']}: {verdict}. To regenerate for it:\n"
            f"  copier recopy --trust --overwrite --defaults --data gpu_generation={found} "
            f"{args.destination}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
