"""Write a pip constraints file that pins the packages the base image ships for CUDA.

Usage: python3 pin_image_packages.py OUTPUT

Run with the base image's own Python (the one that has torch). The PyTorch images install
torch from the CUDA wheel index (e.g. 2.14.1+cu132). A later `pip install somepackage` that
wants a different torch would pull PyPI's build, which may target another CUDA line or none.
With PIP_CONSTRAINT pointing at the file written here, pip refuses such an install instead.

Constraints the image already sets are kept by reference from the new file, since setting
PIP_CONSTRAINT replaces them: those in PIP_CONSTRAINT (NGC images ship
/etc/pip/constraint.txt) and those in pip's configuration files (`constraint = ...`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# Packages that must move only with the base image.
PINNED = re.compile(
    r"^(torch|torchvision|torchaudio|torchcodec|torchelastic|triton|pytorch-triton.*|"
    r"nvidia-.*|cuda-.*|cupy-cuda.*)$"
)
# A `pip config list` line that sets constraints: global.constraint='/etc/pip/c.txt'
CONFIG_CONSTRAINT = re.compile(r"^[\w-]+\.constraints?='?(?P<value>[^']*)'?$")


def image_pins() -> list[str]:
    """`name==version` for every installed package that PINNED matches, sorted by name."""
    pins = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if PINNED.match(name):
            pins[name] = f"{name}=={dist.version}"
    return [pins[name] for name in sorted(pins)]


def configured_constraints() -> list[str]:
    """Constraint files the image's pip already reads: PIP_CONSTRAINT, then pip's config."""
    paths = os.environ.get("PIP_CONSTRAINT", "").split()
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=False,
        env={key: value for key, value in os.environ.items() if key != "PIP_CONSTRAINT"},
    )
    for line in listed.stdout.splitlines():
        match = CONFIG_CONSTRAINT.match(line.strip())
        if match:
            paths += match["value"].split()
    return list(dict.fromkeys(paths))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    output = Path(argv[0])
    pins = image_pins()
    if not any(pin.startswith("torch==") for pin in pins):
        print(
            f"pin_image_packages: torch is not installed for {sys.executable}; "
            "BASE_IMAGE must be a PyTorch image whose python3 imports torch",
            file=sys.stderr,
        )
        return 1
    lines = ["# Packages pinned to the versions the base image ships; see pin_image_packages.py."]
    lines += pins
    for path in configured_constraints():
        if Path(path).resolve() != output.resolve() and Path(path).is_file():
            lines.append(f"-c {path}")
    output.write_text("\n".join(lines) + "\n")
    print(f"pinned {len(pins)} image packages in {output} (for {sys.executable})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
