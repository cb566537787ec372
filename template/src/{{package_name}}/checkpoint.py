"""Checkpoints that lose nothing: written whole or not at all, and never loaded when damaged.

A checkpoint is `<output-dir>/checkpoints/step_<step, 8 digits>.pt`, a plain dict that
`torch.load(path, weights_only=True)` reads (tensors, numbers, strings, lists, dicts only):

    format       checkpoint layout version (FORMAT)
    step         optimizer steps completed
    model        the unwrapped model's state_dict (no DDP `module.` or compile `_orig_mod.`)
    optimizer    optimizer.state_dict()
    scheduler    lr_scheduler.state_dict()
    scaler       GradScaler.state_dict() ({} when no scaler is used)
    data         the data position: {"epoch", "samples_in_epoch"}
    rng          every rank's random generator states, in rank order
    world_size   how many ranks saved it
    loss         the last logged training loss (None before the first report)
    config       the run's configuration, section by section

Only global rank 0 writes, to a temporary file in the same folder that is flushed, fsynced and
then renamed over the final name (`os.replace` is atomic), so a kill at any moment leaves either
the old set of checkpoints or the new one. Loading checks the zip container's CRCs first, since
torch.load does not notice flipped bytes inside tensor data.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

FORMAT = 1
REQUIRED_KEYS = ("format", "step", "model", "optimizer", "data", "rng")
NAME = re.compile(r"step_(\d{8,})\.pt")
TEMPORARY_PREFIX = ".tmp-"


def path_for(directory: Path, step: int) -> Path:
    return directory / f"step_{step:08d}.pt"


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in `directory`, newest (highest step) first."""
    if not directory.is_dir():
        return []
    found = [
        (int(m.group(1)), path) for path in directory.iterdir() if (m := NAME.fullmatch(path.name))
    ]
    return [path for _, path in sorted(found, reverse=True)]


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def to_cpu(value: Any) -> Any:
    """`value` with every tensor copied to the CPU, so the file loads on machines without GPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(item) for item in value)
    return value


def save(state: dict[str, Any], directory: Path, keep: int) -> Path:
    """Write `state` (tensors moved to the CPU) as the checkpoint of `state["step"]` and keep
    only the newest `keep`. Call on global rank 0 only.
    """
    directory.mkdir(parents=True, exist_ok=True)
    final = path_for(directory, int(state["step"]))
    temporary = directory / f"{TEMPORARY_PREFIX}{os.getpid()}-{final.name}"
    try:
        with open(temporary, "wb") as handle:
            torch.save(to_cpu(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(directory)
    for old in list_checkpoints(directory)[keep:]:
        old.unlink(missing_ok=True)
    return final


def remove_temporary_files(directory: Path) -> None:
    """Delete temporary files of saves that a kill interrupted."""
    if directory.is_dir():
        for path in directory.glob(TEMPORARY_PREFIX + "*"):
            path.unlink(missing_ok=True)


def load(path: Path) -> dict[str, Any]:
    """Read and check one checkpoint; raises on anything truncated, corrupt or incomplete."""
    with zipfile.ZipFile(path) as archive:
        damaged = archive.testzip()
    if damaged is not None:
        raise ValueError(f"CRC mismatch in {damaged}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"holds a {type(state).__name__}, not a dict")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise ValueError(f"lacks {', '.join(missing)}")
    if state["format"] != FORMAT:
        raise ValueError(f"has format {state['format']}, this code reads format {FORMAT}")
    return state


def find_latest(directory: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in `directory` that loads, with its contents; damaged ones are
    skipped with a warning (and left in place for inspection)."""
    for path in list_checkpoints(directory):
        try:
            return path, load(path)
        except Exception as error:  # any failure to read means: do not use this file
            logger.warning("skipping checkpoint %s: it cannot be loaded (%s)", path, error)
    return None


def rng_state() -> dict[str, Any]:
    """This process's random generator states, as tensors and plain values."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        name, keys, position, has_gauss, cached = numpy.random.get_state()
        state["numpy"] = [name, torch.from_numpy(keys.astype("int64")), position, has_gauss, cached]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    numpy = sys.modules.get("numpy")
    if "numpy" in state and numpy is not None:
        name, keys, position, has_gauss, cached = state["numpy"]
        numpy.random.set_state((name, keys.numpy().astype("uint32"), position, has_gauss, cached))
