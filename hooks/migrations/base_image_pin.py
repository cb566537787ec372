"""After `copier update`: move a base image digest pin with the tag, or say it was kept.

Why a migration: a project may pin its base image by digest (`bash scripts/pin-base-image.sh`
writes `ARG BASE_IMAGE_DIGEST=@sha256:...` under `ARG BASE_IMAGE=` in .devcontainer/Dockerfile,
with the tag it belongs to). Copier owns the tag and never touches the pin, so an update that
moves the tag leaves a digest of the previous image behind: every build would quietly start
from that one. Right after the merge this resolves the new tag's digest with the project's
own script and pins it, saying so; when that fails (no docker/crane/skopeo, no network), it
keeps the pin and says what it means and what to run. The project's lint fails on a pin that
does not match the tag (`pin-base-image.sh --check`), so it cannot be forgotten.

Run by copier as a `_migrations` entry after an update, in the project directory:

    python hooks/migrations/base_image_pin.py [--project PATH]

Projects without a pin hear nothing. It always exits 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PREFIX = "copier-pytorch-cuda:"


def value(text: str, prefix: str) -> str:
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    dockerfile = args.project / ".devcontainer" / "Dockerfile"
    script = args.project / "scripts" / "pin-base-image.sh"
    if not dockerfile.is_file() or not script.is_file():
        return 0
    text = dockerfile.read_text()
    image = value(text, "ARG BASE_IMAGE=")
    pinned_for = value(text, "# base image pin: ")
    digest = value(text, "ARG BASE_IMAGE_DIGEST=")
    if not digest or pinned_for == image:
        return 0
    result = subprocess.run(
        ["bash", str(script)], cwd=args.project, capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        new = value(dockerfile.read_text(), "ARG BASE_IMAGE_DIGEST=")
        print(f"{PREFIX} the base image moved to {image}; its digest pin moved with it ({new[1:]})")
        return 0
    reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
    print(
        f"{PREFIX} the base image moved to {image}, but its digest could not be resolved "
        f"({reason.removeprefix('pin-base-image.sh: ')}); the pin still names {pinned_for}'s "
        f"digest ({digest[1:]}), so builds start from that image until you run "
        "`bash scripts/pin-base-image.sh` (or `--remove` it); lint fails until then"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
