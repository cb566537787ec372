"""Training entry point: the same command on a laptop, in the dev container, in CI and on clusters.

    torchrun --standalone --nproc-per-node=gpu -m <package>.train             # every local GPU
    torchrun --standalone --nproc-per-node=2 -m <package>.train --device cpu  # 2 CPU ranks (gloo)
    python -m <package>.train --config configs/tiny.yaml --device cpu        # one process
    python -m <package>.train --help                                          # every option

It trains on the task's synthetic data until `--data-dir` points at real data (see task.py),
holds out `--val-fraction` of it (or uses `--val-data-dir`) and evaluates the task's metric
there every `--eval-interval` steps and at the end, keeping the best model as
`<output-dir>/checkpoints/best.pt`. It writes checkpoints to `<output-dir>/checkpoints/` every
`--checkpoint-interval` steps and at the end, and on start resumes from the newest one that
loads, so rerunning the same command after a crash, a preemption or a `torchrun --max-restarts`
restart continues where the run stopped, with the same data order and random numbers. A run
with another model or data configuration refuses to resume another configuration's
checkpoints. SIGTERM, SIGUSR1 and a first Ctrl-C save at a step boundary and exit 0 (a second
Ctrl-C aborts at once). `<output-dir>/summary.json` says how it ended.

The loop reads nothing back from the GPU between log intervals: the loss is summed on the
device and averaged over ranks every `--log-interval` steps.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import logging
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from . import checkpoint, config, dist, evaluation, factory, metrics, rng, task
from .config import Config
from .dist import DistInfo
from .factory import Parts
from .preemption import Aborted, Preemption

# Not __name__: that is "__main__" under `python -m`, outside the package logger.
logger = logging.getLogger(f"{__package__}.train")


@dataclass
class Progress:
    """Where the run is: the step, the last reported loss, the best held-out result so far.
    The checkpoint header holds the step; the rest is the checkpoint's `progress` entry."""

    step: int = 0
    loss: float | None = None
    # {"step", "metric", "value", "loss"} of best.pt, or None before the first evaluation.
    best: dict[str, Any] | None = None
    # The last evaluation, {"step", "values"}: summary.json reports it, and a run stopped
    # before an evaluation that was due does it on resume.
    evaluation: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "best": self.best, "evaluation": self.evaluation}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loss, self.best, self.evaluation = state["loss"], state["best"], state["evaluation"]


