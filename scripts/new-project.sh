#!/usr/bin/env bash
# Generate a project from this checkout of the template, with nothing installed beforehand.
#
#   bash scripts/new-project.sh DESTINATION [copier options, e.g. --data gpu_generation=hopper]
#
# Copier goes into a private virtual environment under ~/.cache; the questions are asked
# interactively unless you pass --defaults and --data answers.
set -euo pipefail

if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: bash scripts/new-project.sh DESTINATION [copier options]" >&2
    exit 2
fi
destination="$1"
shift

template="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${XDG_CACHE_HOME:-${HOME}/.cache}/copier-pytorch-cuda/venv"
if [[ ! -x "${venv}/bin/copier" ]]; then
    "${PYTHON:-python3}" -m venv "${venv}"
    "${venv}/bin/python" -m pip install --quiet "copier>=9.4"
fi
exec "${venv}/bin/copier" copy --trust "$@" "${template}" "${destination}"
