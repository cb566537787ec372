"""Write a data file that copier.yml includes: one hidden question whose default is JSON.

copier parses copier.yml and its includes with PyYAML's pure-Python loader on every run;
thousands of YAML tokens cost a tenth of a second each time. A single block scalar of
indented JSON reads as fast as one string, stays reviewable in a diff, and is parsed by
json.loads (the question's type is json). Jinja renders the default first, so the JSON must
never contain Jinja delimiters; `render` refuses data that would.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

JINJA_DELIMITERS = ("{{", "{%", "{#")
WIDTH = 100


def to_json(value: Any, indent: int = 0, key_width: int = 0) -> str:
    """JSON that keeps whatever fits in WIDTH columns on one line, like a code formatter:
    short enough to parse fast, and one stack or table per line in a diff.

    `indent` is the nesting level (one space each); `key_width` the columns a dict key
    already takes on the current line.
    """
    compact = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    fits = indent + key_width + len(compact) <= WIDTH
    if fits or not isinstance(value, (dict, list)) or not value:
        return compact
    pad = " " * (indent + 1)
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            prefix = f"{json.dumps(key)}: "
            items.append(pad + prefix + to_json(item, indent + 1, len(prefix)))
        opening, closing = "{", "}"
    else:
        items = [pad + to_json(item, indent + 1) for item in value]
        opening, closing = "[", "]"
    return opening + "\n" + ",\n".join(items) + "\n" + " " * indent + closing


def render(name: str, value: Any, header: str) -> str:
    text = to_json(value)
    if any(delimiter in text for delimiter in JINJA_DELIMITERS):
        raise ValueError(f"{name}: the data contains a Jinja delimiter {JINJA_DELIMITERS}")
    return (
        f"{header}{name}:\n  type: json\n  when: false\n  default: |\n"
        f"{textwrap.indent(text, '    ')}\n"
    )
