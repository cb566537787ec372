"""The image matrix (data/image-matrix.yml) checked against the facts it is built from.

Every check re-derives what it expects from facts/gpu-cuda-matrix.yaml here, with its own small
helpers, rather than calling scripts/build_image_matrix.py: a builder bug must not be able to
agree with itself. The rules are those of facts/gpu-cuda-matrix.md, section 5 (decision rules),
and its section 6 pitfalls each have a named test.
"""

from __future__ import annotations

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
from conftest import REPO_ROOT, shared_file

BUILDER = REPO_ROOT / "scripts" / "build_image_matrix.py"
DATA = REPO_ROOT / "data" / "image-matrix.yml"

# Compute capabilities whose SASS a stack must ship for the generation to run natively
# (section 5 rule 2). Ada (8.9) runs the 8.x cubins with minor <= 9; Blackwell covers both the
# datacenter (10.x) and the consumer (12.x) parts, so both are required.
REQUIRED_SASS = {
    "volta": ("7.0",),
    "turing": ("7.5",),
    "ampere": ("8.0", "8.6"),
    "ada": ("8.9",),
    "hopper": ("9.0",),
    "blackwell": ("10.0", "12.0"),
}
# Minor-version-compatibility floors per CUDA major (facts section 3, NVIDIA compat guide).
COMPAT_FLOORS = {11: "450.80.02", 12: "525.60.13", 13: "580"}
TRUSTED = {"verified", "verified-secondary"}
PYTORCH_TAG = re.compile(
    r"^pytorch/pytorch:(?P<patch>\d+\.\d+\.\d+)-cuda(?P<cuda>\d+\.\d+)-cudnn9-(?P<flavor>\w+)$"
)
NGC_TAG = re.compile(r"^nvcr\.io/nvidia/pytorch:(?P<tag>\d\d\.\d\d-py3)$")


# --- facts and data ---------------------------------------------------------------------------


@cache
def _facts(path: str) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


@pytest.fixture(scope="module")
def facts_path() -> Path:
    return shared_file("facts/gpu-cuda-matrix.yaml", "GPU_CUDA_MATRIX_FACTS")


@pytest.fixture(scope="module")
def facts(facts_path: Path) -> dict[str, Any]:
    return _facts(str(facts_path))


@pytest.fixture(scope="module")
def matrix() -> dict[str, Any]:
    return image_matrix()