class ConfigState:
    """The run's config in checkpoints; loading one of another experiment is refused."""

    def __init__(self, cfg: Config, source: str = "the checkpoint") -> None:
        self.cfg = cfg
        self.source = source

    def state_dict(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        identity, other = config.changes(saved, self.cfg.to_dict())
        if identity:
            raise ValueError(
                f"{self.source} is from a run with another model or data configuration "
                f"({'; '.join(identity)}); use another --output-dir for this experiment, or "
                "the checkpoint's values to resume it"
            )
        if other:
            logger.warning("config differs from the checkpoint's: %s", "; ".join(other))


class LabelsState:
    """The class names of the training data, which predict and export take from the file."""

    def __init__(self, labels: list[str] | None) -> None:
        self.labels = labels

    def state_dict(self) -> list[str] | None:
        return self.labels

    def load_state_dict(self, saved: list[str] | None) -> None:
        if saved != self.labels:
            raise ValueError(
                f"the checkpoint was trained on the classes {saved}, the data now has "
                f"{self.labels}; use another --output-dir for this data"
            )


class ScalerState:
    """The gradient scaler's state, or {} for a run without one (bf16, full precision)."""

    def __init__(self, scaler: torch.amp.GradScaler | None) -> None:
        self.scaler = scaler

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        if self.scaler is not None and saved:
            self.scaler.load_state_dict(saved)


class RandomStates:
    """Every rank's random generators: gathered from all ranks on save, each rank its own on
    load; with another number of ranks, fresh streams for the resumed step."""

    def __init__(self, info: DistInfo, seed: int, progress: Progress) -> None:
        self.info = info
        self.seed = seed
        self.progress = progress

    def state_dict(self) -> list[dict[str, Any]]:
        return dist.all_gather_object(rng.state())

    def load_state_dict(self, saved: list[dict[str, Any]]) -> None:
        if len(saved) == self.info.world_size:
            rng.set_state(saved[self.info.rank])
            return
        logger.warning(
            "checkpoint saved by %d ranks, resuming on %d: random streams start afresh",
            len(saved),
            self.info.world_size,
        )
        rng.seed_everything(rng.rank_seed(self.seed, self.info.rank, self.progress.step))


class Trainer:
    """Runs the loop over ready-made parts (see factory.py), checkpoints, evaluates, resumes."""

    def __init__(
        self,
        cfg: Config,
        info: DistInfo,
        parts: Parts,
        console: metrics.Console | None = None,
        preemption: Preemption | None = None,
    ) -> None:
        self.cfg = cfg
        self.info = info
        self.parts = parts
        self.device = info.device
        self.output_dir = Path(cfg.train.output_dir)
        self.progress = Progress()
        self.resumed_from: int | None = None
        self.parameters = [p for p in parts.model.parameters() if p.requires_grad]

        # The checkpoint format: one line per piece of state (see checkpoint.py). config and
        # labels load first, so that another experiment is refused before anything changes.
        self.checkpointer = checkpoint.Checkpointer(
            self.output_dir / "checkpoints",
            keep=cfg.checkpoint.keep_checkpoints,
            is_main=info.is_main,
            header={"world_size": info.world_size, "task": task.KIND},
        )
        self.config_state = ConfigState(cfg)
        self.checkpointer.register("config", self.config_state)
        self.checkpointer.register("labels", LabelsState(parts.labels))
        self.checkpointer.register("model", parts.model)
        self.checkpointer.register("optimizer", parts.optimizer)
        self.checkpointer.register("scheduler", parts.scheduler)
        self.checkpointer.register("scaler", ScalerState(parts.scaler))
        self.checkpointer.register("data", parts.stream)
        self.checkpointer.register("progress", self.progress)
        self.checkpointer.register("rng", RandomStates(info, cfg.train.seed, self.progress))

        # Each rank its own dropout and augmentation stream; a resume replaces these states.
        rng.seed_everything(rng.rank_seed(cfg.train.seed, info.rank))
        if cfg.checkpoint.resume:
            self.resume()
        else:
            self.refuse_old_checkpoints()

        self.metrics = metrics.MetricsLogger(
            self.output_dir,
            enabled=info.is_main,
            total_steps=cfg.train.max_steps,
            start_step=self.progress.step,
            console=console,
        )
        self.preemption = preemption or Preemption()
        self.preemption.attach(dist.cpu_group())
        # Device-side sums between reports: reading them back is the only sync.
        self.loss_sum = torch.zeros((), device=self.device)
        self.steps_since_report = 0
        self.grad_norm: torch.Tensor | None = None
        self.report_time = time.perf_counter()

    @property
    def step(self) -> int:
        return self.progress.step

    # --- checkpoints -------------------------------------------------------------------------

    def resume(self) -> None:
        """Load the newest checkpoint that loads; rank 0 chooses, every rank reads it."""
        found = self.checkpointer.find_latest()
        refusal = None
        if self.info.is_main and found is None:
            unreadable = checkpoint.list_checkpoints(self.checkpointer.directory)
            if unreadable:
                # Starting afresh next to them would prune the new run's (lower) steps first.
                refusal = (
                    f"none of the {len(unreadable)} checkpoints in {self.checkpointer.directory} "
                    "loads (see the warnings above: damaged, or written by another version of "
                    "this code); move them away or use another --output-dir"
                )
        chosen, refusal = dist.broadcast_object((str(found[0]) if found else None, refusal))
        if refusal is not None:
            raise ValueError(refusal)
        if chosen is None:
            return
        if found is not None:
            state = found[1]
        else:
            try:
                state = checkpoint.load(Path(chosen), self.checkpointer.required)
            except Exception as error:
                raise RuntimeError(
                    f"rank {self.info.rank} cannot read {chosen}, which rank 0 resumes from "
                    f"({error}); the output directory must be storage that every node sees"
                ) from error
        self.config_state.source = chosen
        self.progress.step = int(state["step"])
        self.checkpointer.load_state_dict(state)
        self.resumed_from = self.progress.step
        logger.info("resumed from %s (step %d)", chosen, self.progress.step)

    def refuse_old_checkpoints(self) -> None:
        """--no-resume into a folder with checkpoints would mix two runs' files (and pruning
        would delete the new run's, whose steps are lower): refuse, on every rank."""
        directory = self.checkpointer.directory
        found = []
        if self.info.is_main:
            found = checkpoint.list_checkpoints(directory)
            found += (
                [directory / checkpoint.BEST] if (directory / checkpoint.BEST).is_file() else []
            )
        newest = dist.broadcast_object(str(found[0]) if found else None)
        if newest is not None:
            raise ValueError(
                f"--no-resume, but {newest} is from an earlier run; use another --output-dir "
                f"or delete {directory}"
            )

    def save(self, best: bool) -> None:
        """Every rank contributes its random states; global rank 0 writes."""
        path = self.checkpointer.save(self.step, best=best)
        if path is not None:
            logger.info("saved %s%s", path, " (and best.pt)" if best else "")

    # --- the loop ----------------------------------------------------------------------------

    def train_step(self) -> None:
        """One optimizer step over `grad_accum_steps` micro-batches."""
        parts, accum_steps = self.parts, self.cfg.train.grad_accum_steps
        for micro_step in range(accum_steps):
            inputs, targets = parts.stream.next()
            # Gradients are all-reduced once per optimizer step, on the last micro-batch.
            syncing = micro_step == accum_steps - 1 or not self.info.distributed
            with contextlib.nullcontext() if syncing else parts.train_model.no_sync():
                with parts.autocast():
                    loss = task.loss(parts.train_model(inputs), targets)
                if accum_steps > 1:
                    loss = loss / accum_steps
                (parts.scaler.scale(loss) if parts.scaler is not None else loss).backward()
            self.loss_sum += loss.detach()
        if parts.scaler is not None:
            parts.scaler.unscale_(parts.optimizer)
        if self.cfg.optim.grad_clip > 0:
            self.grad_norm = torch.nn.utils.clip_grad_norm_(
                self.parameters, self.cfg.optim.grad_clip, foreach=True
            )
        if parts.scaler is not None:
            parts.scaler.step(parts.optimizer)
            parts.scaler.update()
        else:
            parts.optimizer.step()
        parts.optimizer.zero_grad(set_to_none=True)
        parts.scheduler.step()
        self.progress.step += 1
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
            "lr": self.parts.scheduler.get_last_lr()[0],
            "steps_per_second": steps_per_second,
            "samples_per_second": steps_per_second * samples_per_step,
        }
        if self.grad_norm is not None:
            values["grad_norm"] = self.grad_norm.item()
        self.progress.loss = values["loss"]
        self.metrics.log(self.step, values)
        self.loss_sum.zero_()
        self.steps_since_report = 0
        self.report_time = now

    def evaluate(self) -> bool:
        """The held-out metrics of the current weights, logged; True when they are the best."""
        values = self.parts.evaluator.evaluate(self.parts.eval_model)
        self.progress.evaluation = {"step": self.step, "values": values}
        improved = evaluation.improves(values, self.progress.best)
        if improved:
            self.progress.best = {
                "step": self.step,
                "metric": task.METRIC,
                "value": values[task.METRIC],
                "loss": values["loss"],
            }
        self.metrics.log_eval(self.step, values, improved)
        return improved

    def eval_due(self, step: int) -> bool:
        """Whether the held-out split is evaluated after `step`."""
        interval = self.cfg.train.eval_interval
        return self.parts.evaluator is not None and (
            step == self.cfg.train.max_steps or (interval > 0 and step % interval == 0)
        )

    def catch_up_evaluation(self) -> None:
        """A run stopped at a step whose evaluation was due (it left without one, to be quick):
        do it now, so that the resumed run evaluates where an uninterrupted one did."""
        step, evaluated = self.step, self.progress.evaluation
        if step == 0 or not self.eval_due(step):
            return
        if (evaluated is None or evaluated["step"] != step) and self.evaluate():
            self.checkpointer.save_best(step)

    def end_of_step(self) -> bool:
        """Report, evaluate, checkpoint and agree on preemption between steps; True: stop."""
        self.metrics.advance()
        step, cfg = self.step, self.cfg
        stop = self.preemption.should_stop()
        final = step == cfg.train.max_steps
        checkpoint_due = stop or final or step % cfg.checkpoint.checkpoint_interval == 0
        # A stopping run leaves quickly (catch_up_evaluation does it on resume).
        eval_due = not stop and self.eval_due(step)
        # Checkpoints come with a report, so a resumed run's reports match an uninterrupted one's.
        if checkpoint_due or step % cfg.train.log_interval == 0:
            self.report()
        best = self.evaluate() if eval_due else False
        if checkpoint_due:
            self.save(best)
        elif best:
            self.checkpointer.save_best(step)
        return stop

    def run(self, until_step: int) -> None:
        """Train until `until_step`, or until the step at which a preemption signal stops it."""
        while self.step < until_step:
            self.train_step()
            if self.end_of_step():
                return

    def fit(self) -> dict[str, Any]:
        """Train to max_steps (or a preemption), then write summary.json; returns it."""
        started, start_step = time.perf_counter(), self.step
        self.write_environment()
        self.log_banner()
        self.catch_up_evaluation()
        with self.preemption:
            self.run(self.cfg.train.max_steps)
        elapsed = time.perf_counter() - started
        completed = self.step >= self.cfg.train.max_steps
        best = self.progress.best
        summary = {
            "status": "completed" if completed else "preempted",
            "signal": self.preemption.received,
            "step": self.step,
            "max_steps": self.cfg.train.max_steps,
            "loss": self.progress.loss,
            "world_size": self.info.world_size,
            "resumed_from": self.resumed_from,
            "steps_this_run": self.step - start_step,
            "seconds_this_run": round(elapsed, 3),
            "checkpoint": str(checkpoint.path_for(self.checkpointer.directory, self.step)),
            "eval": self.progress.evaluation and self.progress.evaluation["values"],
            "best": best
            and {**best, "checkpoint": str(self.checkpointer.directory / checkpoint.BEST)},
        }
        self.metrics.write_summary(summary)
        logger.info("%s at step %d, loss %s", summary["status"], self.step, self.progress.loss)
        if best:
            logger.info(
                "best %s %.4g at step %d: %s",
                best["metric"],
                best["value"],
                best["step"],
                summary["best"]["checkpoint"],
            )
        return summary

    def log_banner(self) -> None:
        """What this run is, in one block at the start: device, ranks, sizes, where it writes."""
        parts, info = self.parts, self.info
        backend = f"{info.backend}, " if info.backend else ""
        evaluated = parts.evaluator.num_samples if parts.evaluator else 0
        source = self.cfg.data.data_dir or "synthetic data"
        start = f"resuming at step {self.step}" if self.resumed_from is not None else "from scratch"
        logger.info(
            "device %s (%s%d rank%s), %s parameters, %d training / %d held-out samples of %s, "
            "%s to step %d, output %s",
            self.device,
            backend,
            info.world_size,
            "s" * (info.world_size != 1),
            f"{parts.num_parameters:,}",
            parts.num_train_samples,
            evaluated,
            source,
            start,
            self.cfg.train.max_steps,
            self.output_dir,
        )
        if self.metrics.tensorboard_command:
            logger.info("TensorBoard: %s", self.metrics.tensorboard_command)

    def write_environment(self) -> None:
        if not self.info.is_main:
            return
        source = Path(__file__).resolve().parent
        amp_dtype = self.parts.amp_dtype
        record = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": sys.argv,
            "world_size": self.info.world_size,
            "backend": self.info.backend,
            "restart_count": self.info.restart_count,
            "resumed_from": self.resumed_from,
            "amp": str(amp_dtype).removeprefix("torch.") if amp_dtype else "off",
            **metrics.environment(self.device),
            "git_commit": metrics.git_commit(source),
            "answers": metrics.copier_answers(source),
            "config": self.cfg.to_dict(),
        }
        self.metrics.write_environment(record)

    def close(self) -> None:
        """Close the log files and let go of the parts, whose DataLoader workers then stop."""
        self.metrics.close()
        self.parts = None
        self.checkpointer.parts.clear()


