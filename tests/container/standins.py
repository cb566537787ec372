"""Local stand-ins for the three layouts of the real PyTorch base images.

The real bases (several GB, on Docker Hub or NGC) cannot be pulled here, and they come in three
shapes that the generated Dockerfile must all build on. Each stand-in is Debian bookworm
(debootstrap, minbase) with CPU torch 2.13.0 installed where the real image has its CUDA torch,
and with the real image's traits that the Dockerfile depends on. Bookworm is close to the real
Ubuntu bases where it matters: its python3 (3.11) is PEP 668 "externally managed", and it has
no ensurepip and no `python` command unless python3-venv and python-is-python3 are installed.

conda  -- pytorch/pytorch up to 2.9 (Ubuntu 22.04). The release Dockerfile installs Miniforge at
          /opt/conda with PYTHON_VERSION=3.11 and `ENV PATH /opt/conda/bin:$PATH`, and pip-installs
          torch into it (pytorch/pytorch Dockerfile at 01343dcd, PR #134274); 2.5.1 reports Python
          3.11.10 (rlan/notebooks#144). Conda left the Dockerfile in December 2025, during 2.10
          (PR #169873 "Use python venv instead of conda", then #170338 "Use default python env").
          Stand-in: python, pip, torchrun at /opt/conda/bin first on PATH, torch in
          /opt/conda/lib/python3.11/site-packages, no PIP_CONSTRAINT, no user at UID 1000
          (ubuntu:22.04 has none).
system -- pytorch/pytorch 2.10 and newer, the default `latest` (Ubuntu 24.04). PR #170338: the
          image's `python3` is the system Python 3.12.3 with torch installed into it (the
          shipped stage installs python3 and python3-pip, not python3-venv, and copies
          /usr/local/lib/python3.12 from the build stage); pip in a 2.12.0 image stops with
          "error: externally-managed-environment" (DIAGNijmegen/rse-grand-challenge#4765);
          between #169873 and its fix the image had no `python` at all (pytorch/pytorch#170252,
          'exec: "python": executable file not found'). ubuntu:24.04 ships the user `ubuntu` at
          UID 1000 (jupyterhub/repo2docker#1346, devcontainers/images#1056).
          Stand-in: python3 and python3-pip from apt only (no `python`, no ensurepip), torch
          installed system-wide with --break-system-packages into
          /usr/local/lib/python3.11/dist-packages, torchrun in /usr/local/bin, `ubuntu` at 1000.
ngc    -- nvcr.io/nvidia/pytorch 25.x/26.x (Ubuntu 24.04). NVIDIA's release notes: torch in the
          system Python's /usr/local/lib/python3.12/dist-packages, and "Starting from the 25.03
          release, the PyTorch container has implemented a pip constraints file at
          /etc/pip/constraint.txt" (rel-25-12); published image histories show
          `ENV PIP_CONSTRAINT=/etc/pip/constraint.txt` and `ENV PIP_BREAK_SYSTEM_PACKAGES=1`
          (26.07) and python-is-python3 and python3-venv installed (25.10); a 25.02 traceback
          runs /usr/bin/python and /usr/local/bin/torchrun. The `ubuntu` user comes with the
          ubuntu:24.04 base.
          Stand-in: system python3 with `python`, pip and ensurepip, torch system-wide, `ubuntu`
          at 1000, /etc/pip/constraint.txt pinning every package installed next to torch (as
          NGC's pins its whole stack), PIP_CONSTRAINT and PIP_BREAK_SYSTEM_PACKAGES set.

What cannot be copied: Python is 3.11, not 3.12 (the Dockerfile names no version, so this tests
that too); torch is a CPU build; and the conda stand-in's /opt/conda is a venv of Debian's
python3, not a separate interpreter, so a venv made from it sees Debian's site-packages rather
than /opt/conda's. A .pth file in Debian's site-packages adds /opt/conda's, which gives a venv
made over /opt/conda the view it has on the real image.

Every stand-in carries the host's CA bundle, named by SSL_CERT_FILE and PIP_CERT, so pip inside
a build reaches the package index through the same TLS proxy the host uses. Each is checked for
its own shape when it is built (`check` below), so a stand-in that drifts from its model fails
loudly instead of testing something else.

They share one debootstrap root and are built once, tagged with a hash of everything in them
(this recipe, the exact wheels, the CA bundle), in the storage under .cache/containers. Used by
tests/container and benchmarks/image_build.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .images import CACHE_DIR, Buildah, file_lock

# What every stand-in's Python gets: the torch the project's tests use, and numpy, which every
# PyTorch image ships.
STANDIN_PACKAGES = ("torch==2.13.0", "numpy")
DEBIAN_SUITE = "bookworm"
HOST_CA_BUNDLE = Path(os.environ.get("STANDIN_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
# Bump when a stand-in changes in a way the hash of its inputs (standin_key) would not notice.
RECIPE_VERSION = "2"
# Where the stand-ins keep the host's CA bundle: outside /etc/ssl/certs, so an
# update-ca-certificates run by a Dockerfile step cannot replace it.
STANDIN_CA_PATH = "/etc/ssl/host-ca-bundle.crt"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WHEELS = "/tmp/standin-wheels"
ROOT_REPOSITORY = "localhost/standin-bookworm"

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

# Runs before a layout's check: `fails CMD` stops the check when CMD succeeds (bash's
# `set -e` ignores a command negated with `!`).
CHECK_PRELUDE = (
    'set -ex -o pipefail\nfails() { if "$@"; then echo "unexpected: $*"; exit 1; fi; }\n'
)
_INSTALL_TORCH = f"--no-cache-dir --no-index --find-links {WHEELS} {' '.join(STANDIN_PACKAGES)}"
# ubuntu:24.04's own user, which NGC and pytorch/pytorch 2.10+ inherit.
_UBUNTU_USER = "useradd --uid 1000 --user-group --create-home --shell /bin/bash ubuntu\n"


@dataclass(frozen=True)
class Layout:
    """One real base image layout, as its stand-in reproduces it (module docstring)."""

    name: str
    models: str
    apt_packages: tuple[str, ...]
    install: str
    path: str
    env: tuple[tuple[str, str], ...]
    # Where torch's files are: every image built on the stand-in must still load torch there.
    torch_prefix: str
    # A shell script that fails unless the stand-in has the traits its model has.
    check: str

    @property
    def repository(self) -> str:
        return f"localhost/standin-{self.name}"


CONDA = Layout(
    name="conda",
    models="pytorch/pytorch up to 2.9: conda at /opt/conda, Python 3.11, Ubuntu 22.04",
    apt_packages=("python3-venv",),
    install=(
        "python3 -m venv /opt/conda\n"
        f"/opt/conda/bin/pip install --quiet {_INSTALL_TORCH}\n"
        "/opt/conda/bin/python -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))'"
        " > /usr/lib/python3/dist-packages/opt-conda.pth\n"
    ),
    path=f"/opt/conda/bin:{SYSTEM_PATH}",
    env=(),
    torch_prefix="/opt/conda/lib/",
    check=(
        'test "$(command -v python)" = /opt/conda/bin/python\n'
        "test -x /opt/conda/bin/torchrun\n"
        "fails getent passwd 1000\n"
    ),
)
SYSTEM = Layout(
    name="system",
    models=(
        "pytorch/pytorch 2.10+: system Python under PEP 668, no `python`, no ensurepip, "
        "Ubuntu 24.04"
    ),
    apt_packages=("python3-pip",),
    install=f"pip3 install --quiet --break-system-packages {_INSTALL_TORCH}\n" + _UBUNTU_USER,
    path=SYSTEM_PATH,
    env=(),
    torch_prefix="/usr/local/lib/python3",
    check=(
        "fails command -v python\n"
        "fails python3 -c 'import ensurepip'\n"
        "fails python3 -m venv /tmp/venv-check\n"
        "rm -rf /tmp/venv-check\n"
        "(pip3 install --no-index tomli 2>&1 || true) | grep externally-managed-environment\n"
        "test -x /usr/local/bin/torchrun\n"
        'test "$(id -un 1000)" = ubuntu\n'
    ),
)
NGC = Layout(
    name="ngc",
    models=(
        "nvcr.io/nvidia/pytorch 25.x/26.x: system Python, PIP_CONSTRAINT=/etc/pip/constraint.txt, "
        "user ubuntu at 1000"
    ),
    apt_packages=("python3-pip", "python3-venv", "python-is-python3"),
    install=(
        f"pip3 install --quiet --break-system-packages {_INSTALL_TORCH}\n"
        + _UBUNTU_USER
        + "mkdir -p /etc/pip\n"
        "python3 -m pip freeze --path \"$(python3 -c 'import torch, pathlib;"
        " print(pathlib.Path(torch.__file__).parents[1])')\" > /etc/pip/constraint.txt\n"
    ),
    path=SYSTEM_PATH,
    env=(("PIP_CONSTRAINT", "/etc/pip/constraint.txt"), ("PIP_BREAK_SYSTEM_PACKAGES", "1")),
    torch_prefix="/usr/local/lib/python3",
    check=(
        "grep -q '^torch==' /etc/pip/constraint.txt\n"
        "grep -q '^numpy==' /etc/pip/constraint.txt\n"
        'test "$(id -un 1000)" = ubuntu\n'
        'test "${PIP_CONSTRAINT}" = /etc/pip/constraint.txt\n'
        "command -v python\n"
        "python3 -c 'import ensurepip'\n"
        "test -x /usr/local/bin/torchrun\n"
    ),
)
LAYOUTS = {layout.name: layout for layout in (CONDA, SYSTEM, NGC)}


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
    """The stand-ins' apt sources (deb822): the host's archives for bookworm."""
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    suites = f"{DEBIAN_SUITE} {DEBIAN_SUITE}-updates"
    return (
        f"Types: deb\nURIs: {mirrors['main']}\n"
        f"Suites: {suites}\nComponents: main\nSigned-By: {keyring}\n\n"
        f"Types: deb\nURIs: {mirrors['security']}\n"
        f"Suites: {DEBIAN_SUITE}-security\nComponents: main\nSigned-By: {keyring}\n"
    )


# This module's text as imported: every process of one test session (xdist workers included)
# computes the same keys even if the file is edited while the session runs, since a key from a
# newer text would build new stand-ins and remove the images the others still use.
RECIPE_TEXT = Path(__file__).read_text()


def root_key() -> str:
    """A hash of what goes into the shared debootstrap root."""
    parts = [
        RECIPE_VERSION,
        RECIPE_TEXT,
        DEBIAN_SUITE,
        apt_sources(host_mirrors()),
        STANDIN_CA_PATH,
        hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest(),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def standin_key(layout: Layout, wheels: Sequence[Path]) -> str:
    """A hash of what goes into one stand-in: its root, its recipe, the wheels."""
    parts = [root_key(), layout.name, *(wheel.name for wheel in wheels)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def ensure_standins(buildah: Buildah) -> dict[str, str]:
    """Every layout's stand-in image by layout name, each built now unless an identical one is
    in the storage.

    All at once, so that images of an older recipe are removed before any test builds on the
    new ones (never while a test still uses them).
    """
    with file_lock("standin"):
        wheels = download_standin_wheels(CACHE_DIR / "standin-wheels")
        images = {
            name: f"{layout.repository}:{standin_key(layout, wheels)}"
            for name, layout in LAYOUTS.items()
        }
        missing = [name for name, image in images.items() if not buildah.image_exists(image)]
        if missing:
            root = f"{ROOT_REPOSITORY}:{root_key()}"
            if not buildah.image_exists(root):
                build_root(buildah, root)
            for name in missing:
                build_standin(buildah, LAYOUTS[name], root, images[name], wheels)
            remove_stale_images(buildah, keep={root, *images.values()})
        return images


def build_root(buildah: Buildah, image: str) -> None:
    """debootstrap bookworm with python3, the host's apt archives and its CA bundle; commit."""
    if not HOST_CA_BUNDLE.is_file():
        raise RuntimeError(f"no CA bundle at {HOST_CA_BUNDLE}; set STANDIN_CA_BUNDLE")
    mirrors = host_mirrors()
    with buildah.container("scratch") as container:
        root = buildah.mount(container)
        debootstrap = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3",
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
        (root / STANDIN_CA_PATH.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, root / STANDIN_CA_PATH.lstrip("/"))
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        buildah("commit", "--quiet", "--format", "docker", container, image)


