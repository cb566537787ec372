"""The image matrix (data/image-matrix.yml) checked against the facts it is built from.

Every check re-derives what it expects from data/sources/gpu-cuda-matrix.yaml here, with its
own small helpers, rather than calling scripts/build_image_matrix.py: a builder bug must not be
able to agree with itself. The rules (data/sources/README.md):

- a stack is offered for a GPU range (oldest to newest generation) only when its build carries
  SASS for every compute capability of every generation in the range;
- only confirmed facts offer a stack: the tag, the image's Python and layout, and for NGC the
  arch list on that platform;
- per torch line: stable before legacy before experimental CUDA variants, then the newest CUDA,
  then the newest release; the others stay selectable as <line>+<variant>;
- a stack's driver floor is the higher of its CUDA line's floor and the GPUs' own first driver.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from answers import image_matrix
from conftest import REPO_ROOT, vendored

BUILDER = REPO_ROOT / "scripts" / "build_image_matrix.py"
DATA = REPO_ROOT / "data" / "image-matrix.yml"

ORDER = ("volta", "turing", "ampere", "ada", "hopper", "blackwell")
# Compute capabilities whose SASS a stack must ship for the generation to run natively. Ada
# (8.9) runs the 8.x cubins with minor <= 9; Blackwell covers the data-centre (10.x) and the
# consumer (12.x) parts, so both are required.
REQUIRED_SASS = {
    "volta": ("7.0",),
    "turing": ("7.5",),
    "ampere": ("8.0", "8.6"),
    "ada": ("8.9",),
    "hopper": ("9.0",),
    "blackwell": ("10.0", "12.0"),
}
FACTS_KEYS = {
    "volta": ("volta",),
    "turing": ("turing",),
    "ampere": ("ampere",),
    "ada": ("ada",),
    "hopper": ("hopper",),
    "blackwell": ("blackwell_datacenter", "blackwell_consumer"),
}
# Minor-version-compatibility floors per CUDA major (facts section 2, NVIDIA compat guide).
COMPAT_FLOORS = {11: "450.80.02", 12: "525.60.13", 13: "580"}
TRUSTED = {"verified", "verified-secondary"}
STATUS = {"stable": 0, "stable-default": 0, "legacy": 1, "experimental": 2}
PYTORCH_TAG = re.compile(
    r"^pytorch/pytorch:(?P<patch>\d+\.\d+\.\d+)-cuda(?P<cuda>\d+\.\d+)-cudnn9-(?P<flavor>\w+)$"
)
NGC_TAG = re.compile(r"^nvcr\.io/nvidia/pytorch:(?P<tag>\d\d\.\d\d)-py3$")


# --- facts and data ---------------------------------------------------------------------------


@cache
def _facts() -> dict[str, Any]:
    return yaml.safe_load(vendored("data/sources/gpu-cuda-matrix.yaml").read_text())


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    return _facts()


@pytest.fixture(scope="module")
def matrix() -> dict[str, Any]:
    return image_matrix()


def fleets() -> list[tuple[str, ...]]:
    """Every GPU range as its generations, oldest first."""
    return [ORDER[a : b + 1] for a, b in itertools.combinations_with_replacement(range(6), 2)]


def fleet_key(fleet: tuple[str, ...]) -> str:
    return f"{fleet[0]}-{fleet[-1]}"


def tables(matrix: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """Every candidate table as (family, platform, fleet key, flavor, table)."""
    return [
        (family, platform, fleet, flavor, matrix["tables"][table_id])
        for family, platforms in matrix["candidates"].items()
        for platform, fleets_ in platforms.items()
        for fleet, flavors in fleets_.items()
        for flavor, table_id in flavors.items()
    ]


def offered(matrix: dict[str, Any]) -> list[tuple[str, str, str, str, str, dict[str, Any]]]:
    """Every (family, platform, fleet, flavor, answer, stack) a user can get."""
    return [
        (family, platform, fleet, flavor, answer, matrix["stacks"][stack_id])
        for family, platform, fleet, flavor, table in tables(matrix)
        for answer, stack_id in table["choices"].items()
    ]


# --- independent helpers ----------------------------------------------------------------------


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def capability(entry: str) -> tuple[int, int]:
    major, minor = entry.removesuffix("+PTX").split(".")
    return int(major), int(minor)


def arch_list(facts_arch: str) -> str:
    """A facts arch field without its remark: '7.5;12.0+PTX (expected)' -> '7.5;12.0+PTX'."""
    return facts_arch.split()[0]


def runs_natively(arch: str, cc: str) -> bool:
    """A cubin of the same major and a minor <= the GPU's is in the build (PTX does not count)."""
    major, minor = capability(cc)
    for entry in arch.split(";"):
        if not re.fullmatch(r"\d+\.\d+(\+PTX)?", entry):
            raise AssertionError(f"unexpected arch entry {entry!r} in {arch!r}")
        e_major, e_minor = capability(entry)
        if e_major == major and e_minor <= minor:
            return True
    return False


