#!/bin/sh
# The allocation hooks' cost: alloc_bench plain, with the preloaded profiler at
# the default rate (CPPDIAG_HEAP_SAMPLE_BYTES unset: 512 KiB), and under
# heaptrack when installed. Ratios from one run of each (see heap_bench.md).
#
#   bench/heap/heap_bench.sh BUILD_DIR [THREADS] [OPS_PER_THREAD] [HEAPTRACK_OPS_PER_THREAD]
set -eu
build=$(cd "${1:?usage: heap_bench.sh BUILD_DIR [THREADS] [OPS] [HEAPTRACK_OPS]}" && pwd)
threads=${2:-4}
ops=${3:-10000000}
ht_ops=${4:-$ops}
bench="$build/bench/heap/alloc_bench"
preload="$build/src/diag/preload/libcppdiag_preload.so"
seconds() { sed -n 's/.*seconds=\([0-9.]*\).*/\1/p'; }

plain=$("$bench" "$threads" "$ops" | seconds)
ours=$(env LD_PRELOAD="$preload" CPPDIAG_ENABLE_DIAGNOSTICS=0 "$bench" "$threads" "$ops" | seconds)
ours_full=$(env LD_PRELOAD="$preload" "$bench" "$threads" "$ops" | seconds)
echo "plain:                      ${plain} s"
echo "cppdiag preload (profiler): ${ours} s  ratio $(echo "$ours / $plain" | bc -l | cut -c1-5)"
echo "cppdiag preload (+socket):  ${ours_full} s  ratio $(echo "$ours_full / $plain" | bc -l | cut -c1-5)"
if command -v heaptrack >/dev/null; then
  out=$(mktemp -d)
  plain_ht=$plain
  if [ "$ht_ops" != "$ops" ]; then plain_ht=$("$bench" "$threads" "$ht_ops" | seconds); fi
  ht=$(cd "$out" && heaptrack "$bench" "$threads" "$ht_ops" 2>/dev/null | seconds)
  rm -rf "$out"
  echo "heaptrack (ops/thread ${ht_ops}): ${ht} s  ratio $(echo "$ht / $plain_ht" | bc -l | cut -c1-6)"
else
  echo "heaptrack: not installed"
fi
