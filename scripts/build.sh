#!/usr/bin/env bash
# Configures and builds one preset (default: release) into build/<preset>.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
shift || true
# Always configure: a target added since the tree was configured is unknown
# to make until CMake has run again (a few seconds on a configured tree).
# CPPDIAG_WERROR=ON (the test command's setting): a warning fails the build.
cmake --preset "$preset" -DCPPDIAG_WERROR="${CPPDIAG_WERROR:-OFF}" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)" "$@"