def runs_fleet(arch: str, fleet: tuple[str, ...]) -> bool:
    return all(runs_natively(arch, cc) for gen in fleet for cc in REQUIRED_SASS[gen])


def toolkit_driver(facts: dict[str, Any], cuda: str) -> str | None:
    value = (facts["cuda"].get(cuda) or {}).get("min_driver_linux")
    if isinstance(value, dict):
        return list(value.values())[-1]  # the newest update's: the conservative requirement
    return value


def fleet_min_driver(facts: dict[str, Any], fleet: tuple[str, ...]) -> str | None:
    drivers = [
        str(entry["min_driver_linux"]["value"])
        for gen in fleet
        for entry in (facts["gpu_generations"][key] for key in FACTS_KEYS[gen])
        if entry["min_driver_linux"]["confidence"] in TRUSTED and entry["min_driver_linux"]["value"]
    ]
    return max(drivers, key=version) if drivers else None


def expected_floor(facts: dict[str, Any], cuda: str, fleet: tuple[str, ...]) -> str:
    floors = [COMPAT_FLOORS[version(cuda)[0]], fleet_min_driver(facts, fleet)]
    return max((f for f in floors if f), key=version)


def pytorch_layout(facts: dict[str, Any], line: str) -> dict[str, Any] | None:
    for layout in facts["docker_hub_images"]["layouts"]:
        if version(layout["from_line"]) <= version(line) <= version(layout["to_line"]):
            return layout if layout["confidence"] in TRUSTED else None
    return None


def ngc_layout(facts: dict[str, Any], tag: str) -> dict[str, Any] | None:
    for layout in facts["ngc_images"]["layouts"]:
        if version(layout["from_tag"]) <= version(tag.split("-")[0]) <= version(layout["to_tag"]):
            return layout if layout["confidence"] in TRUSTED else None
    return None


def seen_tags(facts: dict[str, Any]) -> set[str]:
    seen = facts["docker_hub_images"]["tags_seen"]
    return {
        f"pytorch/pytorch:{patch}-{suffix}"
        for patch, suffixes in seen.items()
        if re.fullmatch(r"\d+\.\d+\.\d+", patch)
        for suffix in suffixes or []
    }


def expected_pytorch_stacks(facts: dict[str, Any], flavor: str) -> list[dict[str, Any]]:
    """Every Docker Hub stack the facts confirm for a flavor: its image, CUDA and arch list."""
    seen = seen_tags(facts)
    stacks = []
    for line, release in facts["pytorch_releases"].items():
        if pytorch_layout(facts, line) is None:
            continue
        for variant in release["variants"]:
            tags = [
                f"pytorch/pytorch:{patch}-cuda{variant['cuda']}-cudnn9-{flavor}"
                for patch in release["patches"]
            ]
            tags = [tag for tag in tags if tag in seen]
            if tags:
                image = max(tags, key=lambda tag: version(tag.split(":")[1].split("-")[0]))
                stacks.append(
                    {
                        "line": line,
                        "image": image,
                        "cuda": variant["cuda"],
                        "tag": variant["tag"],
                        "status": variant["status"],
                        "arch": arch_list(variant["arch"]),
                    }
                )
    return stacks


