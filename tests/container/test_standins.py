"""The stand-ins have their models' shapes, and the Dockerfile's setup steps work on each.

Each stand-in checks its own shape when it is built (standins.py); here every check is also run
on the other stand-ins, where it must fail, so a check that passes on any layout is caught. Then
the steps of the Dockerfile that depend on the layout are run on each stand-in directly (no
build): the user for several UID/GID requests, and the error a base without torch gets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import copy_for_standin, run_in_image
from .images import Buildah, BuildahError, build
from .standins import CHECK_PRELUDE, LAYOUTS, ROOT_REPOSITORY, root_key

pytestmark = [pytest.mark.container, pytest.mark.xdist_group("container")]

TEMPLATE_DEVCONTAINER = Path(__file__).resolve().parents[2] / "template" / ".devcontainer"


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_standin_has_its_shape_and_no_other(
    buildah: Buildah, standins: dict[str, str], layout: str
) -> None:
    check = CHECK_PRELUDE + LAYOUTS[layout].check
    own = run_in_image(buildah, standins[layout], f"bash -c {shell_quote(check)}", user="0:0")
    assert own.returncode == 0, own.stdout + own.stderr
    for other in sorted(set(LAYOUTS) - {layout}):
        result = run_in_image(buildah, standins[other], f"bash -c {shell_quote(check)}", "0:0")
        assert result.returncode != 0, f"the {layout} check passes on the {other} stand-in"


@pytest.mark.parametrize(
    ("uid", "gid"),
    [(1000, 1000), (1234, 1234), (1000, 1234), (1234, 1000), (4321, 100)],
    ids=lambda value: str(value),
)
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_create_user_on_every_layout(
    buildah: Buildah, standins: dict[str, str], layout: str, uid: int, gid: int
) -> None:
    """create-user.sh makes `dev` with the UID and GID asked for, whether a user already has
    UID 1000 (system, ngc) or not (conda), and is idempotent (a rebuild with cached layers
    runs it on a base that went through it)."""
    script = (TEMPLATE_DEVCONTAINER / "create-user.sh").read_text()
    command = (
        f"cat > /tmp/create-user.sh <<'EOF'\n{script}EOF\n"
        f"bash /tmp/create-user.sh dev {uid} {gid} && bash /tmp/create-user.sh dev {uid} {gid}"
        " && id -u dev && id -g dev && stat -c %u:%g /home/dev && getent passwd dev | cut -d: -f6"
    )
    result = run_in_image(buildah, standins[layout], command, user="0:0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[-4:] == [str(uid), str(gid), f"{uid}:{gid}", "/home/dev"]


def test_create_user_refuses_root_and_non_numbers(buildah: Buildah, standin: str) -> None:
    script = (TEMPLATE_DEVCONTAINER / "create-user.sh").read_text()
    for uid, gid in (("0", "0"), ("dev", "1000"), ("1000", "")):
        command = f"cat > /tmp/c.sh <<'EOF'\n{script}EOF\nbash /tmp/c.sh dev '{uid}' '{gid}'"
        result = run_in_image(buildah, standin, command, user="0:0")
        assert result.returncode != 0, (uid, gid, result.stdout)
        assert "create-user.sh" in result.stderr, result.stderr


def test_base_without_torch_stops_with_one_clear_line(
    buildah: Buildah,
    standins: dict[str, str],
    render_cache: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """A BASE_IMAGE that is not a PyTorch image (here: the stand-ins' bare Debian root, with
    python3 but no torch) fails at the pin step with a message that says so."""
    project = tmp_path / "project"
    copy_for_standin(render_cache({"task_type": "nlp"}), project)
    root = f"{ROOT_REPOSITORY}:{root_key()}"
    with pytest.raises(BuildahError) as failure:
        build(buildah, project, "base", "localhost/container-test-no-torch:base", root)
    assert "torch is not installed for /usr/bin/python3" in str(failure.value)
    assert "BASE_IMAGE must be a PyTorch image" in str(failure.value)


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
