#!/usr/bin/env bash
# Generate a project from this checkout of the template, with nothing installed beforehand.
#
#   bash scripts/new-project.sh DESTINATION [copier options, e.g. --data gpu_generation=hopper]
#
# Runs the copier release the template is tested with (copier_spec in copier.yml), from a
# private virtual environment under ~/.cache, the same one the generated
# scripts/template-update.sh uses later; the questions are asked interactively unless you pass
# --defaults and --data answers.
set -euo pipefail

if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: bash scripts/new-project.sh DESTINATION [copier options]" >&2
    exit 2
fi
destination="$1"
shift

template="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
copier_spec="$(sed -n '/^copier_spec:/,/^  default:/s/^  default: "\(.*\)"$/\1/p' "${template}/copier.yml")"
if [[ "${copier_spec}" != copier==* ]]; then
    echo "new-project.sh: copier.yml names no copier_spec" >&2
    exit 1
fi
venv="${XDG_CACHE_HOME:-${HOME}/.cache}/copier-pytorch-cuda/copier-${copier_spec#copier==}"
if [[ ! -x "${venv}/bin/copier" ]]; then
    "${PYTHON:-python3}" -m venv "${venv}"
    "${venv}/bin/python" -m pip install --quiet "${copier_spec}" || { rm -rf "${venv}"; exit 1; }
fi
echo "new-project.sh: ${copier_spec} from ${venv}; later, in the project: bash scripts/template-update.sh"
exec "${venv}/bin/copier" copy --trust "$@" "${template}" "${destination}"