def expected_ngc_stacks(facts: dict[str, Any], platform: str) -> list[dict[str, Any]]:
    stacks = []
    for release in facts["ngc_images"]["releases"]:
        evidence = (release.get("platforms") or {}).get(platform)
        if release.get("confidence") not in TRUSTED or "cuda" not in release:
            continue
        if not evidence or evidence["confidence"] not in TRUSTED:
            continue
        if ngc_layout(facts, release["tag"]) is None:
            continue
        stacks.append(
            {
                "line": ".".join(re.findall(r"\d+", release["torch"])[:2]),
                "image": f"nvcr.io/nvidia/pytorch:{release['tag']}",
                "cuda": ".".join(re.findall(r"\d+", release["cuda"])[:2]),
                "status": "stable",
                "arch": arch_list(evidence["arch_list"]),
                "release": release["tag"],
            }
        )
    return stacks


def preference(stack: dict[str, Any]) -> tuple:
    release = stack.get("release") or stack["image"].split(":")[1].split("-")[0]
    return (version(stack["line"]), -STATUS[stack["status"]], version(stack["cuda"]),
            version(release))  # fmt: skip


def expected_table(
    facts: dict[str, Any], family: str, platform: str, fleet: tuple[str, ...], flavor: str
) -> list[dict[str, Any]]:
    """The stacks that run the whole fleet, most preferred first."""
    if family == "pytorch":
        candidates = expected_pytorch_stacks(facts, flavor) if platform == "linux/amd64" else []
    else:
        candidates = expected_ngc_stacks(facts, platform)
    usable = [s for s in candidates if runs_fleet(s["arch"], fleet)]
    return sorted(usable, key=preference, reverse=True)


# --- the file is what the builder makes from the facts ----------------------------------------


def run_builder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILDER), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_committed_data_is_up_to_date() -> None:
    result = run_builder("--check")
    assert result.returncode == 0, result.stderr


def test_check_fails_on_a_tampered_copy(tmp_path: Path) -> None:
    tampered = tmp_path / "image-matrix.yml"
    shutil.copy(DATA, tampered)
    text = tampered.read_text()
    assert "pytorch/pytorch:2.14.1-cuda13.2-cudnn9-runtime" in text
    tampered.write_text(text.replace("2.14.1-cuda13.2", "2.14.1-cuda13.1", 1))
    before = tampered.read_text()

    result = run_builder("--output", str(tampered), "--check")

    assert result.returncode == 1
    assert "out of date" in result.stderr
    assert tampered.read_text() == before, "--check must not rewrite the file"


def test_builder_writes_what_check_accepts(tmp_path: Path) -> None:
    output = tmp_path / "image-matrix.yml"
    assert run_builder("--output", str(output)).returncode == 0
    assert output.read_text() == DATA.read_text()
    assert output.read_text().startswith("# GENERATED by scripts/build_image_matrix.py")


