#!/bin/sh
# What `cppdiag trace collect` costs its target, beside `perf record -g` on
# the same workload (bench/trace/README.md):
#   - cpu: cpu_work.c (two threads hashing through three frames) under
#     LD_PRELOAD=libcppdiag_preload.so, ops/s over SECONDS: untraced, traced
#     at 99 and 999 Hz, perf record -F 99 / 999 -g;
#   - http: leakapp (GET /status, wrk 2 threads, 64 connections) for
#     SECONDS: the same five.
# For cpu also ops per second of the process's CPU time: on a loaded machine
# wall-time throughput is mostly the neighbours; CPU time per op is the cost.
# Each variant ROUNDS times, interleaved; medians; lost samples from
# cppdiag's summary line. Markdown on stdout. Run by hand, never by ctest.
# TRACE_BENCH_WORKLOADS ("cpu http") and TRACE_BENCH_VARIANTS (the five)
# run a part (e.g. "http" and "none cppdiag99" to compare two builds).
#
#   bench/trace/trace_bench.sh BUILD_DIR [SECONDS] [ROUNDS]
set -eu
usage="usage: trace_bench.sh BUILD_DIR [SECONDS] [ROUNDS]"
build=$(cd "${1:?$usage}" && pwd)
seconds=${2:-5}
rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
leakapp="$build/src/leakapp/leakapp"
cppdiag="$build/src/cli/cppdiag"
preload=$(find "$build/src/diag/preload" -name 'libcppdiag_preload.so' | head -1)
for f in "$leakapp" "$cppdiag" "$preload"; do
  [ -x "$f" ] || [ -f "$f" ] || { echo "trace_bench: $f missing (build leakapp cppdiag cppdiag_preload)" >&2; exit 1; }
done
. "$here/../load/lib.sh"
need_debian_tools wrk:wrk curl:curl perf:linux-perf cc:gcc

out=$(mktemp -d)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$out"
}
trap cleanup EXIT INT TERM
cc -O2 -fno-omit-frame-pointer -o "$out/cpu_work" "$here/cpu_work.c" -lpthread

# wait_timers PID: until the trace's per-thread timers exist (the sampler runs).
wait_timers() {
  n=0
  until grep -q 'ID:' "/proc/$1/timers" 2>/dev/null; do
    n=$((n + 1)); [ $n -gt 200 ] && { echo "trace_bench: no trace started in $1" >&2; exit 1; }
    sleep 0.05
  done
}

# start_profiler VARIANT PID: none, cppdiag99, cppdiag999, perf99, perf999;
# sets prof_pid (empty for none) once it samples.
start_profiler() {
  prof_pid=""
  case $1 in
    none) ;;
    cppdiag*)
      "$cppdiag" trace collect -p "$2" --rate "${1#cppdiag}" -o "$out/trace.json" --overwrite \
        --counters-interval 1s >"$out/prof.log" 2>&1 &
      prof_pid=$!
      wait_timers "$2" ;;
    perf*)
      perf record -q -F "${1#perf}" -g -p "$2" -o "$out/perf.data" >"$out/prof.log" 2>&1 &
      prof_pid=$!
      sleep 1 ;;  # perf has no ready signal: it attaches well within this
  esac
}

# lost VARIANT: cppdiag's lost-sample count, perf's lost chunks, or -.
lost() {
  case $1 in
    cppdiag*) sed -n 's/.* \([0-9]*\) lost.*/\1/p' "$out/prof.log" | head -1 ;;
    perf*) grep -o 'lost [0-9]* chunks\|Processed [0-9]* events and lost [0-9]*' "$out/prof.log" | head -1 | grep -o '[0-9]*$' || echo 0 ;;
    *) echo - ;;
  esac
}

# samples VARIANT: samples cppdiag wrote / perf recorded.
samples() {
  case $1 in
    cppdiag*) sed -n 's/.*, \([0-9]*\) samples from.*/\1/p' "$out/prof.log" | head -1 ;;
    perf*) perf report -i "$out/perf.data" --stats 2>/dev/null | awk '/SAMPLE events:/ {print $3; exit}' ;;
    *) echo - ;;
  esac
}

cpu_run() {
  rm -f "$out/go"
  mkfifo "$out/go"
  LD_PRELOAD="$preload" CPPDIAG_DUMP_DIR="$out" "$out/cpu_work" "$seconds" <"$out/go" >"$out/work.log" 2>&1 &
  wpid=$!
  exec 9>"$out/go"
  until grep -q '^ready' "$out/work.log"; do sleep 0.05; done
  start_profiler "$1" "$wpid"
  echo go >&9
  exec 9>&-
  wait "$wpid"
  [ -n "$prof_pid" ] && { kill -INT "$prof_pid" 2>/dev/null || true; wait "$prof_pid" || true; }
  echo "cpu $1 $(awk '/^ops_per_s/ {print $2}' "$out/work.log") $(samples "$1") $(lost "$1") $(awk '/^ops_per_cpu_s/ {print $2}' "$out/work.log")"
}

