#!/bin/sh
# The allocation hooks' cost in instructions, which a busy machine does not
# change: alloc_bench on one thread under callgrind (valgrind), plain, with the
# preloaded profiler at the default period, and with a heap hard limit; only
# the work itself is counted (--toggle-collect on the worker). Prints each
# variant's instructions, per malloc/free pair, and the ratio to plain.
#
#   bench/heap/heap_callgrind.sh BUILD_DIR [OPS=2000000]
set -eu
usage="usage: heap_callgrind.sh BUILD_DIR [OPS]"
build=$(cd "${1:?$usage}" && pwd)
ops=${2:-2000000}
bench="$build/bench/heap/alloc_bench"
preload="$build/src/diag/preload/libcppdiag_preload.so"
for f in "$bench" "$preload"; do
  [ -e "$f" ] || { echo "heap_callgrind: $f missing (cmake --build BUILD --target alloc_bench cppdiag_preload)" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "heap_callgrind: valgrind not installed" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# instructions VARIANT ENV...: Ir of the worker under callgrind.
instructions() {
  name=$1
  shift
  env "$@" valgrind --tool=callgrind --callgrind-out-file="$out/$name.cg" --toggle-collect='*Work*' \
    "$bench" 1 "$ops" >"$out/$name.log" 2>&1 || { echo "heap_callgrind: $name failed" >&2; cat "$out/$name.log" >&2; exit 1; }
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/$name.log"
}

plain=$(instructions plain)
profiler=$(instructions profiler LD_PRELOAD="$preload" CPPDIAG_ENABLE_DIAGNOSTICS=0)
limit=$(instructions limit LD_PRELOAD="$preload" CPPDIAG_ENABLE_DIAGNOSTICS=0 CPPDIAG_HEAP_HARD_LIMIT=64G)
echo "alloc_bench under callgrind: 1 thread x $ops malloc/free pairs, instructions of the work"
printf '%-32s %14s %9s %7s\n' variant instructions per_pair ratio
for v in plain profiler limit; do
  eval n=\$$v
  printf '%-32s %14s %9.1f %7.3f\n' "$v" "$n" "$(echo "$n / $ops" | bc -l)" "$(echo "$n / $plain" | bc -l)"
done