def test_nothing_reads_the_shared_folder() -> None:
    """The repository owns its facts and schemas: no file it runs points at ../shared."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    offenders = [
        name
        for name in listed
        if name != "tests/unit/test_image_matrix.py"  # this test names the pattern
        and name.endswith((".py", ".sh", ".yml", ".yaml", ".jinja", ".toml"))
        and (REPO_ROOT / name).is_file()
        and re.search(r"\.\./shared|parent / \"shared\"", (REPO_ROOT / name).read_text())
    ]
    assert not offenders, offenders


# --- architecture: every offered stack really runs every GPU of its range ---------------------


def test_generations_are_the_answer_values(matrix: dict[str, Any]) -> None:
    assert list(matrix["generations"]) == list(ORDER)
    for key, generation in matrix["generations"].items():
        assert tuple(generation["required_sass"]) == REQUIRED_SASS[key]


def test_every_range_has_its_fleet_entry(matrix: dict[str, Any]) -> None:
    assert set(matrix["fleets"]) == {fleet_key(f) for f in fleets()}
    for fleet in fleets():
        entry = matrix["fleets"][fleet_key(fleet)]
        assert entry["generations"] == list(fleet)
        assert entry["required_sass"] == [cc for gen in fleet for cc in REQUIRED_SASS[gen]]


def test_every_offered_stack_ships_sass_for_the_whole_range(matrix: dict[str, Any]) -> None:
    wrong = [
        f"{family} {platform} {fleet} {flavor} {answer}: {stack['image']} ({stack['arch_list']})"
        for family, platform, fleet, flavor, answer, stack in offered(matrix)
        if not runs_fleet(stack["arch_list"], tuple(matrix["fleets"][fleet]["generations"]))
    ]
    assert not wrong, "\n".join(wrong)


def test_ptx_alone_does_not_count() -> None:
    # The helper the checks rely on: a 12.0 cubin runs 12.1 but not 10.0; 8.6 runs 8.9.
    assert runs_natively("7.5;8.0;8.6;9.0;10.0;12.0+PTX", "12.0")
    assert runs_natively("8.0;8.6", "8.9")
    assert not runs_natively("8.0;8.6", "9.0")
    assert not runs_natively("7.5;8.0;8.6;9.0+PTX", "10.0")
    assert not runs_natively("8.6", "8.0")


@pytest.mark.parametrize("fleet", fleets(), ids=fleet_key)
def test_tables_are_exactly_the_facts(fleet: tuple[str, ...], matrix: dict[str, Any]) -> None:
    """Per family, platform and flavor: the offered torch lines and their preferred images, the
    variants, `latest`, and every stack's driver floor, all re-derived from the facts."""
    facts = _facts()
    for family, platform, flavor in itertools.product(
        ("pytorch", "ngc"), ("linux/amd64", "linux/arm64"), ("runtime", "devel")
    ):
        expected = expected_table(facts, family, platform, fleet, flavor)
        table_id = matrix["candidates"].get(family, {}).get(platform, {}).get(fleet_key(fleet), {})
        table_id = table_id.get(flavor)
        where = f"{family} {platform} {fleet_key(fleet)} {flavor}"
        if not expected:
            assert table_id is None, f"{where}: offered without a confirmed stack"
            continue
        assert table_id, f"{where}: not offered although the facts confirm {expected[0]['image']}"
        table = matrix["tables"][table_id]
        lines: dict[str, str] = {}
        for stack in expected:
            lines.setdefault(stack["line"], stack["image"])
        got = {line: matrix["stacks"][sid]["image"] for line, sid in table["lines"].items()}
        assert got == lines, where
        assert list(table["lines"]) == sorted(lines, key=version, reverse=True), where
        offered_images = {matrix["stacks"][sid]["image"] for sid in table["choices"].values()}
        assert offered_images == {stack["image"] for stack in expected}, where
        for sid in table["choices"].values():
            stack = matrix["stacks"][sid]
            assert table["floors"][sid] == expected_floor(facts, stack["cuda"], fleet), where


def test_variant_answers_name_their_own_stack(matrix: dict[str, Any]) -> None:
    for family, platform, fleet, flavor, answer, stack in offered(matrix):
        line, plus, variant = answer.partition("+")
        where = f"{family} {platform} {fleet} {flavor} {answer}"
        assert stack["torch_line"] == line, where
        if plus and family == "pytorch":
            assert variant == stack["cuda_tag"], where
        elif plus:
            assert f"nvcr.io/nvidia/pytorch:{variant.removeprefix('nv')}-py3" == stack["image"]


def test_pytorch_stacks_are_the_facts(matrix: dict[str, Any], facts: dict[str, Any]) -> None:
    pairing = facts["companions"]["torchvision"]["pairing"]
    for stack_id, stack in matrix["stacks"].items():
        if stack["family"] != "pytorch":
            continue
        variants = facts["pytorch_releases"][stack["torch_line"]]["variants"]
        variant = next(v for v in variants if v["cuda"] == stack["cuda"])
        assert stack["arch_list"] == arch_list(variant["arch"]), stack_id
        assert stack["cuda_tag"] == variant["tag"], stack_id
        assert stack["cuda_status"] == variant["status"], stack_id
        assert stack["cudnn"] == variant["cudnn"].split()[0], stack_id
        assert stack["torchvision"] == pairing[stack["torch_line"]].split()[0], stack_id


