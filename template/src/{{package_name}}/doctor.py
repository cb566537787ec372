"""Environment check: run it first inside the dev container (or anywhere the project is opened).

    python -m <package>.doctor                 # human-readable report
    python -m <package>.doctor --json          # one JSON object on stdout, nothing else
    python -m <package>.doctor --no-nccl       # skip the one-rank NCCL all-reduce
    python -m <package>.doctor --num-workers 4 --workspace /workspaces/project

It compares what is installed (torch, CUDA, cuDNN, NCCL, the GPUs) with the stack this project was
generated for (`stack.py`) and looks for the problems that otherwise surface late and far from
their cause: a GPU architecture missing from torch's build ("no kernel image is available"), a
small /dev/shm ("Bus error" in DataLoader workers), a workspace the container user cannot write,
and a `pip install` that replaced the image's torch.

Exit status 1 only when a check FAILs; warnings exit 0. CPU mode (a CPU build of torch, or no GPU
visible) is a supported way to open the project and is not a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from . import stack

OK, WARN, FAIL, INFO, SKIP = "OK", "WARN", "FAIL", "INFO", "SKIP"

GIB = 1024**3
MIB = 1024**2
# A DataLoader worker keeps its prefetched batches in shared memory until the main process takes
# them. A rule of thumb, not a measurement: 512 MiB per worker, and never less than 1 GiB.
SHM_PER_WORKER = 512 * MIB
SHM_FLOOR = 1 * GIB

NO_KERNEL_IMAGE = "CUDA error: no kernel image is available for execution on the device"


@dataclass
class Check:
    """The outcome of one check: `status` is one of OK, WARN, FAIL, INFO, SKIP."""

    name: str
    status: str
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, str]:
        data = {"name": self.name, "status": self.status, "detail": self.detail}
        if self.fix:
            data["fix"] = self.fix
        return data


# ---------------------------------------------------------------------------------------------
# Pure helpers (no torch, no file system): unit-tested directly.
# ---------------------------------------------------------------------------------------------


def generation_for_capability(major: int, minor: int) -> str | None:
    """The template's generation answer for a compute capability, or None if unknown.

    Exact: a capability the template's table does not list (a future 13.0, say) belongs to
    no known generation. The host preflight and the post-copy hook read the same table.
    """
    capability = f"{major}.{minor}"
    for generation, capabilities in stack.GENERATIONS.items():
        if capability in capabilities:
            return generation
    return None


def range_fix(generation: str | None) -> str | None:
    """The answer that brings a generation outside the project's GPU range into it."""
    order = list(stack.GENERATIONS)
    if generation not in order:
        return None
    if order.index(generation) < order.index(stack.GPU_GENERATION):
        return f"gpu_generation={generation}"
    if order.index(generation) > order.index(stack.NEWEST_GPU_GENERATION):
        return f"newest_gpu_generation={generation}"
    return None


def parse_arch(arch: str) -> tuple[str, int, int, str] | None:
    """Split an entry of `torch.cuda.get_arch_list()`: "sm_86" -> ("sm", 8, 6, "").

    The last digit is the minor version ("sm_120" is 12.0); a suffix "a" (sm_90a) marks code for
    exactly that chip, "f" (sm_100f) code for the family of that major.
    """
    match = re.fullmatch(r"(sm|compute)_(\d+)(\d)([af]?)", arch.strip())
    if not match:
        return None
    kind, major, minor, suffix = match.groups()
    return kind, int(major), int(minor), suffix


def matching_arch(capability: tuple[int, int], arch_list: list[str]) -> str | None:
    """The entry of `arch_list` whose code runs on a device of `capability`, or None.

    SASS (sm_XY) runs on devices of the same major and an equal or higher minor; PTX
    (compute_XY) is compiled by the driver for any device at least that new. SASS is preferred
    because PTX costs a JIT compilation at start-up.
    """
    device = tuple(capability)
    sass, ptx = [], []
    for entry in arch_list:
        parsed = parse_arch(entry)
        if parsed is None:
            continue
        kind, major, minor, suffix = parsed
        if suffix == "a":
            runs = (major, minor) == device
        elif kind == "sm":
            runs = major == device[0] and minor <= device[1]
        else:
            runs = (major, minor) <= device
        if runs:
            (sass if kind == "sm" else ptx).append(((major, minor), entry))
    # The newest code that runs is the one the CUDA runtime picks.
    if sass:
        return max(sass)[1]
    if ptx:
        return f"{max(ptx)[1]} (PTX, compiled by the driver at start-up)"
    return None


