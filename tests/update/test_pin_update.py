"""`copier update` of a project whose base image is pinned by digest (scripts/pin-base-image.sh).

v2 moves the tag (a newer image, conftest.py). The pin lines are the user's and copier never
changes them, so the merge is clean; the base_image_pin migration then either resolves the
new tag's digest and pins it, saying so, or (no tool that works) keeps the pin, says what
that means, and lint fails until it is fixed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from update.repo import TemplateRepo, assert_clean_merge, commit_all

OLD_DIGEST = "sha256:" + "11" * 32
NEW_DIGEST = "sha256:" + "22" * 32


def fake_crane(bin_dir: Path, digest: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    crane = bin_dir / "crane"
    crane.write_text(f'#!/usr/bin/env bash\n[[ "$1" == digest ]] && echo {digest}\n')
    crane.chmod(0o755)


def env_with(repo: TemplateRepo, bin_dir: Path, resolvers: str) -> dict[str, str]:
    path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    return {**repo.env, "PATH": path, "BASE_IMAGE_RESOLVERS": resolvers}


def pinned_project(copy_project, repo: TemplateRepo, tmp_path: Path) -> Path:
    project = copy_project({})
    fake_crane(tmp_path / "old-bin", OLD_DIGEST)
    result = subprocess.run(
        ["bash", "scripts/pin-base-image.sh"], cwd=project,
        env=env_with(repo, tmp_path / "old-bin", "crane"), capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    commit_all(project, repo.env, "Pin the base image")
    return project


def update(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--trust", "--defaults", "--vcs-ref", "v2"],
        cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def pin_lines(project: Path) -> dict[str, str]:
    found = {}
    for line in (project / ".devcontainer" / "Dockerfile").read_text().splitlines():
        for prefix in ("ARG BASE_IMAGE=", "# base image pin: ", "ARG BASE_IMAGE_DIGEST="):
            if line.startswith(prefix):
                found[prefix] = line[len(prefix) :]
    return found


def test_update_moves_the_pin_with_the_tag(
    template_repo: TemplateRepo, copy_project, tmp_path: Path
) -> None:
    project = pinned_project(copy_project, template_repo, tmp_path)
    old_image = pin_lines(project)["ARG BASE_IMAGE="]
    fake_crane(tmp_path / "new-bin", NEW_DIGEST)

    result = update(project, env_with(template_repo, tmp_path / "new-bin", "crane"))
    assert_clean_merge(project)
    lines = pin_lines(project)
    new_image = lines["ARG BASE_IMAGE="]
    assert new_image != old_image
    assert lines == {
        "ARG BASE_IMAGE=": new_image,
        "# base image pin: ": new_image,
        "ARG BASE_IMAGE_DIGEST=": f"@{NEW_DIGEST}",
    }
    assert (
        f"copier-pytorch-cuda: the base image moved to {new_image}; its digest pin moved "
        f"with it ({NEW_DIGEST})"
    ) in result.stdout


def test_update_without_a_resolver_keeps_the_pin_and_says_so(
    template_repo: TemplateRepo, copy_project, tmp_path: Path
) -> None:
    project = pinned_project(copy_project, template_repo, tmp_path)
    old_image = pin_lines(project)["ARG BASE_IMAGE="]
    env = env_with(template_repo, tmp_path / "none", "none")

    result = update(project, env)
    assert_clean_merge(project)
    lines = pin_lines(project)
    assert lines["# base image pin: "] == old_image
    assert lines["ARG BASE_IMAGE_DIGEST="] == f"@{OLD_DIGEST}"
    notes = [line for line in result.stdout.splitlines() if "digest could not be resolved" in line]
    assert len(notes) == 1, result.stdout
    assert f"the pin still names {old_image}'s digest ({OLD_DIGEST})" in notes[0]
    assert notes[0].endswith("lint fails until then")
    check = subprocess.run(
        ["bash", "scripts/pin-base-image.sh", "--check"], cwd=project, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 1 and "the base image pin belongs to" in check.stderr
