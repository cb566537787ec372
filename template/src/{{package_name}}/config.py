"""Training configuration: typed sections, a YAML/JSON file, and the command line.

Precedence, lowest first: the defaults below (some taken from `stack.py`, the image this project
was generated for), then `--config FILE`, then command-line options. Every field of every section
is an option named after it (`max_steps` -> `--max-steps`), so field names are unique across
sections; `python -m <package>.train --help` lists them with their help text, and
`--print-config` prints the resolved configuration as a file that `--config` reads back.

Resuming compares the checkpoint's configuration with this one: a change of what the model
is or what it learns from (the `task` section, the data sources, the held-out split, the seed:
`IDENTITY`) is another experiment and is refused; other changes (a longer run, another
learning rate) are allowed and logged.

`predict` and `export` take their command lines here too (`parse_predict_args`,
`parse_export_args`): this is the only module that reads `sys.argv`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import stack
from .options import option, require
from .task import TaskConfig

DEVICES = ("auto", "cpu", "cuda")
AMP_CHOICES = ("auto", "bfloat16", "float16", "off")

# What a checkpoint's run is: a resume with other values would continue another experiment.
# "*" means every option of the section.
IDENTITY = {
    "task": "*",
    "data": ("data_dir", "val_data_dir", "val_fraction", "num_synthetic_samples"),
    "train": ("seed",),
}


@dataclass
class TrainConfig:
    """What to run on, for how long, and how (section `train`)."""

    device: str = option("auto", "auto picks cuda when a GPU is visible, else cpu", choices=DEVICES)
    output_dir: str = option("outputs", "checkpoints, metrics and summary.json go here")
    max_steps: int = option(1000, "optimizer steps to train for (in total, across restarts)")
    seed: int = option(0, "seed for model initialisation, data order and dropout")
    grad_accum_steps: int = option(1, "micro-batches per optimizer step")
    log_interval: int = option(
        10, "steps between loss reports (the only time the loss is read back from the device)"
    )
    eval_interval: int = option(
        500, "steps between evaluations on the held-out split (one more at the end; 0: only then)"
    )
    amp: str = option(
        "auto",
        f"mixed precision; auto = {stack.AMP_DTYPE} on CUDA (from stack.py), off on CPU",
        choices=AMP_CHOICES,
    )
    tf32: bool = option(stack.TF32, "TensorFloat-32 matmuls and convolutions on CUDA")
    compile: bool = option(False, "torch.compile the model (the first steps take longer)")

    def __post_init__(self) -> None:
        require(self.device in DEVICES, f"device must be one of {DEVICES}, not {self.device!r}")
        require(self.amp in AMP_CHOICES, f"amp must be one of {AMP_CHOICES}, not {self.amp!r}")
        require(bool(self.output_dir), "output_dir must not be empty")
        require(self.max_steps >= 1, f"max_steps must be at least 1, not {self.max_steps}")
        require(self.seed >= 0, f"seed must be zero or positive, not {self.seed}")
        require(
            self.grad_accum_steps >= 1,
            f"grad_accum_steps must be at least 1, not {self.grad_accum_steps}",
        )
        require(self.log_interval >= 1, f"log_interval must be at least 1, not {self.log_interval}")
        require(
            self.eval_interval >= 0, f"eval_interval must be 0 or more, not {self.eval_interval}"
        )


@dataclass
class OptimConfig:
    """AdamW with linear warmup, then cosine decay to `min_lr` at `max_steps` (section `optim`)."""

    lr: float = option(1e-3, "peak learning rate, reached after warmup")
    min_lr: float = option(1e-5, "learning rate at max_steps")
    warmup_steps: int = option(100, "steps of linear warmup from 0 to lr")
    weight_decay: float = option(0.05, "AdamW weight decay (not applied to biases and norms)")
    beta1: float = option(0.9, "AdamW beta1")
    beta2: float = option(0.95, "AdamW beta2")
    grad_clip: float = option(1.0, "clip the global gradient norm to this; 0 turns it off")

    def __post_init__(self) -> None:
        require(self.lr > 0, f"lr must be positive, not {self.lr}")
        require(0 <= self.min_lr <= self.lr, f"min_lr must be in [0, lr={self.lr}]")
        require(self.warmup_steps >= 0, "warmup_steps must be zero or positive")
        require(self.weight_decay >= 0, "weight_decay must be zero or positive")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            require(0 <= value < 1, f"{name} must be in [0, 1), not {value}")
        require(self.grad_clip >= 0, "grad_clip must be zero (off) or positive")


@dataclass
class DataConfig:
    """Where batches come from (section `data`)."""

    data_dir: str = option(
        "", "real data for task.build_dataset; empty trains on the task's synthetic data"
    )
    val_fraction: float = option(
        0.1, "share of the data held out for evaluation, chosen by the seed (0: no evaluation)"
    )
    val_data_dir: str = option(
        "", "held-out data in data_dir's layout; when set, all of data_dir is for training"
    )
    batch_size: int = option(32, "samples per rank per micro-batch")
    num_workers: int = option(2, "DataLoader worker processes per rank (0 loads in the loop)")
    num_synthetic_samples: int = option(8192, "size of the synthetic dataset (one epoch)")

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, f"batch_size must be at least 1, not {self.batch_size}")
        require(self.num_workers >= 0, f"num_workers must be 0 or more, not {self.num_workers}")
        require(
            0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1), not {self.val_fraction}"
        )
        require(
            self.num_synthetic_samples >= 1,
            f"num_synthetic_samples must be at least 1, not {self.num_synthetic_samples}",
        )


@dataclass
class CheckpointConfig:
    """When to save and what to keep (section `checkpoint`)."""

    checkpoint_interval: int = option(
        500, "steps between checkpoints (one is also saved at the end)"
    )
    keep_checkpoints: int = option(3, "how many of the newest checkpoints to keep")
    resume: bool = option(True, "resume from the newest valid checkpoint in output_dir")

    def __post_init__(self) -> None:
        require(
            self.checkpoint_interval >= 1,
            f"checkpoint_interval must be at least 1, not {self.checkpoint_interval}",
        )
        require(
            self.keep_checkpoints >= 1,
            f"keep_checkpoints must be at least 1, not {self.keep_checkpoints}",
        )


@dataclass
class Config:
    """The whole configuration; each attribute is a section of the config file."""

    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    task: TaskConfig = field(default_factory=TaskConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain values only: goes into checkpoints, which load with weights_only=True."""
        return dataclasses.asdict(self)

    @property
    def evaluates(self) -> bool:
        """Whether the run has a held-out split to evaluate on."""
        return bool(self.data.val_data_dir) or self.data.val_fraction > 0


