"""Training entry point: the same command on a laptop, in the dev container, in CI and on clusters.

    torchrun --standalone --nproc-per-node=gpu -m <package>.train             # every local GPU
    torchrun --standalone --nproc-per-node=2 -m <package>.train --device cpu  # 2 CPU ranks (gloo)
    python -m <package>.train --config configs/tiny.yaml --device cpu        # one process
    python -m <package>.train --help                                          # every option

It trains on the task's synthetic data until `--data-dir` points at real data (see task.py),
writes checkpoints to `<output-dir>/checkpoints/` every `--checkpoint-interval` steps and at the
end, and on start resumes from the newest one that loads, so rerunning the same command after a
crash, a preemption or a `torchrun --max-restarts` restart continues where the run stopped, with
the same data order and random numbers. SIGTERM and SIGUSR1 save at a step boundary and exit 0.
`<output-dir>/summary.json` says how it ended.

The loop reads nothing back from the GPU between log intervals: the loss is summed on the
device and averaged over ranks every `--log-interval` steps.

Tests only: with TRAIN_TEST_KILL_AT_STEP=K (and TRAIN_TEST_KILL_RANK=R, default 1) rank R kills
itself with SIGKILL after step K on torchrun's first attempt, to prove that a restart loses
nothing.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import gc
import logging
import math
import os
import random
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from . import checkpoint, config, data, dist, metrics, stack, task
from .config import Config
from .dist import DistInfo
from .model import build_model
from .preemption import Preemption

# Not __name__: that is "__main__" under `python -m`, outside the package logger.
logger = logging.getLogger(f"{__package__}.train")


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision. `auto` follows the stack on CUDA."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    name = stack.AMP_DTYPE if amp == "auto" else amp
    if name == "float16" and device.type != "cuda":
        raise ValueError("--amp float16 needs CUDA; use bfloat16 or off on the CPU")
    return getattr(torch, name)


def configure_backends(device: torch.device, tf32: bool) -> None:
    """Speed settings that change no results beyond TF32's rounding."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    # Fixed input shapes: let cuDNN time its algorithms once and keep the fastest.
    torch.backends.cudnn.benchmark = True


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % 2**32)


