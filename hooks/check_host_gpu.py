"""Say whether this machine's GPUs can run the project's image, right after it is generated.

Run by copier after the first copy (a `_tasks` entry):

    python hooks/check_host_gpu.py --destination PROJECT

It reads PROJECT/.devcontainer/stack.env, the file the host preflight checks before every
build: the capability -> generation table, the project's GPU range (GPU_GENERATION to
NEWEST_GPU_GENERATION) and the architectures torch in the image is built for. For each GPU
`nvidia-smi` reports, it says whether the image has kernels for it: native code (SASS) of the
same major and an equal or lower minor, or PTX the driver compiles; when not, the exact
`copier recopy` that brings the GPU into the range. A GPU runs the project only when the
image's arch list covers it, whatever its generation is called.

It only warns (exit 0): a project is often generated on a laptop for a cluster's GPUs. No GPU,
no `nvidia-smi`, a failing one, or no stack.env: nothing is printed. No network is needed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

QUERY = ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"]
STACK_ENV = Path(".devcontainer") / "stack.env"
PREFIX = "check_host_gpu:"


def detected_gpus() -> list[tuple[str, str]]:
    """(name, compute capability) per GPU, or [] when none can be queried."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        result = subprocess.run(QUERY, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if result.returncode != 0:
        return []
    gpus = []
    for line in result.stdout.splitlines():
        name, _, capability = line.rpartition(",")
        if name.strip() and capability_key(capability.strip()):
            gpus.append((name.strip(), capability.strip()))
    return gpus


def parse_env(text: str) -> dict[str, str]:
    """KEY=VALUE lines of stack.env; comments and anything else are skipped."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier() and not line.startswith("#"):
            values[key] = value.strip().strip('"')
    return values


def capability_key(text: str) -> tuple[int, int] | None:
    """'8.6' -> (8, 6); None for anything else ('[N/A]', '')."""
    major, dot, minor = text.partition(".")
    if not (major.isdigit() and (not dot or minor.isdigit())):
        return None
    return int(major), int(minor or 0)


def generation_table(text: str) -> dict[str, list[str]]:
    """GENERATION_TABLE ('volta:7.0,7.2 turing:7.5 ...') as {generation: capabilities},
    oldest generation first."""
    table = {}
    for word in text.split():
        generation, _, capabilities = word.partition(":")
        table[generation] = capabilities.split(",")
    return table


def generation_of(capability: str, table: dict[str, list[str]]) -> str | None:
    """The generation that lists this capability; None when no known generation does."""
    return next((gen for gen, caps in table.items() if capability in caps), None)


def arch_match(capability: str, arch_list: str) -> tuple[str | None, str | None]:
    """("sass", entry) when the image has native code for this GPU, ("ptx", entry) when only
    PTX the driver can compile, (None, None) when it has no kernels for it at all.

    Native code runs on the same major with an equal or higher minor; "a" (architecture-
    specific) code only on exactly that capability; PTX on any GPU at least that new.
    """
    gpu = capability_key(capability)
    ptx = None
    for entry in arch_list.replace(" ", ";").split(";"):
        if not entry:
            continue
        is_ptx = entry.upper().endswith("+PTX")
        base = entry[: -len("+PTX")] if is_ptx else entry
        specific = base.endswith("a")
        value = capability_key(base.rstrip("af"))
        if gpu is None or value is None:
            continue
        if value[0] == gpu[0] and value[1] <= gpu[1] and (not specific or value == gpu):
            return "sass", base
        if is_ptx and value <= gpu and ptx is None:
            ptx = base
    return ("ptx", ptx) if ptx else (None, None)


def verdict(name: str, capability: str, stack: dict[str, str], destination: str) -> str | None:
    """What to tell the user about one GPU; None when it runs the image and is in range."""
    table = generation_table(stack.get("GENERATION_TABLE", ""))
    order = list(table)
    oldest, newest = stack.get("GPU_GENERATION", ""), stack.get("NEWEST_GPU_GENERATION", "")
    if oldest not in order or newest not in order:
        return None
    generation = generation_of(capability, table)
    match, entry = arch_match(capability, stack.get("IMAGE_ARCH_LIST", ""))
    fleet = stack.get("FLEET_LABEL", f"{oldest} to {newest}")
    gpu = f"this machine's {name} (compute capability {capability}"
    gpu += f", {generation})" if generation else ")"
    recopy = f"copier recopy --trust --overwrite --defaults --data {{}} {destination}"
    fix = None
    if generation and order.index(generation) < order.index(oldest):
        fix = recopy.format(f"gpu_generation={generation}")
    elif generation and order.index(generation) > order.index(newest):
        fix = recopy.format(f"newest_gpu_generation={generation}")

    first = order[0]
    older_than_all = generation is None and capability_key(capability) < capability_key(
        table[first][0]
    )
    if match == "sass" and older_than_all:
        return (
            f"{PREFIX} {gpu} is older than {first} ({table[first][0]}), the oldest generation "
            f"this template supports: the image still has kernels for it ({entry}), but an "
            "update may drop them."
        )
    if match == "sass":
        if fix is None:
            return None
        return (
            f"{PREFIX} {gpu} runs this project's image ({entry} code), but it is outside the "
            f"project's GPU range ({fleet}), so an update may drop it. To include it:\n  {fix}"
        )
    if match == "ptx":
        return (
            f"{PREFIX} {gpu} runs this project's image only through PTX that the driver "
            f"compiles from {entry} (slow first start of every kernel; it needs a driver of "
            f"at least {stack.get('DRIVER_TOOLKIT') or stack.get('DRIVER_FLOOR')})."
            + (f" To build native code for it:\n  {fix}" if fix else "")
        )
    reason = (
        f"{PREFIX} {gpu} cannot run this project's image: torch there is built for "
        f'{stack.get("IMAGE_ARCH_LIST")}, so CUDA calls would fail with "no kernel image is '
        'available for execution on the device".'
    )
    if fix:
        return f"{reason} To include it:\n  {fix}"
    if older_than_all:
        return f"{reason} It is older than {first} ({table[first][0]}), which no image supports."
    if generation is None:
        return (
            f"{reason} Its generation is newer than any this template knows: update the "
            "template (copier update --trust --defaults) once it does."
        )
    return (
        f"{reason} No image the template offers has kernels for it (Jetson GPUs need "
        "NVIDIA's Jetson containers)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destination", default=".", help="the generated project")
    args = parser.parse_args(argv)

    stack_file = Path(args.destination) / STACK_ENV
    gpus = detected_gpus()
    if not gpus or not stack_file.is_file():
        return 0
    stack = parse_env(stack_file.read_text())
    for name, capability in dict.fromkeys(gpus):
        message = verdict(name, capability, stack, args.destination)
        if message:
            print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
