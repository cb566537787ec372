"""Update level: a project copied from template v1 and edited by its user, then updated to v2
with `copier update --trust --defaults`, as the README and the scheduled workflow run it.

v2 puts a newer image at the head of every candidate table (conftest.py). After the update:
the image moved in every file that names it (and the files derived from it: stack.env,
stack.py, README, CI), every user edit survived, no conflict marker or .rej file is left
anywhere, and a pinned torch_version stayed on its image.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from answers import candidate_lines

from update.repo import (
    MARKER,
    TemplateRepo,
    assert_clean_merge,
    commit_all,
    git,
    load_matrix,
    project_files,
    run_script,
)


def with_pinned_line(answers: dict[str, Any]) -> dict[str, Any]:
    """`answers` with torch_version pinned to a line older than the newest one offered."""
    lines = candidate_lines(answers)
    assert len(lines) > 1, answers
    return {**answers, "torch_version": lines[1]}


ANSWER_SETS = {
    "defaults": {},
    "nlp-hopper-ngc-gitlab-ssh-multinode": {
        "task_type": "nlp",
        "gpu_generation": "hopper",
        "image_family": "ngc",
        "distributed": "multi_node",
        "cluster": "both",
        "ci_provider": "gitlab",
        "use_ssh": True,
    },
    "audio-volta-pinned-nojupyter-noci": with_pinned_line(
        {
            "task_type": "audio",
            "gpu_generation": "volta",
            "use_jupyter": False,
            "ci_provider": "none",
        }
    ),
    "cv-ada-devel-pinned": with_pinned_line({"gpu_generation": "ada", "image_flavor": "devel"}),
}


def stack_for(matrix: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    fleet = f"{answers.get('gpu_generation', 'ampere')}-"
    fleet += answers.get("newest_gpu_generation", list(matrix["generations"])[-1])
    table_id = matrix["candidates"][answers.get("image_family", "pytorch")][
        answers.get("platform", "linux/amd64")
    ][fleet][answers.get("image_flavor", "runtime")]
    table = matrix["tables"][table_id]
    version = answers.get("torch_version", "latest")
    stack_id = (
        next(iter(table["lines"].values())) if version == "latest" else table["choices"][version]
    )
    return matrix["stacks"][stack_id]


def tagged_matrix(repo: TemplateRepo, tag: str) -> dict[str, Any]:
    path = repo.path / ".matrix-cache" / f"{tag}.yml"
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        path.write_text(git(repo.path, repo.env, "show", f"{tag}:data/image-matrix.yml"))
    return load_matrix(path)


def package_of(project: Path) -> str:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]


# --- what a user changes in a fresh project ---------------------------------------------------


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer contains {old!r}: update this test's edits"
    path.write_text(text.replace(old, new, 1))


def make_user_edits(project: Path) -> dict[str, str]:
    """Edits in the files a user really changes; returns {path: text that must survive}."""
    package = project / "src" / package_of(project)
    module = next(
        package / name
        for name in ("train.py", "model.py", "doctor.py")
        if (package / name).exists()
    )
    function = (
        "\n\ndef user_warmup_factor(step: int, warmup_steps: int = 100) -> float:\n"
        '    """Added by the project\'s user: must survive copier update."""\n'
        "    return min(1.0, (step + 1) / warmup_steps)\n"
    )
    module.write_text(module.read_text() + function)

    dockerfile = project / ".devcontainer" / "Dockerfile"
    user_run = 'RUN echo "user edit: extra dev tools" > /tmp/user-edit\n'
    edit(dockerfile, "FROM base AS dev\n", "FROM base AS dev\n" + user_run)

    devcontainer = project / ".devcontainer" / "devcontainer.json"
    user_setting = '"remoteEnv": { "TEAM_DATA_DIR": "/mnt/datasets" },'
    edit(devcontainer, '"remoteUser": "dev",\n', f'"remoteUser": "dev",\n  {user_setting}\n')

    readme = project / "README.md"
    user_notes = "## Team notes\n\nDatasets live on /mnt/datasets; ask Ana for access.\n"
    readme.write_text(readme.read_text() + "\n" + user_notes)

    new_file = project / "notes" / "experiments.md"
    new_file.parent.mkdir()
    new_file.write_text("# Experiments\n\n- lr 3e-4 beats 1e-3 on the small model\n")

    return {
        module.relative_to(project).as_posix(): function.strip(),
        ".devcontainer/Dockerfile": user_run.strip(),
        ".devcontainer/devcontainer.json": user_setting,
        "README.md": user_notes.strip(),
        "notes/experiments.md": "lr 3e-4 beats 1e-3 on the small model",
    }


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("answers", ANSWER_SETS.values(), ids=ANSWER_SETS.keys())
def test_update_moves_the_image_and_keeps_user_edits(
    template_repo: TemplateRepo, copy_project, copier_cli, answers: dict[str, Any]
) -> None:
    project = copy_project(answers)
    before = project_files(project)
    old = stack_for(tagged_matrix(template_repo, "v1"), answers)
    new = stack_for(tagged_matrix(template_repo, "v2"), answers)
    pinned = answers.get("torch_version", "latest") != "latest"
    assert (old == new) is pinned, "v2 changes exactly the images that `latest` follows"

    survivors = make_user_edits(project)
    commit_all(project, template_repo.env, "User edits")

    result = copier_cli("update", "--trust", "--defaults", "--vcs-ref", "v2", cwd=project)
    after = project_files(project)

    assert_clean_merge(project)
    for path, text in survivors.items():
        assert text in after[path], f"the user's edit of {path} was lost"
    recorded = yaml.safe_load(after[".copier-answers.yml"])
    assert recorded["_commit"] == "v2"
    assert recorded.get("torch_version", "latest") == answers.get("torch_version", "latest")
    # v2's newer image is another torch line: a project on `latest` is told so, with the
    # command that keeps the old line; a pinned one hears nothing (same floor, same line).
    notes = [line for line in result.stdout.splitlines() if line.startswith("copier-pytorch-cuda:")]
    if pinned:
        assert not notes, notes
    else:
        assert "another torch line" in notes[0] and "'latest'" in notes[0], notes
        assert notes[-1].endswith(f"--data torch_version={old['torch_line']}`."), notes

    dockerfile = after[".devcontainer/Dockerfile"]
    assert f"ARG BASE_IMAGE={new['image']}\n" in dockerfile
    if pinned:
        changed = {path for path in before if after.get(path) != before[path]}
        assert changed <= set(survivors) | {".copier-answers.yml"}, changed
        return
    # The image moved in every file that names it: each file the user did not touch is now
    # exactly what v2 generates, and each file the user did touch has every line v2 changed.
    assert not [path for path, text in after.items() if old["image"] in text]
    fresh_v1 = project_files(copy_project(answers, ref="v1", name="fresh-v1", commit=False))
    fresh_v2 = project_files(copy_project(answers, ref="v2", name="fresh-v2", commit=False))
    assert set(fresh_v2) <= set(after), set(fresh_v2) - set(after)
    moved = [path for path in fresh_v2 if fresh_v2[path] != fresh_v1.get(path)]
    assert ".devcontainer/Dockerfile" in moved and ".devcontainer/stack.env" in moved
    for path in moved:
        if path in survivors:
            new_lines = set(fresh_v2[path].splitlines()) - set(fresh_v1[path].splitlines())
            missing = new_lines - set(after[path].splitlines())
            assert not missing, f"{path}: the update lost the template's change {missing}"
        else:
            assert after[path] == fresh_v2[path], f"{path} differs from a fresh v2 copy"
    for path in moved:
        assert old["torch"] not in after[path] or old["torch"] in fresh_v2[path], path


