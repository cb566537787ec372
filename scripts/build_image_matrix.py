"""Build data/image-matrix.yml, the template's image matrix, from the facts this repository keeps.

The facts (data/sources/gpu-cuda-matrix.yaml, see data/sources/README.md) record what each
PyTorch release and image ships, each with its sources and a confidence. This script turns them
into what copier.yml looks up: for every image family, platform, GPU fleet (the oldest and the
newest generation the project must run on) and image flavor, the stacks that run the whole
fleet, newest first, each fully resolved (image, torch, CUDA, cuDNN, Python and layout, drivers,
arch list), with its evidence. Jinja in copier.yml then only looks values up.

Rules:
- a stack is offered for a fleet only when its build carries native code (SASS) for every
  compute capability of every generation from the oldest to the newest (same major, minor <=
  the GPU's); +PTX JIT is not relied on;
- only facts marked verified or verified-secondary offer a stack: the image tag, its Python and
  layout, and (NGC) its arch list on that platform; an unconfirmed fact offers nothing;
- per torch line, stable CUDA variants win over legacy and experimental ones, then the newest
  CUDA, then the newest release; every other stack of the line stays selectable as
  `<line>+<cuda tag>` (NGC: `<line>+nv<YY.MM>`), which is what the driver fallbacks name;
- a stack's driver floor is the higher of its CUDA line's minor-version floor and the minimum
  driver of every generation in the fleet.

Usage: python scripts/build_image_matrix.py [--facts PATH] [--output PATH] [--check]
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import copier_data  # noqa: E402 - a sibling script, not an installed package

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FACTS = ROOT / "data" / "sources" / "gpu-cuda-matrix.yaml"
DEFAULT_OUTPUT = ROOT / "data" / "image-matrix.yml"

FLAVORS = ("runtime", "devel")
PLATFORMS = ("linux/amd64", "linux/arm64")
FAMILIES = ("pytorch", "ngc")
# Only facts read in a primary source or seen in public use offer a stack.
TRUSTED_CONFIDENCE = {"verified", "verified-secondary"}
# Stable builds first: users should land on what PyTorch calls supported.
STATUS_RANK = {"stable-default": 0, "stable": 0, "ngc": 0, "legacy": 1, "experimental": 2}
FAMILY_PLATFORMS = {"pytorch": ("linux/amd64",), "ngc": PLATFORMS}
FAMILY_LABELS = {
    "pytorch": "pytorch/pytorch (Docker Hub)",
    "ngc": "nvcr.io/nvidia/pytorch (NVIDIA NGC)",
}


@dataclass(frozen=True)
class Generation:
    """A GPU generation as the template asks for it, mapped onto the facts file."""

    key: str
    label: str
    facts_keys: tuple[str, ...]
    # Compute capabilities whose SASS a stack must ship. Jetson parts (7.2 Xavier, 8.7 Orin,
    # 10.1/11.0 Thor) need NVIDIA's -igpu images; they map to their generation but are not
    # required.
    required: tuple[str, ...]
    # A few well-known GPUs, short enough for a prompt line in an 80-column terminal.
    short_examples: str = ""
    # Facts entries whose GPUs only add compute capabilities to the generation lookup (Jetson
    # Thor: L4T drivers, not the desktop driver branches the floors are about).
    lookup_only_keys: tuple[str, ...] = ()


# Oldest first: a fleet is a contiguous run of this tuple.
GENERATIONS = (
    Generation("volta", "Volta", ("volta",), ("7.0",), "V100, Titan V"),
    Generation("turing", "Turing", ("turing",), ("7.5",), "T4, RTX 20xx, GTX 16xx"),
    Generation("ampere", "Ampere", ("ampere",), ("8.0", "8.6"), "A100, A10, A40, RTX 30xx"),
    Generation("ada", "Ada Lovelace", ("ada",), ("8.9",), "L4, L40S, RTX 40xx"),
    Generation("hopper", "Hopper", ("hopper",), ("9.0",), "H100, H200, GH200"),
    Generation(
        "blackwell",
        "Blackwell",
        ("blackwell_datacenter", "blackwell_consumer"),
        ("10.0", "12.0"),
        "B200, B300, RTX 50xx, DGX Spark",
        ("blackwell_jetson_thor",),
    ),
)


def cc_tuple(value: str) -> tuple[int, int]:
    """'8.6' or '12.0+PTX' -> (8, 6)."""
    major, minor = value.replace("+PTX", "").strip().split(".")
    return int(major), int(minor)


def version_tuple(value: str) -> tuple[int, ...]:
    """'13.2' -> (13, 2); '2.14.1' -> (2, 14, 1); '570.86.16' -> (570, 86, 16)."""
    return tuple(int(part) for part in re.findall(r"\d+", value))


def first_token(value: Any) -> str:
    """'9.17.1.4 (matrix) / 9.19.0.56 (PyPI wheel)' -> '9.17.1.4'."""
    return str(value).split()[0]


def arch_entries(arch_list: str) -> list[str]:
    """'7.5;8.0;12.0+PTX' -> ['7.5', '8.0', '12.0+PTX']."""
    return [entry for entry in first_token(arch_list).split(";") if entry]


def has_sass(arch_list: str, capability: str) -> bool:
    """True when the build ships a cubin this compute capability can run natively."""
    major, minor = cc_tuple(capability)
    return any(
        cc_tuple(entry)[0] == major and cc_tuple(entry)[1] <= minor
        for entry in arch_entries(arch_list)
    )


def highest_version(values: list[str | None]) -> str:
    """The highest of some driver versions; None stands for "no requirement"."""
    return max((value for value in values if value), key=version_tuple)


def trusted(entry: dict[str, Any] | None) -> bool:
    return bool(entry) and entry.get("confidence") in TRUSTED_CONFIDENCE


@dataclass(frozen=True)
class Fleet:
    """The generations a project must run on: a contiguous run from `oldest` to `newest`."""

    generations: tuple[Generation, ...]

    @property
    def key(self) -> str:
        return f"{self.generations[0].key}-{self.generations[-1].key}"

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(cc for gen in self.generations for cc in gen.required)

    @property
    def label(self) -> str:
        first, last = self.generations[0].label, self.generations[-1].label
        return first if first == last else f"{first} to {last}"

    @property
    def sms(self) -> str:
        return ", ".join(f"sm_{cc.replace('.', '')}" for cc in self.required)

    def runs_on(self, arch_list: str) -> bool:
        return all(has_sass(arch_list, cc) for cc in self.required)

    def extension_arch_list(self) -> str:
        """TORCH_CUDA_ARCH_LIST for compiling extensions: native code for every capability of
        the fleet, and PTX of the newest so that later GPUs can still JIT it."""
        return ";".join(self.required) + "+PTX"


def fleets() -> list[Fleet]:
    return [
        Fleet(GENERATIONS[start : end + 1])
        for start, end in itertools.combinations_with_replacement(range(len(GENERATIONS)), 2)
    ]


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

    def generation_entries(self, gen: Generation) -> list[dict[str, Any]]:
        return [self.data["gpu_generations"][key] for key in gen.facts_keys]

    def generation_min_driver(self, gen: Generation) -> str | None:
        """The oldest Linux driver that runs the generation's GPUs (for Blackwell, both the
        data-centre and the consumer parts), or None where no confirmed value raises it."""
        drivers = [
            str(e["min_driver_linux"]["value"])
            for e in self.generation_entries(gen)
            if trusted(e["min_driver_linux"]) and e["min_driver_linux"]["value"]
        ]
        return highest_version(drivers) if drivers else None

    def pytorch_layout(self, line: str, flavor: str) -> dict[str, Any] | None:
        """What a pytorch/pytorch image of this torch line and flavor looks like inside."""
        for layout in self.data["docker_hub_images"]["layouts"]:
            low, high = version_tuple(layout["from_line"]), version_tuple(layout["to_line"])
            if flavor in layout["flavors"] and low <= version_tuple(line) <= high:
                return layout
        return None

    def ngc_layout(self, tag: str) -> dict[str, Any] | None:
        """What an NGC image of this YY.MM release looks like inside."""
        for layout in self.data["ngc_images"]["layouts"]:
            low, high = version_tuple(layout["from_tag"]), version_tuple(layout["to_tag"])
            if low <= version_tuple(tag.split("-")[0]) <= high:
                return layout
        return None

    def tags_seen(self) -> dict[str, list[str]]:
        return self.data["docker_hub_images"]["tags_seen"]

    def torchvision(self, line: str) -> str:
        return first_token(self.data["companions"]["torchvision"]["pairing"][line])


def layout_fields(layout: dict[str, Any]) -> dict[str, Any]:
    """The parts of a layout that flow into the generated project."""
    return {
        "python": str(layout["python"]),
        "os": layout["os"],
        "layout": layout["layout"],
        "site_packages": layout["site_packages"],
    }


def pytorch_stacks(facts: Facts, skipped: list[str]) -> dict[str, dict[str, Any]]:
    """One stack per (torch line, CUDA variant, flavor): the newest patch whose tag was seen."""
    stacks: dict[str, dict[str, Any]] = {}
    tags_seen = facts.tags_seen()
    for line, release in facts.data["pytorch_releases"].items():
        for variant in release["variants"]:
            for flavor in FLAVORS:
                suffix = f"cuda{variant['cuda']}-cudnn9-{flavor}"
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
                image = f"pytorch/pytorch:{patch}-{suffix}"
                layout = facts.pytorch_layout(line, flavor)
                if not trusted(layout):
                    skipped.append(f"{image}: its Python and layout are not confirmed")
                    continue
                stack_id = f"pytorch-{patch}-{variant['tag']}-{flavor}"
                stacks[stack_id] = {
                    "family": "pytorch",
                    "image": image,
                    "flavor": flavor,
                    "platforms": ["linux/amd64"],
                    "torch": patch,
                    "torch_line": line,
                    "torchvision": facts.torchvision(line),
                    "cuda": variant["cuda"],
                    "cuda_tag": variant["tag"],
                    "cuda_status": variant["status"],
                    "cudnn": first_token(variant["cudnn"]),
                    **layout_fields(layout),
                    "arch_list": first_token(variant["arch"]),
                    "driver_toolkit": facts.toolkit_driver(variant["cuda"]),
                    "driver_floor": facts.compat_floor(variant["cuda"]),
                    "choice": f"{line}+{variant['tag']}",
                    "sources": sorted(
                        set(release["source"])
                        | set(facts.data["docker_hub_images"]["tags_seen"]["source"])
                        | set(layout["source"])
                    ),
                    "confidence": "verified-secondary",
                }
    return stacks


def ngc_stacks(facts: Facts, skipped: list[str]) -> dict[str, dict[str, Any]]:
    """One stack per NGC release and platform whose arch list there has evidence."""
    section = facts.data["ngc_images"]
    stacks = {}
    for release in section["releases"]:
        tag = release["tag"]
        if not trusted(release) or "cuda" not in release:
            skipped.append(f"nvcr.io/nvidia/pytorch:{tag}: the release itself is not confirmed")
            continue
        cuda = ".".join(re.findall(r"\d+", release["cuda"])[:2])
        torch = first_token(release["torch"])
        line = ".".join(re.findall(r"\d+", torch)[:2])
        if not re.match(r"\d+\.\d+\.\d+", torch):
            # Only the line is known ("2.12 (nv build)"): a pip-style wildcard, which the
            # project's doctor reads as "any 2.12 build", not the impossible version "2.12".
            torch = f"{line}.*"
        layout = facts.ngc_layout(tag)
        if not trusted(layout):
            skipped.append(f"nvcr.io/nvidia/pytorch:{tag}: its Python and layout are not confirmed")
            continue
        yymm = tag.split("-")[0]
        for platform in PLATFORMS:
            evidence = (release.get("platforms") or {}).get(platform)
            if not trusted(evidence):
                skipped.append(
                    f"nvcr.io/nvidia/pytorch:{tag} on {platform}: no confirmed arch list"
                )
                continue
            stacks[f"ngc-{yymm}-{platform.split('/')[1]}"] = {
                "family": "ngc",
                "image": f"nvcr.io/nvidia/pytorch:{tag}",
                "flavor": "devel",  # NGC images ship the full toolkit (nvcc)
                "platforms": [platform],
                "torch": torch,
                "torch_line": line,
                "torchvision": "NGC build",
                "cuda": cuda,
                "cuda_tag": "cu" + cuda.replace(".", ""),
                "cuda_status": "ngc",
                "cudnn": None,
                **layout_fields(layout),
                "arch_list": first_token(evidence["arch_list"]),
                "driver_toolkit": facts.toolkit_driver(cuda),
                "driver_floor": facts.compat_floor(cuda),
                "choice": f"{line}+nv{yymm}",
                "sources": sorted(
                    set(release.get("source", []))
                    | set(evidence["source"])
                    | set(layout["source"])
                    | set(section["source"])
                ),
                "confidence": weakest(
                    release["confidence"], evidence["confidence"], layout["confidence"]
                ),
            }
    return stacks


def weakest(*confidences: str) -> str:
    """The weakest of several trusted confidences: a stack is only as sure as its parts."""
    return "verified" if all(c == "verified" for c in confidences) else "verified-secondary"


def stack_order(stack: dict[str, Any]) -> tuple:
    """Sort key: newest torch line, then stable before legacy and experimental, then newest
    CUDA, then the newest release (torch patch, or NGC's YY.MM tag)."""
    release = stack["torch"] if stack["family"] == "pytorch" else stack["image"].split(":")[1]
    return (
        version_tuple(stack["torch_line"]),
        -STATUS_RANK[stack["cuda_status"]],
        version_tuple(stack["cuda"]),
        version_tuple(release),
    )


def build_table(
    stacks: dict[str, dict[str, Any]], usable: list[str], fleet_floor: str
) -> dict[str, Any]:
    """The choices a fleet gets from these stacks, and the driver fallbacks among them.

    lines:   torch line -> its preferred stack, newest line first (`latest` is the first);
    choices: every torch_version answer -> stack (lines, and `<line>+<variant>` for each stack);
    floors:  stack -> the oldest driver that runs it on every GPU of the fleet;
    driver_fallbacks: "floor:answer ..." in order of preference, each floor lower than the one
             before: the first entry a host's driver meets is the best stack it can run.
    """
    ordered = sorted(usable, key=lambda sid: stack_order(stacks[sid]), reverse=True)
    lines: dict[str, str] = {}
    for sid in ordered:
        lines.setdefault(stacks[sid]["torch_line"], sid)
    choices = dict(lines)
    for sid in ordered:
        choices.setdefault(stacks[sid]["choice"], sid)
    floors = {sid: highest_version([stacks[sid]["driver_floor"], fleet_floor]) for sid in ordered}
    preferred = {sid: line for line, sid in lines.items()}
    fallbacks = []
    lowest: tuple[int, ...] | None = None
    for sid in ordered:
        floor = version_tuple(floors[sid])
        if lowest is None or floor < lowest:
            lowest = floor
            fallbacks.append(f"{floors[sid]}:{preferred.get(sid, stacks[sid]['choice'])}")
    return {
        "lines": lines,
        "choices": choices,
        "floors": floors,
        "driver_fallbacks": " ".join(fallbacks),
    }


def refusal(
    available: dict[tuple[str, str, str, str], str],
    family: str,
    platform: str,
    fleet: Fleet,
    flavor: str | None,
) -> str:
    """One sentence for a fleet no image of this family, platform and flavor runs: why, and
    the nearest answers that work (a narrower fleet, another family, platform or flavor)."""
    flavors = [flavor] if flavor else list(FLAVORS)
    oldest, newest = fleet.generations[0], fleet.generations[-1]
    index = {gen.key: i for i, gen in enumerate(GENERATIONS)}

    def works(fam: str, plat: str, start: int, end: int) -> bool:
        key = f"{GENERATIONS[start].key}-{GENERATIONS[end].key}"
        return any((fam, plat, key, fl) in available for fl in flavors)

    start, end = index[oldest.key], index[newest.key]
    options = []
    narrower = [e for e in range(end - 1, start - 1, -1) if works(family, platform, start, e)]
    if narrower:
        options.append(f"newest_gpu_generation {GENERATIONS[narrower[0]].key}")
    newer = [s for s in range(start + 1, end + 1) if works(family, platform, s, end)]
    if newer:
        options.append(f"gpu_generation {GENERATIONS[newer[0]].key}")
    for other in FAMILIES:
        if other != family and works(other, platform, start, end):
            options.append(f"image_family {other}")
    for other in PLATFORMS:
        if other != platform and works(family, other, start, end):
            options.append(f"platform {other}")
    if flavor:
        for other in FLAVORS:
            key = (family, platform, fleet.key, other)
            if other != flavor and key in available and family == "pytorch":
                options.append(f"image_flavor {other}")
    if not options:
        # No single change works (Volta on arm64, say): the first older-GPU cut that does.
        for s in range(start + 1, len(GENERATIONS)):
            e = max(s, end)
            if works(family, platform, s, e):
                wider = f" with newest_gpu_generation {GENERATIONS[e].key}" if e != end else ""
                options.append(f"gpu_generation {GENERATIONS[s].key}{wider}")
                break
    what = FAMILY_LABELS[family] + (f" {flavor}" if flavor and family == "pytorch" else "")
    span = (
        f"{fleet.label} ({fleet.sms})"
        if len(fleet.generations) == 1
        else f"every GPU from {fleet.label} ({fleet.sms})"
    )
    return f"no {what} image for {platform} carries native code for {span}; choose " + " or ".join(
        options
    )


def build_generations(facts: Facts) -> dict[str, Any]:
    result = {}
    for gen in GENERATIONS:
        entries = facts.generation_entries(gen)
        lookup_only = [facts.data["gpu_generations"][key] for key in gen.lookup_only_keys]
        result[gen.key] = {
            "label": gen.label,
            "compute_capabilities": sorted(
                {cc for e in entries + lookup_only for cc in e["compute_capability"]},
                key=version_tuple,
            ),
            "sms": ", ".join(f"sm_{cc.replace('.', '')}" for cc in gen.required),
            "required_sass": list(gen.required),
            # Jetson boards need NVIDIA's -igpu images, which this template does not offer.
            "examples": [ex for e in entries for ex in e.get("examples", []) if "Jetson" not in ex],
            "bf16": all(e["bf16"] for e in entries),
            "tf32": all(e["tf32"] for e in entries),
            # Mixed precision the training code uses: bf16 where the tensor cores have it.
            "amp_dtype": "bfloat16" if all(e["bf16"] for e in entries) else "float16",
            "fp8": all(e["fp8"] for e in entries),
            "min_driver": facts.generation_min_driver(gen),
            "sources": sorted(
                {s for e in entries for s in e["source"]}
                | {s for e in entries for s in e["min_driver_linux"]["source"]}
            ),
        }
    return result


def build_fleets(facts: Facts, stacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    releases = facts.data["pytorch_releases"]
    result = {}
    for fleet in fleets():
        result[fleet.key] = {
            "label": fleet.label,
            "sms": fleet.sms,
            "generations": [gen.key for gen in fleet.generations],
            "required_sass": list(fleet.required),
            "min_driver": max(
                (d for gen in fleet.generations if (d := facts.generation_min_driver(gen))),
                key=version_tuple,
                default=None,
            ),
            "extension_arch_list": fleet.extension_arch_list(),
            # Torch lines with any CUDA build for the whole fleet (image or not): tells "no
            # build" apart from "no image known" when an answer is refused.
            "torch_lines_with_build": [
                line
                for line in sorted(releases, key=version_tuple, reverse=True)
                if any(fleet.runs_on(v["arch"]) for v in releases[line]["variants"])
            ],
        }
    return result


def build(facts_data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The matrix, and a line for each image the facts name but do not confirm."""
    facts = Facts(facts_data)
    skipped: list[str] = []
    stacks = {**pytorch_stacks(facts, skipped), **ngc_stacks(facts, skipped)}
    generations = build_generations(facts)
    fleet_data = build_fleets(facts, stacks)

    tables: dict[str, dict[str, Any]] = {}
    table_ids: dict[str, str] = {}  # a table's JSON -> its id: equal tables are stored once
    candidates: dict[str, Any] = {}
    available: dict[tuple[str, str, str, str], str] = {}
    for family, platform, fleet, flavor in itertools.product(
        FAMILIES, PLATFORMS, fleets(), FLAVORS
    ):
        usable = [
            sid
            for sid, s in stacks.items()
            if s["family"] == family
            and platform in s["platforms"]
            and (family == "ngc" or s["flavor"] == flavor)
            and fleet.runs_on(s["arch_list"])
        ]
        if not usable:
            continue
        table = build_table(stacks, usable, fleet_data[fleet.key]["min_driver"])
        fingerprint = repr(sorted(table.items()))
        table_id = table_ids.setdefault(fingerprint, f"t{len(table_ids)}")
        tables[table_id] = table
        available[(family, platform, fleet.key, flavor)] = table_id
        candidates.setdefault(family, {}).setdefault(platform, {}).setdefault(fleet.key, {})[
            flavor
        ] = table_id

    # Refusals where no image of a family and platform runs a fleet: "any" when no flavor
    # does, a flavor's own entry when only the other one exists. pytorch/pytorch on arm64 is
    # refused as a family fact in copier.yml instead.
    refusals: dict[str, Any] = {}
    for family, platform, fleet in itertools.product(FAMILIES, PLATFORMS, fleets()):
        if platform not in FAMILY_PLATFORMS[family]:
            continue
        missing = [f for f in FLAVORS if (family, platform, fleet.key, f) not in available]
        if len(missing) == len(FLAVORS):
            entry = {"any": refusal(available, family, platform, fleet, None)}
        else:
            entry = {f: refusal(available, family, platform, fleet, f) for f in missing}
        if missing:
            refusals.setdefault(family, {}).setdefault(platform, {})[fleet.key] = entry

    used = {sid for table in tables.values() for sid in table["choices"].values()}
    matrix = {
        "generated_from": f"data/sources/gpu-cuda-matrix.yaml ({facts_data['generated']})",
        "torch_lines": sorted(facts_data["pytorch_releases"], key=version_tuple, reverse=True),
        "generations": generations,
        # The one capability -> generation lookup (exact): the hook, preflight.sh and the
        # doctor all read this table, rendered into stack.env and stack.py.
        "capabilities": {
            cc: key
            for key, gen in generations.items()
            for cc in sorted(gen["compute_capabilities"], key=version_tuple)
        },
        "fleets": fleet_data,
        "families": {
            "pytorch": {
                "label": FAMILY_LABELS["pytorch"],
                "repository": "pytorch/pytorch",
                "platforms": list(FAMILY_PLATFORMS["pytorch"]),
                "sources": facts_data["docker_hub_images"]["platforms"]["source"],
            },
            "ngc": {
                "label": FAMILY_LABELS["ngc"],
                "repository": "nvcr.io/nvidia/pytorch",
                "platforms": list(FAMILY_PLATFORMS["ngc"]),
                "sources": facts_data["ngc_images"]["source"],
            },
        },
        "stacks": {
            sid: {key: value for key, value in stacks[sid].items() if key != "choice"}
            for sid in sorted(stacks, key=lambda s: stack_order(stacks[s]), reverse=True)
            if sid in used
        },
        "candidates": candidates,
        "tables": tables,
        "refusals": refusals,
    }
    return matrix, skipped


HEADER = """\
# GENERATED by scripts/build_image_matrix.py from data/sources/gpu-cuda-matrix.yaml.
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
    parser.add_argument(
        "--explain", action="store_true", help="list the images the facts do not confirm"
    )
    args = parser.parse_args(argv)
    matrix, skipped = build(yaml.safe_load(args.facts.read_text()))
    text = render(matrix)
    if args.explain:
        print("\n".join(f"not offered: {line}" for line in skipped))
    if args.check:
        if args.output.read_text() != text:
            print(f"{args.output} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
