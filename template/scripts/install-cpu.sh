#!/usr/bin/env bash
# Install the project for CPU-only work (CI runners, a laptop without an NVIDIA GPU): the
# CPU build of torch first, from PyTorch's CPU index, then the project with its dev tools.
# Installing torch first matters: from PyPI, pip would fetch a multi-GB CUDA build.
#
#   bash scripts/install-cpu.sh 'torch==2.14.1'     # CI passes its TORCH_SPEC
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

spec="${1:?usage: install-cpu.sh TORCH_SPEC, e.g. 'torch==2.14.1' (TORCH_SPEC in the CI file)}"
python -m pip install --index-url https://download.pytorch.org/whl/cpu "${spec}"
python -m pip install -e ".[dev]"
