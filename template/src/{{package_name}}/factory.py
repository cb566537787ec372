"""Builds the parts of a training run from its config: model, optimizer, schedule, gradient
scaler, the training stream and the held-out evaluator. `train.Trainer` gets them ready-made
and only runs the loop, so changing how a part is made (another optimizer, a pretrained
backbone, a second dataset) happens here, and the loop stays as it is.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, Subset

from . import config, data, rng, stack, task
from .config import Config
from .dist import DistInfo
from .evaluation import Evaluator
from .model import build_model
from .options import require


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision. `auto` follows the stack on CUDA."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    name = stack.AMP_DTYPE if amp == "auto" else amp
    require(
        name != "float16" or device.type == "cuda",
        "--amp float16 needs CUDA; use bfloat16 or off on the CPU",
    )
    return getattr(torch, name)


def autocast(device_type: str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision for a forward pass; a no-op at full precision (dtype None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def configure_backends(device: torch.device, tf32: bool) -> None:
    """Speed settings that change no results beyond TF32's rounding."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    # Fixed input shapes: let cuDNN time its algorithms once and keep the fastest.
    torch.backends.cudnn.benchmark = True


def lr_factor(step: int, *, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to `min_ratio` at `max_steps`."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(
    model: torch.nn.Module, cfg: config.OptimConfig, device: torch.device
) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases and norm weights; the fused kernel on CUDA."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = True if device.type == "cuda" else None
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


def build_datasets(cfg: Config) -> tuple[Dataset, Dataset | None, list[str] | None]:
    """(training set, held-out set or None, class names or None).

    The held-out set is `--val-data-dir`, or a `--val-fraction` of the data chosen by the seed
    and seen through the task's evaluation view (no augmentation)."""
    common = {"num_synthetic_samples": cfg.data.num_synthetic_samples, "seed": cfg.train.seed}
    source = cfg.data.data_dir
    training = task.build_dataset(cfg.task, source, train=True, **common)
    labels = getattr(training, "classes", None)
    labels = list(labels) if labels is not None else None
    if cfg.data.val_data_dir:
        held_out = task.build_dataset(cfg.task, cfg.data.val_data_dir, train=False, **common)
        held_out_labels = getattr(held_out, "classes", None)
        require(
            held_out_labels is None or list(held_out_labels) == labels,
            f"--val-data-dir has the classes {list(held_out_labels or [])}, the training data "
            f"{labels}; give both folders the same class sub-folders",
        )
        return training, held_out, labels
    if cfg.data.val_fraction == 0:
        return training, None, labels
    evaluation_view = task.build_dataset(cfg.task, source, train=False, **common)
    train_indices, held_out_indices = data.split_indices(
        len(training), cfg.data.val_fraction, cfg.train.seed
    )
    return Subset(training, train_indices), Subset(evaluation_view, held_out_indices), labels


@dataclass
class Parts:
    """Everything the training loop uses, built for one rank."""

    model: torch.nn.Module  # unwrapped, on the device: what checkpoints save
    train_model: torch.nn.Module  # what the loop calls: compiled and/or wrapped in DDP
    eval_model: torch.nn.Module  # the model evaluation calls: compiled or not, never DDP
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    stream: data.BatchStream
    evaluator: Evaluator | None
    labels: list[str] | None
    amp_dtype: torch.dtype | None
    device: torch.device
    num_train_samples: int

    def autocast(self) -> contextlib.AbstractContextManager:
        """The run's mixed precision for a forward pass (a no-op at full precision)."""
        return autocast(self.device.type, self.amp_dtype)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def build_parts(cfg: Config, info: DistInfo) -> Parts:
    """The parts of a run for this rank; ValueError for input the user must change."""
    device = info.device
    amp_dtype = resolve_amp(cfg.train.amp, device)
    configure_backends(device, cfg.train.tf32)
    memory_format = task.MEMORY_FORMAT if device.type == "cuda" else torch.contiguous_format

    # Same seed on every rank: identical initial weights (DDP would copy rank 0's anyway).
    rng.seed_everything(cfg.train.seed)
    model = build_model(cfg.task).to(device, memory_format=memory_format)
    optimizer = build_optimizer(model, cfg.optim, device)
    schedule = functools.partial(
        lr_factor,
        warmup_steps=cfg.optim.warmup_steps,
        max_steps=cfg.train.max_steps,
        min_ratio=cfg.optim.min_lr / cfg.optim.lr,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    # float16 needs loss scaling to keep small gradients from flushing to zero; bf16 not.
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

    training, held_out, labels = build_datasets(cfg)
    loader = data.build_loader(
        training,
        batch_size=cfg.data.batch_size,
        num_workers=cfg.data.num_workers,
        rank=info.rank,
        world_size=info.world_size,
        seed=cfg.train.seed,
        device=device,
    )
    stream = data.BatchStream(loader, device, memory_format)

    forward_model = torch.compile(model) if cfg.train.compile else model
    train_model = forward_model
    if info.distributed:
        device_ids = [device.index] if device.type == "cuda" else None
        train_model = DistributedDataParallel(forward_model, device_ids=device_ids)

    parts = Parts(
        model=model,
        train_model=train_model,
        eval_model=forward_model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        stream=stream,
        evaluator=None,
        labels=labels,
        amp_dtype=amp_dtype,
        device=device,
        num_train_samples=len(training),
    )
    if held_out is not None:
        eval_loader = data.build_eval_loader(
            held_out,
            batch_size=cfg.data.batch_size,
            num_workers=cfg.data.num_workers,
            rank=info.rank,
            world_size=info.world_size,
            device=device,
        )
        parts.evaluator = Evaluator(
            eval_loader,
            num_samples=len(held_out),
            device=device,
            memory_format=memory_format,
            # Not parts.autocast: a reference back to the parts would put the DataLoaders in
            # a reference cycle, whose garbage collection closes their queues before their
            # workers are told to stop (a 10 s hang per worker at exit).
            autocast=functools.partial(autocast, device.type, amp_dtype),
        )
    return parts