def test_ngc_arch_lists_are_the_evidence_for_that_platform(
    matrix: dict[str, Any], facts: dict[str, Any]
) -> None:
    releases = {r["tag"]: r for r in facts["ngc_images"]["releases"]}
    ngc = [s for s in matrix["stacks"].values() if s["family"] == "ngc"]
    assert ngc, "NGC offers at least one confirmed release"
    for stack in ngc:
        release = releases[stack["image"].split(":")[1]]
        (platform,) = stack["platforms"]
        evidence = release["platforms"][platform]
        assert evidence["confidence"] in TRUSTED, stack["image"]
        assert stack["arch_list"] == arch_list(evidence["arch_list"]), (stack["image"], platform)


# --- Python, OS and layout: what the image really ships ---------------------------------------


def test_every_stack_names_the_python_and_layout_of_its_image(
    matrix: dict[str, Any], facts: dict[str, Any]
) -> None:
    for stack_id, stack in matrix["stacks"].items():
        if stack["family"] == "pytorch":
            layout = pytorch_layout(facts, stack["torch_line"])
        else:
            layout = ngc_layout(facts, stack["image"].split(":")[1])
        assert layout, f"{stack_id}: offered without a confirmed layout"
        fields = ("python", "os", "layout", "site_packages")
        assert {key: stack[key] for key in fields} == {key: str(layout[key]) for key in fields}


def test_pitfall_pytorch_images_from_2_10_are_system_python_3_12(matrix: dict[str, Any]) -> None:
    """Conda (3.11) up to 2.9; from 2.10 Ubuntu 24.04's own Python 3.12 under PEP 668."""
    for stack in matrix["stacks"].values():
        if stack["family"] != "pytorch":
            continue
        if version(stack["torch_line"]) >= (2, 10):
            assert (stack["python"], stack["layout"]) == ("3.12", "system"), stack["image"]
            assert stack["site_packages"] == "/usr/local/lib/python3.12/dist-packages"
        else:
            assert (stack["python"], stack["layout"]) == ("3.11", "conda"), stack["image"]


def test_pitfall_ngc_images_are_python_3_12(matrix: dict[str, Any]) -> None:
    for stack in matrix["stacks"].values():
        if stack["family"] == "ngc":
            assert (stack["python"], stack["os"]) == ("3.12", "ubuntu24.04"), stack["image"]


# --- evidence: every tag was seen, every source exists ----------------------------------------


def test_every_pytorch_tag_was_seen(matrix: dict[str, Any], facts: dict[str, Any]) -> None:
    seen = seen_tags(facts)
    weak = facts["docker_hub_images"]["tags_weak"]
    for stack_id, stack in matrix["stacks"].items():
        if stack["family"] != "pytorch":
            continue
        match = PYTORCH_TAG.match(stack["image"])
        assert match, stack["image"]
        assert stack["image"] in seen, stack_id
        assert f"cuda{match['cuda']}-cudnn9-{match['flavor']}" not in weak.get(match["patch"], [])
        assert (match["patch"], match["cuda"], match["flavor"]) == (
            stack["torch"],
            stack["cuda"],
            stack["flavor"],
        ), stack_id


def test_every_ngc_tag_is_a_confirmed_release(
    matrix: dict[str, Any], facts: dict[str, Any]
) -> None:
    for stack_id, stack in matrix["stacks"].items():
        if stack["family"] != "ngc":
            continue
        match = NGC_TAG.match(stack["image"])
        assert match, stack["image"]
        (release,) = [
            r for r in facts["ngc_images"]["releases"] if r["tag"] == f"{match['tag']}-py3"
        ]
        assert release["confidence"] in TRUSTED, stack_id
        torch = release["torch"].split()[0]
        if not re.match(r"\d+\.\d+\.\d+", torch):
            torch = f"{torch}.*"  # only the line is known: pip's wildcard, never a bare "2.12"
        assert stack["torch"] == torch, stack_id
        assert stack["cuda"] == ".".join(re.findall(r"\d+", release["cuda"])[:2]), stack_id
        assert stack["flavor"] == "devel", stack_id


