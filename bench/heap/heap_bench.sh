#!/bin/sh
# The allocation hooks' cost: alloc_bench plain, with the preloaded profiler at
# the default rate (CPPDIAG_HEAP_SAMPLE_BYTES unset: 512 KiB) without and with
# the diagnostic socket, with a heap hard limit (exact accounting), and under
# heaptrack when installed (fewer ops: it is ~30x slower; its ratio is against
# a plain run of the same size). The variants are interleaved, ROUNDS times,
# and each variant's median is reported, so that a busy machine slows all of
# them alike; wall and CPU seconds of the work, CPU being the steadier figure
# when other processes share the cores (see heap_bench.md); and, "paired",
# the median of the CPU ratios of each run to the plain run just before it.
#
#   bench/heap/heap_bench.sh BUILD_DIR [THREADS] [OPS_PER_THREAD] [HEAPTRACK_OPS_PER_THREAD] [ROUNDS]
set -eu
usage="usage: heap_bench.sh BUILD_DIR [THREADS] [OPS] [HEAPTRACK_OPS] [ROUNDS]"
build=$(cd "${1:?$usage}" && pwd)
threads=${2:-4}
ops=${3:-10000000}
ht_ops=${4:-1000000}
rounds=${5:-5}
bench="$build/bench/heap/alloc_bench"
preload="$build/src/diag/preload/libcppdiag_preload.so"
for f in "$bench" "$preload"; do
  [ -e "$f" ] || { echo "heap_bench: $f missing (cmake --build BUILD --target alloc_bench cppdiag_preload)" >&2; exit 1; }
done
have_heaptrack=0
command -v heaptrack >/dev/null && have_heaptrack=1

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# "wall cpu" from alloc_bench's line.
seconds() { sed -n 's/.* seconds=\([0-9.]*\) cpu_seconds=\([0-9.]*\).*/\1 \2/p'; }

# One run of variant $1; appends "wall cpu" to $out/$1.
run() {
  case $1 in
    plain) t=$("$bench" "$threads" "$ops" | seconds) ;;
    profiler) t=$(env LD_PRELOAD="$preload" CPPDIAG_ENABLE_DIAGNOSTICS=0 "$bench" "$threads" "$ops" | seconds) ;;
    socket) t=$(env LD_PRELOAD="$preload" "$bench" "$threads" "$ops" | seconds) ;;
    limit) t=$(env LD_PRELOAD="$preload" CPPDIAG_ENABLE_DIAGNOSTICS=0 CPPDIAG_HEAP_HARD_LIMIT=64G \
      "$bench" "$threads" "$ops" | seconds) ;;
    plain_ht) t=$("$bench" "$threads" "$ht_ops" | seconds) ;;
    heaptrack) t=$(cd "$out" && heaptrack -o "$out/ht" "$bench" "$threads" "$ht_ops" 2>/dev/null | seconds) ;;
  esac
  [ -n "$t" ] || { echo "heap_bench: variant $1 printed no time" >&2; exit 1; }
  echo "$t" >>"$out/$1"
}

# Each round runs every variant right after a plain run of its own, A B A
# C ..., and keeps the pair's CPU ratio: on a machine whose speed drifts
# (a shared VM's does, by tens of percent within a minute) the runs nearest
# in time compare best. heaptrack and its plain run come last.
# pair BASELINE VARIANT: runs both, appends VARIANT's CPU over BASELINE's.
pair() {
  run "$1"
  run "$2"
  echo "$(tail -1 "$out/$2" | cut -d' ' -f2) $(tail -1 "$out/$1" | cut -d' ' -f2)" |
    awk '{print $1 / $2}' >>"$out/$2.pair"
}
i=1
while [ $i -le "$rounds" ]; do
  for v in profiler socket limit; do pair plain "$v"; done
  [ $have_heaptrack = 1 ] && pair plain_ht heaptrack
  rm -f "$out"/ht*.zst "$out"/ht*.gz
  i=$((i + 1))
done

# median COLUMN VARIANT; raw COLUMN VARIANT: the runs in order.
median() { cut -d' ' -f"$1" "$out/$2" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
raw() { cut -d' ' -f"$1" "$out/$2" | tr '\n' ' '; }
ratio() { echo "$1 / $2" | bc -l | awk '{printf "%.3f", $1}'; }
# paired VARIANT: the median of its rounds' CPU ratios to the plain run
# just before (1 for a plain run).
paired() {
  [ -e "$out/$1.pair" ] || { printf 1.000; return; }
  sort -n "$out/$1.pair" | awk '{a[NR]=$1} END {printf "%.3f", (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}

echo "alloc_bench: $threads threads x $ops malloc/free pairs, $rounds interleaved rounds, medians"
printf '%-32s %7s %6s %7s %6s %6s  %s\n' variant wall ratio cpu ratio paired "raw wall seconds | raw cpu seconds"
# line LABEL VARIANT BASELINE_VARIANT
line() {
  w=$(median 1 "$2") c=$(median 2 "$2") bw=$(median 1 "$3") bc=$(median 2 "$3")
  printf '%-32s %7s %6s %7s %6s %6s  %s| %s\n' "$1" "$w" "$(ratio "$w" "$bw")" "$c" "$(ratio "$c" "$bc")" \
    "$(paired "$2")" "$(raw 1 "$2")" "$(raw 2 "$2")"
}
line "plain" plain plain
line "preload, profiler (512 KiB)" profiler plain
line "preload, profiler + socket" socket plain
line "preload, profiler + hard limit" limit plain
if [ $have_heaptrack = 1 ]; then
  line "plain ($ht_ops ops/thread)" plain_ht plain_ht
  line "heaptrack ($ht_ops ops/thread)" heaptrack plain_ht
else
  echo "heaptrack: not installed"
fi
