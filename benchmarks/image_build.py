"""Measure the generated images per base layout and task type: size, build time, layer cache.

For each layout of the real base images (conda: pytorch/pytorch up to 2.9; system:
pytorch/pytorch 2.10+; ngc: nvcr.io/nvidia/pytorch) and each task type, this renders a project
with the defaults, then, with buildah (chroot isolation, docker format, layer cache) on the
layout's local stand-in (tests/container/standins.py):

1. builds the dev stage from nothing (a fresh image storage holding only the base image, empty
   pip/apt download caches): what the first "Reopen in Container" costs, base stage included;
   then the train stage, which reuses the base stage;
2. reports each stage's size over the base image (uncompressed layers);
3. edits a source file and rebuilds both stages: the dev stage copies no source, so nothing may
   rebuild there; in train only `COPY src/` and the `pip install` after it;
4. adds a package to requirements/base.txt, locks it (scripts/lock.py) and rebuilds both: only
   the requirements step and the steps after it may rebuild.

"Rebuilt" counts the RUN/COPY/ADD steps buildah did not take from its cache (metadata steps such
as ENV or USER are not counted). Needs root, buildah and debootstrap (see tests/container).

Usage: python benchmarks/image_build.py [--layout system] [--task cv] ...   (default: all)

Targets: source edit rebuilds 0 dev steps and 2 train steps; dependency edit rebuilds nothing
before the requirements step.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from copier import run_copy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.container.images import (  # noqa: E402
    CACHE_DIR,
    Build,
    Buildah,
    Step,
    build,
    check_tools,
)
from tests.container.standins import LAYOUTS, ensure_standins  # noqa: E402

TASK_TYPES = ("cv", "nlp", "audio")
MIB = 1024**2
# Added to requirements/base.txt for the dependency edit: small, pure Python.
NEW_DEPENDENCY = "packaging>=23"


@dataclass
class Measurement:
    layout: str
    base_mib: float
    task_type: str
    dev_mib: float
    train_mib: float
    dev_seconds: float
    train_seconds: float
    source_dev: list[Step]
    source_train: list[Step]
    dependency_dev: list[Step]
    dependency_train: list[Step]
    dependency_ok: bool


def render(destination: Path, task_type: str) -> tuple[Path, str]:
    run_copy(
        str(ROOT),
        str(destination),
        data={"task_type": task_type},
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
        vcs_ref="HEAD",
    )
    answers = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    return destination, answers["package_name"]


def size_over(buildah: Buildah, image: str, base_bytes: int) -> float:
    return (sum(buildah.layer_sizes(image)) - base_bytes) / MIB


def nothing_before_requirements(result: Build) -> bool:
    """After a dependency edit: every step before the first one that copies requirements
    came from the cache (that step and the ones after it may rebuild)."""
    for step in result.steps:
        if step.keyword in {"COPY", "ADD"} and "requirements/" in step.instruction:
            return True
        if step.changes_files and not step.cached:
            return False
    return False


def measure(buildah: Buildah, layout: str, base: str, task_type: str, folder: Path) -> Measurement:
    project, package = render(folder / "project", task_type)
    tag = f"localhost/benchmark-{layout}-{task_type}"
    base_bytes = sum(buildah.layer_sizes(base))

    dev = build(buildah, project, "dev", f"{tag}:dev", base)
    train = build(buildah, project, "train", f"{tag}:train", base)

    source = project / "src" / package / "train.py"
    source.write_text(source.read_text() + "\n# benchmark: a source edit\n")
    source_dev = build(buildah, project, "dev", f"{tag}:dev", base)
    source_train = build(buildah, project, "train", f"{tag}:train", base)

    requirements = project / "requirements" / "base.txt"
    requirements.write_text(requirements.read_text() + f"{NEW_DEPENDENCY}\n")
    # As the README says to: lock it (uv, from PyPI), which is what the image installs.
    subprocess.run([sys.executable, "scripts/lock.py"], cwd=project, check=True)
    dependency_dev = build(buildah, project, "dev", f"{tag}:dev", base)
    dependency_train = build(buildah, project, "train", f"{tag}:train", base)

    return Measurement(
        layout,
        base_bytes / MIB,
        task_type,
        size_over(buildah, dev.image, base_bytes),
        size_over(buildah, train.image, base_bytes),
        dev.seconds,
        train.seconds,
        source_dev.rebuilt,
        source_train.rebuilt,
        dependency_dev.rebuilt,
        dependency_train.rebuilt,
        nothing_before_requirements(dependency_dev)
        and nothing_before_requirements(dependency_train),
    )


def report(results: list[Measurement]) -> str:
    lines = [
        "| layout (base size) | task | dev size over base | train size over base "
        "| dev build, cold (incl. base) | train build (base cached) "
        "| source edit: rebuilt dev / train | dependency edit: rebuilt dev / train |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in results:
        source_ok = not m.source_dev and [s.keyword for s in m.source_train] == ["COPY", "RUN"]
        lines.append(
            f"| {m.layout} ({m.base_mib:.0f} MiB) | {m.task_type} "
            f"| {m.dev_mib:.0f} MiB | {m.train_mib:.0f} MiB "
            f"| {m.dev_seconds:.0f} s | {m.train_seconds:.0f} s "
            f"| {len(m.source_dev)} / {len(m.source_train)} "
            f"({'target met' if source_ok else 'TARGET MISSED'}) "
            f"| {len(m.dependency_dev)} / {len(m.dependency_train)} "
            f"({'target met' if m.dependency_ok else 'TARGET MISSED'}) |"
        )
    lines.append("")
    for m in results:
        for label, steps in (
            ("source edit, dev", m.source_dev),
            ("source edit, train", m.source_train),
            ("dependency edit, dev", m.dependency_dev),
            ("dependency edit, train", m.dependency_train),
        ):
            rebuilt = "; ".join(step.short(48) for step in steps) or "nothing"
            lines.append(f"{m.layout} {m.task_type} {label}: {rebuilt}")
    return "\n".join(lines)


def copy_image(source: Buildah, target: Buildah, image: str, folder: Path) -> None:
    """Copy `image` from one storage into another (uncompressed, through a folder)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    source("push", "--quiet", "--disable-compression", image, f"dir:{folder}")
    image_id = target("pull", "--quiet", f"dir:{folder}").stdout.split()[-1]
    target("tag", image_id, image)
    shutil.rmtree(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", action="append", choices=sorted(LAYOUTS), help="default: all")
    parser.add_argument("--task", action="append", choices=TASK_TYPES, help="default: all")
    args = parser.parse_args(argv)
    problem = check_tools()
    if problem:
        print(f"image_build: {problem}", file=sys.stderr)
        return 2
    results = []
    bases = ensure_standins(Buildah())
    with tempfile.TemporaryDirectory(prefix="image-build-", dir=CACHE_DIR) as scratch:
        # Each case builds in a storage of its own that holds only its base image, with empty
        # download caches (buildah keeps cache mounts under TMPDIR): its first build is cold,
        # and no layer of an earlier run or another case can be taken from the cache.
        for layout in args.layout or list(LAYOUTS):
            for task_type in args.task or TASK_TYPES:
                print(f"image_build: {layout} {task_type} ...", file=sys.stderr, flush=True)
                folder = Path(scratch) / f"{layout}-{task_type}"
                buildah = Buildah(root=folder / "storage", tmpdir=folder / "tmp")
                copy_image(Buildah(), buildah, bases[layout], folder / "base-image")
                results.append(measure(buildah, layout, bases[layout], task_type, folder))
                buildah("rmi", "--all", "--force", check=False)
                shutil.rmtree(folder, ignore_errors=True)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
