"""Validate level: the generated files pass the real validators the tools behind them use.

- devcontainer.json: the official dev container schema (check-jsonschema, JSONC via json5)
  and the Dev Containers CLI's own reader;
- the Dockerfile: hadolint, with no rule ignored except where the Dockerfile says why;
- shell scripts: shellcheck.

Each validator is also shown a broken file once, so a validator that silently accepts
everything fails the suite instead of passing it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import json5
import pytest
from answers import all_answer_sets, answer_id
from conftest import tool, vendored

ANSWER_SETS = all_answer_sets()


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, check=False
    )


def devcontainer_schema() -> Path:
    return vendored("tests/schemas/devContainer.base.schema.json")


def check_devcontainer_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return run(
        tool("check-jsonschema"),
        "--force-filetype",
        "json5",
        "--schemafile",
        devcontainer_schema(),
        path,
    )


def read_configuration(workspace: Path) -> subprocess.CompletedProcess[str]:
    return run(
        tool("devcontainer"),
        "read-configuration",
        "--workspace-folder",
        workspace,
        "--docker-path",
        "/bin/true",
    )


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_devcontainer_json_matches_the_official_schema(render_cache, answers: dict[str, Any]):
    result = check_devcontainer_schema(render_cache(answers) / ".devcontainer/devcontainer.json")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_devcontainer_cli_reads_the_configuration(render_cache, answers: dict[str, Any]):
    project = render_cache(answers)
    result = read_configuration(project)
    assert result.returncode == 0, result.stderr
    configuration = json.loads(result.stdout)["configuration"]
    assert configuration["build"]["target"] == "dev"
    assert configuration["hostRequirements"] == {"gpu": "optional"}
    assert f"--shm-size={answers.get('shm_size', '16g')}" in configuration["runArgs"]
    assert configuration["remoteUser"] == "dev"
    assert configuration["updateRemoteUserUID"] is True


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_dockerfile_is_hadolint_clean(render_cache, answers: dict[str, Any]):
    dockerfile = render_cache(answers) / ".devcontainer" / "Dockerfile"
    result = run(tool("hadolint"), "--failure-threshold", "info", dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every ignored rule is explained on the comment lines right above it.
    lines = dockerfile.read_text().splitlines()
    for number, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            assert lines[number - 1].startswith("#") and len(lines[number - 1]) > 20, line


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_shell_scripts_are_shellcheck_clean(render_cache, answers: dict[str, Any]):
    scripts = sorted(render_cache(answers).rglob("*.sh"))
    assert scripts, "the project has shell scripts (preflight.sh at least)"
    result = run(tool("shellcheck"), "--external-sources", *scripts)
    assert result.returncode == 0, result.stdout


# --- the validators themselves catch broken files -------------------------------------


def test_schema_check_rejects_a_broken_devcontainer_json(render_cache, tmp_path: Path):
    config = json5.loads((render_cache({}) / ".devcontainer/devcontainer.json").read_text())
    config["hostRequirements"] = {"gpu": "sometimes"}
    broken = tmp_path / "devcontainer.json"
    broken.write_text(json.dumps(config))
    assert check_devcontainer_schema(broken).returncode != 0


def test_schema_check_rejects_an_unknown_top_level_key(render_cache, tmp_path: Path):
    config = json5.loads((render_cache({}) / ".devcontainer/devcontainer.json").read_text())
    config["runArg"] = ["--shm-size=16g"]  # a typo the CLI would silently ignore
    broken = tmp_path / "devcontainer.json"
    broken.write_text(json.dumps(config))
    assert check_devcontainer_schema(broken).returncode != 0


def test_hadolint_rejects_a_broken_dockerfile(tmp_path: Path):
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM ubuntu\nRUN apt-get install curl\nUSER root\n")
    assert run(tool("hadolint"), broken).returncode != 0


def test_shellcheck_rejects_a_broken_script(tmp_path: Path):
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/usr/bin/env bash\nrm -rf $1/*\n")
    assert run(tool("shellcheck"), broken).returncode != 0
