"""What a run reports, from global rank 0 only.

    <output-dir>/train.log          every log line of rank 0, appended on each start
    <output-dir>/metrics.jsonl      one JSON object per log interval (step, loss, lr, ...) and
                                    per evaluation (step, eval_loss, eval_<metric>, best)
    <output-dir>/environment.jsonl  one JSON object per start: versions, GPUs, git commit,
                                    the copier answers, the config, where it resumed from
    <output-dir>/summary.json       written when the run ends: status, step, loss, world_size,
                                    eval (the last held-out metrics), best (best.pt's step)
    <output-dir>/tensorboard/       the same metrics (train/*, eval/*), for
                                    `tensorboard --logdir <output-dir>/tensorboard`

On a terminal a progress bar (tqdm, when installed) shows the loss; otherwise, as in CI and in
cluster logs, one plain line per log interval with the time left. Other ranks log warnings and
errors only.
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


class Console(logging.StreamHandler):
    """Writes to stderr, above the progress bar while one is shown (not through it)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.progress: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.progress is None:
            super().emit(record)
            return
        try:
            self.progress.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def setup_logging(rank: int, log_file: Path | None = None) -> Console:
    """Rank 0 logs progress; the others only warnings and errors, prefixed with their rank.
    With `log_file`, the same lines (with the time) are appended there too."""
    console = Console(sys.stderr)
    console.setFormatter(logging.Formatter(f"[rank {rank}] %(levelname)s %(message)s"))
    root = logging.getLogger(__package__)
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = [console]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(
            logging.Formatter(f"%(asctime)s [rank {rank}] %(levelname)s %(message)s")
        )
        root.addHandler(to_file)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    root.propagate = False
    return console


def close_logging() -> None:
    """Close the log file (a later run in the same process may write elsewhere)."""
    root = logging.getLogger(__package__)
    for handler in root.handlers[:]:
        if isinstance(handler, logging.FileHandler):
            handler.close()
            root.removeHandler(handler)


def duration(seconds: float) -> str:
    """`1h02m`, `3m05s`, `12s`: short enough for every log line."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


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

    def __init__(
        self,
        output_dir: Path,
        *,
        enabled: bool,
        total_steps: int,
        start_step: int,
        console: Console | None = None,
    ):
        self.enabled = enabled
        self.output_dir = output_dir
        self.total_steps = total_steps
        self.console = console
        self.progress = None
        self.postfix: dict[str, str] = {}
        self.writer = None
        self.file = None
        # For the time left: steps and seconds since this process started training.
        self.started_at = time.perf_counter()
        self.start_step = start_step
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
            logger.info("TensorBoard is not installed (pip install tensorboard): no event files")
        if sys.stderr.isatty() and console is not None:
            try:
                from tqdm import tqdm

                self.progress = tqdm(
                    total=total_steps, initial=start_step, unit="step", dynamic_ncols=True
                )
                console.progress = self.progress
            except ImportError:
                pass

    @property
    def tensorboard_command(self) -> str | None:
        """The command that shows this run in TensorBoard, when event files are written."""
        if self.writer is None:
            return None
        return f"tensorboard --logdir {self.output_dir / 'tensorboard'}"

    def time_left(self, step: int) -> str:
        """`ETA 3m05s` from this process's pace so far, or '' before there is one."""
        done = step - self.start_step
        if done <= 0 or step >= self.total_steps:
            return ""
        pace = (time.perf_counter() - self.started_at) / done
        return f", ETA {duration(pace * (self.total_steps - step))}"

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
            self.postfix.update(loss=f"{values['loss']:.4f}", lr=f"{values['lr']:.2e}")
            self.progress.set_postfix(self.postfix)
        else:
            details = " ".join(f"{name} {value:.4g}" for name, value in values.items())
            logger.info("step %d/%d: %s%s", step, self.total_steps, details, self.time_left(step))

    def log_eval(self, step: int, values: dict[str, float], best: bool) -> None:
        """One evaluation: a metrics.jsonl line (eval_* keys), TensorBoard's eval/*, a log line."""
        if not self.enabled:
            return
        record = {"step": step, **{f"eval_{k}": v for k, v in values.items()}, "best": best}
        self.file.write(json.dumps({**record, "time": round(time.time(), 3)}) + "\n")
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"eval/{name}", value, step)
        if self.progress is not None:
            # The bar shows the latest held-out metrics next to the training loss.
            self.postfix.update({f"eval_{k}": f"{v:.4g}" for k, v in values.items()})
            self.progress.set_postfix(self.postfix)
        details = " ".join(f"{name} {value:.4g}" for name, value in values.items())
        logger.info("step %d/%d: eval %s%s", step, self.total_steps, details, " (best)" * best)

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
            if self.console is not None:
                self.console.progress = None
            self.progress.close()
        if self.writer is not None:
            self.writer.close()
        if self.file is not None:
            self.file.close()
