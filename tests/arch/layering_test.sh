#!/bin/sh
# The include layering of src/ (scripts/check_layering.py) holds on the tree,
# and a deliberate wrong include in a copy of it fails the check, as it fails
# the build (the check_layering target is part of ALL).
set -eu
src=$1
checker=$2
python3 "$checker" "$src"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect_rejected() {  # file line message
  rm -rf "$tmp/src"
  cp -r "$src" "$tmp/src"
  printf '%s\n' "$2" >>"$tmp/src/$1"
  if out=$(python3 "$checker" "$tmp/src" 2>&1); then
    echo "accepted: $2 in $1"
    exit 1
  fi
  printf '%s\n' "$out" | grep -qF "$3" || { echo "wrong message for $2 in $1: $out"; exit 1; }
}
# The dump engine knows no server (DESIGN.md: ipc calls dump, never the reverse).
expect_rejected diag/dump/sink.cc '#include "diag/ipc/server.h"' \
  'diag/dump/sink.cc: includes diag/ipc/server.h, which diag/dump/ may not use'
# Nothing in the runtime knows leakapp or the CLI.
expect_rejected diag/heap/sampler.cc '#include "leakapp/leak_engine.h"' \
  'diag/heap/sampler.cc: includes leakapp/leak_engine.h'
expect_rejected diag/runtime.cc '#include "cli/discovery.h"' 'diag/runtime.cc: includes cli/discovery.h'
# The CLI uses the protocol's codec, not the server.
expect_rejected cli/ps_command.cc '#include "diag/ipc/server.h"' 'cli/ps_command.cc: includes diag/ipc/server.h'
# internal/ is private to its folder.
expect_rejected diag/ipc/server.cc '#include "diag/heap/internal/region.h"' \
  'diag/ipc/server.cc: includes diag/heap/internal/region.h, private to its folder'
echo "layering: the tree passes, and 5 wrong includes are refused"
