"""The task contract: what every task module (`task.py`) offers the generic modules.

`train`, `evaluation`, `predict` and `export` know nothing about images, text or sound; they
call these names of `task`, which a project changes to train on its own data:

    KIND               "cv", "nlp" or "audio": recorded in checkpoints and exports
    TaskConfig         the `task` section of the config: data and model sizes
    MEMORY_FORMAT      the layout of 4-D inputs and of the model on CUDA
    METRIC             the held-out metric ("accuracy", "perplexity") that picks the best
                       checkpoint; HIGHER_IS_BETTER says which way
    build_dataset()    (cfg, source, *, train, num_synthetic_samples, seed) -> Dataset of
                       (input, target) pairs; THE place to plug in real data. `train=False`
                       is the evaluation view (no random augmentation). Classification
                       datasets name their classes in `.classes`.
    loss()             outputs, targets -> scalar training loss
    eval_sums()        outputs, targets -> float64 tensor [summed loss, summed correct, count]:
                       sums, so that adding them over batches and ranks is exact
    eval_metrics()     those sums over the whole held-out split -> {"loss": ..., METRIC: ...}
    example_input()    (cfg, batch_size) -> an input batch (export traces the model with it)
    read_input()       (cfg, source) -> one model input from a file or text, for predict;
                       ValueError with what to do when it cannot
    predict()          (model, input batch of one, cfg, labels, max_new_tokens) -> the
                       JSON fields of one prediction ({"label", "score"} or
                       {"text", "score"})

`missing(module)` lists what a module lacks; the project's tests run it on `task`.
"""

from __future__ import annotations

from types import ModuleType

NAMES = (
    "KIND",
    "TaskConfig",
    "MEMORY_FORMAT",
    "METRIC",
    "HIGHER_IS_BETTER",
    "build_dataset",
    "loss",
    "eval_sums",
    "eval_metrics",
    "example_input",
    "read_input",
    "predict",
)


def missing(module: ModuleType) -> list[str]:
    """The contract's names that `module` does not define."""
    return [name for name in NAMES if not hasattr(module, name)]
