"""Build and run the generated images with buildah, on a local stand-in for the PyTorch image.

No Docker engine runs here, and the real base images (several GB, on Docker Hub or NGC) cannot be
pulled. buildah builds the generated Dockerfile as Docker would (`--format docker`, so `SHELL` is
kept; `--layers`, so steps are cached) with chroot isolation, on a base that has the PyTorch
image's shape where the Dockerfile depends on it:

- a Debian bookworm root file system (debootstrap, minbase) with working apt sources;
- `python` and `pip` at /opt/conda/bin, first on PATH, with torch and numpy installed (the local
  CPU wheel of torch 2.13.0 instead of a CUDA build);
- the host's CA bundle, named by SSL_CERT_FILE and PIP_CERT, so pip inside the build reaches the
  package index through the same TLS proxy the host uses.

One difference cannot be avoided: /opt/conda here is a venv of Debian's python3, not a base
interpreter, so a venv made from it with --system-site-packages would see Debian's site-packages,
not /opt/conda's. A .pth file in Debian's site-packages adds /opt/conda's, which gives the
project's /opt/venv exactly the view it has on the real image.

The stand-in is built once and tagged with a hash of everything in it (this recipe, the exact
wheels, the CA bundle); images live in a storage root under .cache/containers, so later runs and
the layer cache survive between test sessions. Used by tests/container and
benchmarks/image_build.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "containers"

STANDIN_REPOSITORY = "localhost/standin-pytorch"
# What the stand-in's /opt/conda holds: the torch the project's tests use, and numpy, which
# every PyTorch image ships.
STANDIN_PACKAGES = ("torch==2.13.0", "numpy")
DEBIAN_SUITE = "bookworm"
HOST_CA_BUNDLE = Path(os.environ.get("STANDIN_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
# Bump when the stand-in changes in a way the hash of its inputs (standin_key) would not notice.
RECIPE_VERSION = "1"

# Where the stand-in keeps the host's CA bundle: outside /etc/ssl/certs, so an
# update-ca-certificates run by a Dockerfile step cannot replace it.
STANDIN_CA_PATH = "/etc/ssl/host-ca-bundle.crt"
STANDIN_PATH = "/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Wheels for the stand-in's Python (Debian bookworm: CPython 3.11, glibc 2.36), whatever Python
# runs the tests: pip does not widen an explicit manylinux_2_X platform to older ones itself.
WHEEL_TARGET = [
    "--only-binary=:all:",
    "--python-version=3.11",
    "--implementation=cp",
    "--abi=cp311",
    "--abi=abi3",
    "--abi=none",
    "--platform=manylinux2014_x86_64",
    *(f"--platform=manylinux_2_{minor}_x86_64" for minor in range(17, 37)),
]

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
# The stand-in base image
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


def download_standin_wheels(destination: Path) -> list[Path]:
    """torch (the local CPU wheel) and numpy with their dependencies, for CPython 3.11."""
    destination.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--dest", str(destination), *WHEEL_TARGET]
        + list(STANDIN_PACKAGES),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip download for the stand-in failed:\n{result.stderr[-4000:]}")
    names = re.findall(r"(?:Saved|File was already downloaded) (\S+\.whl)", result.stdout)
    return sorted({destination / Path(name).name for name in names})


def host_mirrors(apt_dir: Path = Path("/etc/apt")) -> dict[str, str]:
    """The Debian archives this host's apt uses: {"main": URI, "security": URI}.

    Read from deb822 `*.sources` and one-line `*.list` files; where the host names none (not
    Debian, say), deb.debian.org. STANDIN_DEBIAN_MIRROR and STANDIN_DEBIAN_SECURITY_MIRROR
    override.
    """
    found: dict[str, str] = {}
    texts = [path.read_text() for path in sorted(apt_dir.glob("sources.list.d/*.sources"))]
    for text in texts:
        for stanza in text.split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, flags=re.MULTILINE))
            suites, uris = fields.get("Suites", "").split(), fields.get("URIs", "").split()
            if uris and "deb" in fields.get("Types", "").split():
                for suite in suites:
                    kind = "security" if suite.endswith("-security") else "main"
                    if suite.startswith(DEBIAN_SUITE):
                        found.setdefault(kind, uris[0])
    lists = [apt_dir / "sources.list", *sorted(apt_dir.glob("sources.list.d/*.list"))]
    for path in lists:
        for uri, suite in re.findall(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)",
            path.read_text() if path.is_file() else "",
            flags=re.MULTILINE,
        ):
            kind = "security" if suite.endswith("-security") else "main"
            if suite.startswith(DEBIAN_SUITE):
                found.setdefault(kind, uri)
    return {
        "main": os.environ.get("STANDIN_DEBIAN_MIRROR")
        or found.get("main", "http://deb.debian.org/debian"),
        "security": os.environ.get("STANDIN_DEBIAN_SECURITY_MIRROR")
        or found.get("security", "http://deb.debian.org/debian-security"),
    }


def apt_sources(mirrors: dict[str, str]) -> str:
    """The stand-in's apt sources (deb822): the host's archives for bookworm."""
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    suites = f"{DEBIAN_SUITE} {DEBIAN_SUITE}-updates"
    return (
        f"Types: deb\nURIs: {mirrors['main']}\n"
        f"Suites: {suites}\nComponents: main\nSigned-By: {keyring}\n\n"
        f"Types: deb\nURIs: {mirrors['security']}\n"
        f"Suites: {DEBIAN_SUITE}-security\nComponents: main\nSigned-By: {keyring}\n"
    )


def standin_key(wheels: Sequence[Path]) -> str:
    """A hash of what goes into the stand-in: the recipe, the wheels, the CA bundle."""
    parts = [
        RECIPE_VERSION,
        inspect.getsource(build_standin),
        DEBIAN_SUITE,
        apt_sources(host_mirrors()),
        STANDIN_PATH,
        STANDIN_CA_PATH,
        *(wheel.name for wheel in wheels),
        hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest(),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def ensure_standin(buildah: Buildah) -> str:
    """The stand-in image's name, built now unless an identical one is in the storage."""
    with file_lock("standin"):
        wheels = download_standin_wheels(CACHE_DIR / "standin-wheels")
        image = f"{STANDIN_REPOSITORY}:{standin_key(wheels)}"
        if not buildah.image_exists(image):
            build_standin(buildah, image, wheels)
            remove_stale_standins(buildah, keep=image)
        return image


