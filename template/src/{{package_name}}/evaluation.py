"""Evaluation on the held-out split: the task's metric, exact across ranks.

Every rank runs its own share of the held-out samples (each sample exactly once over all
ranks, see `data.build_eval_loader`) through the unwrapped model, under `no_grad` and the
run's autocast, and adds up the task's per-batch sums (`task.eval_sums`: summed loss, correct
predictions, count). One all-reduce adds the ranks' sums, so the metric is the same number
for one process and for several, and `task.eval_metrics` turns the totals into
`{"loss": ..., task.METRIC: ...}`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.distributed as torch_dist
from torch.utils.data import DataLoader

from . import data, task


class Evaluator:
    """Evaluates a model on one rank's held-out loader; call it on every rank together."""

    def __init__(
        self,
        loader: DataLoader,
        *,
        num_samples: int,
        device: torch.device,
        memory_format: torch.memory_format,
        autocast: Callable[[], contextlib.AbstractContextManager],
    ) -> None:
        self.loader = loader
        # Over all ranks: what the banner reports.
        self.num_samples = num_samples
        self.device = device
        self.memory_format = memory_format
        self.autocast = autocast

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """The task's metrics over the whole held-out split; the model is left in train mode."""
        if torch_dist.is_initialized():
            # DDP copies rank 0's buffers (batch-norm statistics) at the start of each forward,
            # so after the last step every rank has its own: evaluate rank 0's, the saved ones.
            for buffer in model.buffers():
                torch_dist.broadcast(buffer, src=0)
        was_training = model.training
        model.eval()
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        try:
            for batch in self.loader:
                inputs, targets = data.to_device(batch, self.device, self.memory_format)
                with self.autocast():
                    outputs = model(inputs)
                sums += task.eval_sums(outputs, targets)
        finally:
            model.train(was_training)
        if torch_dist.is_initialized():
            torch_dist.all_reduce(sums, op=torch_dist.ReduceOp.SUM)
        return task.eval_metrics(sums.tolist())


def improves(values: dict[str, float], best: dict[str, float] | None) -> bool:
    """Whether held-out `values` beat the best so far: a better task.METRIC, or the same one
    (small held-out sets tie often) with a lower loss."""
    if best is None:
        return True
    value, best_value = values[task.METRIC], best["value"]
    if value == best_value:
        return values["loss"] < best["loss"]
    return value > best_value if task.HIGHER_IS_BETTER else value < best_value