def image_arch_list() -> list[str]:
    """The image's arch list (stack.IMAGE_ARCH_LIST, "8.0;12.0+PTX") as torch reports one:
    ["sm_80", "sm_120", "compute_120"]."""
    result = []
    for entry in stack.IMAGE_ARCH_LIST.split(";"):
        digits = entry.removesuffix("+PTX").replace(".", "")
        result.append(f"sm_{digits}")
        if entry.endswith("+PTX"):
            result.append(f"compute_{digits}")
    return result


def shm_required_bytes(num_workers: int) -> int:
    """The /dev/shm size below which `num_workers` DataLoader workers risk a "Bus error"."""
    return max(SHM_FLOOR, SHM_PER_WORKER * num_workers)


def format_bytes(size: int) -> str:
    """1073741824 -> "1.0 GiB"; sizes under 1 GiB in MiB."""
    if size >= GIB:
        return f"{size / GIB:.1f} GiB"
    return f"{size / MIB:.0f} MiB"


def version_matches(installed: str, expected: str) -> bool:
    """Whether torch `installed` satisfies `==expected`, as pip reads it.

    Without a local label ("2.9.0") the installed local label ("+cu128") is ignored; with one
    ("2.9.0a0+abc", NGC) it must match up to NGC's own suffix (".nv25.10"); "2.9.*" matches any
    2.9 release.
    """
    if expected.endswith(".*"):
        return installed.split("+")[0].startswith(expected[:-1])
    if "+" in expected:
        # NGC builds append the release to the local label: 2.14.0a0+b2c75dd062.nv26.09.
        return installed == expected or installed.startswith(expected + ".")
    return installed.split("+")[0] == expected


def parse_torch_pin(text: str) -> str | None:
    """The version in a `torch==X` line of a pip constraints/requirements text, or None."""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"torch\s*===?\s*([^\s;,]+)(\s*;.*)?", line, flags=re.IGNORECASE)
        if match:
            return match.group(1)
    return None


def format_cudnn_version(version: int | None) -> str | None:
    """cuDNN's integer version as text: 90100 -> "9.1.0" (cuDNN 9), 8902 -> "8.9.2" (cuDNN 8)."""
    if not version:
        return None
    if version >= 90000:
        return f"{version // 10000}.{version % 10000 // 100}.{version % 100}"
    return f"{version // 1000}.{version % 1000 // 100}.{version % 100}"


def major_minor(version: str | None) -> str | None:
    """The major.minor part of a version: 12.8.1 -> 12.8."""
    if not version:
        return None
    return ".".join(version.split(".")[:2])


# ---------------------------------------------------------------------------------------------
# Checks: one function each, each returning a Check (or a list for one per GPU).
# ---------------------------------------------------------------------------------------------


