"""The generated Dockerfile's apt cache mounts keep the order buildah 1.28 needs (images.py).

A text check, so it needs no root: with the locked /var/cache/apt mount anywhere but last, the
container level would hang on a lock buildah 1.28 never releases, which is a poor way to learn it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

MOUNT = re.compile(r"--mount=type=cache,(?P<options>\S+)")


def cache_mount_runs(dockerfile: str) -> list[list[str]]:
    """The cache mounts' options of each RUN instruction that has more than one."""
    runs = []
    for instruction in re.split(r"\n(?=[A-Z]+ )", dockerfile.replace("\\\n", " ")):
        if instruction.startswith("RUN "):
            mounts = [match["options"] for match in MOUNT.finditer(instruction)]
            if len(mounts) > 1:
                runs.append(mounts)
    return runs


def locked_mount_is_last(mounts: list[str]) -> bool:
    locked = [index for index, options in enumerate(mounts) if "sharing=locked" in options]
    return locked == [len(mounts) - 1] and "/var/lib/apt/lists" not in mounts[-1]


@pytest.mark.parametrize("task_type", ["cv", "audio"])
def test_apt_cache_mounts_keep_the_order_buildah_1_28_needs(
    render_cache: Callable[..., Path], task_type: str
) -> None:
    project = render_cache({"task_type": task_type, "use_ssh": True})
    runs = cache_mount_runs((project / ".devcontainer" / "Dockerfile").read_text())
    assert len(runs) == 2, runs  # the task packages (base) and the tools (dev)
    assert all(locked_mount_is_last(mounts) for mounts in runs), runs


def test_the_check_rejects_a_locked_mount_first() -> None:
    broken = (
        "RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n"
        "    --mount=type=cache,target=/var/lib/apt/lists \\\n"
        "    apt-get update\n"
    )
    assert not locked_mount_is_last(cache_mount_runs(broken)[0])
