"""Random generators: one seed formula per use, and the states that checkpoints save.

Every random number of a run comes from a seed derived here, so that a resumed run draws
exactly what an uninterrupted one would have drawn:

- `seed_everything(rank_seed(seed, rank))`: each rank its own dropout stream after the model
  is built (the model itself is built under `seed`, the same on every rank);
- `sample_generator(seed, index)`: the synthetic datasets make sample `index` from it alone;
- `sample_seed(seed, epoch, index)`: DataLoader workers seed each sample's augmentations.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, torch's and (when loaded) NumPy's global generators."""
    random.seed(seed)
    torch.manual_seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % 2**32)


def rank_seed(seed: int, rank: int, salt: int = 0) -> int:
    """The seed of one rank's own random stream; `salt` (the step of a resume that could not
    restore the saved streams) starts a fresh one."""
    return seed * 1000 + rank + 1 + salt


def sample_generator(seed: int, index: int) -> torch.Generator:
    """The generator a synthetic dataset makes sample `index` with: (seed, index) alone decide
    the sample, whatever process, worker or restart asks for it."""
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A seed for one sample of one epoch; distinct across indices and epochs."""
    return (seed * 0x9E3779B1 + epoch * 0x85EBCA77 + index) % (2**63)


def state() -> dict[str, Any]:
    """This process's random generator states, as tensors and plain values."""
    saved: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        saved["cuda"] = torch.cuda.get_rng_state()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        name, keys, position, has_gauss, cached = numpy.random.get_state()
        saved["numpy"] = [name, torch.from_numpy(keys.astype("int64")), position, has_gauss, cached]
    return saved


def set_state(saved: dict[str, Any]) -> None:
    """Restore what `state` returned."""
    version, internal, gauss = saved["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(saved["torch"])
    if "cuda" in saved and torch.cuda.is_available():
        torch.cuda.set_rng_state(saved["cuda"])
    numpy = sys.modules.get("numpy")
    if "numpy" in saved and numpy is not None:
        name, keys, position, has_gauss, cached = saved["numpy"]
        numpy.random.set_state((name, keys.numpy().astype("uint32"), position, has_gauss, cached))