def import_torch() -> ModuleType | None:
    """torch, imported here rather than at module level so `--help` answers at once."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def check_python() -> Check:
    """The interpreter, next to the image's: informational, since a CPU venv on a laptop may
    run another Python than the image on purpose."""
    running = platform.python_version()
    detail = f"{running} at {sys.executable}"
    if major_minor(running) == stack.PYTHON_VERSION:
        return Check("python", OK, f"{detail}: the image's Python")
    return Check("python", INFO, f"{detail} (the image has Python {stack.PYTHON_VERSION})")


def check_torch(torch: ModuleType | None) -> Check:
    """Report torch and compare it with the stack this project was generated for."""
    expected = f"torch {stack.TORCH_VERSION} with CUDA {stack.CUDA_VERSION}"
    if torch is None:
        return Check(
            "torch",
            FAIL,
            "torch is not installed in this Python environment",
            f"Open the project in its dev container (its image provides {expected}), "
            "or install torch into this environment.",
        )
    installed = torch.__version__
    built_cuda = torch.version.cuda
    if built_cuda is None:
        return Check("torch", INFO, f"{installed}: CPU build of torch (the image has {expected})")
    problems = []
    if not version_matches(installed, stack.TORCH_VERSION):
        problems.append(f"torch {installed} is not the image's {stack.TORCH_VERSION}")
    if major_minor(built_cuda) != major_minor(stack.CUDA_VERSION):
        problems.append(f"built for CUDA {built_cuda}, the image has CUDA {stack.CUDA_VERSION}")
    if problems:
        return Check(
            "torch",
            WARN,
            "; ".join(problems) + ": a pip install probably replaced the image's torch",
            "Rebuild the container (Dev Containers: Rebuild Container) to get the image's torch "
            "back, and install packages with the image's pip constraints (PIP_CONSTRAINT) so "
            "pip keeps torch; to move to another torch, answer torch_version with copier update.",
        )
    return Check("torch", OK, f"{installed}, CUDA {built_cuda}: the image's stack")


def cpu_mode_reason(torch: ModuleType, cuda_warnings: list[str]) -> str:
    """Why CUDA is not available, in the user's terms."""
    if torch.version.cuda is None:
        return "CPU build of torch"
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "no GPU visible: CUDA_VISIBLE_DEVICES hides every GPU"
    reason = (
        "no GPU visible to this CUDA build of torch (no NVIDIA driver, or the container was "
        "started without GPU access)"
    )
    if cuda_warnings:
        reason += f"; CUDA said: {cuda_warnings[0]}"
    return reason


def check_cuda(torch: ModuleType) -> Check:
    """GPU mode or CPU mode; CPU mode is supported, so never a failure on its own."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    if available:
        count = torch.cuda.device_count()
        return Check("cuda", OK, f"{count} GPU(s) visible")
    messages = [str(warning.message).strip() for warning in caught]
    reason = cpu_mode_reason(torch, messages)
    # torch warns, and reports no GPU, when a GPU is there but the driver is older than its CUDA.
    if any("driver" in message.lower() for message in messages):
        return Check(
            "cuda",
            WARN,
            f"CPU mode: {reason}",
            f"Update the host's NVIDIA driver to {stack.DRIVER_FLOOR} or newer "
            f"(CUDA {stack.CUDA_VERSION}; {stack.DRIVER_TOOLKIT} for the full toolkit).",
        )
    fix = None
    if torch.version.cuda is not None:
        fix = (
            "To train on a GPU, open the project on a host with an NVIDIA GPU and driver and "
            "the NVIDIA container toolkit; the dev container then starts with GPU access."
        )
    return Check("cuda", INFO, f"CPU mode: {reason}", fix)


def check_device_arch(
    index: int, name: str, capability: tuple[int, int], arch_list: list[str]
) -> Check:
    """Whether torch's build carries code for this device (else every kernel launch fails)."""
    major, minor = capability
    generation = generation_for_capability(major, minor)
    label = f"cuda:{index} {name} (sm_{major}{minor}, {generation or 'unknown generation'})"
    match = matching_arch(capability, arch_list)
    if match:
        return Check(f"gpu {index}", OK, f"{label}: torch has {match}")
    fix = range_fix(generation)
    if fix:
        advice = (
            f"copier update --trust --defaults --data {fix}, then rebuild the container: the "
            "image then carries this GPU's architecture."
        )
    elif generation is None:
        advice = (
            f"compute capability {major}.{minor} is newer than every generation this template "
            "knows: update the template (copier update --trust --defaults) once it knows it, "
            "then rebuild the container."
        )
    elif matching_arch(capability, image_arch_list()):
        advice = (
            f"the project's image carries code for this GPU ({stack.IMAGE_ARCH_LIST}), this torch "
            "does not: it is not the image's build (a pip install replaced it, or this is not "
            "the project's container). Rebuild the container (Dev Containers: Rebuild Container)."
        )
    else:
        advice = (
            f"no image the template offers has kernels for sm_{major}{minor}: Jetson GPUs need "
            "NVIDIA's Jetson (L4T) containers."
        )
    return Check(
        f"gpu {index}",
        FAIL,
        f"{label} is not in this torch build's arch list [{' '.join(arch_list)}]. torch imports "
        f'and allocates memory fine, then the first kernel fails with "{NO_KERNEL_IMAGE}". '
        f"This project was generated for {stack.FLEET_LABEL} GPUs "
        f"(image arch list {stack.IMAGE_ARCH_LIST}).",
        advice,
    )


