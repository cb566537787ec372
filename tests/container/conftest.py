"""Fixtures for the container level: the stand-in bases, each case's images, a dev container.

Everything is built for real with buildah (see images.py) on the stand-ins of the three real base
layouts (see standins.py). Images are built once per test run and case (a layout and a task
type, CASES below); the stand-ins and buildah's layer cache live under .cache/containers, so a
second run rebuilds nothing that did not change. Missing tools fail these tests with what to do,
never skip them: a developer without root deselects them with `-m "not container"`.

Building the images costs minutes, so every container test module marks its tests
`xdist_group("container")` (scripts/test.sh runs `--dist loadgroup`): one worker builds and runs
them in order while the others take the rest of the suite.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from . import devcontainer
from .images import REPO_ROOT, Build, Buildah, build, check_tools
from .standins import LAYOUTS, Layout, ensure_standins

# (layout, task type): every layout with every task type. The default project (cv) comes first
# on each layout; builds of one layout share the base image, those of one case share the base
# stage between dev and train.
CASES = tuple(
    (layout, task_type)
    for layout in ("system", "conda", "ngc")
    for task_type in ("cv", "nlp", "audio")
)
# The layout of the default answers' image (pytorch/pytorch 2.10+), for tests that need one.
DEFAULT_LAYOUT = "system"
# The host user the dev container is created for. Not root, and not the image's UID 1000, so
# updateRemoteUserUID really has to move the container user, as on most shared machines.
HOST_UID = 1234
HOST_GID = 1234

SECRET = "container-test-secret-5c1e"
# Files a real project folder holds that must never reach an image (relative to the project;
# {package} is filled in). Each holds SECRET, so they are found by content as well as by name.
PRIVATE_FILES = (
    ".env",
    ".env.production",
    "data/raw/private-sample-0001.csv",
    "checkpoints/step-00000100.pt",
    "outputs/run-1/checkpoints/private-last.ckpt",
    "runs/run-1/events.out.tfevents.private",
    "wandb/run-1/files/private-config.yaml",
    "src/{package}/.env",
    "src/{package}/private-weights.safetensors",
    "src/{package}/private-weights.pth",
)


@dataclass
class Project:
    """A generated project folder, owned by the host user, with private files in it, and the
    layout of the base image it is built on."""

    task_type: str
    path: Path
    package: str
    layout: Layout

    @property
    def case(self) -> str:
        return f"{self.layout.name}-{self.task_type}"


@dataclass
class Images:
    project: Project
    base: str
    dev: Build
    train: Build


@pytest.fixture(scope="session")
def buildah() -> Buildah:
    problem = check_tools()
    if problem:
        pytest.fail(problem, pytrace=False)
    return Buildah()


@pytest.fixture(scope="session")
def standins(buildah: Buildah) -> dict[str, str]:
    """The stand-in base images by layout name (built on first use, then taken from .cache)."""
    return ensure_standins(buildah)


@pytest.fixture(scope="session")
def standin(standins: dict[str, str]) -> str:
    """The stand-in of the default answers' base image layout."""
    return standins[DEFAULT_LAYOUT]


