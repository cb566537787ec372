"""Write a pip constraints file that pins the packages the base image ships for CUDA.

Usage: python pin_image_packages.py OUTPUT

The PyTorch images install torch from the CUDA wheel index (e.g. 2.14.1+cu132). A later
`pip install somepackage` that wants a different torch would pull PyPI's build, which may
target another CUDA line or none. With PIP_CONSTRAINT pointing at the file written here,
pip refuses such an install instead. An existing PIP_CONSTRAINT (NGC images ship
/etc/pip/constraint.txt) is kept by referencing it from the new file.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

# Packages that must move only with the base image.
PINNED = re.compile(
    r"^(torch|torchvision|torchaudio|torchcodec|torchelastic|triton|pytorch-triton.*|"
    r"nvidia-.*|cuda-.*|cupy-cuda.*)$"
)


def image_pins() -> list[str]:
    pins = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if PINNED.match(name):
            pins[name] = f"{name}=={dist.version}"
    return [pins[name] for name in sorted(pins)]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    output = Path(argv[0])
    lines = ["# Packages pinned to the versions the base image ships; see pin_image_packages.py."]
    lines += image_pins()
    previous = os.environ.get("PIP_CONSTRAINT", "")
    for path in previous.split():
        if path and Path(path).resolve() != output.resolve() and Path(path).is_file():
            lines.append(f"-c {path}")
    if not any(line.startswith("torch==") for line in lines):
        print("pin_image_packages: torch is not installed in the base image", file=sys.stderr)
        return 1
    output.write_text("\n".join(lines) + "\n")
    print(f"pinned {len(lines) - 1} image packages in {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
