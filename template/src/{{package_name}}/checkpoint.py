"""Checkpoints: the format, and files that are written whole or not at all, and never loaded
when damaged.

The format is a registry. A `Checkpointer` is given the run's stateful parts once, by name
(anything with `state_dict()` and `load_state_dict()`), and a checkpoint is a plain dict of a
header plus one entry per part; what a loaded file must contain follows from the
registration, so a new piece of training state is one `register` call. The training loop
registers (see `train.Trainer`):

    format       header: checkpoint layout version (FORMAT)
    step         header: optimizer steps completed
    world_size   header: how many ranks saved it
    task         header: the task kind ("cv", "nlp", "audio")
    config       the run's configuration, section by section (checked first on resume)
    labels       the class names of the training data (None for language models)
    model        the unwrapped model's state_dict (no DDP `module.` or compile `_orig_mod.`)
    optimizer    optimizer.state_dict()
    scheduler    lr_scheduler.state_dict()
    scaler       GradScaler.state_dict() ({} when no scaler is used)
    data         the data position: {"epoch", "samples_in_epoch"}
    progress     the last logged loss, the last and the best held-out results
    rng          every rank's random generator states, in rank order

Files: `<output-dir>/checkpoints/step_<step, 8 digits>.pt`, the newest `keep` of them, and
`best.pt`, the checkpoint with the best held-out metric, which pruning never touches. They
load with `torch.load(path, weights_only=True)` (tensors, numbers, strings, lists, dicts).
Only global rank 0 writes, to a temporary file in the same folder that is flushed, fsynced
and then renamed over the final name (`os.replace` is atomic), so a kill at any moment leaves
either the old set of checkpoints or the new one. Loading checks the zip container's CRCs
first, since torch.load does not notice flipped bytes inside tensor data.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import torch

logger = logging.getLogger(__name__)

FORMAT = 2
HEADER = ("format", "step", "world_size", "task")
NAME = re.compile(r"step_(\d{8,})\.pt")
BEST = "best.pt"
TEMPORARY_PREFIX = ".tmp-"


class Stateful(Protocol):
    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


def path_for(directory: Path, step: int) -> Path:
    return directory / f"step_{step:08d}.pt"


def list_checkpoints(directory: Path) -> list[Path]:
    """Step checkpoint files in `directory`, newest (highest step) first; best.pt is not one."""
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


def write(state: dict[str, Any], final: Path) -> Path:
    """Write `state` (tensors moved to the CPU) to `final` atomically."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f"{TEMPORARY_PREFIX}{os.getpid()}-{final.name}"
    try:
        with open(temporary, "wb") as handle:
            torch.save(to_cpu(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(final.parent)
    return final


def save(state: dict[str, Any], directory: Path, keep: int) -> Path:
    """Write `state` as the checkpoint of `state["step"]` and keep only the newest `keep` step
    checkpoints. Call on global rank 0 only."""
    final = write(state, path_for(directory, int(state["step"])))
    for old in list_checkpoints(directory)[keep:]:
        old.unlink(missing_ok=True)
    return final


def copy_as_best(source: Path) -> Path:
    """best.pt next to `source` with its contents: a hard link where the file system allows
    (no second write), else a copy; either way atomically renamed into place."""
    final = source.parent / BEST
    temporary = source.parent / f"{TEMPORARY_PREFIX}{os.getpid()}-{BEST}"
    temporary.unlink(missing_ok=True)
    try:
        try:
            os.link(source, temporary)
        except OSError:
            temporary.write_bytes(source.read_bytes())
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(source.parent)
    return final


def remove_temporary_files(directory: Path) -> None:
    """Delete temporary files of saves that a kill interrupted."""
    if directory.is_dir():
        for path in directory.glob(TEMPORARY_PREFIX + "*"):
            path.unlink(missing_ok=True)


def load(path: Path, required: Iterable[str] = ()) -> dict[str, Any]:
    """Read and check one checkpoint; raises on anything truncated, corrupt or incomplete.
    `required`: the entries besides the header that the reader needs."""
    with zipfile.ZipFile(path) as archive:
        damaged = archive.testzip()
    if damaged is not None:
        raise ValueError(f"CRC mismatch in {damaged}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"holds a {type(state).__name__}, not a dict")
    if state.get("format") != FORMAT:
        raise ValueError(f"has format {state.get('format')!r}, this code reads format {FORMAT}")
    missing = [key for key in (*HEADER, *required) if key not in state]
    if missing:
        raise ValueError(f"lacks {', '.join(missing)}")
    return state


def find_latest(directory: Path, required: Iterable[str] = ()) -> tuple[Path, dict] | None:
    """The newest step checkpoint in `directory` that loads, with its contents; damaged ones
    are skipped with a warning (and left in place for inspection)."""
    required = tuple(required)
    for path in list_checkpoints(directory):
        try:
            return path, load(path, required)
        except Exception as error:  # any failure to read means: do not use this file
            logger.warning("skipping checkpoint %s: it cannot be loaded (%s)", path, error)
    return None


def resolve(path: Path) -> Path:
    """The checkpoint a user means: a file as it is; for a run's output folder (or its
    checkpoints/ folder) its best.pt, else its newest step checkpoint. ValueError otherwise."""
    if path.is_file():
        return path
    for directory in (path / "checkpoints", path):
        if (directory / BEST).is_file():
            return directory / BEST
        newest = list_checkpoints(directory)
        if newest:
            return newest[0]
    if path.is_dir():
        raise ValueError(f"{path} holds no checkpoint; pass a .pt file or a run's --output-dir")
    raise ValueError(f"{path}: no such file or folder; pass a .pt file or a run's --output-dir")


class Checkpointer:
    """The run's stateful parts by name, and the files they are saved to and loaded from.

    `state_dict()` of every part is called on every rank (a part may gather from all ranks,
    as the random states do); only rank 0 writes.
    """

    def __init__(self, directory: Path, *, keep: int, is_main: bool, header: dict[str, Any]):
        self.directory = directory
        self.keep = keep
        self.is_main = is_main
        # Fixed header entries (world_size, task); format and step are added per save.
        self.header = header
        self.parts: dict[str, Stateful] = {}

    def register(self, name: str, part: Stateful) -> None:
        """Add a part; parts load in the order they were registered."""
        assert name not in self.parts and name not in HEADER, f"{name} is taken"
        self.parts[name] = part

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.parts)

    def state_dict(self, step: int) -> dict[str, Any]:
        header = {"format": FORMAT, "step": step, **self.header}
        return {**header, **{name: part.state_dict() for name, part in self.parts.items()}}

    def save(self, step: int, *, best: bool = False) -> Path | None:
        """Save the checkpoint of `step` (and make it best.pt); returns its path on rank 0."""
        state = self.state_dict(step)
        if not self.is_main:
            return None
        path = save(state, self.directory, self.keep)
        if best:
            copy_as_best(path)
        return path

    def save_best(self, step: int) -> Path | None:
        """best.pt for `step` without a step checkpoint (an evaluation between checkpoints)."""
        state = self.state_dict(step)
        if not self.is_main:
            return None
        return write(state, self.directory / BEST)

    def find_latest(self) -> tuple[Path, dict[str, Any]] | None:
        """The newest step checkpoint with every registered part (rank 0 reads the folder)."""
        if not self.is_main:
            return None
        remove_temporary_files(self.directory)
        return find_latest(self.directory, self.required)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Hand every registered part its entry, in registration order."""
        for name, part in self.parts.items():
            part.load_state_dict(state[name])
