"""The README's dev stage without VS Code: built for the host user's UID, run with the project
mounted, the way `docker build --build-arg USER_UID=$(id -u) ...` and `docker run -v` do.

One task type is enough: the user is made before anything task-specific matters. The NGC
layout, because its base already has a user at UID 1000 that stays beside the new one.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .conftest import HOST_GID, HOST_UID, copy_for_standin
from .devcontainer import commands_of, read_config
from .images import Buildah, build

pytestmark = [pytest.mark.container, pytest.mark.xdist_group("container")]


def test_dev_image_built_for_the_host_uid(
    buildah: Buildah, standins: dict[str, str], render_cache: Callable[..., Path], tmp_path: Path
) -> None:
    project = tmp_path / "project"
    copy_for_standin(render_cache({"task_type": "cv"}), project)
    subprocess.run(["chown", "-R", f"{HOST_UID}:{HOST_GID}", str(project)], check=True)
    package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
    user_args = ["--build-arg", f"USER_UID={HOST_UID}", "--build-arg", f"USER_GID={HOST_GID}"]
    image = "localhost/container-test-host-uid:dev"
    build(buildah, project, "dev", image, standins["ngc"], extra_args=user_args)
    assert buildah.image_config(image)["User"] == f"{HOST_UID}:{HOST_GID}"

    # What the dev container would run after creating itself, then the doctor.
    create = commands_of(read_config(project)["postCreateCommand"])
    script = " && ".join(shlex.join(argv) for argv in create)
    script += f" && python -m {package}.doctor --json --no-nccl > doctor.json"
    with buildah.container(image) as name:
        result = buildah(
            "run", "--isolation", "chroot", *buildah.network_args(name),
            "--volume", f"{project}:/workspaces/project", "--workingdir", "/workspaces/project",
            name, "--", "/bin/sh", "-c", script,
            check=False, timeout=900,
        )  # fmt: skip
        assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
        # The user owns the venv, so pip installed there (not into ~/.local).
        home = buildah.mount(name) / "home" / "dev"
        assert not (home / ".local" / "lib").exists()
    report = json.loads((project / "doctor.json").read_text())
    assert report["ok"] is True and report["mode"] == "cpu", report
    owners = {path.lstat().st_uid for path in project.rglob("*")} | {project.stat().st_uid}
    assert owners == {HOST_UID}, f"files not owned by the host user: {owners}"
    assert os.path.isdir(project / "src" / f"{package}.egg-info")


def test_generated_readme_gives_these_commands(render_cache: Callable[..., Path]) -> None:
    """The commands tested here and in test_images.py are the ones the generated README shows,
    with the project's own name and /dev/shm size."""
    project = render_cache({"task_type": "cv", "shm_size": "512m"})
    package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
    readme = (project / "README.md").read_text()
    for command in (
        f"docker build -f .devcontainer/Dockerfile --target train -t {package} .",
        f"docker run --rm --gpus all --shm-size=512m {package}\n",
        f'--user "$(id -u):$(id -g)" -v "$PWD/outputs:/outputs" {package}',
        f"torchrun --standalone --nproc-per-node=2 -m {package}.train --device cpu",
        '--build-arg USER_UID="$(id -u)" --build-arg USER_GID="$(id -g)" .',
    ):
        assert command in readme, command
