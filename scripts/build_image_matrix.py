"""Build data/image-matrix.yml, the template's image matrix, from the researched facts file.

The facts file (../shared/facts/gpu-cuda-matrix.yaml) records what each PyTorch release and
image ships, with evidence. This script turns it into the one thing copier.yml needs: for
every image family, platform, GPU generation and image flavor, the candidate stacks newest
first, each fully resolved (image reference, torch, CUDA, cuDNN, Python, drivers, arch list)
and carrying its source ids. Jinja in copier.yml then only looks values up.

Rules (facts/gpu-cuda-matrix.md, section 5):
- a stack is offered for a generation only when its CUDA build carries SASS for every compute
  capability the generation needs (same major, minor <= the GPU's; +PTX JIT is not relied on);
- a stack is offered only when its exact image tag has evidence in the facts file;
- per torch line, stable CUDA variants win over experimental ones, then the newest CUDA.

Usage: python scripts/build_image_matrix.py [--facts PATH] [--output PATH] [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import copier_data  # noqa: E402 - a sibling script, not an installed package

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FACTS = ROOT.parent / "shared" / "facts" / "gpu-cuda-matrix.yaml"
DEFAULT_OUTPUT = ROOT / "data" / "image-matrix.yml"

FLAVORS = ("runtime", "devel")
PLATFORMS = ("linux/amd64", "linux/arm64")
# Only stacks backed by evidence read in a primary source or seen in public use.
TRUSTED_CONFIDENCE = {"verified", "verified-secondary"}
# Stable builds first: users should land on what PyTorch calls supported.
STATUS_RANK = {"stable-default": 0, "stable": 0, "legacy": 1, "experimental": 2}


@dataclass(frozen=True)
class Generation:
    """A GPU generation as the template asks for it, mapped onto the facts file."""

    key: str
    label: str
    facts_keys: tuple[str, ...]
    # Compute capabilities whose SASS a stack must ship. Jetson-only capabilities
    # (7.2 Xavier, 8.7 Orin) are left out: they need NVIDIA's -igpu images.
    required: tuple[str, ...]


GENERATIONS = (
    Generation("volta", "Volta", ("volta",), ("7.0",)),
    Generation("turing", "Turing", ("turing",), ("7.5",)),
    Generation("ampere", "Ampere", ("ampere",), ("8.0", "8.6")),
    Generation("ada", "Ada Lovelace", ("ada",), ("8.9",)),
    Generation("hopper", "Hopper", ("hopper",), ("9.0",)),
    Generation(
        "blackwell",
        "Blackwell",
        ("blackwell_datacenter", "blackwell_consumer"),
        ("10.0", "12.0"),
    ),
)

# Highest compute capability a CUDA toolkit can target, for NGC builds whose exact
# TORCH_CUDA_ARCH_LIST is not published: 12.8 was the first toolkit with Blackwell.
KNOWN_CCS = ("6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0")


def cc_tuple(value: str) -> tuple[int, int]:
    """'8.6' or '12.0+PTX' -> (8, 6)."""
    major, minor = value.replace("+PTX", "").strip().split(".")
    return int(major), int(minor)


def version_tuple(value: str) -> tuple[int, ...]:
    """'13.2' -> (13, 2); '2.14.1' -> (2, 14, 1)."""
    return tuple(int(part) for part in re.findall(r"\d+", value))


def first_token(value: Any) -> str:
    """'9.17.1.4 (matrix) / 9.19.0.56 (PyPI wheel)' -> '9.17.1.4'."""
    return str(value).split()[0]


def arch_entries(arch_list: str) -> list[str]:
    """'7.5;8.0;12.0+PTX (expected)' -> ['7.5', '8.0', '12.0+PTX']."""
    return [entry for entry in first_token(arch_list).split(";") if entry]


def has_sass(arch_list: str, capability: str) -> bool:
    """True when the build ships a cubin this compute capability can run natively."""
    major, minor = cc_tuple(capability)
    return any(
        cc_tuple(entry)[0] == major and cc_tuple(entry)[1] <= minor
        for entry in arch_entries(arch_list)
    )


def runs_generation(arch_list: str, generation: Generation) -> bool:
    return all(has_sass(arch_list, cc) for cc in generation.required)


def extension_arch_list(arch_list: str, generation: Generation) -> str:
    """TORCH_CUDA_ARCH_LIST for compiling extensions: the generation's own capabilities,
    then every newer one the image's build targets (the answer is the oldest GPU)."""
    newest_required = max(cc_tuple(cc) for cc in generation.required)
    newer = [e for e in arch_entries(arch_list) if cc_tuple(e) > newest_required]
    own = list(generation.required)
    if not newer and arch_entries(arch_list)[-1].endswith("+PTX"):
        own[-1] += "+PTX"
    return ";".join(own + newer)


