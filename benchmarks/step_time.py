"""Time the generated training loop's step next to a bare hand-written PyTorch loop, with the
held-out evaluation off and on.

Both loops train the same model on the same synthetic dataset with the same AdamW, warmup +
cosine schedule and gradient clipping, in one process on the CPU, so the difference is what the
skeleton adds per step: its resumable sampler and device stream, the loss kept on the device,
reports every `log_interval` steps (metrics.jsonl), the preemption check. Checkpoints are left
out of the timed window on both sides (a checkpoint costs the same file write however it is
called). "eval off" is the skeleton with `--val-fraction 0`; "eval on" holds out the default
10% and evaluates every `--eval-every` steps of the window (writing best.pt when the metric
improves), so its ratio is what evaluation at that interval costs per step; "one eval" is the
time of one pass over the held-out split. Rounds rotate which loop goes first, so machine
noise hits all alike; the ratios are medians of per-round ratios (skeleton / bare, measured
back to back). Two sizes per task: the defaults (see `--help` of the generated train module)
and configs/tiny.yaml, whose steps take milliseconds, so the skeleton's fixed per-step cost
shows there if anywhere.

Usage:
    python benchmarks/step_time.py [--task cv|nlp|audio|all] [--size default|tiny|both]
                                   [--rounds N] [--steps N] [--tiny-steps N] [--python PATH]

It renders the template with copier (so run it with the template's .venv), then measures in a
Python that has torch: --python, else the project-test venv under .cache/ with CPU torch 2.13.0
(created by `pytest tests/project`), else this interpreter.

Target: eval-off ratio <= 1.03.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("cv", "nlp", "audio")
# The generated TrainConfig's eval_interval default.
DEFAULT_EVAL_INTERVAL = 500


# --- outer process: render, then measure in a Python with torch -------------------------------


def torch_python(explicit: str | None) -> str:
    if explicit:
        return explicit
    # The project tests' venv (CPU torch 2.13.0), not the ones with a torch companion.
    for candidate in sorted((ROOT / ".cache").glob("project-venv-*/bin/python")):
        ready = candidate.parent.parent / ".ready"
        if ready.is_file() and "torch==2.13.0" in ready.read_text().split():
            return str(candidate)
    return sys.executable


def render(task: str, destination: Path) -> Path:
    from copier import run_copy

    project = destination / f"bench_{task}"
    run_copy(
        str(ROOT),
        str(project),
        data={"task_type": task},
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
        vcs_ref="HEAD",
    )
    return project


def measure(python: str, project: Path, task: str, size: str, args: argparse.Namespace) -> dict:
    steps = args.steps if size == "default" else args.tiny_steps
    command = [python, __file__, "--inner", str(project), "--task", task, "--size", size]
    command += ["--rounds", str(args.rounds), "--steps", str(steps)]
    command += ["--eval-every", str(args.eval_every if size == "default" else args.tiny_eval_every)]
    env = dict(os.environ, PYTHONPATH=str(project / "src"), OMP_NUM_THREADS="1")
    measured = subprocess.run(
        command, env=env, capture_output=True, text=True, cwd=project.parent, check=False
    )
    if measured.returncode != 0:
        raise SystemExit(measured.stdout + measured.stderr)
    return json.loads(measured.stdout.splitlines()[-1])


def outer(args: argparse.Namespace) -> int:
    python = torch_python(args.python)
    tasks = TASKS if args.task == "all" else (args.task,)
    sizes = ("default", "tiny") if args.size == "both" else (args.size,)
    results = []
    with tempfile.TemporaryDirectory(prefix="step-time-") as folder:
        for task in tasks:
            project = render(task, Path(folder))
            results += [measure(python, project, task, size, args) for size in sizes]
    print(f"torch {results[0]['torch']}, CPU, 1 thread, {args.rounds} rounds per loop")
    print(
        f"{'task':<6} {'size':<8} {'model':<34} {'bare loop':>10} {'eval off':>10} {'ratio':>6}"
        f" {'eval on':>10} {'ratio':>6} {'every':>6} {'one eval':>22} {'at 500':>7}"
    )
    for r in results:
        print(
            f"{r['task']:<6} {r['size']:<8} {r['model']:<34} "
            f"{r['bare_ms']:>8.2f}ms {r['skeleton_ms']:>8.2f}ms {r['ratio']:>6.3f} "
            f"{r['eval_on_ms']:>8.2f}ms {r['eval_on_ratio']:>6.3f} {r['eval_every']:>6} "
            f"{r['one_eval_ms']:>9.1f}ms ({r['held_out']:>4} samples) "
            f"{100 * r['one_eval_ms'] / (DEFAULT_EVAL_INTERVAL * r['skeleton_ms']):>6.2f}%"
        )
    worst = max(result["ratio"] for result in results)
    print(f"worst eval-off ratio {worst:.3f} (target <= 1.03)")
    print(
        f"'at {DEFAULT_EVAL_INTERVAL}': one evaluation spread over the default --eval-interval "
        f"of {DEFAULT_EVAL_INTERVAL} steps, as a share of the eval-off step time"
    )
    return 0


# --- inner process: both loops, interleaved ---------------------------------------------------


def inner(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)
    project = Path(args.inner)
    package = next(path.name for path in (project / "src").iterdir() if path.is_dir())
    config = importlib.import_module(f"{package}.config")
    dist = importlib.import_module(f"{package}.dist")
    task = importlib.import_module(f"{package}.task")
    train = importlib.import_module(f"{package}.train")
    factory = importlib.import_module(f"{package}.factory")
    model_module = importlib.import_module(f"{package}.model")

    total = (args.rounds + 1) * args.steps

    def build_trainer(val_fraction: float, eval_interval: int):
        tiny = args.size == "tiny"
        sections = config.read_file(project / "configs" / "tiny.yaml") if tiny else {}
        output_dir = tempfile.mkdtemp(prefix="skeleton-")
        sections.setdefault("train", {}).update(device="cpu", output_dir=output_dir)
        # max_steps only shapes the learning-rate schedule here; checkpoints stay out of the
        # timing (and so does the evaluation at max_steps).
        sections["train"].update(max_steps=10 * total, eval_interval=eval_interval)
        sections.setdefault("data", {}).update(num_workers=0, val_fraction=val_fraction)
        sections.setdefault("checkpoint", {})["checkpoint_interval"] = 10 * total
        cfg = config.build(sections)
        return cfg, train.build_trainer(cfg, dist.init_distributed("cpu"))

    cfg, trainer = build_trainer(0.0, 0)
    _, evaluating = build_trainer(0.1, args.eval_every)

    # The bare loop: what one writes by hand for the same model, data and optimizer.
    torch.manual_seed(cfg.train.seed)
    model = model_module.build_model(cfg.task)
    dataset = task.build_dataset(
        cfg.task, "", train=True, num_synthetic_samples=cfg.data.num_synthetic_samples,
        seed=cfg.train.seed,
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.data.batch_size, shuffle=True, drop_last=True
    )
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.optim.lr,
        betas=(cfg.optim.beta1, cfg.optim.beta2),
        weight_decay=cfg.optim.weight_decay,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: factory.lr_factor(
            step,
            warmup_steps=cfg.optim.warmup_steps,
            max_steps=cfg.train.max_steps,
            min_ratio=cfg.optim.min_lr / cfg.optim.lr,
        ),
    )
    batches = iter(loader)

    def bare(steps: int) -> None:
        nonlocal batches
        for _ in range(steps):
            try:
                inputs, targets = next(batches)
            except StopIteration:
                batches = iter(loader)
                inputs, targets = next(batches)
            loss = task.loss(model(inputs), targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()

    def skeleton(steps: int) -> None:
        trainer.run(trainer.step + steps)

    def skeleton_evaluating(steps: int) -> None:
        evaluating.run(evaluating.step + steps)

    def timed(loop, steps: int) -> float:
        started = time.perf_counter()
        loop(steps)
        return (time.perf_counter() - started) / steps * 1000

    timed(bare, args.steps)  # warm-up: first-call allocations, lazy imports
    timed(skeleton, args.steps)
    timed(skeleton_evaluating, args.steps)
    bare_ms, skeleton_ms, eval_on_ms = [], [], []
    order = [(bare, bare_ms), (skeleton, skeleton_ms), (skeleton_evaluating, eval_on_ms)]
    for round_index in range(args.rounds):
        shift = round_index % len(order)
        for loop, times in order[shift:] + order[:shift]:
            times.append(timed(loop, args.steps))
    one_eval_ms = []
    for _ in range(3):
        started = time.perf_counter()
        evaluating.parts.evaluator.evaluate(evaluating.parts.eval_model)
        one_eval_ms.append((time.perf_counter() - started) * 1000)
    held_out = evaluating.parts.evaluator.num_samples
    trainer.close()
    evaluating.close()
    parameters = sum(p.numel() for p in model.parameters())
    batch_size = cfg.data.batch_size
    result = {
        "task": args.task,
        "size": args.size,
        "model": f"{type(model).__name__} {parameters / 1e6:.3f}M, batch {batch_size}",
        "torch": torch.__version__,
        "bare_ms": statistics.median(bare_ms),
        "skeleton_ms": statistics.median(skeleton_ms),
        "ratio": statistics.median(s / b for s, b in zip(skeleton_ms, bare_ms, strict=True)),
        "eval_on_ms": statistics.median(eval_on_ms),
        "eval_on_ratio": statistics.median(e / b for e, b in zip(eval_on_ms, bare_ms, strict=True)),
        "eval_every": args.eval_every,
        "one_eval_ms": statistics.median(one_eval_ms),
        "held_out": held_out,
    }
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=[*TASKS, "all"], default="all")
    parser.add_argument("--size", choices=["default", "tiny", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per loop")
    parser.add_argument("--steps", type=int, default=5, help="steps per round, default size")
    parser.add_argument("--tiny-steps", type=int, default=100, help="steps per round, tiny size")
    parser.add_argument(
        "--eval-every", type=int, default=5, help="eval on: steps between evaluations, default size"
    )
    parser.add_argument(
        "--tiny-eval-every", type=int, default=50, help="eval on: the same, tiny size"
    )
    parser.add_argument("--python", help="a Python with torch for the measurement")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
