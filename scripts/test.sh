#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds
# once, runs every label from the same build tree.
#   scripts/test.sh            unit + integration (+ e2e where podman works)
#   scripts/test.sh unit       one label
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh release

labels=${1:-"unit integration"}
status=0
for label in $labels; do
  echo "=== ctest -L $label"
  ctest --preset release -L "^${label}\$" -j 2 --timeout 300 || status=1
done
exit $status
