#!/usr/bin/env bash
# Run the template's whole test suite, installing what it needs first.
#
#   bash scripts/test.sh [pytest arguments...]
#
# Creates .venv (Python tools from pyproject.toml's "test" dependency group) and
# node_modules (the Dev Containers CLI, from package-lock.json), then runs pytest on all
# cores. The generated projects' own tests install CPU torch 2.13.0 into a cached venv
# under .cache/ on first use.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

python="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    "${python}" -m venv .venv
fi
# pip >= 25.1 reads dependency groups (PEP 735).
.venv/bin/python -m pip install --quiet --upgrade "pip>=25.1"
.venv/bin/python -m pip install --quiet --group test

if [[ ! -x node_modules/.bin/devcontainer ]] || [[ package-lock.json -nt node_modules ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi

export PATH="${PWD}/.venv/bin:${PWD}/node_modules/.bin:${PATH}"
exec python -m pytest -n "${PYTEST_WORKERS:-auto}" "$@"
