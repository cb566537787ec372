"""Batches for training and evaluation, from any map-style Dataset, resumable mid-epoch.

The task module (`task.build_dataset`) decides what a sample is; this module decides which
samples each rank sees, in which order, and how they reach the device:

- `split_indices`: the held-out part of a dataset, chosen by the seed alone (the same for any
  number of ranks, so evaluation sees the same samples however the run is launched).
- `ResumableDistributedSampler`: DistributedSampler's shuffle (seeded by seed + epoch) and split
  across ranks, able to start after the first N samples of an epoch. A checkpoint stores the
  epoch and that N, so a resumed run draws exactly the batches the killed run had not reached.
- `SeededDataset`: in DataLoader workers, each sample is produced under its own seed, so random
  augmentations do not depend on which worker got the sample (which changes on resume).
- `BatchStream`: endless batches across epochs, already on the device, with the position that
  goes into checkpoints.
- `build_eval_loader`: each rank a disjoint share of the held-out split, every sample exactly
  once (no padding, no dropped last batch), so summed metrics are exact across ranks.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, get_worker_info

from . import rng

Batch = tuple[torch.Tensor, ...]

# Mixed into the seed for the train/held-out split, so that it differs from the data order.
SPLIT_SALT = 7919


def split_indices(size: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices) of a dataset of `size` samples: a permutation by
    the seed, its first `round(size * val_fraction)` held out (at least one when the fraction
    is positive and the dataset has two samples or more)."""
    count = round(size * val_fraction)
    if val_fraction > 0 and size >= 2:
        count = min(max(count, 1), size - 1)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + SPLIT_SALT)
    order = torch.randperm(size, generator=generator).tolist()
    return sorted(order[count:]), sorted(order[:count])


class ResumableDistributedSampler(DistributedSampler):
    """Each rank's share of a shuffled epoch, in whole batches, from `start` on.

    The epoch's order is a permutation seeded by seed + epoch, the same on every rank; rank `r`
    takes positions start + r, start + r + world_size, ... (as DistributedSampler does), and
    every rank gets the same number of whole batches, so no rank waits for another at the end
    of an epoch. After k batches on every rank, the first start + k * batch_size * world_size
    positions are used up, whatever the number of workers or prefetching.

    Yields (index, seed) pairs for `SeededDataset`.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        num_replicas: int,
        rank: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.batch_size = batch_size
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Begin `epoch` after its first `start` samples (over all ranks)."""
        self.set_epoch(epoch)
        # A different world size than the one that saved the position: round down so every
        # rank still starts on the same row of the permutation.
        self.start = start - start % self.num_replicas

    def batches_left(self) -> int:
        """Whole batches per rank from `start` to the end of the epoch."""
        remaining = len(self.dataset) - self.start
        return max(remaining, 0) // (self.batch_size * self.num_replicas)

    def __len__(self) -> int:
        return self.batches_left() * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        size = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(size, generator=generator).tolist()
        else:
            order = list(range(size))
        stop = self.start + len(self) * self.num_replicas
        for position in range(self.start + self.rank, stop, self.num_replicas):
            yield order[position], rng.sample_seed(self.seed, self.epoch, order[position])


class SeededDataset(Dataset):
    """Wraps a dataset indexed by (index, seed): in a DataLoader worker, seeds torch, Python and
    (if loaded) NumPy before producing each sample. In the main process (num_workers 0) the
    training process's generators are used as they are; checkpoints restore those."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        if get_worker_info() is not None:
            rng.seed_everything(seed)
        return self.dataset[index]


def init_worker(worker_id: int) -> None:
    """Workers ignore preemption signals: Slurm signals every process of a job step, Ctrl-C
    every process of the terminal's group, and a worker that died of it would crash the
    training process before it can save."""
    for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


def build_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int,
    rank: int,
    world_size: int,
    seed: int,
    device: torch.device,
) -> DataLoader:
    """The DataLoader of one rank: resumable sampler, pinned memory on CUDA, workers that stay
    alive across epochs."""
    sampler = ResumableDistributedSampler(
        dataset, num_replicas=world_size, rank=rank, batch_size=batch_size, seed=seed
    )
    if sampler.batches_left() == 0:
        raise ValueError(
            f"the dataset has {len(dataset)} samples, fewer than one batch per rank "
            f"(batch_size {batch_size} x {world_size} ranks)"
        )
    workers = {}
    if num_workers > 0:
        workers = {"persistent_workers": True, "prefetch_factor": 4, "worker_init_fn": init_worker}
    return DataLoader(
        SeededDataset(dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        # Its own generator: starting an epoch must not draw from the global one, or a resumed
        # run (which starts its epoch elsewhere) would drift from an uninterrupted one.
        generator=torch.Generator().manual_seed(seed),
        **workers,
    )


def to_device(batch: Any, device: torch.device, memory_format: torch.memory_format) -> Batch:
    """Copy a batch (a tuple or list of tensors) to `device` without waiting for the copy;
    4-D tensors get `memory_format` (the trainer asks for channels-last on CUDA only)."""
    if device.type == "cpu" and memory_format == torch.contiguous_format:
        return tuple(batch)
    return tuple(
        tensor.to(device, non_blocking=True, memory_format=memory_format)
        if tensor.dim() == 4
        else tensor.to(device, non_blocking=True)
        for tensor in batch
    )


class BatchStream:
    """Batches on the device, epoch after epoch, with a position that checkpoints save."""

    def __init__(
        self, loader: DataLoader, device: torch.device, memory_format: torch.memory_format
    ) -> None:
        self.loader = loader
        self.sampler: ResumableDistributedSampler = loader.sampler
        self.device = device
        self.memory_format = memory_format
        self.epoch = 0
        # Samples of this epoch used up by the training loop, over all ranks.
        self.samples_in_epoch = 0
        self._step_samples = loader.batch_size * self.sampler.num_replicas
        self._iterator: Iterator[Any] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "samples_in_epoch": self.samples_in_epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.samples_in_epoch = int(state["samples_in_epoch"])
        self._iterator = None

    def next(self) -> Batch:
        """The next batch of this rank, on the device."""
        while True:
            if self._iterator is None:
                self.sampler.set_position(self.epoch, self.samples_in_epoch)
                self.samples_in_epoch = self.sampler.start
                self._iterator = iter(self.loader)
            batch = next(self._iterator, None)
            if batch is not None:
                self.samples_in_epoch += self._step_samples
                return to_device(batch, self.device, self.memory_format)
            self._iterator = None
            self.epoch += 1
            self.samples_in_epoch = 0


class ShardSampler(Sampler[int]):
    """Rank `r` of `world_size` takes indices r, r + world_size, ...: a disjoint share, every
    index exactly once over all ranks (DistributedSampler would pad with repeats)."""

    def __init__(self, size: int, rank: int, world_size: int) -> None:
        self.indices: Sequence[int] = range(rank, size, world_size)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)


def build_eval_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int,
    rank: int,
    world_size: int,
    device: torch.device,
) -> DataLoader:
    """The held-out DataLoader of one rank: in order, nothing dropped, nothing repeated."""
    workers = {}
    if num_workers > 0:
        workers = {"persistent_workers": True, "worker_init_fn": init_worker}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ShardSampler(len(dataset), rank, world_size),
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        # Starting an iteration draws a seed from this generator; the global one would make
        # training after an evaluation depend on whether the evaluation ran.
        generator=torch.Generator().manual_seed(0),
        **workers,
    )
