"""Validate level, CI: the generated pipelines pass the tools that check them in real life.

- GitHub Actions: zizmor (offline, default persona: no findings, and no ignore comments or
  config that would hide one), actionlint (with shellcheck on PATH, so it also checks every
  `run:` script), and the github-workflows / dependabot schemas vendored in check-jsonschema;
- GitLab CI: the gitlab-ci schema vendored in check-jsonschema;
- both: every job calls the project's own scripts, and they exist; the torch that CPU jobs
  install comes from the resolved stack, in one place.

Run over the pairwise answer sets (every pair of answers, both CI providers). Each
validator is also shown a broken file once.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from answers import answer_id, expected_stack, pairwise
from conftest import tool

ANSWER_SETS = pairwise()
GITHUB = [answers for answers in ANSWER_SETS if answers.get("ci_provider", "github") == "github"]
GITLAB = [answers for answers in ANSWER_SETS if answers.get("ci_provider") == "gitlab"]

# Every action the workflows use, pinned to a commit whose tag was checked against public
# workflows that pin the same commit with the same version comment (see the commit message).
VERIFIED_ACTIONS = {
    "actions/checkout": ("1af3b93b6815bc44a9784bd300feb67ff0d1eeb3", "v6.0.0"),
    "actions/setup-python": ("e797f83bcb11b83ae66e0230d6156d7c80228e7c", "v6.0.0"),
}
SCRIPTS = ("lint.sh", "test.sh", "smoke.sh", "build-image.sh", "install-cpu.sh")


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, check=False
    )


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.yml"))


def zizmor(*paths: Path) -> subprocess.CompletedProcess[str]:
    # --offline: no GitHub API (no network here); default persona ("regular").
    return run(tool("zizmor"), "--offline", "--no-progress", *paths)


def actionlint(project: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    tool("shellcheck")  # actionlint checks `run:` scripts with it when it is on PATH
    config = project / ".github" / "actionlint.yaml"
    return run(tool("actionlint"), "-config-file", config, *files, cwd=project)


def schema(name: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return run(tool("check-jsonschema"), "--builtin-schema", f"vendor.{name}", *files)


def expected_torch_spec(answers: dict[str, Any]) -> str:
    stack = expected_stack(answers)
    if re.fullmatch(r"\d+\.\d+\.\d+", stack["torch"]):
        return f"torch=={stack['torch']}"
    return f"torch=={stack['torch_line']}.*"


def script_calls(text: str) -> set[str]:
    return set(re.findall(r"\bbash scripts/([\w-]+\.sh)\b", text))


# --- files present or absent --------------------------------------------------------------


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answer_id)
def test_ci_files_follow_the_answers(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    provider = answers.get("ci_provider", "github")
    assert (project / ".github").is_dir() == (provider == "github")
    assert (project / ".gitlab-ci.yml").is_file() == (provider == "gitlab")
    if provider == "github":
        assert [path.name for path in workflows(project)] == ["ci.yml", "template-update.yml"]
        assert (project / ".github" / "dependabot.yml").is_file()
    # The scripts CI calls are there whatever the provider: developers run them too.
    for script in (*SCRIPTS, "template-update.sh"):
        assert (project / "scripts" / script).is_file(), script


# --- GitHub Actions -----------------------------------------------------------------------


@pytest.mark.parametrize("answers", GITHUB, ids=answer_id)
def test_github_workflows_are_zizmor_clean(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    result = zizmor(project / ".github")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout
    # Clean without hiding anything: no ignore comments, no zizmor config.
    assert not list(project.rglob("zizmor.yml")) and not list(project.rglob(".zizmor.yml"))
    for path in (project / ".github").rglob("*.yml"):
        assert "zizmor: ignore" not in path.read_text(), path


@pytest.mark.parametrize("answers", GITHUB, ids=answer_id)
def test_github_workflows_are_actionlint_clean(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    result = actionlint(project, *workflows(project))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("answers", GITHUB, ids=answer_id)
def test_github_files_match_their_schemas(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    result = schema("github-workflows", *workflows(project))
    assert result.returncode == 0, result.stdout + result.stderr
    result = schema("dependabot", project / ".github" / "dependabot.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("answers", GITHUB, ids=answer_id)
def test_github_workflows_follow_the_house_rules(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    ci = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    assert ci["env"]["TORCH_SPEC"] == expected_torch_spec(answers)
    assert ci["env"]["PYTHON_VERSION"] == expected_stack(answers)["python"]
    assert set(ci["jobs"]) == {"lint", "test", "smoke", "image", "gpu"}
    # The GPU job is skipped unless the repository variable enables it.
    assert "vars.GPU_CI == 'true'" in ci["jobs"]["gpu"]["if"]
    assert "self-hosted" in ci["jobs"]["gpu"]["runs-on"]
    for path in workflows(project):
        text = path.read_text()
        workflow = yaml.safe_load(text)
        assert workflow["permissions"] == {}, path.name
        assert "concurrency" in workflow, path.name
        for name, job in workflow["jobs"].items():
            assert "timeout-minutes" in job and "permissions" in job, (path.name, name)
            for step in job["steps"]:
                if "uses" in step and step["uses"].startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, (path.name, name)
        for action, sha, comment in re.findall(r"uses: ([\w-]+/[\w-]+)@(\S+) # (\S+)", text):
            assert VERIFIED_ACTIONS[action] == (sha, comment), action
        assert text.count("uses:") == len(re.findall(r"uses: \S+@[0-9a-f]{40} # v", text))
        # Jobs run the project's scripts, which exist.
        for script in script_calls(text):
            assert (project / "scripts" / script).is_file(), script
    assert {"lint.sh", "test.sh", "smoke.sh", "build-image.sh"} <= script_calls(
        (project / ".github" / "workflows" / "ci.yml").read_text()
    )


# --- GitLab CI ----------------------------------------------------------------------------


@pytest.mark.parametrize("answers", GITLAB, ids=answer_id)
def test_gitlab_ci_matches_its_schema(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    result = schema("gitlab-ci", project / ".gitlab-ci.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("answers", GITLAB, ids=answer_id)
def test_gitlab_ci_runs_the_project_scripts(render_cache, answers: dict[str, Any]) -> None:
    project = render_cache(answers)
    text = (project / ".gitlab-ci.yml").read_text()
    pipeline = yaml.safe_load(text)
    assert pipeline["variables"]["TORCH_SPEC"] == expected_torch_spec(answers)
    assert {"lint", "test", "smoke", "build-image", "gpu", "template-update"} <= set(pipeline)
    # The image is built by buildah, without a Docker daemon, into the project's registry.
    build = pipeline["build-image"]
    assert build["image"].startswith("quay.io/buildah/stable:v")
    assert build["variables"]["ENGINE"] == "buildah"
    assert '--image "$CI_REGISTRY_IMAGE"' in " ".join(build["script"])
    assert "docker:" not in text and "services:" not in text
    # The GPU job only exists in a pipeline when GPU_CI is "true".
    assert any('$GPU_CI == "true"' in rule.get("if", "") for rule in pipeline["gpu"]["rules"])
    assert {"lint.sh", "test.sh", "smoke.sh", "build-image.sh", "template-update.sh"} <= (
        script_calls(text)
    )
    for script in script_calls(text):
        assert (project / "scripts" / script).is_file(), script


# --- the validators themselves catch broken files -------------------------------------------

BROKEN_WORKFLOW = """\
name: broken
on: pull_request
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""


