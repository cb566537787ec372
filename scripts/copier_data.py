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


def render(name: str, value: Any, header: str) -> str:
    text = json.dumps(value, indent=1, ensure_ascii=False)
    if any(delimiter in text for delimiter in JINJA_DELIMITERS):
        raise ValueError(f"{name}: the data contains a Jinja delimiter {JINJA_DELIMITERS}")
    return (
        f"{header}{name}:\n  type: json\n  when: false\n  default: |\n"
        f"{textwrap.indent(text, '    ')}\n"
    )
