"""A trained model from a checkpoint, for `predict` and `export`: the weights of the run, the
task section of its config and the class names, with one-line errors for files that are not
this project's checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import checkpoint, task
from .model import build_model
from .options import require

NEEDED = ("config", "labels", "model")


@dataclass
class Trained:
    """A model in eval mode and what describes it."""

    path: Path
    model: torch.nn.Module
    task_config: task.TaskConfig
    labels: list[str] | None
    step: int
    best: dict[str, Any] | None

    def describe(self) -> dict[str, Any]:
        """Plain values for a JSON file: what the model is and was trained to."""
        return {
            "task": task.KIND,
            "task_config": dataclasses.asdict(self.task_config),
            "labels": self.labels,
            "step": self.step,
            "best": self.best,
        }


def load_trained(source: str, device: torch.device | str = "cpu") -> Trained:
    """The model of a checkpoint file or of a run's output folder (its best.pt, else its
    newest checkpoint); ValueError with what to pass instead."""
    path = checkpoint.resolve(Path(source))
    try:
        state = checkpoint.load(path, NEEDED)
    except Exception as error:
        raise ValueError(
            f"{path} cannot be read as a checkpoint ({error}); pass a file that this "
            "project's train wrote"
        ) from error
    require(
        state["task"] == task.KIND,
        f"{path} is a checkpoint of a {state['task']} project, this project's task is "
        f"{task.KIND}; pass one of this project's checkpoints",
    )
    try:
        task_config = task.TaskConfig(**state["config"]["task"])
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{path} holds task options this project does not know ({error}); pass one of "
            "this project's checkpoints"
        ) from error
    model = build_model(task_config)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    progress = state.get("progress") or {}
    return Trained(
        path, model, task_config, state["labels"], int(state["step"]), progress.get("best")
    )