def test_update_script_lists_conflicts_and_lint_catches_them(
    template_repo: TemplateRepo, copy_project
) -> None:
    """The generated scripts/template-update.sh (what the scheduled workflow runs) reports a
    conflict in its pull-request body, and scripts/lint.sh fails until it is resolved."""
    project = copy_project({})
    old = stack_for(tagged_matrix(template_repo, "v1"), {})
    # A user who pinned the base image by hand: the update changes the same line.
    edit(
        project / ".devcontainer" / "Dockerfile",
        f"ARG BASE_IMAGE={old['image']}\n",
        f"ARG BASE_IMAGE=registry.example.com/mirror/{old['image']}\n",
    )
    commit_all(project, template_repo.env, "Use our mirror")
    report = project / "update-report.md"

    result = run_script(project, template_repo, "template-update.sh", "--vcs-ref", "v2",
                        "--report", str(report))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    body = report.read_text()
    assert "Template update" in body and "-> v2" in body
    assert "### Conflicts to resolve before merging" in body
    assert "`.devcontainer/Dockerfile`: conflict markers" in body
    assert MARKER.search((project / ".devcontainer" / "Dockerfile").read_text())

    lint = run_script(project, template_repo, "lint.sh")
    assert lint.returncode != 0
    assert "Unresolved merge conflict markers" in lint.stderr
    assert ".devcontainer/Dockerfile" in lint.stderr


def test_update_script_reports_an_up_to_date_project(
    template_repo: TemplateRepo, copy_project
) -> None:
    project = copy_project({}, ref="v2")
    result = run_script(project, template_repo, "template-update.sh", "--vcs-ref", "v2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Already up to date: nothing changed." in result.stdout
    assert git(project, template_repo.env, "status", "--porcelain") == ""


def test_update_script_runs_the_tested_copier(
    template_repo: TemplateRepo, copy_project, tmp_path: Path
) -> None:
    """Another copier on PATH is not used: the script takes the tested release from its private
    install under XDG_CACHE_HOME (made here from this test run's copier, so no download)."""
    project = copy_project({})
    spec = yaml.safe_load((template_repo.path / "copier.yml").read_text().split("\n---\n", 1)[1])[
        "copier_spec"
    ]["default"]
    cache = tmp_path / "cache"
    private = cache / "copier-pytorch-cuda" / f"copier-{spec.removeprefix('copier==')}" / "bin"
    private.mkdir(parents=True)
    (private / "copier").symlink_to(Path(sys.executable).parent / "copier")
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "copier").write_text(
        '#!/bin/sh\n[ "$1" = --version ] && { echo "copier 9.4.0"; exit 0; }\n'
        'echo "the copier on PATH was used" >&2; exit 97\n'
    )
    (fake / "copier").chmod(0o755)
    env = {**template_repo.env, "XDG_CACHE_HOME": str(cache),
           "PATH": f"{fake}:{template_repo.env['PATH']}"}  # fmt: skip
    result = subprocess.run(
        ["bash", "scripts/template-update.sh", "--vcs-ref", "v2"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the copier on PATH was used" not in result.stderr
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v2"