# cpu_ticks PID: the process's user + system time, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# diag_ns PID [ALL]: nanoseconds on CPU (schedstat: finer than the clock
# ticks of stat) of the process's cppdiag-* threads (the diagnostic server
# and the request thread a trace runs on), or of all its threads.
diag_ns() {
  for t in /proc/"$1"/task/*; do
    case ${2:-}$(cat "$t/comm" 2>/dev/null) in cppdiag-* | all*) cut -d' ' -f1 "$t/schedstat" 2>/dev/null ;; esac
  done | awk '{s += $1} END {printf "%.0f\n", s}'
}

# http_run VARIANT: req/s, samples, lost, p99, leakapp's CPU time per
# request in microseconds (what the load does not change; perf's own
# process is not counted, as for cpu), and, of leakapp's CPU time in the
# window, the share of its cppdiag-* threads (the trace's drain and
# streaming) and the share the profiler's own process used (the CLI, or
# perf): what the trace takes from a saturated machine besides the samples'
# signal handlers.
http_run() {
  start_profiler "$1" "$leakapp_pid"
  t0=$(cpu_ticks "$leakapp_pid")
  d0=$(diag_ns "$leakapp_pid")
  p0=0
  [ -n "$prof_pid" ] && p0=$(diag_ns "$prof_pid" all)
  r=$(wrk_run 2 64 "$seconds" "http://127.0.0.1:$port/status")
  t1=$(cpu_ticks "$leakapp_pid")
  d1=$(diag_ns "$leakapp_pid")
  p1=0
  [ -n "$prof_pid" ] && p1=$(diag_ns "$prof_pid" all)
  [ -n "$prof_pid" ] && { kill -INT "$prof_pid"; wait "$prof_pid" || true; }
  us=$(echo "$r $t0 $t1 $(getconf CLK_TCK)" | awk '{printf "%.3f", ($9 - $8) * 1e6 / $10 / $5}')
  # Of leakapp's CPU time from stat (its connection threads have exited by
  # now, their schedstat with them).
  shares=$(echo "$t0 $t1 $d0 $d1 $p0 $p1 $(getconf CLK_TCK)" | awk '{c = ($2 - $1) * 1e9 / $7;
    if (c <= 0) c = 1; printf "%.3f %.3f", ($4 - $3) * 100 / c, ($6 - $5) * 100 / c}')
  echo "http $1 $(echo "$r" | cut -d' ' -f1) $(samples "$1") $(lost "$1") $(echo "$r" | cut -d' ' -f3) $us $shares"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)" >&2
port=$(free_port)
start_leakapp "$port" "$out/leakapp.log" CPPDIAG_DUMP_DIR="$out"
pids="$pids $leakapp_pid"
: >"$out/results"
variants=${TRACE_BENCH_VARIANTS:-none cppdiag99 perf99 cppdiag999 perf999}
workloads=${TRACE_BENCH_WORKLOADS:-cpu http}
i=1
while [ "$i" -le "$rounds" ]; do
  for w in $workloads; do
    for v in $variants; do "${w}_run" "$v" | tee -a "$out/results" >&2; done
  done
  i=$((i + 1))
done

# Medians per workload and variant, overhead against "none".
python3 - "$out/results" "$seconds" "$rounds" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(xs):
    xs = [float(x) for x in xs if x not in ("-", "")]
    return statistics.median(xs) if xs else None
print(f"{sys.argv[3]} interleaved rounds of {sys.argv[2]} s each; medians.\n")
for work, unit in (("cpu", "ops/s"), ("http", "req/s")):
    base = med(r[2] for r in rows if r[0] == work and r[1] == "none")
    if base is None:
        continue  # not run (TRACE_BENCH_WORKLOADS, TRACE_BENCH_VARIANTS without none)
    cbase = med(r[5] for r in rows if r[0] == work and r[1] == "none" and len(r) > 5)
    ubase = med(r[6] for r in rows if r[0] == work and r[1] == "none" and len(r) > 6)
    extra = (" p99 ms | CPU µs per request | vs untraced | cppdiag threads % | profiler process % |"
             if work == "http" else " ops per CPU-s | vs untraced |")
    print(f"| {work} | {unit} | vs untraced | samples | lost |" + extra)
    print("|---|---|---|---|---|" + ("---|---|---|---|---|" if work == "http" else "---|---|"))
    for v in ("none", "cppdiag99", "perf99", "cppdiag999", "perf999"):
        rs = [r for r in rows if r[0] == work and r[1] == v]
        if not rs:
            continue
        t = med(r[2] for r in rs)
        s = med(r[3] for r in rs if len(r) > 3)
        lost = med(r[4] for r in rs if len(r) > 4)
        name = {"none": "untraced", "cppdiag99": "cppdiag trace 99 Hz", "perf99": "perf record -F 99 -g",
                "cppdiag999": "cppdiag trace 999 Hz", "perf999": "perf record -F 999 -g"}[v]
        rel = "" if t is None or base is None else f"{(t / base - 1) * 100:+.1f} %"
        line = f"| {name} | {t:.0f} | {rel} | {'-' if s is None else f'{s:.0f}'} | {'-' if lost is None else f'{lost:.0f}'} |"
        if work == "http":
            u = med(r[6] for r in rs if len(r) > 6)
            line += f" {med(r[5] for r in rs if len(r) > 5) or 0:.2f} |"
            line += " - | - |" if u is None or not ubase else f" {u:.2f} | {(u / ubase - 1) * 100:+.1f} % |"
            for k in (7, 8):
                x = med(r[k] for r in rs if len(r) > k)
                line += " - |" if x is None else f" {x:.3f} |"
        else:
            c = med(r[5] for r in rs if len(r) > 5)
            line += f" {c:.0f} | {(c / cbase - 1) * 100:+.1f} % |"
        print(line)
    print()
PY
