"""Stop at a step boundary when asked: SIGTERM (Kubernetes, `docker stop`, and torchrun passing
on its own SIGTERM), SIGUSR1 (Slurm's `--signal=USR1@<seconds>` before the time limit) and the
first Ctrl-C (SIGINT). A later Ctrl-C aborts at once, losing the steps since the last
checkpoint.

The handler only raises a flag; the training loop checks it between optimizer steps, saves a
checkpoint and exits with status 0. The ranks must agree on the step at which they stop (a
rank that saves while another starts the next step would wait forever), and a signal may reach
them at different moments, so each step boundary starts a small all-reduce of the flags over a
CPU (gloo) group and reads the result at the next boundary: no rank waits on it, no GPU sync,
and every rank stops after the same step.

Signals come in pairs: Slurm signals every process of the job step and torchrun forwards its
own copy, and Ctrl-C reaches every process of the terminal's process group while torchrun
forwards one more. So once a signal has arrived, the handler stays installed until the process
exits (a default action in the final barrier would kill the rank and its peer with
"Connection reset by peer"): further SIGTERM and SIGUSR1 are ignored, and a SIGINT counts as
"abort" only when it comes more than REPEAT_WINDOW_S after the first signal.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
# Copies of one request (the terminal's Ctrl-C and torchrun's forwarded one) arrive within
# milliseconds of each other, a little later on a loaded machine; a person who presses Ctrl-C
# again after the "saving" message takes longer than this.
REPEAT_WINDOW_S = 2.0


class Aborted(KeyboardInterrupt):
    """A second Ctrl-C: stop now, without a checkpoint."""


class Preemption:
    """Installs the signal handlers on `__enter__`; on exit puts back the previous ones, unless
    a signal arrived (then ours stay, ignoring the copies that are still on their way).

    The entry point enters it first, before the process group and the data exist, so that a
    signal during a slow start (a rendezvous that waits for peers, a large dataset, compile)
    is kept rather than fatal: training then stops after its first step, with a checkpoint.
    Entering again (the Trainer's fit does) is a no-op; the outermost exit restores."""

    def __init__(self, group: Any = None) -> None:
        self.group: Any = None
        self.attach(group)
        self.received: str | None = None
        self.received_at = 0.0
        self._flag = torch.zeros(1, dtype=torch.int32)
        self._pending: Any = None
        self._previous: dict[int, Any] = {}
        self._depth = 0

    def attach(self, group: Any) -> None:
        """The (CPU) process group the ranks agree over; None: a single process."""
        self.group = group if dist.is_initialized() else None

    def __enter__(self) -> Preemption:
        self._depth += 1
        if self._depth == 1:
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Never leave a collective in flight when the process group goes away (the Trainer's
        # exit comes before the entry point tears the group down).
        if self._pending is not None:
            with contextlib.suppress(RuntimeError):
                self._pending.wait()
            self._pending = None
        self._depth -= 1
        if self._depth == 0 and self.received is None:
            self.restore()

    def restore(self) -> None:
        """Put back the handlers that were installed before `__enter__`."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received, self.received_at = name, time.monotonic()
            again = "; Ctrl-C again aborts at once" if signum == signal.SIGINT else ""
            logger.warning(
                "%s received: saving and exiting at the next step boundary%s", name, again
            )
            return
        if signum == signal.SIGINT and time.monotonic() - self.received_at > REPEAT_WINDOW_S:
            raise Aborted(f"{name} received twice")
        logger.debug("%s received again: ignored", name)

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