def tables(matrix: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """Every candidate table as (family, platform, generation, flavor, table)."""
    return [
        (family, platform, generation, flavor, table)
        for family, platforms in matrix["candidates"].items()
        for platform, generations in platforms.items()
        for generation, flavors in generations.items()
        for flavor, table in flavors.items()
    ]


def offered(matrix: dict[str, Any]) -> list[tuple[str, str, str, str, str, dict[str, Any]]]:
    """Every (family, platform, generation, flavor, torch line, stack) a user can get."""
    return [
        (family, platform, generation, flavor, line, matrix["stacks"][stack_id])
        for family, platform, generation, flavor, table in tables(matrix)
        for line, stack_id in table["stacks"].items()
    ]


def table_id(row: tuple) -> str:
    return "-".join(str(part).replace("/", "_") for part in row[:4])


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


def runs_generation(arch: str, generation: str) -> bool:
    return all(runs_natively(arch, cc) for cc in REQUIRED_SASS[generation])


def toolkit_driver(facts: dict[str, Any], cuda: str) -> str | None:
    entry = facts["cuda"].get(cuda) or {}
    value = entry.get("min_driver_linux")
    if isinstance(value, dict):
        # The newest update's driver: the conservative requirement.
        return max(value.values(), key=version)
    return value


def evidenced_pytorch_tags(facts: dict[str, Any]) -> set[str]:
    seen = facts["docker_hub_images"]["tags_seen"]
    return {
        f"pytorch/pytorch:{patch}-{suffix}"
        for patch, suffixes in seen.items()
        if re.fullmatch(r"\d+\.\d+\.\d+", patch)
        for suffix in suffixes or []
    }


def status_class(status: str) -> int:
    """Stable builds before legacy ones before experimental ones."""
    return {"stable": 0, "stable-default": 0, "legacy": 1, "experimental": 2}[status]


def expected_pytorch_choice(
    facts: dict[str, Any], line: str, generation: str, flavor: str
) -> str | None:
    """The image a (torch line, generation, flavor) should get on Docker Hub, or None:
    among CUDA variants that run the generation and have an evidenced tag, stable first,
    then the newest CUDA; the newest patch with an evidenced tag."""
    release = facts["pytorch_releases"][line]
    seen = evidenced_pytorch_tags(facts)
    options = []
    for variant in release["variants"]:
        if not runs_generation(arch_list(variant["arch"]), generation):
            continue
        tags = [
            f"pytorch/pytorch:{patch}-cuda{variant['cuda']}-cudnn9-{flavor}"
            for patch in release["patches"]
        ]
        tags = [tag for tag in tags if tag in seen]
        if tags:
            newest = max(tags, key=lambda tag: version(tag.split(":")[1].split("-")[0]))
            options.append(((-status_class(variant["status"]), version(variant["cuda"])), newest))
    return max(options)[1] if options else None


def ngc_release(facts: dict[str, Any], stack: dict[str, Any]) -> dict[str, Any]:
    match = NGC_TAG.match(stack["image"])
    assert match, stack["image"]
    found = [r for r in facts["ngc_images"]["releases"] if r["tag"] == match["tag"]]
    assert len(found) == 1, f"{stack['image']}: {len(found)} facts entries"
    return found[0]


def ngc_targets(release: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """(oldest, newest) compute capability an NGC release's build can hold: its documented
    'X.Y+' floor, and Blackwell (12.x) only from CUDA 12.8, the first toolkit with it."""
    floor = capability(re.match(r"(\d+\.\d+)\+", release["archs"]).group(1))
    cuda = version(release["cuda"])[:2]
    return floor, ((12, 9) if cuda >= (12, 8) else (9, 9))


# --- the file is what the builder makes from the facts ----------------------------------------


def run_builder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILDER), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_committed_data_is_up_to_date(facts_path: Path) -> None:
    result = run_builder("--facts", str(facts_path), "--check")
    assert result.returncode == 0, result.stderr


def test_check_fails_on_a_tampered_copy(facts_path: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "image-matrix.yml"
    shutil.copy(DATA, tampered)
    text = tampered.read_text()
    assert "pytorch/pytorch:2.14.1-cuda13.2-cudnn9-runtime" in text
    tampered.write_text(text.replace("2.14.1-cuda13.2", "2.14.1-cuda13.1", 1))
    before = tampered.read_text()

    result = run_builder("--facts", str(facts_path), "--output", str(tampered), "--check")

    assert result.returncode == 1
    assert "out of date" in result.stderr
    assert tampered.read_text() == before, "--check must not rewrite the file"


def test_builder_writes_what_check_accepts(facts_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "image-matrix.yml"
    assert run_builder("--facts", str(facts_path), "--output", str(output)).returncode == 0
    assert output.read_text() == DATA.read_text()
    assert output.read_text().startswith("# GENERATED by scripts/build_image_matrix.py")


# --- architecture: every offered stack really runs the generation -----------------------------


def test_generations_are_the_answer_values(matrix: dict[str, Any]) -> None:
    assert list(matrix["generations"]) == list(REQUIRED_SASS)
    for key, generation in matrix["generations"].items():
        assert tuple(generation["required_sass"]) == REQUIRED_SASS[key]


def test_every_offered_stack_ships_the_generations_sass(matrix: dict[str, Any]) -> None:
    wrong = [
        f"{family} {platform} {generation} {flavor} {line}: {stack['image']} "
        f"({stack['arch_list']}) lacks {cc}"
        for family, platform, generation, flavor, line, stack in offered(matrix)
        for cc in REQUIRED_SASS[generation]
        if not runs_natively(stack["arch_list"], cc)
    ]
    assert not wrong, "\n".join(wrong)


def test_ptx_alone_does_not_count() -> None:
    # The helper the checks rely on: a 12.0 cubin runs 12.1 but not 10.0; 8.6 runs 8.9.
    assert runs_natively("7.5;8.0;8.6;9.0;10.0;12.0+PTX", "12.0")
    assert runs_natively("8.0;8.6", "8.9")
    assert not runs_natively("8.0;8.6", "9.0")
    assert not runs_natively("7.5;8.0;8.6;9.0+PTX", "10.0")
    assert not runs_natively("8.6", "8.0")


def test_pytorch_arch_lists_are_the_facts(matrix: dict[str, Any], facts: dict[str, Any]) -> None:
    python_inside = facts["docker_hub_images"]["python_inside"]["value"].split()[0]
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
        assert stack["python"] == python_inside, stack_id
        assert stack["torchvision"] == pairing[stack["torch_line"]].split()[0], stack_id


def test_ngc_arch_lists_stay_within_what_the_release_documents(
    matrix: dict[str, Any], facts: dict[str, Any]
) -> None:
    for stack_id, stack in matrix["stacks"].items():
        if stack["family"] != "ngc":
            continue
        oldest, newest = ngc_targets(ngc_release(facts, stack))
        entries = [capability(e) for e in stack["arch_list"].split(";")]
        assert min(entries) == oldest, stack_id
        assert max(entries) <= newest, stack_id


def test_torch_lines_with_build_follow_the_facts(
    matrix: dict[str, Any], facts: dict[str, Any]
) -> None:
    releases = facts["pytorch_releases"]
    for generation in REQUIRED_SASS:
        expected = sorted(
            (
                line
                for line, release in releases.items()
                if any(
                    runs_generation(arch_list(v["arch"]), generation) for v in release["variants"]
                )
            ),
            key=version,
            reverse=True,
        )
        assert matrix["generations"][generation]["torch_lines_with_build"] == expected, generation


# --- evidence: every tag was seen, every source exists ----------------------------------------


def test_every_pytorch_tag_was_seen(matrix: dict[str, Any], facts: dict[str, Any]) -> None:
    seen = facts["docker_hub_images"]["tags_seen"]
    for stack_id, stack in matrix["stacks"].items():
        if stack["family"] != "pytorch":
            continue
        match = PYTORCH_TAG.match(stack["image"])
        assert match, stack["image"]
        assert f"cuda{match['cuda']}-cudnn9-{match['flavor']}" in (seen.get(match["patch"]) or [])
        assert (match["patch"], match["cuda"], match["flavor"]) == (
            stack["torch"],
            stack["cuda"],
            stack["flavor"],
        ), stack_id
        assert match["patch"] in facts["pytorch_releases"][stack["torch_line"]]["patches"]


def test_every_ngc_tag_is_a_trusted_release(matrix: dict[str, Any], facts: dict[str, Any]) -> None:
    for stack_id, stack in matrix["stacks"].items():
        if stack["family"] != "ngc":
            continue
        release = ngc_release(facts, stack)
        assert release["confidence"] in TRUSTED, stack_id
        assert stack["confidence"] == release["confidence"], stack_id
        torch = release["torch"].split()[0]
        if not re.match(r"\d+\.\d+\.\d+", torch):
            # "2.12 (nv build)": only the line is known; pip's wildcard, never a bare "2.12",
            # which the project's doctor would compare with the image's 2.12.0a0+... and fail.
            torch = f"{torch}.*"
        assert stack["torch"] == torch, stack_id
        assert stack["cuda"] == ".".join(re.findall(r"\d+", release["cuda"])[:2]), stack_id
        assert stack["flavor"] == "devel", stack_id


def test_no_stack_uses_a_known_bogus_tag(matrix: dict[str, Any], facts: dict[str, Any]) -> None:
    bogus = set(facts["docker_hub_images"]["tags_known_bogus_in_the_wild"])
    assert bogus, "the facts list bogus tags; an empty set would make this test vacuous"
    for stack in matrix["stacks"].values():
        assert stack["image"].split(":", 1)[1] not in bogus
        assert "cudnn8" not in stack["image"]


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
    used = {sid for *_, table in tables(matrix) for sid in table["stacks"].values()}
    assert used == set(matrix["stacks"]), "stacks must be exactly the offered ones"


# --- drivers ----------------------------------------------------------------------------------


def test_driver_toolkit_is_the_toolkits_newest_driver(
    matrix: dict[str, Any], facts: dict[str, Any]
) -> None:
    for stack_id, stack in matrix["stacks"].items():
        assert stack["driver_toolkit"] == toolkit_driver(facts, stack["cuda"]), stack_id
        if stack["family"] == "pytorch":
            assert stack["driver_toolkit"], f"{stack_id}: PyTorch CUDA lines have known drivers"


def test_driver_toolkit_picks_the_newest_update(facts: dict[str, Any]) -> None:
    assert toolkit_driver(facts, "12.6") == "560.35.05"  # Update 3, what torch builds use
    assert toolkit_driver(facts, "11.8") == "520.61.05"


def test_driver_floor_is_the_minor_version_compat_floor(
    matrix: dict[str, Any], facts: dict[str, Any]
) -> None:
    compat = facts["cuda_minor_version_compatibility"]
    for major, floor in COMPAT_FLOORS.items():
        assert floor in compat[f"{major}.x"]["min_linux_driver"]
    for stack_id, stack in matrix["stacks"].items():
        assert stack["driver_floor"] == COMPAT_FLOORS[version(stack["cuda"])[0]], stack_id


def test_driver_floor_is_not_above_the_toolkit_driver(matrix: dict[str, Any]) -> None:
    for stack_id, stack in matrix["stacks"].items():
        if stack["driver_toolkit"]:
            assert version(stack["driver_floor"]) <= version(stack["driver_toolkit"]), stack_id


# --- choice and order -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    tables(image_matrix()),
    ids=table_id,
)
def test_candidate_lines_are_newest_first(row: tuple) -> None:
    family, platform, generation, flavor, table = row
    lines = list(table["stacks"])
    assert lines, "empty tables must be left out"
    assert lines == sorted(lines, key=version, reverse=True)
    assert len(set(lines)) == len(lines)


def test_every_line_gets_a_stack_of_that_line(matrix: dict[str, Any]) -> None:
    for family, platform, generation, flavor, line, stack in offered(matrix):
        where = f"{family} {platform} {generation} {flavor} {line}"
        assert stack["torch_line"] == line, where
        assert stack["torch"].startswith(f"{line}."), where
        assert platform in stack["platforms"], where
        if family == "pytorch":
            assert stack["flavor"] == flavor, where


def test_pytorch_offers_every_evidenced_line_with_the_preferred_stack(
    matrix: dict[str, Any], facts: dict[str, Any]
) -> None:
    """Docker Hub tables: a line is offered exactly when some evidenced tag runs the
    generation; its image is the preferred one (stable, then newest CUDA, newest patch);
    so `latest`, the first line, is the newest line that has any evidenced stack."""
    for generation in REQUIRED_SASS:
        for flavor in ("runtime", "devel"):
            expected = {
                line: image
                for line in facts["pytorch_releases"]
                if (image := expected_pytorch_choice(facts, line, generation, flavor))
            }
            table = matrix["candidates"]["pytorch"]["linux/amd64"][generation][flavor]["stacks"]
            got = {line: matrix["stacks"][sid]["image"] for line, sid in table.items()}
            assert got == expected, f"{generation} {flavor}"
            assert next(iter(table)) == max(expected, key=version)


def test_ngc_offers_every_trusted_release_line(
    matrix: dict[str, Any], facts: dict[str, Any]
) -> None:
    """NGC tables: the lines are those of trusted releases whose documented compute
    capability range covers the generation; each line gets its newest such release."""
    releases = [
        r for r in facts["ngc_images"]["releases"] if r["confidence"] in TRUSTED and "cuda" in r
    ]
    for platform, generations in matrix["candidates"]["ngc"].items():
        for generation in REQUIRED_SASS:
            expected: dict[str, str] = {}
            for release in releases:
                oldest, newest = ngc_targets(release)
                needs = [capability(cc) for cc in REQUIRED_SASS[generation]]
                if not all(oldest <= cc and cc[0] <= newest[0] for cc in needs):
                    continue
                if platform == "linux/arm64" and version(release["tag"]) < (25, 1):
                    continue  # multi-arch manifests are only documented for recent tags
                line = ".".join(re.findall(r"\d+", release["torch"])[:2])
                tag = f"nvcr.io/nvidia/pytorch:{release['tag']}"
                if line not in expected or version(tag) > version(expected[line]):
                    expected[line] = tag
            for flavor, table in generations.get(generation, {}).items():
                got = {
                    line: matrix["stacks"][sid]["image"] for line, sid in table["stacks"].items()
                }
                assert got == expected, f"{platform} {generation} {flavor}"
            if not generations.get(generation):
                assert not expected, f"{platform} {generation}: NGC offers nothing"


def test_fallbacks_name_offered_lines_at_their_floor(matrix: dict[str, Any]) -> None:
    for family, platform, generation, flavor, table in tables(matrix):
        where = f"{family} {platform} {generation} {flavor}"
        assert table["fallbacks"], where
        for floor, line in table["fallbacks"].items():
            assert line in table["stacks"], where
            assert matrix["stacks"][table["stacks"][line]]["driver_floor"] == floor, where
        # Each floor maps to the newest line whose stack needs that floor.
        for floor, line in table["fallbacks"].items():
            lines_at_floor = [
                candidate
                for candidate, sid in table["stacks"].items()
                if matrix["stacks"][sid]["driver_floor"] == floor
            ]
            assert line == max(lines_at_floor, key=version), where
        floors = {matrix["stacks"][sid]["driver_floor"] for sid in table["stacks"].values()}
        assert set(table["fallbacks"]) == floors, where


def test_first_fallback_a_driver_meets_is_the_newest_line_it_runs(matrix: dict[str, Any]) -> None:
    """The host preflight walks the fallbacks in order and takes the first floor the host's
    driver meets: that must be the newest line whose image runs on that driver."""
    for family, platform, generation, flavor, table in tables(matrix):
        floors = {matrix["stacks"][sid]["driver_floor"] for sid in table["stacks"].values()}
        for driver in floors:
            first = next(
                line
                for floor, line in table["fallbacks"].items()
                if version(floor) <= version(driver)
            )
            runnable = [
                line
                for line, sid in table["stacks"].items()
                if version(matrix["stacks"][sid]["driver_floor"]) <= version(driver)
            ]
            assert first == max(runnable, key=version), f"{family} {platform} {generation} {flavor}"


# --- pitfalls, facts/gpu-cuda-matrix.md section 6 ---------------------------------------------


def test_pitfall_volta_never_gets_cuda_13(matrix: dict[str, Any]) -> None:
    for family, _platform, generation, flavor, line, stack in offered(matrix):
        if generation == "volta":
            assert version(stack["cuda"])[0] < 13, f"{family} {flavor} {line}: {stack['image']}"


def test_pitfall_volta_never_gets_cu128_of_2_7_or_2_11(matrix: dict[str, Any]) -> None:
    for family, _platform, generation, flavor, line, stack in offered(matrix):
        if generation == "volta" and line in ("2.7", "2.11"):
            assert stack["cuda"] != "12.8", f"{family} {flavor} {line}: {stack['image']}"


def test_pitfall_volta_ends_with_2_14_on_cu126(matrix: dict[str, Any]) -> None:
    for flavor, table in matrix["candidates"]["pytorch"]["linux/amd64"]["volta"].items():
        latest_line, latest_id = next(iter(table["stacks"].items()))
        assert latest_line == "2.14", flavor
        assert matrix["stacks"][latest_id]["cuda_tag"] == "cu126", flavor
    assert matrix["generations"]["volta"]["torch_lines_with_build"][0] == "2.14"


def test_pitfall_blackwell_needs_cuda_12_8_and_torch_2_7(matrix: dict[str, Any]) -> None:
    for family, _platform, generation, flavor, line, stack in offered(matrix):
        if generation != "blackwell":
            continue
        where = f"{family} {flavor} {line}: {stack['image']}"
        assert stack["cuda_tag"] not in ("cu118", "cu121", "cu124", "cu126"), where
        assert version(stack["cuda"]) >= (12, 8), where
        if family == "pytorch":
            assert version(line) >= (2, 7), where


def test_pitfall_pytorch_images_are_amd64_only(matrix: dict[str, Any]) -> None:
    assert "linux/arm64" not in matrix["candidates"]["pytorch"]
    assert matrix["families"]["pytorch"]["platforms"] == ["linux/amd64"]
    for stack_id, stack in matrix["stacks"].items():
        if stack["family"] == "pytorch":
            assert stack["platforms"] == ["linux/amd64"], stack_id


def test_pitfall_arm64_is_served_by_ngc(matrix: dict[str, Any]) -> None:
    arm64 = matrix["candidates"]["ngc"]["linux/arm64"]
    assert {"turing", "ampere", "ada", "hopper", "blackwell"} <= set(arm64)


def test_pitfall_no_ngc_25_01_or_newer_for_volta(matrix: dict[str, Any]) -> None:
    for family, platform, generation, flavor, _line, stack in offered(matrix):
        if family == "ngc" and generation == "volta":
            tag = NGC_TAG.match(stack["image"])["tag"]
            assert version(tag) < (25, 1), f"{platform} {flavor}: {stack['image']}"


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