def build_standin(
    buildah: Buildah, layout: Layout, root: str, image: str, wheels: Sequence[Path]
) -> None:
    """The layout's packages and torch on the shared root, checked for its shape; commit."""
    with buildah.container(root) as container:
        wheel_dir = buildah.mount(container) / WHEELS.lstrip("/")
        wheel_dir.mkdir(parents=True)
        for wheel in wheels:
            shutil.copy(wheel, wheel_dir)
        script = (
            "set -e\n"
            "export DEBIAN_FRONTEND=noninteractive\n"
            "apt-get update -qq\n"
            "apt-get install -y -qq --no-install-recommends "
            f"{' '.join(layout.apt_packages)} >/dev/null\n"
            f"{layout.install}"
            f"rm -rf {WHEELS} /var/cache/apt/archives/*.deb /var/lib/apt/lists/*\n"
        )
        env = ["--env", f"SSL_CERT_FILE={STANDIN_CA_PATH}", "--env", f"PIP_CERT={STANDIN_CA_PATH}"]
        buildah(
            "run", "--isolation", "chroot", *env, "--env", f"PATH={layout.path}",
            container, "--", "/bin/sh", "-c", script,
        )  # fmt: skip
        env_args = [
            *(arg for key, value in layout.env for arg in ("--env", f"{key}={value}")),
        ]
        buildah(
            "config",
            "--env", f"PATH={layout.path}",
            "--env", "LANG=C.UTF-8",
            "--env", f"SSL_CERT_FILE={STANDIN_CA_PATH}",
            "--env", f"PIP_CERT={STANDIN_CA_PATH}",
            *env_args,
            "--cmd", "/bin/bash",
            "--label", f"org.opencontainers.image.description=Local stand-in for {layout.models}",
            container,
        )  # fmt: skip
        checked = buildah(
            "run", "--isolation", "chroot", container, "--",
            "/bin/bash", "-c", CHECK_PRELUDE + layout.check,
            check=False, merge_output=True,
        )  # fmt: skip
        if checked.returncode != 0:
            raise RuntimeError(
                f"the {layout.name} stand-in does not have its model's shape:\n"
                f"{checked.stdout[-3000:]}"
            )
        buildah("commit", "--quiet", "--format", "docker", container, image)


def remove_stale_images(buildah: Buildah, keep: set[str]) -> None:
    """A new stand-in makes the images of an older recipe (older stand-ins, images and cached
    layers built on them) useless: remove every image but `keep`, so the cache does not grow."""
    keep_ids = {
        buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", name).stdout.strip()
        for name in keep
    }
    images = buildah("images", "--all", "--quiet", "--no-trunc").stdout.split()
    stale = [image for image in images if image.removeprefix("sha256:") not in keep_ids]
    if stale:
        buildah("rmi", "--force", *stale, check=False)
