"""Run a trained model on new inputs: one JSON line per input on stdout.

    python -m <package>.predict --checkpoint outputs/checkpoints/best.pt photo.jpg  # cv
    python -m <package>.predict --checkpoint outputs clip.wav other.wav             # audio
    python -m <package>.predict --checkpoint outputs "Once upon a time"             # nlp

`--checkpoint` takes a checkpoint file or a run's output folder (then its best.pt). Each line
has `input` and either `label` and `score` (the class and its probability, with the runners-up
in `top`) or, for language models, `text` (the greedy continuation) and `score`. An input that
cannot be used gets a line with `error` saying what to do instead, the other inputs are still
predicted, and the exit status is 1.
"""

from __future__ import annotations

import json
import sys

import torch

from . import config, dist, task
from .inference import load_trained


def main(argv: list[str] | None = None) -> int:
    """Predict every input of the command line; the exit status."""
    cfg = config.parse_predict_args(argv)
    try:
        device = dist.resolve_device(cfg.device, local_rank=0)
        trained = load_trained(cfg.checkpoint, device)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = False
    for source in cfg.inputs:
        try:
            inputs = task.read_input(trained.task_config, source)[None].to(device)
            with torch.no_grad():
                result = task.predict(
                    trained.model, inputs, trained.task_config, trained.labels, cfg.max_new_tokens
                )
            line = {"input": source, **result}
        except ValueError as error:
            failed = True
            line = {"input": source, "error": str(error)}
        print(json.dumps(line), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