def lr_factor(step: int, *, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to `min_ratio` at `max_steps`."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(model: torch.nn.Module, cfg: config.OptimConfig, device: torch.device):
    """AdamW; no weight decay on biases and norm weights; the fused kernel on CUDA."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = True if device.type == "cuda" else None
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


def config_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`section.option: old -> new` for every option that differs from the checkpoint's."""
    return [
        f"{section}.{key}: {saved.get(section, {}).get(key)!r} -> {value!r}"
        for section, values in current.items()
        for key, value in values.items()
        if saved.get(section, {}).get(key, value) != value
    ]


class Trainer:
    """Builds the model, optimizer and data for `cfg`, resumes, and runs the loop."""

    def __init__(self, cfg: Config, info: DistInfo, kill_at_step: int | None = None) -> None:
        self.cfg = cfg
        self.info = info
        self.device = info.device
        self.output_dir = Path(cfg.train.output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self.kill_at_step = kill_at_step
        self.amp_dtype = resolve_amp(cfg.train.amp, self.device)
        configure_backends(self.device, cfg.train.tf32)
        on_cuda = self.device.type == "cuda"
        memory_format = task.MEMORY_FORMAT if on_cuda else torch.contiguous_format

        # Same seed on every rank: identical initial weights (DDP would copy rank 0's anyway).
        seed_everything(cfg.train.seed)
        self.raw_model = build_model(cfg.task).to(self.device, memory_format=memory_format)
        self.parameters = [p for p in self.raw_model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.raw_model, cfg.optim, self.device)
        schedule = functools.partial(
            lr_factor,
            warmup_steps=cfg.optim.warmup_steps,
            max_steps=cfg.train.max_steps,
            min_ratio=cfg.optim.min_lr / cfg.optim.lr,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        # float16 needs loss scaling to keep small gradients from flushing to zero; bf16 not.
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

        dataset = task.build_dataset(
            cfg.task, cfg.data.data_dir, cfg.data.num_synthetic_samples, cfg.train.seed
        )
        loader = data.build_loader(
            dataset,
            batch_size=cfg.data.batch_size,
            num_workers=cfg.data.num_workers,
            rank=info.rank,
            world_size=info.world_size,
            seed=cfg.train.seed,
            device=self.device,
        )
        self.stream = data.BatchStream(loader, self.device, memory_format)

        self.step = 0
        self.last_loss: float | None = None
        self.resumed_from: int | None = None
        # Each rank its own dropout and augmentation stream; a resume replaces these states.
        seed_everything(cfg.train.seed * 1000 + info.rank + 1)
        if cfg.checkpoint.resume:
            self.resume()
        else:
            self.refuse_old_checkpoints()

        self.model = self.raw_model
        if cfg.train.compile:
            self.model = torch.compile(self.model)
        if info.distributed:
            device_ids = [self.device.index] if on_cuda else None
            self.model = DistributedDataParallel(self.model, device_ids=device_ids)

        self.metrics = metrics.MetricsLogger(
            self.output_dir,
            enabled=info.is_main,
            total_steps=cfg.train.max_steps,
            start_step=self.step,
        )
        self.preemption = Preemption(dist.cpu_group())
        # Device-side sums between reports: reading them back is the only sync.
        self.loss_sum = torch.zeros((), device=self.device)
        self.steps_since_report = 0
        self.grad_norm: torch.Tensor | None = None
        self.report_time = time.perf_counter()

    # --- checkpoints -------------------------------------------------------------------------

    def resume(self) -> None:
        """Load the newest checkpoint that loads; rank 0 chooses, every rank reads it."""
        found = None
        if self.info.is_main:
            checkpoint.remove_temporary_files(self.checkpoint_dir)
            found = checkpoint.find_latest(self.checkpoint_dir)
        chosen = dist.broadcast_object(str(found[0]) if found else None)
        if chosen is None:
            return
        if found is not None:
            state = found[1]
        else:
            try:
                state = checkpoint.load(Path(chosen))
            except Exception as error:
                raise RuntimeError(
                    f"rank {self.info.rank} cannot read {chosen}, which rank 0 resumes from "
                    f"({error}); the output directory must be storage that every node sees"
                ) from error
        # Said before loading, so that a changed model size explains the shape errors below.
        changes = config_changes(state.get("config", {}), self.cfg.to_dict())
        if changes:
            logger.warning("config differs from the checkpoint's: %s", "; ".join(changes))
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.stream.load_state_dict(state["data"])
        self.step = self.resumed_from = int(state["step"])
        self.last_loss = state.get("loss")
        saved_world_size = len(state["rng"])
        if saved_world_size == self.info.world_size:
            checkpoint.set_rng_state(state["rng"][self.info.rank])
        else:
            logger.warning(
                "checkpoint saved by %d ranks, resuming on %d: random streams start afresh",
                saved_world_size,
                self.info.world_size,
            )
            seed_everything(self.cfg.train.seed * 1000 + self.info.rank + 1 + self.step)
        logger.info("resumed from %s (step %d)", chosen, self.step)

    def refuse_old_checkpoints(self) -> None:
        """--no-resume into a folder with checkpoints would mix two runs' files (and pruning
        would delete the new run's, whose steps are lower): refuse, on every rank."""
        found = checkpoint.list_checkpoints(self.checkpoint_dir) if self.info.is_main else []
        newest = dist.broadcast_object(str(found[0]) if found else None)
        if newest is not None:
            raise ValueError(
                f"--no-resume, but {newest} is from an earlier run; use another --output-dir "
                f"or delete {self.checkpoint_dir}"
            )

    def save(self) -> Path | None:
        """Every rank contributes its random states; global rank 0 writes."""
        rng = dist.all_gather_object(checkpoint.rng_state())
        if not self.info.is_main:
            return None
        state = {
            "format": checkpoint.FORMAT,
            "step": self.step,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "data": self.stream.state_dict(),
            "rng": rng,
            "world_size": self.info.world_size,
            "loss": self.last_loss,
            "config": self.cfg.to_dict(),
        }
        path = checkpoint.save(state, self.checkpoint_dir, self.cfg.checkpoint.keep_checkpoints)
        logger.info("saved %s", path)
        return path

    # --- the loop ----------------------------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self) -> None:
        """One optimizer step over `grad_accum_steps` micro-batches."""
        accum_steps = self.cfg.train.grad_accum_steps
        for micro_step in range(accum_steps):
            inputs, targets = self.stream.next()
            # Gradients are all-reduced once per optimizer step, on the last micro-batch.
            syncing = micro_step == accum_steps - 1 or not self.info.distributed
            with contextlib.nullcontext() if syncing else self.model.no_sync():
                with self.autocast():
                    loss = task.loss(self.model(inputs), targets)
                if accum_steps > 1:
                    loss = loss / accum_steps
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            self.loss_sum += loss.detach()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.cfg.optim.grad_clip > 0:
            self.grad_norm = torch.nn.utils.clip_grad_norm_(
                self.parameters, self.cfg.optim.grad_clip, foreach=True
            )
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        self.steps_since_report += 1

    def report(self) -> None:
        """Average the loss since the last report over steps and ranks, and log it."""
        if self.steps_since_report == 0:
            return
        loss = dist.all_reduce_mean(self.loss_sum / self.steps_since_report)
        now = time.perf_counter()
        steps_per_second = self.steps_since_report / max(now - self.report_time, 1e-9)
        samples_per_step = (
            self.cfg.data.batch_size * self.cfg.train.grad_accum_steps * self.info.world_size
        )
        values = {
            "loss": loss.item(),
            "lr": self.scheduler.get_last_lr()[0],
            "steps_per_second": steps_per_second,
            "samples_per_second": steps_per_second * samples_per_step,
        }
        if self.grad_norm is not None:
            values["grad_norm"] = self.grad_norm.item()
        self.last_loss = values["loss"]
        self.metrics.log(self.step, values)
        self.loss_sum.zero_()
        self.steps_since_report = 0
        self.report_time = now

    def end_of_step(self) -> bool:
        """Report, checkpoint and agree on preemption between steps; True means stop now."""
        self.metrics.advance()
        step, cfg = self.step, self.cfg
        stop = self.preemption.should_stop()
        checkpoint_due = (
            stop or step % cfg.checkpoint.checkpoint_interval == 0 or step == cfg.train.max_steps
        )
        # Checkpoints come with a report, so a resumed run's reports match an uninterrupted one's.
        if checkpoint_due or step % cfg.train.log_interval == 0:
            self.report()
        if checkpoint_due:
            self.save()
        return stop

    def run(self, until_step: int) -> None:
        """Train until `until_step`, or until the step at which a preemption signal stops it."""
        while self.step < until_step:
            if self.step == self.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            self.train_step()
            if self.end_of_step():
                return

    def fit(self) -> dict[str, Any]:
        """Train to max_steps (or a preemption), then write summary.json; returns it."""
        started, start_step = time.perf_counter(), self.step
        self.write_environment()
        with self.preemption:
            self.run(self.cfg.train.max_steps)
        elapsed = time.perf_counter() - started
        completed = self.step >= self.cfg.train.max_steps
        summary = {
            "status": "completed" if completed else "preempted",
            "signal": self.preemption.received,
            "step": self.step,
            "max_steps": self.cfg.train.max_steps,
            "loss": self.last_loss,
            "world_size": self.info.world_size,
            "resumed_from": self.resumed_from,
            "steps_this_run": self.step - start_step,
            "seconds_this_run": round(elapsed, 3),
            "checkpoint": str(checkpoint.path_for(self.checkpoint_dir, self.step)),
        }
        self.metrics.write_summary(summary)
        logger.info("%s at step %d, loss %s", summary["status"], self.step, self.last_loss)
        return summary

    def write_environment(self) -> None:
        if not self.info.is_main:
            return
        source = Path(__file__).resolve().parent
        record = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": sys.argv,
            "world_size": self.info.world_size,
            "backend": self.info.backend,
            "restart_count": self.info.restart_count,
            "resumed_from": self.resumed_from,
            "amp": str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else "off",
            **metrics.environment(self.device),
            "git_commit": metrics.git_commit(source),
            "answers": metrics.copier_answers(source),
            "config": self.cfg.to_dict(),
        }
        self.metrics.write_environment(record)

    def close(self) -> None:
        self.metrics.close()


def kill_step_for(info: DistInfo) -> int | None:
    """The test-only fault injection step for this rank (see the module docstring)."""
    step = os.environ.get("TRAIN_TEST_KILL_AT_STEP", "")
    rank = int(os.environ.get("TRAIN_TEST_KILL_RANK", "1"))
    if not step or info.restart_count > 0 or info.rank != rank:
        return None
    return int(step)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, train, and return the exit status."""
    cfg, print_config = config.parse_args(argv)
    if print_config:
        print(config.dump(cfg), end="")
        return 0
    # A rank that dies in C++ (an abort, a segfault) or is sent SIGABRT prints where every
    # Python thread was, instead of only torchrun's "exitcode: -6". (Test runners enable it
    # themselves, on their own file.)
    if not faulthandler.is_enabled():
        faulthandler.enable()
    trainer = None
    try:
        try:
            info = dist.init_distributed(cfg.train.device)
            metrics.setup_logging(info.rank)
            trainer = Trainer(cfg, info, kill_at_step=kill_step_for(info))
        except ValueError as error:
            # Problems with the user's input (no GPU for --device cuda, a data folder that
            # does not match the config): one line, not a traceback.
            print(f"error: {error}", file=sys.stderr)
            return 2
        trainer.fit()
        # Leave together: a rank that tears its process group down while a peer is still in
        # its last collective can take the peer down with it (seen across two torchrun nodes).
        dist.barrier()
        return 0
    finally:
        if trainer is not None:
            trainer.close()
        # DDP and pending collectives hold the process group and tensors: free them now, while
        # the interpreter is whole, so that no gloo/NCCL thread outlives the group and touches
        # Python objects during interpreter shutdown (which aborts the process).
        trainer = None
        gc.collect()
        dist.destroy_distributed()


if __name__ == "__main__":
    sys.exit(main())
