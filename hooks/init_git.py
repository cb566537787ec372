"""Make a freshly generated project a git repository with a first commit.

`copier update` needs a clean git tree to merge template changes with the user's edits, so
a project that starts outside git cannot be updated later. Run by copier after the first
copy (a `_tasks` entry) with the project as the working directory:

    python hooks/init_git.py [--yes | --no] [PATH]

When stdin is a terminal the user is asked (default yes); otherwise the default applies.
Nothing happens when PATH is already inside a git work tree, so running it twice is safe.
No network is needed. If git has no user identity configured, the repository is created
and the files are staged, and the exact commands to finish are printed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

FIRST_COMMIT_MESSAGE = "Initial commit from copier-pytorch-cuda"


def git(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=False)


def inside_work_tree(path: Path) -> bool:
    result = git(path, "rev-parse", "--is-inside-work-tree")
    return result.returncode == 0 and result.stdout.strip() == "true"


def has_identity(path: Path) -> bool:
    """Whether `git commit` would find an author and committer: from git config or from the
    GIT_AUTHOR_*/GIT_COMMITTER_*/EMAIL environment (CI sets these), as git itself decides."""
    return all(
        git(path, "var", ident).returncode == 0
        for ident in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT")
    )


def ask(question: str) -> bool:
    """Yes/no on a terminal; questionary ships with copier, plain input() otherwise."""
    try:
        import questionary
    except ImportError:
        reply = input(f"{question} [Y/n] ").strip().lower()
        return reply in ("", "y", "yes")
    return bool(questionary.confirm(question, default=True).ask())


def init_repository(path: Path) -> int:
    for step in (("init", "--quiet"), ("add", "--all")):
        result = git(path, *step)
        if result.returncode != 0:
            print(f"init_git: git {step[0]} failed: {result.stderr.strip()}", file=sys.stderr)
            return 1
    if not has_identity(path):
        print(
            "init_git: created a git repository with the files staged, but git has no "
            "user.name/user.email; finish with:\n"
            '  git config --global user.name "Your Name"\n'
            '  git config --global user.email "you@example.com"\n'
            f'  git commit -m "{FIRST_COMMIT_MESSAGE}"'
        )
        return 0
    result = git(path, "commit", "--quiet", "--message", FIRST_COMMIT_MESSAGE)
    if result.returncode != 0:
        print(f"init_git: git commit failed: {result.stderr.strip()}", file=sys.stderr)
        return 1
    print(f"init_git: {path} is a git repository with a first commit (copier update needs one)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--yes", action="store_true", help="do it without asking")
    choice.add_argument("--no", action="store_true", help="do nothing")
    parser.add_argument("path", nargs="?", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)

    if args.no:
        return 0
    if shutil.which("git") is None:
        print("init_git: git is not installed; `copier update` will need a git repository")
        return 0
    if inside_work_tree(args.path):
        return 0
    if (
        not args.yes
        and sys.stdin.isatty()
        and not ask(
            "Make the project a git repository with a first commit? (copier update needs one)"
        )
    ):
        return 0
    return init_repository(args.path)


if __name__ == "__main__":
    sys.exit(main())
