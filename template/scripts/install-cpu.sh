#!/usr/bin/env bash
# Install the project for CPU-only work (CI runners, a laptop without an NVIDIA GPU): the
# CPU build of torch first, from PyTorch's CPU index, with the task's torch companions
# (requirements/torch-companions.txt: torchvision for images, torchaudio for audio) built
# for that torch, then requirements/lock/dev.txt (the project's locked packages and dev
# tools) and the project.
# Installing torch first matters: from PyPI, pip would fetch a multi-GB CUDA build, and a
# PyPI torchvision next to a CPU torch fails to import ("operator torchvision::nms does not
# exist"). pip picks the companion release whose torch requirement matches TORCH_SPEC.
#
#   bash scripts/install-cpu.sh 'torch==2.14.1'     # CI passes its TORCH_SPEC
#   TORCH_INDEX_URL=... bash scripts/install-cpu.sh ...   # another index (a mirror, cu132)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

spec="${1:?usage: install-cpu.sh TORCH_SPEC, e.g. 'torch==2.14.1' (TORCH_SPEC in the CI file)}"
index="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
companions=()
if [[ -f requirements/torch-companions.txt ]]; then
    while read -r name _; do
        [[ -n "${name}" && "${name}" != \#* ]] && companions+=("${name}")
    done < requirements/torch-companions.txt
fi
# (The odd expansion: an empty array under `set -u` in the bash 3.2 of macOS.)
python -m pip install --index-url "${index}" "${spec}" ${companions[@]+"${companions[@]}"}
# Everything else at the locked versions, hashes checked (the image installs the same), then
# the project itself, whose dependencies are all there by now.
python -m pip install --require-hashes -r requirements/lock/dev.txt
python -m pip install --no-deps -e .