def check_gpus(torch: ModuleType) -> list[Check]:
    """One arch check per visible device."""
    arch_list = list(torch.cuda.get_arch_list())
    return [
        check_device_arch(
            index,
            torch.cuda.get_device_name(index),
            tuple(torch.cuda.get_device_capability(index)),
            arch_list,
        )
        for index in range(torch.cuda.device_count())
    ]


def bf16_supported(torch: ModuleType) -> bool:
    """Native bfloat16: torch >= 2.3 counts emulation (slow on Volta/Turing) unless told not to."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:
        return bool(torch.cuda.is_bf16_supported())


def check_amp_dtype(torch: ModuleType) -> Check:
    """The mixed-precision dtype the project trains with, against what the GPU does natively."""
    if stack.AMP_DTYPE != "bfloat16":
        return Check("amp dtype", OK, f"{stack.AMP_DTYPE} (with a gradient scaler)")
    if bf16_supported(torch):
        return Check("amp dtype", OK, "bfloat16, supported by the GPU")
    return Check(
        "amp dtype",
        WARN,
        f"the project trains in bfloat16 ({stack.FLEET_LABEL}) but this GPU "
        "has no native bfloat16: mixed precision will be slow or fail",
        "Run on the GPU generation the project was generated for, or regenerate for this one "
        "(copier update --trust --defaults --data gpu_generation=...), which trains in float16.",
    )


def all_reduce_once(torch: ModuleType, backend: str, device: str) -> list[float]:
    """Start a one-rank process group, all-reduce a small tensor on `device`, tear it down.

    A FileStore in a temporary folder stands in for the rendezvous, so no port is needed.
    """
    dist = torch.distributed
    with tempfile.TemporaryDirectory(prefix="doctor-dist-") as tmp:
        store = dist.FileStore(str(Path(tmp) / "store"), 1)
        dist.init_process_group(
            backend, store=store, rank=0, world_size=1, timeout=timedelta(seconds=60)
        )
        try:
            tensor = torch.full((4,), 3.0, device=device)
            dist.all_reduce(tensor)
            return tensor.tolist()
        finally:
            dist.destroy_process_group()


def check_nccl(torch: ModuleType) -> Check:
    """A one-rank NCCL all-reduce on cuda:0: NCCL's set-up fails here rather than in training."""
    dist = torch.distributed
    if not dist.is_available() or not dist.is_nccl_available():
        return Check("nccl", WARN, "this torch build has no NCCL: multi-GPU training needs it")
    if dist.is_initialized():
        return Check("nccl", SKIP, "a process group already exists in this process")
    try:
        torch.cuda.set_device(0)
        result = all_reduce_once(torch, "nccl", "cuda:0")
    except Exception as error:  # noqa: BLE001 - any failure here is the finding
        return Check(
            "nccl",
            FAIL,
            f"one-rank all-reduce failed: {type(error).__name__}: {error}",
            "Rerun with NCCL_DEBUG=INFO for NCCL's own account; check /dev/shm (below) and "
            "that the container runs with --ipc=host or a large --shm-size.",
        )
    if result != [3.0] * 4:
        return Check("nccl", FAIL, f"one-rank all-reduce returned {result}, expected 3.0s")
    return Check("nccl", OK, "one-rank all-reduce on cuda:0")


def check_shm(num_workers: int, path: Path = Path("/dev/shm")) -> Check:
    """/dev/shm against what `num_workers` DataLoader workers need."""
    if not path.is_dir():
        return Check("/dev/shm", SKIP, f"{path} does not exist (not a Linux container)")
    info = os.statvfs(path)
    total = info.f_frsize * info.f_blocks
    required = shm_required_bytes(num_workers)
    detail = (
        f"{format_bytes(total)} ({format_bytes(info.f_frsize * info.f_bavail)} free); "
        f"{num_workers} DataLoader worker(s) want {format_bytes(required)}"
    )
    if total >= required:
        return Check("/dev/shm", OK, detail)
    return Check(
        "/dev/shm",
        WARN,
        f"{detail}. DataLoader workers hand batches over through /dev/shm and die with "
        '"Bus error" when it fills; Docker\'s default is 64 MB.',
        f"The dev container starts with --shm-size={stack.SHM_SIZE}: rebuild it if this is the "
        f"dev container; with docker run pass --shm-size={stack.SHM_SIZE} (or --ipc=host); or "
        "use fewer workers (--num-workers).",
    )


