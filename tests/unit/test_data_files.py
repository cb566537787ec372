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


def test_python_names_cover_this_interpreters_stdlib() -> None:
    names = copier_json_question(REPO_ROOT / "data" / "python-names.yml", "python_names")
    public = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    assert public <= set(names["stdlib"])
    assert {"torch", "tests", "test"} <= set(names["shadowed_packages"])


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
