"""Batches for the training loop, from any map-style Dataset, resumable mid-epoch.

The task module (`task.build_dataset`) decides what a sample is; this module decides which
samples each rank sees, in which order, and how they reach the device:

- `ResumableDistributedSampler`: DistributedSampler's shuffle (seeded by seed + epoch) and split
  across ranks, able to start after the first N samples of an epoch. A checkpoint stores the
  epoch and that N, so a resumed run draws exactly the batches the killed run had not reached.
- `SeededDataset`: in DataLoader workers, each sample is produced under its own seed, so random
  augmentations do not depend on which worker got the sample (which changes on resume).
- `BatchStream`: endless batches across epochs, already on the device, with the position that
  goes into checkpoints.
"""

from __future__ import annotations

import random
import signal
import sys
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info

Batch = tuple[torch.Tensor, ...]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A seed for one sample of one epoch; distinct across indices and epochs."""
    return (seed * 0x9E3779B1 + epoch * 0x85EBCA77 + index) % (2**63)


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
            yield order[position], sample_seed(self.seed, self.epoch, order[position])


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
            torch.manual_seed(seed)
            random.seed(seed)
            numpy = sys.modules.get("numpy")
            if numpy is not None:
                numpy.random.seed(seed % 2**32)
        return self.dataset[index]


def init_worker(worker_id: int) -> None:
    """Workers ignore preemption signals: Slurm signals every process of a job step, and a
    worker killed by SIGTERM would crash the training process before it can save."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


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
    4-D tensors get `memory_format` on CUDA."""
    if device.type == "cpu":
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
