"""The questions as a person sees them: `copier copy` driven in an 80-column pseudo-terminal.

pexpect runs copier in a pty of 80 columns; pyte, a terminal emulator, turns what copier writes
(prompt_toolkit's cursor movements and redraws included) into the screen a person reads. For
every question the test waits until its help text is on screen, checks that each help line and
each choice shows whole (not cut at the right edge, not wrapped into the next row), then
answers as a user would (Enter for the default, arrow keys for another choice).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pyte
import pytest
from answers import REPO_ROOT
from copier._template import load_template_config

COLUMNS, ROWS = 80, 400
CONFIG = load_template_config(REPO_ROOT / "copier.yml")
DOWN = "\x1b[B"
# From the default (single_node, the second choice) one down is multi_node.
MULTI_NODE = DOWN


def help_lines(key: str) -> list[str]:
    """The help of a question as copier prints it (help texts here need no rendering)."""
    return [line.strip() for line in str(CONFIG[key]["help"]).splitlines() if line.strip()]


class Terminal:
    """copier in a pty, read through a terminal emulator."""

    def __init__(self, destination: Path, *args: str) -> None:
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        copier = shutil.which("copier", path=str(Path(sys.executable).parent))
        assert copier, "copier is installed next to this Python"
        env = {"PATH": os.environ["PATH"], "HOME": str(destination.parent), "TERM": "xterm",
               "LANG": "C.UTF-8", "GIT_CONFIG_NOSYSTEM": "1"}  # fmt: skip
        self.child = pexpect.spawn(
            copier,
            ["copy", "--trust", "--skip-tasks", "--vcs-ref", "HEAD", *args,
             str(REPO_ROOT), str(destination)],
            dimensions=(ROWS, COLUMNS), env=env, timeout=60,
        )  # fmt: skip

    def rows(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.rows())

    def pump(self, seconds: float = 0.2) -> bool:
        """Read what copier wrote; False once it has exited."""
        try:
            self.stream.feed(self.child.read_nonblocking(1 << 16, timeout=seconds))
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            return False
        return True

    def wait_for(self, text: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.text():
            if not self.pump() or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen:\n{self.text()}")
        self.pump(0.5)  # let the prompt finish drawing

    def finish(self) -> None:
        while self.pump():
            pass
        self.child.close()


def assert_whole_on_screen(rows: list[str], line: str) -> None:
    """A line of text shows on one row, whole, and that row fits in the terminal."""
    found = [row for row in rows if line in row]
    assert found, f"{line!r} is not on screen whole (cut or wrapped)"
    assert all(len(row) < COLUMNS for row in found), f"{line!r} reaches the right edge"


def answer_all(terminal: Terminal, keys: dict[str, str]) -> list[str]:
    """Answer every asked question (in copier.yml's order); returns the keys seen."""
    seen = []
    for key, question in CONFIG.items():
        if key.startswith("_") or not isinstance(question, dict) or question.get("when") is False:
            continue
        if key == "cluster" and keys.get("distributed") != MULTI_NODE:
            continue
        lines = help_lines(key)
        terminal.wait_for(lines[0])
        rows = terminal.rows()
        for line in lines:
            assert_whole_on_screen(rows, line)
        seen.append(key)
        terminal.child.send(keys.get(key, "") + "\r")
    return seen


def choice_rows(rows: list[str], question_line: str) -> list[str]:
    """The rows of the choice list under a question's help (until the next blank area)."""
    start = max(i for i, row in enumerate(rows) if question_line in row)
    return [row for row in rows[start + 1 : start + 20] if row.strip()]


def test_every_question_fits_80_columns(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path / "project")
    seen = answer_all(terminal, {})
    terminal.finish()
    asked = {k for k, q in CONFIG.items() if isinstance(q, dict) and q.get("when") is not False}
    assert set(seen) == asked - {"cluster"} - {k for k in asked if k.startswith("_")}
    assert (tmp_path / "project" / ".copier-answers.yml").is_file(), terminal.text()


@pytest.mark.parametrize(
    ("key", "others"),
    [
        ("gpu_generation", {}),
        ("newest_gpu_generation", {}),
        ("torch_version", {"gpu_generation": "volta", "newest_gpu_generation": "hopper"}),
    ],
    ids=["gpu_generation", "newest_gpu_generation", "torch_version-volta"],
)
def test_choice_lists_fit_80_columns(tmp_path: Path, key: str, others: dict[str, Any]) -> None:
    """The enabled choices of the long lists show whole; refused ones start on their row."""
    data = [arg for k, v in others.items() for arg in ("--data", f"{k}={v}")]
    terminal = Terminal(tmp_path / "project", *data)
    for question, config in CONFIG.items():
        if question.startswith("_") or not isinstance(config, dict) or question in others:
            continue
        if config.get("when") is False:
            continue
        terminal.wait_for(help_lines(question)[0])
        if question == key:
            break
        terminal.child.send("\r")
    rows = choice_rows(terminal.rows(), help_lines(key)[-1])
    enabled = [row for row in rows if not row.lstrip().startswith("- ")]
    assert len(enabled) >= 3, rows
    for row in enabled:
        assert len(row) < COLUMNS, f"a choice reaches the right edge: {row!r}"
    terminal.child.sendcontrol("c")
    terminal.finish()


def test_multi_node_asks_for_the_cluster(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path / "project")
    seen = answer_all(terminal, {"distributed": MULTI_NODE})
    terminal.finish()
    assert "cluster" in seen
    answers = (tmp_path / "project" / ".copier-answers.yml").read_text()
    assert "distributed: multi_node" in answers and "cluster: both" in answers
