"""The throw-away template repository behind the update tests: git helpers and the image
matrix changes that make template v2 and v3 (see conftest.py)."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the template needs to render; the rest of the repository is tooling.
TEMPLATE_PARTS = ("copier.yml", "data", "hooks", "template")
MATRIX = Path("data") / "image-matrix.yml"
CHECKPOINT_MODULE = Path("template") / "src" / "{{package_name}}" / "checkpoint.py"


@dataclass(frozen=True)
class TemplateRepo:
    path: Path
    env: dict[str, str]


def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout


def isolated_env(home: Path) -> dict[str, str]:
    """This process's environment with git pointed at an empty HOME and a test identity."""
    home.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Update Test",
        GIT_AUTHOR_EMAIL="update-test@example.com",
        GIT_COMMITTER_NAME="Update Test",
        GIT_COMMITTER_EMAIL="update-test@example.com",
    )
    return env


# --- the image matrix, changed the way a template release changes it ------------------------


def load_matrix(path: Path) -> dict[str, Any]:
    return json.loads(yaml.safe_load(path.read_text())["image_matrix"]["default"])


def save_matrix(path: Path, matrix: dict[str, Any]) -> None:
    document = yaml.safe_load(path.read_text())
    document["image_matrix"]["default"] = json.dumps(matrix, indent=1)
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=1000))


def next_line(line: str) -> str:
    major, minor = line.split(".")
    return f"{major}.{int(minor) + 1}"


def newer_stack(stack: dict[str, Any]) -> dict[str, Any]:
    """The same stack one release later: its image tag and torch version move."""
    new = copy.deepcopy(stack)
    new["torch_line"] = next_line(stack["torch_line"])
    if stack["family"] == "ngc":
        year, month = re.search(r":(\d\d)\.(\d\d)-", stack["image"]).groups()
        year, month = (int(year), int(month) + 1) if month != "12" else (int(year) + 1, 1)
        new["image"] = re.sub(r":\d\d\.\d\d-", f":{year:02d}.{month:02d}-", stack["image"])
        new["torch"] = f"{new['torch_line']}.0a0+0123456789"
    else:
        new["torch"] = f"{new['torch_line']}.0"
        new["image"] = stack["image"].replace(f":{stack['torch']}-", f":{new['torch']}-")
    assert new["image"] != stack["image"], stack["image"]
    return new


def tables(matrix: dict[str, Any]):
    """(GPU ranges that use it, table) for every table of stacks of the matrix."""
    users: dict[str, set[str]] = {table_id: set() for table_id in matrix["tables"]}
    for platforms in matrix["candidates"].values():
        for fleets in platforms.values():
            for fleet, flavors in fleets.items():
                for table_id in flavors.values():
                    users[table_id].add(fleet)
    for table_id, table in matrix["tables"].items():
        yield users[table_id], table


def add_newer_images(matrix: dict[str, Any]) -> None:
    """v2: put a newer stack at the head of every table, under the next torch line."""
    for _, table in tables(matrix):
        newest = next(iter(table["lines"].values()))
        new_id = f"{newest}-next"
        if new_id not in matrix["stacks"]:
            matrix["stacks"][new_id] = newer_stack(matrix["stacks"][newest])
        line = matrix["stacks"][new_id]["torch_line"]
        assert line not in table["lines"], f"{line} is already in the table"
        table["lines"] = {line: new_id, **table["lines"]}
        table["choices"] = {line: new_id, **table["choices"]}
        table["floors"][new_id] = table["floors"][newest]
        if line not in matrix["torch_lines"]:
            matrix["torch_lines"].insert(0, line)


def raise_volta_driver_floor(matrix: dict[str, Any]) -> None:
    """v3: in every range that starts at Volta, the newest stack moves to a newer CUDA line
    with a higher driver floor (not a real image: it exercises the stack notice)."""
    for fleets, table in tables(matrix):
        if not any(fleet.startswith("volta-") for fleet in fleets):
            continue
        assert all(fleet.startswith("volta-") for fleet in fleets), fleets
        line, newest = next(iter(table["lines"].items()))
        new_id = f"{newest}-newer-cuda"
        stack = copy.deepcopy(matrix["stacks"][newest])
        stack.update(cuda="13.2", cuda_tag="cu132", driver_toolkit="595.71.05", driver_floor="580")
        stack["image"] = re.sub(r"cuda\d+\.\d+", "cuda13.2", stack["image"])
        matrix["stacks"][new_id] = stack
        table["lines"][line] = table["choices"][line] = new_id
        table["floors"][new_id] = "580"


def commit_all(project: Path, env: dict[str, str], message: str) -> None:
    git(project, env, "add", "--all")
    git(project, env, "commit", "--quiet", "--message", message)


def run_script(
    project: Path, repo: TemplateRepo, script: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run a generated script with this test run's tools (copier, ruff) on PATH."""
    env = {**repo.env, "PATH": f"{Path(sys.executable).parent}:{repo.env['PATH']}"}
    return subprocess.run(
        ["bash", f"scripts/{script}", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# Conflict markers as git and copier write them, at the start of a line.
MARKER = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.MULTILINE)


def project_files(project: Path) -> dict[str, str]:
    return {
        path.relative_to(project).as_posix(): path.read_text(errors="replace")
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def assert_clean_merge(project: Path) -> None:
    files = project_files(project)
    marked = [path for path, text in files.items() if MARKER.search(text)]
    assert not marked, f"conflict markers left in {marked}"
    assert not [path for path in files if path.endswith(".rej")], "rejected hunks left"