def run_in_image(
    buildah: Buildah, image: str, command: str, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a shell command in a throw-away container of `image` (as its own user by default)."""
    with buildah.container(image) as name:
        args = ["run", "--isolation", "chroot", *buildah.network_args(name)]
        args += ["--user", user] if user else []
        return buildah(*args, name, "--", "/bin/sh", "-c", command, check=False, timeout=600)


@pytest.fixture(scope="session")
def base_torch(buildah: Buildah, images: Images) -> str:
    """torch's version in the case's base image: what every image built on it must still have."""
    probe = "python3 -c 'import torch; print(torch.__version__)'"
    result = run_in_image(buildah, images.base, probe)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# The stand-ins' Python (Debian bookworm's). Projects declare their image's Python (3.12 for
# current images) in requires-python; on a stand-in, that line is the one thing changed.
STANDIN_PYTHON = "3.11"


def copy_for_standin(rendered: Path, path: Path) -> Path:
    """A rendered project copied for a stand-in build: requires-python lowered to the stand-in's
    Python, so that `pip install .` there installs it as it does on the real image, and the
    template's locks for that Python in requirements/lock/ (a project on a Python 3.11 image
    gets these very files), since a lock resolved for 3.12 may hold releases 3.11 cannot run;
    stack.env names that Python too, so the project's `lock.py` resolves and checks for it."""
    shutil.copytree(rendered, path)
    answers = yaml.safe_load((path / ".copier-answers.yml").read_text())
    shipped = REPO_ROOT / "data" / "locks" / f"{answers['task_type']}-py{STANDIN_PYTHON}"
    jupyter = shipped.with_name(shipped.name + "-jupyter")
    shutil.copyfile(shipped / "runtime.txt", path / "requirements" / "lock" / "runtime.txt")
    dev = (jupyter if answers["use_jupyter"] else shipped) / "dev.txt"
    shutil.copyfile(dev, path / "requirements" / "lock" / "dev.txt")
    stack_env = path / ".devcontainer" / "stack.env"
    text, count = re.subn(
        r"^PYTHON_VERSION=.*$", f"PYTHON_VERSION={STANDIN_PYTHON}", stack_env.read_text(),
        flags=re.MULTILINE,
    )  # fmt: skip
    assert count == 1, "stack.env names PYTHON_VERSION"
    stack_env.write_text(text)
    pyproject = path / "pyproject.toml"
    text, count = re.subn(
        r'^requires-python = ">=[0-9.]+"$',
        f'requires-python = ">={STANDIN_PYTHON}"',
        pyproject.read_text(),
        flags=re.MULTILINE,
    )
    assert count == 1, "pyproject.toml names requires-python"
    pyproject.write_text(text)
    return path


@pytest.fixture(scope="session", params=CASES, ids=[f"{layout}-{task}" for layout, task in CASES])
def project(
    request: pytest.FixtureRequest,
    render_cache: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Project:
    """The case's project as a user has it: a git repository with data, checkpoints and
    secrets lying in it, owned by the host user."""
    layout, task_type = request.param
    rendered = render_cache({"task_type": task_type})
    path = tmp_path_factory.mktemp(f"container-{layout}-{task_type}") / "project"
    copy_for_standin(rendered, path)
    package = yaml.safe_load((path / ".copier-answers.yml").read_text())["package_name"]
    for relative in PRIVATE_FILES:
        file = path / relative.format(package=package)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"{SECRET} {relative}\n")
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(["chown", "-R", f"{HOST_UID}:{HOST_GID}", str(path)], check=True)
    return Project(task_type, path, package, LAYOUTS[layout])


@pytest.fixture(scope="session")
def images(buildah: Buildah, standins: dict[str, str], project: Project) -> Images:
    """The project's dev and train stages, built on its layout's stand-in base."""
    base = standins[project.layout.name]
    tag = f"localhost/container-test-{project.case}"
    dev = build(buildah, project.path, "dev", f"{tag}:dev", base)
    train = build(buildah, project.path, "train", f"{tag}:train", base)
    return Images(project, base, dev, train)


@pytest.fixture(scope="session")
def dev_container(
    buildah: Buildah, images: Images, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[devcontainer.DevContainer]:
    """The dev container as `devcontainer up` leaves it: user moved to the host UID, workspace
    and volumes mounted, postCreateCommand (and any other creation command) run."""
    scratch = tmp_path_factory.mktemp(f"devcontainer-{images.project.case}")
    with devcontainer.start(
        buildah, images.dev.image, images.project.path, scratch, uid=HOST_UID, gid=HOST_GID
    ) as container:
        yield container


@pytest.fixture(scope="session")
def train_container(buildah: Buildah, images: Images) -> Iterator[str]:
    """A working container of the train image, as a cluster would start it."""
    with buildah.container(images.train.image) as name:
        yield name