def test_zizmor_flags_an_unpinned_action_and_template_injection(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(BROKEN_WORKFLOW)
    result = zizmor(broken)
    assert result.returncode != 0
    for audit in ("unpinned-uses", "template-injection", "artipacked", "excessive-permissions"):
        assert audit in result.stdout, audit


def test_actionlint_flags_a_broken_workflow(render_cache, tmp_path: Path) -> None:
    project = render_cache({})
    broken = tmp_path / "ci.yml"
    text = (project / ".github" / "workflows" / "ci.yml").read_text()
    # A typo in an expression and a `needs` on a job that does not exist.
    broken.write_text(text.replace("needs: [test]", "needs: [tests]").replace("vars.", "var."))
    result = actionlint(project, broken)
    assert result.returncode != 0
    assert "tests" in result.stdout and "undefined variable" in result.stdout


def test_actionlint_runs_shellcheck_on_run_scripts(render_cache, tmp_path: Path) -> None:
    project = render_cache({})
    broken = tmp_path / "ci.yml"
    text = (project / ".github" / "workflows" / "ci.yml").read_text()
    broken.write_text(text.replace('"${packages[@]}"', "${packages[@]}"))
    result = actionlint(project, broken)
    assert result.returncode != 0 and "shellcheck" in result.stdout


def test_workflow_schema_rejects_a_job_without_runs_on(render_cache, tmp_path: Path) -> None:
    workflow = yaml.safe_load((render_cache({}) / ".github/workflows/ci.yml").read_text())
    del workflow["jobs"]["lint"]["runs-on"]
    broken = tmp_path / "ci.yml"
    broken.write_text(yaml.safe_dump(workflow))
    assert schema("github-workflows", broken).returncode != 0


def test_dependabot_schema_rejects_an_unknown_interval(render_cache, tmp_path: Path) -> None:
    config = yaml.safe_load((render_cache({}) / ".github/dependabot.yml").read_text())
    config["updates"][0]["schedule"]["interval"] = "sometimes"
    broken = tmp_path / "dependabot.yml"
    broken.write_text(yaml.safe_dump(config))
    assert schema("dependabot", broken).returncode != 0


def test_gitlab_schema_rejects_a_broken_job(render_cache, tmp_path: Path) -> None:
    pipeline = yaml.safe_load((render_cache(GITLAB[0]) / ".gitlab-ci.yml").read_text())
    pipeline["lint"]["script"] = {"run": "bash scripts/lint.sh"}
    pipeline["test"]["when"] = "sometimes"
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(yaml.safe_dump(pipeline))
    assert schema("gitlab-ci", broken).returncode != 0
