"""Build and run the generated images with buildah, as Docker would.

No Docker engine runs here. buildah builds the generated Dockerfile as Docker would
(`--format docker`, so `SHELL` is kept; `--layers`, so steps are cached) with chroot isolation,
on the local stand-ins of the real base images (standins.py). Images live in a storage root of
this repository's own under .cache/containers, so later runs and the layer cache survive between
test sessions. Used by tests/container and benchmarks/image_build.py.

buildah here is Debian 12's 1.28, which shapes one thing in the Dockerfile's apt steps: it never
releases a lock taken by a cache mount that another cache mount follows, and `apt-get update`
deletes buildah's lock file in the lists folder. So in every `RUN --mount=type=cache` with two
apt mounts, the locked one (`sharing=locked`, /var/cache/apt) comes last and the lists one stays
unlocked; `test_apt_cache_mounts_keep_the_order_buildah_1_28_needs` holds the Dockerfile to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "containers"

# "[2/3] STEP 4/11: RUN ..." (multi-stage) or "STEP 4/11: RUN ..."
STEP_LINE = re.compile(
    r"^(?:\[(?P<stage>\d+)/\d+\] )?STEP (?P<number>\d+)/\d+: (?P<instruction>.*)$"
)


class BuildahError(RuntimeError):
    """A buildah command failed; the message holds the command and the end of its output."""


def storage_driver() -> str:
    """overlay where the kernel has it (much faster and smaller than vfs), else vfs.

    BUILDAH_STORAGE_DRIVER overrides. vfs copies the whole file system for every layer, which
    for a 1.2 GB base and some thirty steps means tens of GB.
    """
    if os.environ.get("BUILDAH_STORAGE_DRIVER"):
        return os.environ["BUILDAH_STORAGE_DRIVER"]
    filesystems = Path("/proc/filesystems")
    has_overlay = filesystems.is_file() and "\toverlay\n" in filesystems.read_text()
    return "overlay" if has_overlay else "vfs"


@dataclass(frozen=True)
class Buildah:
    """The buildah command line with this project's own storage (never the machine's default)."""

    driver: str = field(default_factory=storage_driver)
    # One storage per driver: containers/storage refuses a root that another driver made.
    root: Path | None = None
    # buildah keeps RUN --mount=type=cache folders (pip and apt downloads) under TMPDIR: a
    # folder of our own keeps them apart from other builds, and a fresh one makes a cold build.
    tmpdir: Path = CACHE_DIR / "tmp"

    def __post_init__(self) -> None:
        if self.root is None:
            object.__setattr__(self, "root", CACHE_DIR / f"storage-{self.driver}")

    @property
    def runroot(self) -> Path:
        # Run-time state (locks, mount bookkeeping) must not outlive a reboot: keep it in /tmp.
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"buildah-run-{digest}"

    def command(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            self.driver,
            *args,
        ]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 1800, merge_output: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run buildah; with merge_output, stderr goes into stdout in the order it came."""
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            self.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
            text=True,
            timeout=timeout,
            env={**os.environ, "BUILDAH_ISOLATION": "chroot", "TMPDIR": str(self.tmpdir)},
        )
        if check and result.returncode != 0:
            raise BuildahError(
                f"buildah {' '.join(args)[:300]} exited {result.returncode}:\n"
                f"{(result.stdout + (result.stderr or ''))[-6000:]}"
            )
        return result

    def image_exists(self, name: str) -> bool:
        return self("inspect", "--type", "image", name, check=False).returncode == 0

    def layer_sizes(self, image: str) -> list[int]:
        """Uncompressed sizes of the image's layers, base layers first."""
        info = json.loads(self("inspect", "--type", "image", image).stdout)
        return [layer["size"] for layer in json.loads(info["Manifest"])["layers"]]

    def image_config(self, image: str) -> dict:
        info = json.loads(self("inspect", "--type", "image", image).stdout)
        return info["Docker"]["config"] if info.get("Docker") else info["OCIv1"]["config"]

    @contextlib.contextmanager
    def container(self, image: str) -> Iterator[str]:
        """A working container from `image`, removed afterwards."""
        name = self("from", "--pull=never", image).stdout.strip().splitlines()[-1]
        try:
            yield name
        finally:
            self("rm", name, check=False)

    def mount(self, container: str) -> Path:
        return Path(self("mount", container).stdout.strip())

    def network_args(self, container: str, hostname: str = "container") -> list[str]:
        """`buildah run` arguments that make the container's hostname resolve, as Docker does.

        Under chroot isolation buildah writes an /etc/hosts without the hostname it sets, and
        `torchrun --standalone` then cannot reach its own rendezvous store. Docker lists the
        hostname with the container's address; loopback does the same job here.
        """
        hosts = f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        (self.mount(container) / "etc" / "hosts").write_text(hosts)
        return ["--hostname", hostname, "--no-hosts"]


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """Serialise builds across pytest-xdist workers: two builds at once only share the CPUs."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# -------------------------------------------------------------------------------------------
# Tools
# -------------------------------------------------------------------------------------------


def check_tools() -> str | None:
    """None when buildah and debootstrap are usable, else a sentence that says what to do."""
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not found: the container tests build the generated "
            "Dockerfile with buildah on a debootstrap base. Install them "
            "(`sudo apt-get install -y buildah debootstrap`; scripts/test.sh does it) or "
            'deselect these tests with -m "not container".'
        )
    if os.geteuid() != 0:
        return (
            "the container tests need root (debootstrap, buildah with chroot isolation); "
            'run them as root, or deselect them with -m "not container".'
        )
    return None


# -------------------------------------------------------------------------------------------
# Building the generated Dockerfile
# -------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One Dockerfile instruction as buildah ran it."""

    stage: int
    number: int
    instruction: str
    cached: bool = False

    @property
    def keyword(self) -> str:
        return self.instruction.split(maxsplit=1)[0].upper()

    @property
    def changes_files(self) -> bool:
        """RUN, COPY and ADD make layers; the other instructions only change metadata."""
        return self.keyword in {"RUN", "COPY", "ADD"}

    def short(self, width: int = 60) -> str:
        text = " ".join(self.instruction.split())
        return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class Build:
    image: str
    seconds: float
    steps: list[Step]
    output: str

    @property
    def rebuilt(self) -> list[Step]:
        """Steps that changed files and did not come from the layer cache."""
        return [step for step in self.steps if step.changes_files and not step.cached]