def test_no_stack_uses_a_known_bogus_tag(matrix: dict[str, Any], facts: dict[str, Any]) -> None:
    bogus = set(facts["docker_hub_images"]["tags_known_bogus_in_the_wild"])
    assert bogus, "the facts list bogus tags; an empty set would make this test vacuous"
    for stack in matrix["stacks"].values():
        assert stack["image"].split(":", 1)[1] not in bogus
        assert "cudnn8" not in stack["image"]


def test_every_fact_cites_known_sources(facts: dict[str, Any]) -> None:
    known = set(facts["sources"])

    def walk(node: Any, where: str) -> list[str]:
        problems = []
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "source" and isinstance(value, list):
                    problems += [f"{where}: {s}" for s in value if s not in known]
                else:
                    problems += walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                problems += walk(value, f"{where}[{index}]")
        return problems

    assert not walk({k: v for k, v in facts.items() if k != "sources"}, "facts")


def test_every_stack_cites_known_sources(matrix: dict[str, Any], facts: dict[str, Any]) -> None:
    known = set(facts["sources"])
    cited = {
        **{f"stack {sid}": s["sources"] for sid, s in matrix["stacks"].items()},
        **{f"generation {g}": v["sources"] for g, v in matrix["generations"].items()},
        **{f"family {f}": v["sources"] for f, v in matrix["families"].items()},
    }
    for where, sources in cited.items():
        assert sources, f"{where} cites no source"
        assert set(sources) <= known, f"{where}: unknown {sorted(set(sources) - known)}"


def test_every_offered_stack_is_in_the_stacks_table(matrix: dict[str, Any]) -> None:
    used = {sid for *_, table in tables(matrix) for sid in table["choices"].values()}
    assert used == set(matrix["stacks"]), "stacks must be exactly the offered ones"


# --- drivers ----------------------------------------------------------------------------------


def test_driver_toolkit_is_the_toolkits_newest_driver(
    matrix: dict[str, Any], facts: dict[str, Any]
) -> None:
    for stack_id, stack in matrix["stacks"].items():
        assert stack["driver_toolkit"] == toolkit_driver(facts, stack["cuda"]), stack_id
        assert stack["driver_toolkit"], f"{stack_id}: every offered CUDA line has a known driver"


def test_driver_toolkit_picks_the_newest_update(facts: dict[str, Any]) -> None:
    assert toolkit_driver(facts, "12.6") == "560.35.05"  # Update 3, what torch builds use
    assert toolkit_driver(facts, "11.8") == "520.61.05"


def test_pitfall_driver_floor_covers_the_gpus_own_minimum(matrix: dict[str, Any]) -> None:
    """Blackwell needs R570 whatever CUDA 12.x allows; Ada and Hopper cannot run on R450."""
    for family, platform, fleet, flavor, answer, stack in offered(matrix):
        table = matrix["tables"][matrix["candidates"][family][platform][fleet][flavor]]
        floor = version(table["floors"][table["choices"][answer]])
        generations = matrix["fleets"][fleet]["generations"]
        if "blackwell" in generations:
            assert floor >= (570,), (fleet, answer, floor)
        if {"ada", "hopper"} & set(generations):
            assert floor >= (520, 56, 6), (fleet, answer, floor)
        assert floor >= version(COMPAT_FLOORS[version(stack["cuda"])[0]])