class Facts:
    """Read access to the facts file, normalising its free-text fields."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def toolkit_driver(self, cuda: str) -> str | None:
        """Linux driver of the toolkit's newest update (conservative), None if unknown."""
        entry = self.data["cuda"].get(cuda)
        if not entry or "min_driver_linux" not in entry:
            return None
        value = entry["min_driver_linux"]
        return str(list(value.values())[-1] if isinstance(value, dict) else value)

    def compat_floor(self, cuda: str) -> str:
        """Minor-version-compatibility floor: the oldest driver that can run this CUDA."""
        text = self.data["cuda_minor_version_compatibility"][f"{cuda.split('.')[0]}.x"]
        found = re.search(r"\((\d+(?:\.\d+)+)\)", text["min_linux_driver"]) or re.search(
            r"(\d+)", text["min_linux_driver"]
        )
        return found.group(1)

    def tags_seen(self) -> dict[str, list[str]]:
        return self.data["docker_hub_images"]["tags_seen"]

    def pytorch_python(self) -> str:
        return first_token(self.data["docker_hub_images"]["python_inside"]["value"])

    def torchvision(self, line: str) -> str:
        return first_token(self.data["companions"]["torchvision"]["pairing"][line])


def build_generations(facts: Facts) -> dict[str, Any]:
    releases = facts.data["pytorch_releases"]
    result = {}
    for gen in GENERATIONS:
        entries = [facts.data["gpu_generations"][key] for key in gen.facts_keys]
        built_lines = [
            line
            for line in sorted(releases, key=version_tuple, reverse=True)
            if any(runs_generation(v["arch"], gen) for v in releases[line]["variants"])
        ]
        result[gen.key] = {
            "label": gen.label,
            "compute_capabilities": [cc for e in entries for cc in e["compute_capability"]],
            "sms": ", ".join(f"sm_{cc.replace('.', '')}" for cc in gen.required),
            "required_sass": list(gen.required),
            # Jetson boards need NVIDIA's -igpu images, which this template does not offer.
            "examples": [ex for e in entries for ex in e["examples"] if "Jetson" not in ex],
            "bf16": all(e["bf16"] for e in entries),
            "tf32": all(e["tf32"] for e in entries),
            # Mixed precision the training code uses: bf16 where the tensor cores have it.
            "amp_dtype": "bfloat16" if all(e["bf16"] for e in entries) else "float16",
            "fp8": all(e["fp8"] for e in entries),
            "torch_lines_with_build": built_lines,
            # stack arch list -> TORCH_CUDA_ARCH_LIST for extensions; filled in by build()
            "extension_arch_lists": {},
            "sources": sorted({s for e in entries for s in e["source"]}),
        }
    return result