def check_user() -> Check:
    """Who the container runs as: root leaves root-owned files in the host's checkout."""
    if not hasattr(os, "getuid"):
        return Check("user", SKIP, "no POSIX user ids on this platform")
    uid = os.getuid()
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        name = "(no passwd entry)"
    detail = f"{name}, uid {uid}, gid {os.getgid()}"
    if uid == 0:
        return Check(
            "user",
            WARN,
            f"{detail}: running as root, files created in the workspace will be root-owned on "
            "the host",
            "Use the dev container's non-root user (remoteUser in devcontainer.json) and "
            "rebuild the container.",
        )
    return Check("user", OK, detail)


def check_workspace(workspace: Path) -> Check:
    """The workspace is writable, and new files there belong to the current user."""
    fix = (
        "Rebuild the container so updateRemoteUserUID gives the container user your host uid, "
        "or give the project folder back to your user on the host: "
        f"sudo chown -R $(id -u):$(id -g) <project folder> (mounted here as {workspace})"
    )
    if not workspace.is_dir():
        return Check("workspace", FAIL, f"{workspace} is not a directory", fix)
    try:
        with tempfile.NamedTemporaryFile(dir=workspace, prefix=".doctor-") as handle:
            owner = os.fstat(handle.fileno()).st_uid
    except OSError as error:
        return Check("workspace", FAIL, f"{workspace} is not writable: {error}", fix)
    if hasattr(os, "getuid") and owner != os.getuid():
        return Check(
            "workspace",
            WARN,
            f"{workspace} is writable, but a new file there is owned by uid {owner}, not by you "
            f"(uid {os.getuid()}): the mount maps user ids",
            fix,
        )
    return Check("workspace", OK, f"{workspace} is writable")


def check_pip_constraint(torch_version: str | None) -> Check:
    """The image pins its torch in PIP_CONSTRAINT so pip cannot replace it; is the pin still met?"""
    value = os.environ.get("PIP_CONSTRAINT", "").strip()
    if not value:
        return Check("pip constraint", INFO, "PIP_CONSTRAINT not set")
    # pip reads several files from this variable, separated by spaces.
    paths = [Path(part) for part in value.split()]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        return Check(
            "pip constraint",
            WARN,
            f"PIP_CONSTRAINT names missing file(s): {', '.join(missing)}; every pip install fails",
            "Rebuild the container, or unset PIP_CONSTRAINT.",
        )
    pins = [(path, parse_torch_pin(path.read_text(errors="replace"))) for path in paths]
    pins = [(path, pin) for path, pin in pins if pin]
    if not pins:
        return Check("pip constraint", INFO, f"{value}: no torch pin")
    path, pin = pins[0]
    if torch_version is None:
        return Check("pip constraint", WARN, f"{path} pins torch=={pin}, torch is not installed")
    if not version_matches(torch_version, pin):
        return Check(
            "pip constraint",
            WARN,
            f"{path} pins torch=={pin} but torch {torch_version} is installed: "
            "the image's torch was replaced",
            "Rebuild the container to get the image's torch back.",
        )
    return Check("pip constraint", OK, f"{path} pins torch=={pin}, installed")


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def probe(function: Callable[[], Any]) -> Any:
    """`function()`, or None when it raises: a version probe must not stop the report."""
    with contextlib.suppress(Exception):
        return function()
    return None


def collect_versions(torch: ModuleType | None, cuda_available: bool) -> dict[str, Any]:
    """What is installed, next to what the project was generated for."""
    versions: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": None,
        "cuda": None,
        "cudnn": None,
        "nccl": None,
        "arch_list": [],
    }
    if torch is not None:
        versions["torch"] = torch.__version__
        versions["cuda"] = torch.version.cuda
        versions["cudnn"] = format_cudnn_version(probe(torch.backends.cudnn.version))
        if cuda_available:
            nccl = probe(torch.cuda.nccl.version)
            versions["nccl"] = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl
            versions["arch_list"] = list(torch.cuda.get_arch_list())
    versions["stack"] = {
        "gpu_generation": stack.GPU_GENERATION,
        "newest_gpu_generation": stack.NEWEST_GPU_GENERATION,
        "python": stack.PYTHON_VERSION,
        "torch": stack.TORCH_VERSION,
        "cuda": stack.CUDA_VERSION,
        "arch_list": stack.IMAGE_ARCH_LIST,
        "driver_floor": stack.DRIVER_FLOOR,
        "driver_toolkit": stack.DRIVER_TOOLKIT,
        "amp_dtype": stack.AMP_DTYPE,
        "shm_size": stack.SHM_SIZE,
    }
    return versions


