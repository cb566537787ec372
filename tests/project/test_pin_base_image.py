"""scripts/pin-base-image.sh: the optional digest pin of the base image.

With stand-ins for docker, crane and skopeo (no registry here): the script writes the digest
each tool reports into the two pin lines of .devcontainer/Dockerfile and nothing else, the
Dockerfile's FROM then names tag@digest, `--check` (which lint.sh runs) fails in one line
when the pin belongs to another tag, `--remove` goes back to the tag alone, and without a
working tool the Dockerfile is left as it was with one line saying why.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.project

DIGEST = "sha256:" + "ab" * 32
# A manifest list as `skopeo inspect --raw` prints it: the digest is its bytes' sha256.
RAW_MANIFEST = '{"schemaVersion":2,"manifests":[]}'


def fake(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / name
    script.write_text(f"#!/usr/bin/env bash\n{body}\n")
    script.chmod(0o755)


def tools(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    fake(bin_dir, "crane", f'[[ "$1" == digest ]] && echo {DIGEST}')
    manifest = f'{{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "{DIGEST}"}}'
    fake(bin_dir, "docker", f"[[ \"$1 $2\" == 'buildx imagetools' ]] && echo '{manifest}'")
    fake(bin_dir, "skopeo", f"[[ \"$1 $2\" == 'inspect --raw' ]] && printf '%s' '{RAW_MANIFEST}'")
    return bin_dir


def pin(project: Path, bin_dir: Path, *args: str, resolvers: str = "docker crane skopeo"):
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "BASE_IMAGE_RESOLVERS": resolvers,
    }
    return subprocess.run(
        ["bash", "scripts/pin-base-image.sh", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def project(render_cache, tmp_path: Path) -> Path:
    path = tmp_path / "project"
    shutil.copytree(render_cache({}), path)
    return path


def lines_of(project: Path) -> list[str]:
    return (project / ".devcontainer" / "Dockerfile").read_text().splitlines()


def image_of(project: Path) -> str:
    return next(
        line.split("=", 1)[1] for line in lines_of(project) if line.startswith("ARG BASE_IMAGE=")
    )


@pytest.mark.parametrize(
    ("resolver", "digest"),
    [
        ("docker", DIGEST),
        ("crane", DIGEST),
        ("skopeo", "sha256:" + hashlib.sha256(RAW_MANIFEST.encode()).hexdigest()),
    ],
)
def test_pin_writes_the_digest_and_nothing_else(project: Path, tmp_path: Path, resolver, digest):
    before = lines_of(project)
    result = pin(project, tools(tmp_path), resolvers=resolver)
    assert result.returncode == 0, result.stderr
    assert f"pinned to {digest} (by {resolver})" in result.stdout
    after = lines_of(project)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert changed == [
        ("# base image pin: none", f"# base image pin: {image_of(project)}"),
        ("ARG BASE_IMAGE_DIGEST=", f"ARG BASE_IMAGE_DIGEST=@{digest}"),
    ]
    assert "FROM ${BASE_IMAGE}${BASE_IMAGE_DIGEST} AS base" in after
    assert pin(project, tools(tmp_path), "--check").returncode == 0


def test_check_fails_when_the_tag_moved_and_remove_unpins(project: Path, tmp_path: Path):
    bin_dir = tools(tmp_path)
    assert pin(project, bin_dir, resolvers="crane").returncode == 0
    dockerfile = project / ".devcontainer" / "Dockerfile"
    old = image_of(project)
    # What copier update does to the tag line (the pin lines are the user's).
    dockerfile.write_text(
        dockerfile.read_text().replace(f"ARG BASE_IMAGE={old}", "ARG BASE_IMAGE=example/new:1")
    )
    check = pin(project, bin_dir, "--check")
    assert check.returncode == 1
    assert check.stderr.splitlines() == [
        f"pin-base-image.sh: the base image pin belongs to {old}, but BASE_IMAGE is "
        "example/new:1; run `bash scripts/pin-base-image.sh` (or --remove)"
    ]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    lint = subprocess.run(
        ["bash", "scripts/lint.sh"], cwd=project, capture_output=True, text=True, env=env
    )
    assert lint.returncode != 0 and "the base image pin belongs to" in lint.stderr

    removed = pin(project, bin_dir, "--remove")
    assert removed.returncode == 0, removed.stderr
    assert "# base image pin: none" in lines_of(project)
    assert "ARG BASE_IMAGE_DIGEST=" in lines_of(project)
    assert pin(project, bin_dir, "--check").returncode == 0


def test_without_a_working_tool_nothing_changes(project: Path, tmp_path: Path) -> None:
    before = (project / ".devcontainer" / "Dockerfile").read_text()
    bin_dir = tmp_path / "bin"
    fake(bin_dir, "crane", "echo 'UNAUTHORIZED' >&2; exit 1")
    result = pin(project, bin_dir, resolvers="crane skopeo-missing")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert re.search(
        r"could not resolve the digest of \S+ with crane skopeo-missing", result.stderr
    )
    assert (project / ".devcontainer" / "Dockerfile").read_text() == before