def pytorch_stacks(facts: Facts) -> dict[str, dict[str, Any]]:
    """One stack per (torch patch, CUDA variant, flavor) whose tag has evidence."""
    stacks: dict[str, dict[str, Any]] = {}
    tags_seen = facts.tags_seen()
    for line, release in facts.data["pytorch_releases"].items():
        for variant in release["variants"]:
            for flavor in FLAVORS:
                suffix = f"cuda{variant['cuda']}-cudnn9-{flavor}"
                # Newest patch release whose tag was seen in use.
                patch = next(
                    (
                        p
                        for p in sorted(release["patches"], key=version_tuple, reverse=True)
                        if suffix in (tags_seen.get(p) or [])
                    ),
                    None,
                )
                if patch is None:
                    continue
                stack_id = f"pytorch-{patch}-{variant['tag']}-{flavor}"
                stacks[stack_id] = {
                    "family": "pytorch",
                    "image": f"pytorch/pytorch:{patch}-{suffix}",
                    "flavor": flavor,
                    "platforms": ["linux/amd64"],
                    "torch": patch,
                    "torch_line": line,
                    "torchvision": facts.torchvision(line),
                    "cuda": variant["cuda"],
                    "cuda_tag": variant["tag"],
                    "cuda_status": variant["status"],
                    "cudnn": first_token(variant["cudnn"]),
                    "python": facts.pytorch_python(),
                    "arch_list": first_token(variant["arch"]),
                    "driver_toolkit": facts.toolkit_driver(variant["cuda"]),
                    "driver_floor": facts.compat_floor(variant["cuda"]),
                    "sources": sorted(
                        set(release["source"])
                        | set(facts.data["docker_hub_images"]["tags_seen"]["source"])
                    ),
                    "confidence": "verified-secondary",
                }
    return stacks


def ngc_arch_list(min_cc: str, cuda: str) -> str:
    """NGC publishes 'compute capability X+' rather than a list; expand it to what the
    image's CUDA can target (Blackwell from CUDA 12.8)."""
    top = (12, 0) if version_tuple(cuda)[:2] >= (12, 8) else (9, 0)
    return ";".join(cc for cc in KNOWN_CCS if cc_tuple(min_cc) <= cc_tuple(cc) <= top)


def ngc_stacks(facts: Facts) -> dict[str, dict[str, Any]]:
    section = facts.data["ngc_images"]
    stacks = {}
    for release in section["releases"]:
        if release.get("confidence") not in TRUSTED_CONFIDENCE or "cuda" not in release:
            continue
        tag = release["tag"]
        cuda = ".".join(re.findall(r"\d+", release["cuda"])[:2])
        torch = first_token(release["torch"])
        line = ".".join(re.findall(r"\d+", torch)[:2])
        if not re.match(r"\d+\.\d+\.\d+", torch):
            # Only the line is known ("2.12 (nv build)"): a pip-style wildcard, which the
            # project's doctor reads as "any 2.12 build", not the impossible version "2.12".
            torch = f"{line}.*"
        min_cc = re.match(r"(\d+\.\d+)\+", release["archs"]).group(1)
        # Multi-arch manifests are documented for recent tags; 24.x is kept amd64-only.
        platforms = list(PLATFORMS) if version_tuple(tag) >= (25, 1) else ["linux/amd64"]
        stacks[f"ngc-{tag.split('-')[0]}"] = {
            "family": "ngc",
            "image": f"nvcr.io/nvidia/pytorch:{tag}",
            "flavor": "devel",  # NGC images ship the full toolkit (nvcc)
            "platforms": platforms,
            "torch": torch,
            "torch_line": line,
            "torchvision": "NGC build",
            "cuda": cuda,
            "cuda_tag": "cu" + cuda.replace(".", ""),
            "cuda_status": "ngc",
            "cudnn": None,
            "python": ".".join(re.findall(r"\d+", release["python"])[:2]),
            "arch_list": ngc_arch_list(min_cc, cuda),
            "driver_toolkit": facts.toolkit_driver(cuda),
            "driver_floor": facts.compat_floor(cuda),
            "sources": sorted(set(section["releases_source"]) | set(section["source"])),
            "confidence": release["confidence"],
        }
    return stacks


def stack_order(stack: dict[str, Any]) -> tuple:
    """Sort key: newest torch line, then stable before experimental, then newest CUDA,
    then the newest release (torch patch, or NGC's YY.MM tag)."""
    release = stack["torch"] if stack["family"] == "pytorch" else stack["image"].split(":")[1]
    return (
        version_tuple(stack["torch_line"]),
        -STATUS_RANK.get(stack["cuda_status"], 0),
        version_tuple(stack["cuda"]),
        version_tuple(release),
    )


