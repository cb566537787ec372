#!/usr/bin/env bash
# Run the project's tests on CPU: unit tests and the 2-process torchrun tests (gloo).
# CI runs exactly this; extra arguments go to pytest.
#
#   bash scripts/test.sh              # all tests
#   bash scripts/test.sh -k resume    # a subset
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Several ranks share the CPU cores; one thread each keeps them from oversubscribing.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec python -m pytest "$@"
