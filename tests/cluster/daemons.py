"""Daemons the cluster tests start: run in the foreground, remembered by pid, stopped by pid.

Each daemon runs in the foreground as a child of the test process (so its pid is known
without trusting the daemon's own pid file), and its pid is written to `<pid_dir>/<name>.pid`
at once, so a later run can stop what a killed run left behind. A pid is only signalled while
its command line still names the cluster's folder: a pid the kernel has since given to an
unrelated process is left alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

STOP_TIMEOUT_S = 15.0


def start(
    name: str, argv: list[str], pid_dir: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start `argv` in a session of its own (a Ctrl-C at the terminal is the test's, not the
    daemon's), with stdout and stderr in `log`, and record its pid."""
    with open(log, "ab") as output:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    (pid_dir / f"{name}.pid").write_text(f"{process.pid}\n")
    return process


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        # A zombie has exited; only its parent's wait() is missing.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_pids(pids: list[int], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL what is still alive after `timeout_s`. (A child of the test
    process stays a zombie until its Popen is polled; `alive` counts zombies as gone.)"""
    for pid in pids:
        with _gone_is_fine():
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(map(alive, pids)):
        time.sleep(0.1)
    for pid in filter(alive, pids):
        with _gone_is_fine():
            os.kill(pid, signal.SIGKILL)
    while any(map(alive, pids)) and time.monotonic() < deadline + 5:
        time.sleep(0.05)


def stop_recorded(pid_dir: Path, marker: str) -> list[str]:
    """Stop every daemon recorded in `pid_dir` whose command line contains `marker`; returns
    what was stopped, as `name (pid)`."""
    if not pid_dir.is_dir():
        return []
    targets = {}
    for pid_file in sorted(pid_dir.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if alive(pid) and marker in command_line(pid):
            targets[pid] = pid_file.stem
    stop_pids(list(targets))
    for pid_file in pid_dir.glob("*.pid"):
        pid_file.unlink()
    return [f"{name} ({pid})" for pid, name in targets.items()]


class _gone_is_fine:
    """Ignore ProcessLookupError: the process ended on its own meanwhile."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, traceback) -> bool:
        return kind is ProcessLookupError