def parse_steps(output: str) -> list[Step]:
    """The steps of a `buildah bud --layers` log, each marked cached when buildah said so."""
    steps: list[Step] = []
    for line in output.splitlines():
        match = STEP_LINE.match(line)
        if match:
            steps.append(Step(int(match["stage"] or 1), int(match["number"]), match["instruction"]))
        elif line.startswith("--> Using cache") and steps:
            steps[-1].cached = True
    return [step for step in steps if step.keyword != "FROM"]


def build(
    buildah: Buildah,
    context: Path,
    target: str,
    tag: str,
    base_image: str,
    *,
    no_cache: bool = False,
    extra_args: Sequence[str] = (),
) -> Build:
    """`docker build -f .devcontainer/Dockerfile --target TARGET` of the project in `context`."""
    args = [
        "bud",
        "--isolation", "chroot",
        "--pull=never",
        "--format", "docker",
        "--layers",
        "-f", str(context / ".devcontainer" / "Dockerfile"),
        "--target", target,
        "--build-arg", f"BASE_IMAGE={base_image}",
        "-t", tag,
        *(["--no-cache"] if no_cache else []),
        *extra_args,
        str(context),
    ]  # fmt: skip
    with file_lock("build"):
        start = time.perf_counter()
        result = buildah(*args, merge_output=True)
        seconds = time.perf_counter() - start
    return Build(tag, seconds, parse_steps(result.stdout), result.stdout)