def build_candidates(
    stacks: dict[str, dict[str, Any]],
    family: str,
    platform: str,
    gen: Generation,
    flavor: str,
) -> dict[str, dict[str, str]]:
    """The best stack per torch line (newest line first), and for each driver floor the
    newest line a host at that floor can run (what preflight suggests on an old driver)."""
    usable = [
        (sid, s)
        for sid, s in stacks.items()
        if s["family"] == family
        and platform in s["platforms"]
        and (family == "ngc" or s["flavor"] == flavor)
        and runs_generation(s["arch_list"], gen)
    ]
    usable.sort(key=lambda item: stack_order(item[1]), reverse=True)
    per_line: dict[str, str] = {}
    for sid, s in usable:
        per_line.setdefault(s["torch_line"], sid)
    fallbacks: dict[str, str] = {}
    for line, sid in per_line.items():
        fallbacks.setdefault(stacks[sid]["driver_floor"], line)
    return {
        "stacks": per_line,
        "fallbacks": fallbacks,
        # The same, as preflight.sh reads it from stack.env: "floor:line floor:line".
        "driver_fallbacks": " ".join(f"{floor}:{line}" for floor, line in fallbacks.items()),
    }


def build(facts_data: dict[str, Any]) -> dict[str, Any]:
    facts = Facts(facts_data)
    stacks = {**pytorch_stacks(facts), **ngc_stacks(facts)}
    generations = build_generations(facts)
    candidates: dict[str, Any] = {}
    for family in ("pytorch", "ngc"):
        for platform in PLATFORMS:
            for gen in GENERATIONS:
                for flavor in FLAVORS:
                    found = build_candidates(stacks, family, platform, gen, flavor)
                    if not found["stacks"]:
                        continue
                    # Share equal tables (NGC's flavors and platforms) so the YAML
                    # writes them once, as an anchor: copier parses this on every run.
                    found = next(
                        (
                            other
                            for p in candidates.get(family, {}).values()
                            for g in p.values()
                            for other in g.values()
                            if other == found
                        ),
                        found,
                    )
                    candidates.setdefault(family, {}).setdefault(platform, {}).setdefault(
                        gen.key, {}
                    )[flavor] = found
                    for sid in found["stacks"].values():
                        arch_list = stacks[sid]["arch_list"]
                        generations[gen.key]["extension_arch_lists"][arch_list] = (
                            extension_arch_list(arch_list, gen)
                        )
    used = {
        sid
        for f in candidates.values()
        for p in f.values()
        for g in p.values()
        for table in g.values()
        for sid in table["stacks"].values()
    }
    return {
        "generated_from": f"facts/gpu-cuda-matrix.yaml ({facts_data['generated']})",
        "torch_lines": sorted(facts_data["pytorch_releases"], key=version_tuple, reverse=True),
        "generations": generations,
        "families": {
            "pytorch": {
                "label": "pytorch/pytorch (Docker Hub)",
                "repository": "pytorch/pytorch",
                "platforms": ["linux/amd64"],
                "sources": facts_data["docker_hub_images"]["platforms"]["source"],
            },
            "ngc": {
                "label": "nvcr.io/nvidia/pytorch (NVIDIA NGC)",
                "repository": "nvcr.io/nvidia/pytorch",
                "platforms": list(PLATFORMS),
                "sources": facts_data["ngc_images"]["source"],
            },
        },
        "stacks": {
            sid: stacks[sid]
            for sid in sorted(stacks, key=lambda s: stack_order(stacks[s]), reverse=True)
            if sid in used
        },
        "candidates": candidates,
    }


HEADER = """\
# GENERATED by scripts/build_image_matrix.py from ../shared/facts/gpu-cuda-matrix.yaml.
# Do not edit by hand: change the facts (with their evidence) and rerun the script.
# copier.yml includes this file first; Jinja only looks values up in `image_matrix`.
"""


def render(matrix: dict[str, Any]) -> str:
    return copier_data.render("image_matrix", matrix, HEADER)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=Path, default=DEFAULT_FACTS)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the output file is out of date"
    )
    args = parser.parse_args(argv)
    text = render(build(yaml.safe_load(args.facts.read_text())))
    if args.check:
        if args.output.read_text() != text:
            print(
                f"{args.output} is out of date: run {Path(__file__).name}",
                file=sys.stderr,
            )
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