def run_checks(args: argparse.Namespace) -> tuple[list[Check], dict[str, Any], str]:
    """Every check in report order, the versions, and the mode ("cuda", "cpu" or "no-torch")."""
    torch = import_torch()
    checks = [check_python(), check_torch(torch)]
    mode = "no-torch"
    if torch is not None:
        cuda = check_cuda(torch)
        checks.append(cuda)
        mode = "cuda" if cuda.status == OK else "cpu"
        if mode == "cuda":
            checks += check_gpus(torch)
            checks.append(check_amp_dtype(torch))
            if args.no_nccl:
                checks.append(Check("nccl", SKIP, "--no-nccl"))
            else:
                checks.append(check_nccl(torch))
        else:
            checks.append(Check("gpu", SKIP, "CPU mode: arch list, AMP dtype and NCCL need a GPU"))
    checks += [
        check_shm(args.num_workers),
        check_user(),
        check_workspace(args.workspace),
        check_pip_constraint(torch.__version__ if torch is not None else None),
    ]
    return checks, collect_versions(torch, mode == "cuda"), mode


def render_text(checks: list[Check], versions: dict[str, Any]) -> str:
    """The human-readable report: versions, one line per check, a summary line."""
    expected = versions["stack"]
    lines = [
        f"{__package__} doctor",
        "  installed: "
        + ", ".join(
            f"{key} {versions[key] or '-'}" for key in ("python", "torch", "cuda", "cudnn", "nccl")
        ),
        (
            f"  generated for: {stack.FLEET_LABEL} GPUs, torch {expected['torch']}, "
            f"CUDA {expected['cuda']}, arch list {expected['arch_list']}, "
            f"AMP {expected['amp_dtype']}, shm {expected['shm_size']}"
        ),
        "",
    ]
    for check in checks:
        lines.append(f"  {check.status:<4}  {check.name:<15} {check.detail}")
        if check.fix:
            lines.append(f"  {'':<4}  {'':<15} fix: {check.fix}")
    counts = {status: sum(c.status == status for c in checks) for status in (FAIL, WARN, OK)}
    verdict = "problems found" if counts[FAIL] else "ok"
    lines += [
        "",
        f"{verdict}: {counts[FAIL]} failed, {counts[WARN]} warning(s), {counts[OK]} ok",
    ]
    return "\n".join(lines)


def non_negative_int(text: str) -> int:
    """argparse type for --num-workers."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; defaults match the project's DataLoader and the current folder."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}.doctor",
        description="Check this environment against the stack the project was generated for.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument("--no-nccl", action="store_true", help="skip the NCCL all-reduce check")
    parser.add_argument(
        "--num-workers",
        type=non_negative_int,
        default=min(8, os.cpu_count() or 1),
        help="DataLoader workers to size /dev/shm for (default: min(8, CPU count))",
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        default=Path.cwd(),
        help="folder that must be writable (default: current directory)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Route stdout, Python's and the C libraries' (NCCL_DEBUG prints there), to stderr."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def main(argv: list[str] | None = None) -> int:
    """Run every check, print the report, return 1 if any check failed."""
    args = parse_args(argv)
    # With --json, stdout carries the report alone, so that it can be piped into a parser.
    with stdout_to_stderr() if args.json else contextlib.nullcontext():
        checks, versions, mode = run_checks(args)
    ok = not any(check.status == FAIL for check in checks)
    if args.json:
        report = {
            "ok": ok,
            "mode": mode,
            "checks": [check.to_json() for check in checks],
            "versions": versions,
        }
        print(json.dumps(report, indent=2))
    else:
        print(render_text(checks, versions))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
