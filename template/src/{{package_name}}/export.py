"""Export a trained model for serving, without this project's training code:

    python -m <package>.export --checkpoint outputs --output exported/

writes to the output folder

    model.safetensors   the weights (safetensors: no pickle, loads in any framework)
    config.json         the task, its options (enough to rebuild the network with
                        model.build_model), the class names, the step and the best metric
    model.pt2           a torch.export program with a dynamic batch size, where the model
                        traces (load it with torch.export.load(path).module(); no Python
                        class needed); config.json says why when it does not

`--checkpoint` takes a checkpoint file or a run's output folder (then its best.pt). Before it
writes, the export runs the rebuilt model and the program on an example batch and refuses
when either differs from the checkpoint's model.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from . import config, task
from .inference import Trained, load_trained
from .model import build_model
from .options import require

# float32 outputs of the same weights through another code path: a few ulps, not more.
TOLERANCE = 1e-4
EXAMPLE_BATCH = 2


def write_json(path: Path, value: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(temporary, path)


def largest_difference(expected: torch.Tensor, got: torch.Tensor) -> float:
    return (expected.double() - got.double()).abs().max().item()


def export_weights(trained: Trained, output: Path) -> float:
    """model.safetensors; the largest output difference of the model rebuilt from it."""
    from safetensors.torch import load_model, save_model

    path = output / "model.safetensors"
    # save_model drops the duplicates of tied weights (the language model's embedding and
    # head), which safetensors cannot store twice; load_model ties them again.
    save_model(trained.model, str(path), metadata={"task": task.KIND, "step": str(trained.step)})
    rebuilt = build_model(trained.task_config)
    load_model(rebuilt, str(path))
    example = task.example_input(trained.task_config, EXAMPLE_BATCH)
    with torch.no_grad():
        return largest_difference(trained.model(example), rebuilt.eval()(example))


def export_program(trained: Trained, output: Path) -> tuple[float | None, str | None]:
    """model.pt2; (largest output difference, None), or (None, why it could not be made)."""
    example = task.example_input(trained.task_config, EXAMPLE_BATCH)
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        program = torch.export.export(
            trained.model, (example,), dynamic_shapes=({0: batch},), strict=False
        )
        torch.export.save(program, str(output / "model.pt2"))
    except Exception as error:  # any failure to trace: the weights are still exported
        return None, f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
    with warnings.catch_warnings():
        # Tied weights (the language model's embedding and head) are stored once; loading
        # warns that their group has no "complete" tensor, and ties them correctly.
        warnings.filterwarnings("ignore", message="No complete tensor found in the group")
        loaded = torch.export.load(str(output / "model.pt2")).module()
    other = task.example_input(trained.task_config, EXAMPLE_BATCH + 3)
    with torch.no_grad():
        difference = max(
            largest_difference(trained.model(sample), loaded(sample)) for sample in (example, other)
        )
    return difference, None


def main(argv: list[str] | None = None) -> int:
    """Export the checkpoint of the command line; the exit status."""
    cfg = config.parse_export_args(argv)
    try:
        trained = load_trained(cfg.checkpoint)
        output = Path(cfg.output)
        require(not output.is_file(), f"--output {output} is a file; pass a folder (it is created)")
        output.mkdir(parents=True, exist_ok=True)
        weights_difference = export_weights(trained, output)
        require(
            weights_difference <= TOLERANCE,
            f"the model rebuilt from model.safetensors differs from the checkpoint's by "
            f"{weights_difference:.3g}; report this as a bug",
        )
        program_difference, program_error = export_program(trained, output)
        require(
            program_difference is None or program_difference <= TOLERANCE,
            f"the exported program differs from the checkpoint's model by "
            f"{program_difference:.3g}; use model.safetensors with model.build_model",
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    description = {
        **trained.describe(),
        "checkpoint": str(trained.path),
        "torch": torch.__version__,
        "files": {
            "weights": "model.safetensors",
            "program": None if program_error else "model.pt2",
        },
        "program_error": program_error,
        "input_example_shape": list(task.example_input(trained.task_config, 1).shape),
    }
    write_json(output / "config.json", description)
    made = "model.safetensors, config.json" + ("" if program_error else ", model.pt2")
    print(f"exported {trained.path} (step {trained.step}) to {output}: {made}")
    if program_error:
        print(f"no torch.export program: {program_error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