def test_fallbacks_give_the_best_answer_each_driver_runs(matrix: dict[str, Any]) -> None:
    """preflight.sh walks DRIVER_FALLBACKS and takes the first floor the host's driver meets:
    for every driver at a floor of the table, that must be the most preferred stack it runs,
    named by an answer that resolves to exactly that stack."""
    for family, platform, fleet, flavor, table in tables(matrix):
        pairs = [entry.split(":") for entry in table["driver_fallbacks"].split()]
        assert pairs, (family, platform, fleet, flavor)
        preferred = sorted(
            table["choices"].values(),
            key=lambda sid: preference(
                {
                    "line": matrix["stacks"][sid]["torch_line"],
                    "status": matrix["stacks"][sid]["cuda_status"].replace("ngc", "stable"),
                    "cuda": matrix["stacks"][sid]["cuda"],
                    "image": matrix["stacks"][sid]["image"],
                    "release": matrix["stacks"][sid]["image"].split(":")[1].split("-")[0]
                    if family == "ngc"
                    else matrix["stacks"][sid]["torch"],
                }
            ),
            reverse=True,
        )
        for driver in {table["floors"][sid] for sid in preferred}:
            best = next(s for s in preferred if version(table["floors"][s]) <= version(driver))
            answer = next(a for f, a in pairs if version(f) <= version(driver))
            assert table["choices"][answer] == best, (fleet, flavor, driver, answer)


# --- choice and order -------------------------------------------------------------------------


def test_every_line_gets_a_stack_of_that_line(matrix: dict[str, Any]) -> None:
    for family, platform, fleet, flavor, answer, stack in offered(matrix):
        where = f"{family} {platform} {fleet} {flavor} {answer}"
        assert stack["torch"].startswith(f"{stack['torch_line']}."), where
        assert platform in stack["platforms"], where
        if family == "pytorch":
            assert stack["flavor"] == flavor, where


# --- pitfalls, data/sources/README.md ---------------------------------------------------------


def latest(matrix: dict[str, Any], family: str, platform: str, fleet: str, flavor: str):
    table = matrix["tables"][matrix["candidates"][family][platform][fleet][flavor]]
    line, sid = next(iter(table["lines"].items()))
    return line, matrix["stacks"][sid]


def test_pitfall_volta_never_gets_cuda_13(matrix: dict[str, Any]) -> None:
    for family, _platform, fleet, flavor, answer, stack in offered(matrix):
        if fleet.startswith("volta-"):
            assert version(stack["cuda"])[0] < 13, f"{family} {flavor} {answer}: {stack['image']}"


def test_pitfall_volta_never_gets_cu128_of_2_7_or_2_11(matrix: dict[str, Any]) -> None:
    for family, _platform, fleet, flavor, answer, stack in offered(matrix):
        if fleet.startswith("volta-") and stack["torch_line"] in ("2.7", "2.11"):
            assert stack["cuda"] != "12.8", f"{family} {flavor} {answer}: {stack['image']}"


def test_pitfall_volta_alone_ends_with_2_14_on_cu126(matrix: dict[str, Any]) -> None:
    for flavor in ("runtime", "devel"):
        line, stack = latest(matrix, "pytorch", "linux/amd64", "volta-volta", flavor)
        assert (line, stack["cuda_tag"]) == ("2.14", "cu126"), flavor


def test_pitfall_volta_to_blackwell_gets_the_newest_line_that_builds_both(
    matrix: dict[str, Any],
) -> None:
    """No build after 2.10 carries sm_70 and sm_100/sm_120 together: cu126 lacks Blackwell,
    cu128 of 2.11 dropped Volta, CUDA 13 cannot target Volta."""
    for flavor in ("runtime", "devel"):
        line, stack = latest(matrix, "pytorch", "linux/amd64", "volta-blackwell", flavor)
        assert (line, stack["cuda_tag"]) == ("2.10", "cu128"), flavor


def test_pitfall_newer_gpus_are_never_left_out_by_default(matrix: dict[str, Any]) -> None:
    """The default range ends at Blackwell: every such table's latest runs Blackwell."""
    for family, platform, fleet, flavor, _table in tables(matrix):
        if fleet.endswith("-blackwell"):
            _line, stack = latest(matrix, family, platform, fleet, flavor)
            assert runs_natively(stack["arch_list"], "10.0"), (fleet, stack["image"])
            assert runs_natively(stack["arch_list"], "12.0"), (fleet, stack["image"])


