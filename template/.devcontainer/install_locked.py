"""Install a lock from requirements/lock/ into the running Python, hashes required.

Usage: python install_locked.py LOCK [LOCK ...]

The Dockerfile runs it for the image's stages and the dev container after it is created.
Every package comes at the lock's version with a hash the lock lists, except those the base
image pins itself: NGC images ship /etc/pip/constraint.txt, which pins every package
installed beside their torch (numpy among them). Where the lock and such a pin name the same
package, the image's version is kept (it is fixed by the image's tag, so the result stays
reproducible) and the line says so; asking pip for both would only fail. A locked package
that cannot work with an image pin still fails, with pip's own message: then lock against
the image (README: "Locked dependencies").
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

# The first line of a lock entry: "name==version ; markers \"
ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;\\]+)")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(?P<version>[^\s;#]+)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_pins(paths: list[str], seen: set[Path] | None = None) -> dict[str, tuple[str, str]]:
    """{name: (version, file)} for every `name==version` in the constraint files, following
    their `-c`/`-r` references (pin_image_packages.py writes one to NGC's file)."""
    seen = set() if seen is None else seen
    pins: dict[str, tuple[str, str]] = {}
    for raw in paths:
        path = Path(raw)
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) == 2 and words[0] in ("-c", "-r", "--constraint", "--requirement"):
                pins = {**image_pins([words[1]], seen), **pins}
                continue
            match = PIN.match(line.strip())
            if match:
                pins.setdefault(normalize(match["name"]), (match["version"], str(path)))
    return pins


def split_entries(text: str) -> list[tuple[str | None, str]]:
    """(normalized name or None for the header, block) in file order."""
    blocks: list[tuple[str | None, str]] = []
    for line in text.splitlines(keepends=True):
        match = ENTRY.match(line)
        if match:
            blocks.append((normalize(match["name"]), line))
        elif blocks:
            blocks[-1] = (blocks[-1][0], blocks[-1][1] + line)
        else:
            blocks.append((None, line))
    return blocks


def without_image_pins(text: str, pins: dict[str, tuple[str, str]]) -> tuple[str, list[str]]:
    """The lock minus the packages the image pins, and one line about each left out."""
    kept, notes = [], []
    for name, block in split_entries(text):
        if name is not None and name in pins:
            locked = ENTRY.match(block)["version"]
            version, source = pins[name]
            if version != locked:
                notes.append(
                    f"{name}: keeping the image's {version} (pinned by {source}), "
                    f"not the lock's {locked}"
                )
            continue
        kept.append(block)
    return "".join(kept), notes


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    pins = image_pins(os.environ.get("PIP_CONSTRAINT", "").split())
    # Group-writable files, as the venv's pip wrapper makes them (see the Dockerfile).
    os.umask(0o002)
    with tempfile.TemporaryDirectory(prefix="install-locked-") as tmp:
        command = [sys.executable, "-m", "pip", "install", "--require-hashes"]
        for number, lock in enumerate(argv):
            text, notes = without_image_pins(Path(lock).read_text(), pins)
            for note in dict.fromkeys(notes):
                print(f"install_locked: {note}")
            filtered = Path(tmp) / f"{number}-{Path(lock).name}"
            filtered.write_text(text)
            command += ["-r", str(filtered)]
        print(f"install_locked: {shlex.join(['pip', 'install', '--require-hashes', *argv])}")
        return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
