#!/bin/sh
# What the sampling heap profiler costs leakapp's HTTP service: two leakapps,
# one with the default sampling (CPPDIAG_HEAP_SAMPLE_BYTES unset: 512 KiB),
# one with the profiler off (CPPDIAG_HEAP_SAMPLE_BYTES=0), under the same wrk
# load (GET /healthz and GET /status, 64 keep-alive connections, 2 threads),
# interleaved ROUNDS times; medians of req/s and p99 (see README.md).
#
#   bench/load/profiler_bench.sh BUILD_DIR [SECONDS] [ROUNDS]
set -eu
usage="usage: profiler_bench.sh BUILD_DIR [SECONDS] [ROUNDS]"
build=$(cd "${1:?$usage}" && pwd)
seconds=${2:-5}
rounds=${3:-3}
leakapp="$build/src/leakapp/leakapp"
[ -x "$leakapp" ] || { echo "profiler_bench: $leakapp missing (cmake --build BUILD --target leakapp)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need_debian_tools wrk:wrk curl:curl

out=$(mktemp -d)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$out"
}
trap cleanup EXIT INT TERM

on_port=$(free_port)
start_leakapp "$on_port" "$out/on.log"
pids="$pids $leakapp_pid"
off_port=$(free_port)
start_leakapp "$off_port" "$out/off.log" CPPDIAG_HEAP_SAMPLE_BYTES=0
pids="$pids $leakapp_pid"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
: >"$out/results"
i=1
while [ "$i" -le "$rounds" ]; do
  for path in healthz status; do
    for variant in on off; do
      port=$on_port
      [ $variant = off ] && port=$off_port
      echo "$variant $path 64 $(wrk_run 2 64 "$seconds" "http://127.0.0.1:$port/$path")" >>"$out/results"
    done
  done
  i=$((i + 1))
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| path | profiler on req/s | off req/s | on/off | on p99 ms | off p99 ms | non-2xx | socket errors |"
echo "|---|---|---|---|---|---|---|---|"
for path in healthz status; do
  on=$(median_of on "$path" 64 4)
  off=$(median_of off "$path" 64 4)
  ratio=$(echo "$on $off" | awk '{printf "%.2f", $1 / $2}')
  bad=$(($(sum_of on "$path" 64 9) + $(sum_of off "$path" 64 9)))
  errs=$(($(sum_of on "$path" 64 10) + $(sum_of off "$path" 64 10)))
  echo "| /$path | $on | $off | $ratio | $(median_of on "$path" 64 6) | $(median_of off "$path" 64 6) | $bad | $errs |"
done
echo
echo "raw runs (variant path conns req/s p50 p99 max requests non-2xx socket-errors):"
cat "$out/results"
