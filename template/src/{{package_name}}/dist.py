"""Process group setup: the only module that reads RANK, LOCAL_RANK and WORLD_SIZE.

torchrun (and the Slurm and Kubernetes launchers, which run torchrun) sets those variables for
every process it starts. Without them the run is a single process with no process group, so
`python -m <package>.train` works on a laptop as it is. On CUDA each process drives the GPU of
its local rank and talks NCCL; on CPU the processes talk gloo.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the run."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    # None when there is no process group (a single process started without torchrun).
    backend: str | None
    # How often torchrun has restarted the workers (--max-restarts); 0 on the first attempt.
    restart_count: int = 0

    @property
    def is_main(self) -> bool:
        """Global rank 0: the one process that writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


_info: DistInfo | None = None
# A gloo group beside the main one for small CPU-side agreements (preemption), so that they
# never wait for, or force a sync with, the GPU.
_cpu_group: Any = None


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def resolve_device(requested: str, local_rank: int) -> torch.device:
    """`auto` -> cuda when available; `cuda` without a GPU is a user error, not a fallback."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(
            "--device cuda was requested but torch sees no GPU "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); "
            "run `python -m " + __package__ + ".doctor` or use --device cpu"
        )
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ValueError(
            f"local rank {local_rank} has no GPU: only {count} visible; "
            "start at most that many processes per node (--nproc-per-node)"
        )
    return torch.device("cuda", local_rank)


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun set up (if any) and pick this process's device.

    Safe to call twice: the second call returns the first call's result.
    """
    global _info, _cpu_group
    if _info is not None:
        return _info
    rank = env_int("RANK", 0)
    local_rank = env_int("LOCAL_RANK", 0)
    world_size = env_int("WORLD_SIZE", 1)
    restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0)
    torch_device = resolve_device(device, local_rank)
    backend = None
    launched = "RANK" in os.environ and "MASTER_ADDR" in os.environ
    if launched or dist.is_initialized():
        backend = "nccl" if torch_device.type == "cuda" else "gloo"
        if torch_device.type == "cuda":
            torch.cuda.set_device(torch_device)
        if not dist.is_initialized():
            # torchrun keeps one key-value store across --max-restarts attempts; without a
            # prefix per attempt, restarted ranks can read a dead rank's address from the
            # previous attempt and fail or hang while connecting.
            store, rank, world_size = next(dist.rendezvous("env://"))
            store = dist.PrefixStore(f"attempt_{restart_count}", store)
            # device_id binds NCCL to this GPU at once instead of guessing it at the first call.
            kwargs = {"device_id": torch_device} if backend == "nccl" else {}
            dist.init_process_group(
                backend=backend, store=store, rank=rank, world_size=world_size, **kwargs
            )
        backend = dist.get_backend()
        rank, world_size = dist.get_rank(), dist.get_world_size()
        _cpu_group = dist.new_group(backend="gloo") if backend != "gloo" else dist.group.WORLD
    elif torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    _info = DistInfo(rank, local_rank, world_size, torch_device, backend, restart_count)
    return _info


def destroy_distributed() -> None:
    """Leave the process group; safe to call when there is none."""
    global _info, _cpu_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _info, _cpu_group = None, None


def exit_process(status: int) -> None:
    """End the process with `status` once the process group is gone, skipping the
    interpreter's own teardown.

    After a complete, checkpointed run a rank has twice (CI, gloo across two torchrun nodes)
    died in the C++ destructors that run after Python has finished ("terminate called without
    an active exception", SIGABRT, no Python frame left), which made torchrun report the run
    as failed and left the peer node waiting in its exit barrier. Nothing of the run needs
    that teardown: the atexit handlers (logging, experiment trackers a user adds) still run
    here, while the interpreter is whole; then the process ends at once.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def cpu_group() -> Any:
    """The gloo group for CPU-side agreements, or None without a process group."""
    return _cpu_group


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier(group=_cpu_group)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over all ranks (in place); a no-op for a single process."""
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= dist.get_world_size()
    return tensor


def all_gather_object(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order (over the CPU group: picklable objects only)."""
    if not dist.is_initialized():
        return [value]
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value, group=_cpu_group)
    return values


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank `src`'s `value` on every rank."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src, group=_cpu_group)
    return box[0]
