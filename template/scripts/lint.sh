#!/usr/bin/env bash
# Lint the project: ruff's rules and formatting, a lock that is current for the requirements
# (scripts/lock.py --check), a base image pin that matches its tag, and no leftovers of a
# conflicted `copier update` (<<<<<<< markers or .rej files). CI runs exactly this.
#
#   bash scripts/lint.sh          # fix with: ruff check --fix . && ruff format .
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

status=0
ruff check . || status=1
ruff format --check . || status=1
# One line naming the fix when requirements/*.txt changed without `python scripts/lock.py`.
python scripts/lock.py --check >/dev/null || status=1
# A base image pinned by digest must be pinned for the tag the Dockerfile names now.
bash scripts/pin-base-image.sh --check || status=1

# A conflicted update exits 0 but leaves markers and .rej files behind; fail on them here
# so they never reach main.
markers="$(grep -rnE --binary-files=without-match \
    --exclude-dir=.git --exclude-dir=.venv --exclude-dir=node_modules \
    '^(<{7}|>{7})( |$)' . || true)"
if [[ -n "${markers}" ]]; then
    echo "Unresolved merge conflict markers:" >&2
    echo "${markers}" >&2
    status=1
fi
rejects="$(find . -name '*.rej' -not -path './.git/*' -print)"
if [[ -n "${rejects}" ]]; then
    echo "Rejected copier update hunks (resolve, then delete the .rej files):" >&2
    echo "${rejects}" >&2
    status=1
fi
exit "${status}"
