"""What a run reports, from global rank 0 only.

    <output-dir>/metrics.jsonl      one JSON object per log interval: step, loss, lr, ...
    <output-dir>/environment.jsonl  one JSON object per start: versions, GPUs, git commit,
                                    the copier answers, the config, where it resumed from
    <output-dir>/summary.json       written when the run ends: step, loss, world_size, status
    <output-dir>/tensorboard/       the same metrics, when TensorBoard is installed

On a terminal a progress bar (tqdm, when installed) shows the loss; otherwise, as in CI and in
cluster logs, one plain line per log interval. Other ranks log warnings and errors only.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from . import stack

logger = logging.getLogger(__package__)


class LogHandler(logging.StreamHandler):
    """Writes to stderr, above the progress bar while one is shown (not through it)."""

    progress: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        if LogHandler.progress is None:
            super().emit(record)
            return
        try:
            LogHandler.progress.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def setup_logging(rank: int) -> None:
    """Rank 0 logs progress; the others only warnings and errors, prefixed with their rank."""
    handler = LogHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[rank {rank}] %(levelname)s %(message)s"))
    root = logging.getLogger(__package__)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    root.propagate = False


def git_commit(start: Path) -> str | None:
    """The commit of the git checkout around `start`, with "-dirty" for uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=start,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() or None


def copier_answers(start: Path) -> dict[str, Any] | None:
    """The project's copier answers (.copier-answers.yml above `start`), when found and
    PyYAML is installed; the installed package in an image has no answers file."""
    for folder in (start, *start.parents):
        path = folder / ".copier-answers.yml"
        if path.is_file():
            try:
                import yaml

                return yaml.safe_load(path.read_text())
            except (ImportError, OSError, ValueError):
                return None
    return None


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and hardware this process sees."""
    record: dict[str, Any] = {
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "stack": {name: getattr(stack, name) for name in dir(stack) if name.isupper()},
        "device": str(device),
        "gpus": [],
    }
    if device.type == "cuda":
        record["gpus"] = [
            {
                "name": torch.cuda.get_device_name(index),
                "capability": ".".join(map(str, torch.cuda.get_device_capability(index))),
            }
            for index in range(torch.cuda.device_count())
        ]
        nccl = torch.cuda.nccl.version()
        record["nccl"] = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl
    return record


class MetricsLogger:
    """Writes metrics on rank 0; on other ranks every method does nothing."""

    def __init__(self, output_dir: Path, *, enabled: bool, total_steps: int, start_step: int):
        self.enabled = enabled
        self.output_dir = output_dir
        self.progress = None
        self.writer = None
        self.file = None
        if not enabled:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        metrics = output_dir / "metrics.jsonl"
        self.drop_entries_after(metrics, start_step)
        self.file = open(metrics, "a", buffering=1)  # noqa: SIM115 - closed in close()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(output_dir / "tensorboard"), purge_step=start_step)
        except ImportError:
            pass
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.progress = tqdm(
                    total=total_steps, initial=start_step, unit="step", dynamic_ncols=True
                )
                LogHandler.progress = self.progress
            except ImportError:
                pass

    @staticmethod
    def drop_entries_after(path: Path, step: int) -> None:
        """A resumed run repeats the steps after its checkpoint: drop their old entries."""
        if not path.is_file():
            return
        lines = path.read_text().splitlines(keepends=True)
        kept = []
        for line in lines:
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        if len(kept) != len(lines):
            path.write_text("".join(kept))

    def advance(self) -> None:
        """One step done (moves the progress bar)."""
        if self.progress is not None:
            self.progress.update()

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **values, "time": round(time.time(), 3)}
        self.file.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"train/{name}", value, step)
        if self.progress is not None:
            self.progress.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{values['lr']:.2e}")
        else:
            details = " ".join(f"{name} {value:.4g}" for name, value in values.items())
            logger.info("step %d: %s", step, details)

    def write_environment(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.output_dir / "environment.jsonl", "a") as handle:
                handle.write(json.dumps(record, default=str) + "\n")

    def write_summary(self, summary: dict[str, Any]) -> None:
        """summary.json, replaced atomically so a reader never sees half of it."""
        if not self.enabled:
            return
        temporary = self.output_dir / f".summary.json.{os.getpid()}"
        temporary.write_text(json.dumps(summary, indent=2) + "\n")
        os.replace(temporary, self.output_dir / "summary.json")

    def close(self) -> None:
        if self.progress is not None:
            LogHandler.progress = None
            self.progress.close()
        if self.writer is not None:
            self.writer.close()
        if self.file is not None:
            self.file.close()
