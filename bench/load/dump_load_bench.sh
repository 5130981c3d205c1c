#!/bin/sh
# leakapp under a steady load while it is dumped: wrk paces 16 keep-alive
# connections to RATE requests/s in all (GET /healthz and /status in turn,
# paced.lua) for SECONDS, three runs on the same leakapp holding LEAK_MB MiB
# leaked: no dump; cppdiag's on-demand full dump over the diagnostic socket
# (the target forks a copy-on-write snapshot and writes it: fork mode) taken
# SECONDS/3 into the run; gdb's gcore of the same process at the same moment.
# Prints requests completed, p50/p99/max latency, non-2xx and socket errors
# per run, and how long each dump took (see README.md).
#
#   bench/load/dump_load_bench.sh BUILD_DIR [SECONDS] [RATE] [LEAK_MB]
set -eu
usage="usage: dump_load_bench.sh BUILD_DIR [SECONDS] [RATE] [LEAK_MB]"
build=$(cd "${1:?$usage}" && pwd)
seconds=${2:-30}
rate=${3:-2000}
leak_mb=${4:-1024}
conns=16
leakapp="$build/src/leakapp/leakapp"
cppdiag="$build/src/cli/cppdiag"
for f in "$leakapp" "$cppdiag"; do
  [ -x "$f" ] || { echo "dump_load_bench: $f missing (cmake --build BUILD --target leakapp cppdiag)" >&2; exit 1; }
done
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need_debian_tools wrk:wrk gdb:gdb curl:curl

out=$(mktemp -d)
leakapp_pid=""
cleanup() {
  [ -n "$leakapp_pid" ] && kill "$leakapp_pid" 2>/dev/null && wait "$leakapp_pid" 2>/dev/null
  rm -rf "$out"
}
trap cleanup EXIT INT TERM
mkdir -p "$out/dumps"

port=$(free_port)
start_leakapp "$port" "$out/leakapp.log" CPPDIAG_DUMP_DIR="$out/dumps" CPPDIAG_HEAP_HARD_LIMIT=0
url="http://127.0.0.1:$port"
curl -sf "$url/triggerMemoryLeak?chunkKb=65536&intervalMs=0&maxMb=$leak_mb" >/dev/null
n=0
until curl -sf "$url/status" | grep -q '"state":"stopped"'; do
  n=$((n + 1))
  [ $n -gt 600 ] && { echo "dump_load_bench: the leak never reached $leak_mb MiB" >&2; exit 1; }
  sleep 0.1
done
rss_mb=$(curl -sf "$url/status" | sed -n 's/.*"rssMb":\([0-9.]*\).*/\1/p')
echo "leakapp pid $leakapp_pid holds $leak_mb MiB leaked (RSS $rss_mb MiB); $conns connections paced to $rate req/s, $seconds s a run"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"

# run NAME: one wrk run; NAME's dump (if any) SECONDS/3 into it.
: >"$out/results"
run() {
  BENCH_RATE=$rate BENCH_CONNS=$conns wrk -t2 -c"$conns" -d"${seconds}s" --timeout 60s --latency \
    -s "$here/paced.lua" "$url/" >"$out/wrk.$1" 2>&1 &
  wrk_pid=$!
  sleep "$(echo "$seconds / 3" | bc -l)"
  start=$(date +%s.%N)
  note=""
  case $1 in
    none) ;;
    cppdiag)
      note=$("$cppdiag" dump collect -p "$leakapp_pid" --type full -o "$out/dumps/core.cppdiag" 2>&1 | tail -1)
      ;;
    gcore)
      gdb -batch -p "$leakapp_pid" -ex "gcore $out/dumps/core.gcore" >"$out/gdb.log" 2>&1 || true
      note=$(grep -m1 "Saved corefile" "$out/gdb.log" || tail -1 "$out/gdb.log")
      ;;
  esac
  dump_s=$(echo "$(date +%s.%N) - $start" | bc -l | awk '{printf "%.2f", $1}')
  [ "$1" = none ] && dump_s="-"
  wait "$wrk_pid"
  size="-"
  for f in "$out"/dumps/core.*; do [ -e "$f" ] && size=$(($(stat -c %s "$f") / 1048576)); done
  rm -f "$out"/dumps/core.*
  r=$(cat "$out/wrk.$1")
  rps=$(echo "$r" | awk '/^Requests\/sec:/ {printf "%.0f", $2}')
  p50=$(to_ms "$(echo "$r" | awk '$1 == "50%" {print $2; exit}')")
  p99=$(to_ms "$(echo "$r" | awk '$1 == "99%" {print $2; exit}')")
  max=$(to_ms "$(echo "$r" | awk '$1 == "Latency" && NF >= 4 {print $4; exit}')")
  reqs=$(echo "$r" | awk '/requests in/ {print $1; exit}')
  bad=$(echo "$r" | awk '/Non-2xx or 3xx responses:/ {print $NF}')
  errs=$(echo "$r" | awk -F'[ ,]+' '/Socket errors:/ {print $4 + $6 + $8 + $10}')
  echo "| $1 | $reqs | $rps | $p50 | $p99 | $max | ${bad:-0} | ${errs:-0} | $dump_s | $size | $note |" >>"$out/results"
}
for r in none cppdiag gcore; do run "$r"; done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run | requests | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | dump s | dump MiB | dump's last line |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
cat "$out/results"