def changes(saved: dict[str, Any], current: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(identity changes, other changes) between a checkpoint's config and this one, each as
    `section.option: old -> new`. Options the checkpoint does not know count as unchanged."""
    identity, other = [], []
    for section, values in current.items():
        for key, value in values.items():
            old = saved.get(section, {}).get(key, value)
            if old == value:
                continue
            described = f"{section}.{key}: {old!r} -> {value!r}"
            keys = IDENTITY.get(section, ())
            (identity if keys == "*" or key in keys else other).append(described)
    return identity, other


def sections() -> dict[str, type]:
    """Section name -> dataclass, in file order."""
    return {item.name: item.default_factory for item in dataclasses.fields(Config)}


def section_fields(section: type) -> dict[str, tuple[dataclasses.Field, type]]:
    """Field name -> (field, resolved type) of one section dataclass."""
    hints = typing.get_type_hints(section)
    return {item.name: (item, hints[item.name]) for item in dataclasses.fields(section)}


def coerce(value: Any, kind: type, name: str) -> Any:
    """A value from a config file as the field's type; ValueError names the field."""
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        # YAML reads 1e-3 (no dot) as a string; accept it, and ints, as floats.
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{name} must be of type {kind.__name__}, not {value!r}")


def read_file(path: Path) -> dict[str, dict[str, Any]]:
    """A config file: sections of `key: value`; JSON by suffix, YAML otherwise."""
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
    else:
        try:
            import yaml
        except ImportError as error:
            raise ValueError(
                f"reading {path} needs PyYAML (pip install pyyaml), or use a .json file"
            ) from error
        data = yaml.safe_load(text)
    data = data or {}
    known = sections()
    if not isinstance(data, dict):
        raise ValueError(f"{path} must map section names ({', '.join(known)}) to options")
    for name, values in data.items():
        if name not in known:
            raise ValueError(f"{path}: unknown section {name!r}; known: {', '.join(known)}")
        if not isinstance(values, dict):
            raise ValueError(f"{path}: section {name!r} must map option names to values")
        unknown = set(values) - set(section_fields(known[name]))
        if unknown:
            raise ValueError(
                f"{path}: unknown option(s) {', '.join(sorted(unknown))} in section {name!r}; "
                f"known: {', '.join(section_fields(known[name]))}"
            )
    return data


def build(overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """A Config from the defaults plus `{section: {field: value}}`; ValueError when invalid."""
    overrides = overrides or {}
    built = {}
    for name, section in sections().items():
        fields = section_fields(section)
        values = {
            key: coerce(value, fields[key][1], f"{name}.{key}")
            for key, value in overrides.get(name, {}).items()
        }
        built[name] = section(**values)
    return Config(**built)


def build_parser() -> argparse.ArgumentParser:
    """One option per field, grouped by section; defaults are left to the dataclasses."""
    parser = argparse.ArgumentParser(
        prog="python -m " + __package__ + ".train",
        description="Train the model (run it under torchrun for several processes).",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--config", type=Path, help="YAML or JSON file of sections; options given here win"
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config as YAML and exit"
    )
    seen: set[str] = set()
    for name, section in sections().items():
        group = parser.add_argument_group(name, section.__doc__)
        for key, (item, kind) in section_fields(section).items():
            assert key not in seen, f"option {key} is defined in two sections"
            seen.add(key)
            flag = "--" + key.replace("_", "-")
            text = f"{item.metadata['help']} (default: {item.default})"
            if kind is bool:
                group.add_argument(
                    flag, dest=f"{name}.{key}", action=argparse.BooleanOptionalAction, help=text
                )
            else:
                group.add_argument(
                    flag,
                    dest=f"{name}.{key}",
                    type=kind,
                    choices=item.metadata.get("choices"),
                    metavar=key.upper() if "choices" not in item.metadata else None,
                    help=text,
                )
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[Config, bool]:
    """The Config for a command line, and whether --print-config was given.

    Invalid values exit with status 2 and one line saying what is wrong, as argparse does.
    """
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    try:
        overrides = read_file(args.pop("config")) if "config" in args else {}
        print_config = bool(args.pop("print_config", False))
        for dotted, value in args.items():
            name, key = dotted.split(".")
            overrides.setdefault(name, {})[key] = value
        return build(overrides), print_config
    except ValueError as error:
        parser.error(str(error))


def dump(config: Config) -> str:
    """The config as YAML (JSON, which is also YAML, when PyYAML is missing)."""
    try:
        import yaml
    except ImportError:
        return json.dumps(config.to_dict(), indent=2) + "\n"
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


@dataclass
class PredictConfig:
    """`python -m <package>.predict`: a checkpoint and the inputs to run it on."""

    checkpoint: str = option("", "a checkpoint file, or a run's output folder (its best.pt)")
    inputs: list[str] = field(default_factory=list)
    device: str = option("auto", "auto picks cuda when a GPU is visible, else cpu", choices=DEVICES)
    max_new_tokens: int = option(32, "tokens to generate after each prompt (language models)")

    def __post_init__(self) -> None:
        require(bool(self.checkpoint), "pass --checkpoint PATH (a .pt file or an output folder)")
        require(bool(self.inputs), "pass at least one input (a file, or a prompt for text)")
        require(self.max_new_tokens >= 1, "max_new_tokens must be at least 1")


@dataclass
class ExportConfig:
    """`python -m <package>.export`: a checkpoint and the folder to write the export to."""

    checkpoint: str = option("", "a checkpoint file, or a run's output folder (its best.pt)")
    output: str = option("", "folder for model.safetensors, config.json and model.pt2")

    def __post_init__(self) -> None:
        require(bool(self.checkpoint), "pass --checkpoint PATH (a .pt file or an output folder)")
        require(bool(self.output), "pass --output DIR, the folder to write the export to")


def parse_tool_args(tool: str, description: str, kind: type, argv: list[str] | None) -> Any:
    """A small command line for `predict` and `export`: one option per field of `kind`
    (`inputs` positional); invalid values exit with status 2 and one line."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}.{tool}", description=description
    )
    for key, (item, hint) in section_fields(kind).items():
        if key == "inputs":
            parser.add_argument("inputs", nargs="+", metavar="INPUT", help="what to predict on")
            continue
        parser.add_argument(
            "--" + key.replace("_", "-"),
            dest=key,
            type=hint,
            default=item.default,
            required=item.default == "",
            choices=item.metadata.get("choices"),
            help=item.metadata["help"],
        )
    try:
        return kind(**vars(parser.parse_args(argv)))
    except ValueError as error:
        parser.error(str(error))


def parse_predict_args(argv: list[str] | None = None) -> PredictConfig:
    return parse_tool_args(
        "predict", "Run a trained checkpoint on files or prompts; one JSON line each.",
        PredictConfig, argv,
    )  # fmt: skip


def parse_export_args(argv: list[str] | None = None) -> ExportConfig:
    return parse_tool_args(
        "export", "Export a checkpoint: safetensors weights, config JSON, torch.export program.",
        ExportConfig, argv,
    )  # fmt: skip
