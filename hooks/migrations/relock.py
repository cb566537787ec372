"""After `copier update`: bring requirements/lock/ in line with the merged requirements.

Why a migration: the lock is a file both sides change. The template ships a new one with a
release; a user who added a package regenerated it. Copier's three-way merge of two
resolver outputs yields conflict markers or a lock that no longer matches the merged
requirements/*.txt (the user's package missing, or the template's floors unmet). Neither
is a file to fix by hand, so after the merge this runs the project's own locker, which
resolves only when its `--check` would fail (`python scripts/lock.py --if-stale`), keeping
the merged pins where they still fit.

Run by copier as a `_migrations` entry after an update, in the project directory:

    python hooks/migrations/relock.py [--project PATH]

It needs PyPI when it resolves. When it cannot (offline, a conflicted requirements file),
it says so in one line with the command to run later, and exits 0: the update itself is
done, and the project's lint (`scripts/lint.sh`, which runs `lock.py --check`) fails until
the lock is current.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PREFIX = "copier-pytorch-cuda:"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    locker = args.project / "scripts" / "lock.py"
    if not locker.is_file():
        return 0  # a project without the locker (removed by its owner): nothing to keep current
    result = subprocess.run(
        [sys.executable, str(locker), "--if-stale"],
        cwd=args.project,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        if result.stdout.strip() or result.stderr.strip():
            print(f"{PREFIX} requirements/lock/ resolved again for the merged requirements")
        return 0
    reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
    print(
        f"{PREFIX} requirements/lock/ does not match the merged requirements and could not be "
        f"resolved ({reason}); fix requirements/*.txt if they conflict, then run "
        "`python scripts/lock.py`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