def build_trainer(
    cfg: Config,
    info: DistInfo,
    console: metrics.Console | None = None,
    preemption: Preemption | None = None,
) -> Trainer:
    """The parts for `cfg` (factory.py), handed to a Trainer."""
    return Trainer(cfg, info, factory.build_parts(cfg, info), console, preemption)


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
    # Stop signals are kept from here on: one during a slow start (the rendezvous, the data,
    # compile) stops the run after its first step, with a checkpoint, instead of killing it.
    with Preemption() as preemption:
        try:
            try:
                info = dist.init_distributed(cfg.train.device)
                log_file = Path(cfg.train.output_dir) / "train.log" if info.is_main else None
                console = metrics.setup_logging(info.rank, log_file)
                trainer = build_trainer(cfg, info, console, preemption)
            except ValueError as error:
                # Problems with the user's input (no GPU for --device cuda, a data folder that
                # does not match the config, another experiment's checkpoints): one line, not
                # a traceback.
                print(f"error: {error}", file=sys.stderr)
                return 2
            trainer.fit()
            # Leave together: a rank that tears its process group down while a peer is still
            # in its last collective can take the peer down with it (seen across two torchrun
            # nodes).
            dist.barrier()
            return 0
        except (Aborted, KeyboardInterrupt):
            step = trainer.step if trainer is not None else 0
            message = f"aborted at step {step}: what the last checkpoint holds is kept"
            print(message, file=sys.stderr)
            return 130
        finally:
            if trainer is not None:
                trainer.close()
            # DDP and pending collectives hold the process group and tensors: free them now,
            # while the interpreter is whole, so that no gloo/NCCL thread outlives the group
            # and touches Python objects during interpreter shutdown (which aborts the process).
            trainer = None
            gc.collect()
            dist.destroy_distributed()
            metrics.close_logging()


if __name__ == "__main__":
    dist.exit_process(main())
