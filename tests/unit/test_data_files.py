"""The small data files and what is generated from them stay in sync with their sources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from answers import REPO_ROOT, TASK_TYPES

SCRIPTS = REPO_ROOT / "scripts"


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, check=False
    )


def copier_json_question(path: Path, name: str) -> dict:
    return json.loads(yaml.safe_load(path.read_text())[name]["default"])


def test_python_names_file_is_up_to_date() -> None:
    result = run_script("build_python_names.py", "--check")
    assert result.returncode == 0, result.stderr


def python_names() -> dict:
    return copier_json_question(REPO_ROOT / "data" / "python-names.yml", "python_names")


def test_python_names_cover_this_interpreters_stdlib() -> None:
    names = python_names()
    assert set(sys.stdlib_module_names) <= set(names["stdlib"])
    assert {"__future__", "_thread"} <= set(names["stdlib"])
    assert {"tests", "test", "sitecustomize", "usercustomize"} <= set(names["reserved"])


def requirement_lines(text: str) -> list[str]:
    return [
        line.split("#")[0].strip()
        for line in text.splitlines()
        if line.split("#")[0].strip() and "{" not in line
    ]


def test_every_requirement_of_the_project_is_a_refused_name() -> None:
    """Each requirement line of the generated project, and each task's packages, appear as
    the name they are imported by (derived: a new requirement is refused without a second
    list to edit)."""
    names = python_names()["dependencies"]
    folder = REPO_ROOT / "template" / "requirements"
    common = [
        line
        for path in folder.iterdir()
        if ".txt" in path.name and not path.name.endswith(".jinja")
        for line in requirement_lines(path.read_text())
    ]
    assert common, "the requirement files were found"
    sys.path.insert(0, str(SCRIPTS))
    try:
        import build_python_names
    finally:
        sys.path.remove(str(SCRIPTS))
    for line in common:
        dist = build_python_names.requirement_names([line])[0]
        assert set(build_python_names.import_names([dist])) <= set(names["common"]), line
    profiles = yaml.safe_load((REPO_ROOT / "data" / "task-profiles.yml").read_text())
    for task, profile in profiles["task_profiles"]["default"].items():
        imports = build_python_names.import_names(profile["pip_packages"])
        assert set(imports) == set(names[task]), task
    assert {"numpy", "yaml", "tqdm", "torch"} <= set(names["common"])
    assert {"pil", "cv2"} <= set(names["cv"]) and "tokenizers" in names["nlp"]


def test_readme_gpu_table_matches_the_image_matrix() -> None:
    result = run_script("build_readme_table.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_gpu_table_check_notices_drift(tmp_path: Path, monkeypatch) -> None:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import build_readme_table
    finally:
        sys.path.remove(str(SCRIPTS))
    stale = tmp_path / "README.md"
    stale.write_text(
        (REPO_ROOT / "README.md").read_text().replace("| `hopper` Hopper", "| `hopper` Hoper", 1)
    )
    monkeypatch.setattr(build_readme_table, "README", stale)
    assert build_readme_table.main(["--check"]) == 1


def test_every_task_type_has_a_profile() -> None:
    profiles = yaml.safe_load((REPO_ROOT / "data" / "task-profiles.yml").read_text())
    assert set(profiles["task_profiles"]["default"]) == set(TASK_TYPES)


def test_readme_gives_the_two_commands_and_they_exist() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "bash scripts/new-project.sh" in readme
    assert "bash scripts/test.sh" in readme
    assert (SCRIPTS / "new-project.sh").is_file()
    assert (SCRIPTS / "test.sh").is_file()
    assert "scripts/test.sh" in (REPO_ROOT / ".ci" / "run").read_text()


def test_one_tested_copier_everywhere() -> None:
    """copier.yml's copier_spec (what the generated template-update.sh and new-project.sh run)
    is the release the test suite pins, and new-project.sh reads it from copier.yml."""
    import tomllib

    config = yaml.safe_load((REPO_ROOT / "copier.yml").read_text().split("\n---\n", 1)[1])
    spec = config["copier_spec"]["default"]
    tests = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["dependency-groups"]["test"]
    assert spec in tests, (spec, [t for t in tests if t.startswith("copier")])
    extracted = subprocess.run(
        ["sed", "-n", r'/^copier_spec:/,/^  default:/s/^  default: "\(.*\)"$/\1/p', "copier.yml"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    script = (SCRIPTS / "new-project.sh").read_text()
    assert r's/^  default: "\(.*\)"$/\1/p' in script and "copier.yml" in script
    assert extracted == spec


def test_one_locker_everywhere() -> None:
    """The generated project's scripts/lock.py (UV_VERSION) and this suite, which runs it to
    build and test the shipped locks, use the same uv: otherwise data/locks/ would be written
    by another resolver than the one a project relocks with."""
    import re
    import tomllib

    locker = (REPO_ROOT / "template" / "scripts" / "lock.py").read_text()
    version = re.search(r'^UV_VERSION = "([^"]+)"$', locker, re.MULTILINE)[1]
    tests = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["dependency-groups"]["test"]
    assert f"uv=={version}" in tests, (version, [t for t in tests if t.startswith("uv")])
