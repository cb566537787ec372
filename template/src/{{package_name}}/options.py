"""Field helpers shared by the config sections in `config.py` and the `task` section in `task.py`.

They live here, not in `config`, because `config` imports `task` (for its `TaskConfig`), so
`task` cannot import `config`.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def option(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with its command-line help (and optional `choices`)."""
    return field(default=default, metadata={"help": help, **metadata})


def require(condition: bool, message: str) -> None:
    """Raise ValueError(message) unless `condition`: user input errors, not internal asserts."""
    if not condition:
        raise ValueError(message)
