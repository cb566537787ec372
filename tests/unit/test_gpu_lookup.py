"""One generation lookup: the preflight, the post-copy hook and the doctor agree on every case.

The cases (gpu_lookup_cases.yml) name, for each compute capability, its generation and whether
images of four real arch lists run it. Each place is asked the way it works: the generated
preflight.sh with --capability against a project whose stack.env carries that arch list, the
hook's functions on the same stack.env, and the generated doctor's functions with the arch list
as torch.cuda.get_arch_list() reports it. All three read tables rendered from the image matrix;
the first tests check that those tables are the matrix's.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from answers import image_matrix
from conftest import REPO_ROOT, render_project

CASES = yaml.safe_load((Path(__file__).parent / "gpu_lookup_cases.yml").read_text())
ARCH_LISTS: dict[str, str] = CASES["arch_lists"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_project(tmp_path_factory.mktemp("lookup") / "project")


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[key] = value.strip('"')
    return values


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def hook() -> ModuleType:
    return load_module(REPO_ROOT / "hooks" / "check_host_gpu.py", "check_host_gpu")


@pytest.fixture(scope="module")
def doctor(project: Path) -> ModuleType:
    """The generated package's doctor (it needs no torch to import), imported under a name of
    its own so that no other rendered package of the same name can stand in for it."""
    package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
    folder = project / "src" / package
    name = f"lookup_{package}"
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec and spec.loader
    sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[name])
    return importlib.import_module(f"{name}.doctor")


def torch_arch_list(arch_list: str) -> list[str]:
    """'8.0;12.0+PTX' as torch.cuda.get_arch_list() has it: sm_80, sm_120, compute_120."""
    result = []
    for entry in arch_list.split(";"):
        digits = entry.removesuffix("+PTX").replace(".", "")
        result.append(f"sm_{digits}")
        if entry.endswith("+PTX"):
            result.append(f"compute_{digits}")
    return result


def case_ids() -> list[str]:
    return [case["capability"] for case in CASES["cases"]]


# --- the three read one table, the matrix's ----------------------------------------------------


def test_the_rendered_tables_are_the_matrix(project: Path, doctor: ModuleType) -> None:
    matrix = image_matrix()
    expected = {key: gen["compute_capabilities"] for key, gen in matrix["generations"].items()}
    env = read_env(project / ".devcontainer" / "stack.env")
    assert hook().generation_table(env["GENERATION_TABLE"]) == expected
    assert expected == doctor.stack.GENERATIONS
    flat = {cc: key for key, ccs in expected.items() for cc in ccs}
    assert flat == matrix["capabilities"]


def test_the_cases_cover_every_known_capability() -> None:
    known = set(image_matrix()["capabilities"])
    assert known <= set(case_ids()), sorted(known - set(case_ids()))


def test_the_cases_agree_with_the_matrix() -> None:
    capabilities = image_matrix()["capabilities"]
    for case in CASES["cases"]:
        assert capabilities.get(case["capability"]) == case["generation"], case


# --- each place, every case --------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES["cases"], ids=case_ids())
def test_hook(case: dict[str, Any], project: Path) -> None:
    env = read_env(project / ".devcontainer" / "stack.env")
    table = hook().generation_table(env["GENERATION_TABLE"])
    assert hook().generation_of(case["capability"], table) == case["generation"]
    for name, arch_list in ARCH_LISTS.items():
        match, _ = hook().arch_match(case["capability"], arch_list)
        assert (match or "none") == case[name], (name, arch_list)


@pytest.mark.parametrize("case", CASES["cases"], ids=case_ids())
def test_doctor(case: dict[str, Any], doctor: ModuleType) -> None:
    major, minor = map(int, case["capability"].split("."))
    assert doctor.generation_for_capability(major, minor) == case["generation"]
    for name, arch_list in ARCH_LISTS.items():
        found = doctor.matching_arch((major, minor), torch_arch_list(arch_list))
        match = "none" if found is None else "ptx" if "PTX" in found else "sass"
        assert match == case[name], (name, arch_list, found)


@pytest.fixture(scope="module")
def preflight_projects(project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The rendered project's .devcontainer once per arch list, stack.env edited to carry it."""
    root = tmp_path_factory.mktemp("preflight-lookup")
    result = {}
    for name, arch_list in ARCH_LISTS.items():
        folder = root / name
        shutil.copytree(project / ".devcontainer", folder)
        env = folder / "stack.env"
        text = re.sub(r'^IMAGE_ARCH_LIST=".*"$', f'IMAGE_ARCH_LIST="{arch_list}"',
                      env.read_text(), flags=re.MULTILINE)  # fmt: skip
        env.write_text(text)
        result[name] = folder / "preflight.sh"
    return result


def ask_preflight(script: Path, capability: str) -> tuple[str | None, str]:
    """(generation, match) as preflight.sh --capability reports them."""
    result = subprocess.run(
        ["bash", str(script), "--capability", capability],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    line = result.stdout.splitlines()[0]
    found = re.search(rf"\({re.escape(capability)}, ([a-z]+)\)", line)
    generation = found.group(1) if found else None
    if "through PTX JIT" in line:
        match = "ptx"
    elif "runs this image" in line or "still has kernels" in line:
        match = "sass"
    else:
        assert "cannot run this image" in line or "no kernels" in line, result.stdout
        match = "none"
    assert (result.returncode == 1) == (match == "none"), result.stdout
    return generation, match


@pytest.mark.parametrize("case", CASES["cases"], ids=case_ids())
def test_preflight(case: dict[str, Any], preflight_projects: dict[str, Path]) -> None:
    for name, script in preflight_projects.items():
        generation, match = ask_preflight(script, case["capability"])
        assert generation == case["generation"], (name, generation)
        assert match == case[name], (name, ARCH_LISTS[name], match)


def test_stack_env_and_stack_py_name_the_same_stack(project: Path, doctor: ModuleType) -> None:
    env = read_env(project / ".devcontainer" / "stack.env")
    stack = doctor.stack
    pairs = {
        "GPU_GENERATION": stack.GPU_GENERATION,
        "NEWEST_GPU_GENERATION": stack.NEWEST_GPU_GENERATION,
        "FLEET_LABEL": stack.FLEET_LABEL,
        "IMAGE_ARCH_LIST": stack.IMAGE_ARCH_LIST,
        "TORCH_VERSION": stack.TORCH_VERSION,
        "CUDA_VERSION": stack.CUDA_VERSION,
        "PYTHON_VERSION": stack.PYTHON_VERSION,
        "DRIVER_TOOLKIT": stack.DRIVER_TOOLKIT,
        "DRIVER_FLOOR": stack.DRIVER_FLOOR,
    }
    assert {key: env[key] for key in pairs} == pairs
    fleet = image_matrix()["fleets"][f"{env['GPU_GENERATION']}-{env['NEWEST_GPU_GENERATION']}"]
    assert fleet["required_sass"] == stack.COMPUTE_CAPABILITIES
