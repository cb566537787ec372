"""Stop at a step boundary when the scheduler asks: SIGTERM (Kubernetes, and torchrun passing on
its own SIGTERM) or SIGUSR1 (Slurm's `--signal=USR1@<seconds>` before the time limit).

The handler only raises a flag; the training loop checks it between optimizer steps, saves a
checkpoint and exits with status 0. The ranks must agree on the step at which they stop (a
rank that saves while another starts the next step would wait forever), and a signal may reach
them at different moments, so each step boundary starts a small all-reduce of the flags over a
CPU (gloo) group and reads the result at the next boundary: no rank waits on it, no GPU sync,
and every rank stops after the same step.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preemption:
    """Installs the signal handlers on `__enter__` and restores the previous ones on exit."""

    def __init__(self, group: Any = None) -> None:
        # None: a single process, nothing to agree on.
        self.group = group if dist.is_initialized() else None
        self.received: str | None = None
        self._flag = torch.zeros(1, dtype=torch.int32)
        self._pending: Any = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Preemption:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        # Never leave a collective in flight when the process group goes away.
        if self._pending is not None:
            with contextlib.suppress(RuntimeError):
                self._pending.wait()
            self._pending = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
            logger.warning(
                "%s received: saving and exiting at the next step boundary", self.received
            )

    def should_stop(self) -> bool:
        """Called by every rank at every step boundary; True on all ranks at the same step."""
        if self.group is None:
            return self.received is not None
        if self._pending is not None:
            self._pending.wait()
            self._pending = None
            if self._flag.item():
                return True
        self._flag.fill_(int(self.received is not None))
        self._pending = dist.all_reduce(
            self._flag, op=dist.ReduceOp.MAX, group=self.group, async_op=True
        )
        return False
