"""The dev stage for the other values of the answers that change it: an SSH server in, Jupyter
out. The base stage is the default project's (same instructions), so only the dev stage builds.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import copy_for_standin
from .images import Buildah, build

pytestmark = [pytest.mark.container, pytest.mark.xdist_group("container")]


def test_dev_stage_with_ssh_without_jupyter(
    buildah: Buildah, standin: str, render_cache: Callable[..., Path], tmp_path: Path
) -> None:
    rendered = render_cache({"task_type": "cv", "use_ssh": True, "use_jupyter": False})
    project = copy_for_standin(rendered, tmp_path / "project")
    image = "localhost/container-test-ssh:dev"
    build(buildah, project, "dev", image, standin)
    user = buildah.image_config(image)["User"]
    uid = int(user.split(":")[0])
    with buildah.container(image) as name:
        root = buildah.mount(name)
        assert (root / "usr/sbin/sshd").is_file()
        # The package's root-owned host keys are gone: the server makes its own as the user.
        assert not list((root / "etc/ssh").glob("ssh_host_*key*"))
        ssh_dir = root / "home/dev/.ssh"
        assert ssh_dir.stat().st_uid == uid
        assert stat.S_IMODE(ssh_dir.stat().st_mode) == 0o700
        probe = buildah(
            "run", "--isolation", "chroot", name, "--", "python", "-c",
            "import importlib.util as u; print(u.find_spec('pytest') is not None,"
            " u.find_spec('jupyterlab') is not None)",
            check=False,
        )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["True", "False"]