def build_standin(buildah: Buildah, image: str, wheels: Sequence[Path]) -> None:
    """debootstrap into an empty container, add /opt/conda and the CA bundle, commit."""
    if not HOST_CA_BUNDLE.is_file():
        raise RuntimeError(f"no CA bundle at {HOST_CA_BUNDLE}; set STANDIN_CA_BUNDLE")
    mirrors = host_mirrors()
    with buildah.container("scratch") as container:
        root = buildah.mount(container)
        debootstrap = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv",
                DEBIAN_SUITE,
                str(root),
                mirrors["main"],
            ],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if debootstrap.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{debootstrap.stdout[-4000:]}")
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        (root / "etc/apt/sources.list.d/debian.sources").write_text(apt_sources(mirrors))
        shutil.copyfile(HOST_CA_BUNDLE, root / STANDIN_CA_PATH.lstrip("/"))
        wheel_dir = root / "tmp/standin-wheels"
        wheel_dir.mkdir(parents=True)
        for wheel in wheels:
            shutil.copy(wheel, wheel_dir)
        script = (
            "set -e\n"
            "python3 -m venv /opt/conda\n"
            "/opt/conda/bin/pip install --quiet --no-cache-dir --no-index"
            f" --find-links /tmp/standin-wheels {' '.join(STANDIN_PACKAGES)}\n"
            # Nested venvs with --system-site-packages see /opt/conda's packages (module docstring).
            "/opt/conda/bin/python -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))'"
            " > /usr/lib/python3/dist-packages/opt-conda.pth\n"
            "rm -rf /tmp/standin-wheels /var/cache/apt/archives/*.deb /var/lib/apt/lists/*\n"
        )
        buildah("run", "--isolation", "chroot", container, "--", "/bin/sh", "-c", script)
        buildah(
            "config",
            "--env", f"PATH={STANDIN_PATH}",
            "--env", "LANG=C.UTF-8",
            "--env", f"SSL_CERT_FILE={STANDIN_CA_PATH}",
            "--env", f"PIP_CERT={STANDIN_CA_PATH}",
            "--cmd", "/bin/bash",
            "--label", "org.opencontainers.image.description=Local stand-in for pytorch/pytorch",
            container,
        )  # fmt: skip
        buildah("commit", "--quiet", "--format", "docker", container, image)


def remove_stale_standins(buildah: Buildah, keep: str) -> None:
    """A new stand-in makes every other image in this storage (older stand-ins, images and
    cached layers built on them) useless: remove them all, so the cache does not grow."""
    keep_id = buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", keep)
    images = buildah("images", "--all", "--quiet", "--no-trunc").stdout.split()
    stale = [image for image in images if image.removeprefix("sha256:") != keep_id.stdout.strip()]
    if stale:
        buildah("rmi", "--force", *stale, check=False)


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