def test_pitfall_2_14_devel_on_cuda_13(matrix: dict[str, Any]) -> None:
    for fleet in ("turing-hopper", "ampere-blackwell", "blackwell-blackwell"):
        line, stack = latest(matrix, "pytorch", "linux/amd64", fleet, "devel")
        assert line == "2.14" and version(stack["cuda"]) >= (13, 0), (fleet, stack["image"])


def test_pitfall_blackwell_needs_cuda_12_8_and_torch_2_7(matrix: dict[str, Any]) -> None:
    for family, _platform, fleet, flavor, answer, stack in offered(matrix):
        if not fleet.endswith("blackwell"):
            continue
        where = f"{family} {flavor} {answer}: {stack['image']}"
        assert stack["cuda_tag"] not in ("cu118", "cu121", "cu124", "cu126"), where
        assert version(stack["cuda"]) >= (12, 8), where
        if family == "pytorch":
            assert version(stack["torch_line"]) >= (2, 7), where


def test_pitfall_pytorch_images_are_amd64_only(matrix: dict[str, Any]) -> None:
    assert "linux/arm64" not in matrix["candidates"]["pytorch"]
    assert matrix["families"]["pytorch"]["platforms"] == ["linux/amd64"]
    for stack_id, stack in matrix["stacks"].items():
        if stack["family"] == "pytorch":
            assert stack["platforms"] == ["linux/amd64"], stack_id


def test_pitfall_arm64_is_served_by_ngc_from_ampere(matrix: dict[str, Any]) -> None:
    """NGC's arm64 build starts at sm_80: Turing on arm64 is refused, Ampere on is offered."""
    arm64 = matrix["candidates"]["ngc"]["linux/arm64"]
    assert "ampere-blackwell" in arm64 and "hopper-hopper" in arm64
    assert not [fleet for fleet in arm64 if fleet.startswith(("volta", "turing"))]
    refusal = matrix["refusals"]["ngc"]["linux/arm64"]["turing-blackwell"]["any"]
    assert "Turing" in refusal and "gpu_generation ampere" in refusal


def test_pitfall_no_ngc_for_volta(matrix: dict[str, Any]) -> None:
    for family, platform, fleet, *_ in offered(matrix):
        assert not (family == "ngc" and fleet.startswith("volta")), (platform, fleet)


def test_pitfall_no_cu129_target(matrix: dict[str, Any]) -> None:
    """cu129 lingers on download.pytorch.org after 2.8 but is not a target: only the 2.8
    official experimental variant may appear, and never ahead of a stable one."""
    for stack_id, stack in matrix["stacks"].items():
        if stack["family"] == "pytorch" and stack["cuda"] == "12.9":
            assert stack["torch_line"] == "2.8", stack_id
            assert stack["cuda_status"] == "experimental"


def test_pitfall_no_unseen_2_15_image(matrix: dict[str, Any], facts: dict[str, Any]) -> None:
    """No 2.15.0 tag has been seen yet: the template must not invent one."""
    assert not facts["docker_hub_images"]["tags_seen"].get("2.15.0")
    for stack in matrix["stacks"].values():
        if stack["family"] == "pytorch":
            assert stack["torch_line"] != "2.15", stack["image"]


def test_refusals_name_an_answer_that_works(matrix: dict[str, Any]) -> None:
    """Each refused range names at least one change, and that change is offered."""
    for family, platforms in matrix["refusals"].items():
        for platform, fleets_ in platforms.items():
            for fleet, entry in fleets_.items():
                for sentence in entry.values():
                    assert "; choose " in sentence, sentence
                    oldest, newest = fleet.split("-")
                    for option in sentence.split("; choose ")[1].split(" or "):
                        answers = {
                            "image_family": family,
                            "platform": platform,
                            "gpu_generation": oldest,
                            "newest_gpu_generation": newest,
                        }
                        for change in option.split(" with "):
                            key, value = change.split()
                            answers[key] = value
                        key = f"{answers['gpu_generation']}-{answers['newest_gpu_generation']}"
                        flavors = (
                            matrix["candidates"]
                            .get(answers["image_family"], {})
                            .get(answers["platform"], {})
                            .get(key, {})
                        )
                        assert flavors, (sentence, option)
