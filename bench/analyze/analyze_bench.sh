#!/usr/bin/env bash
# `cppdiag dump analyze` on cores of heap_bench_target (a million live
# allocations, about 1 GiB): the kernel's core and cppdiag's full self-dump of
# the same program. Each command runs RUNS times under /usr/bin/time; the
# table gives the median wall seconds and the median peak RSS, and the ratios
# against gdb reading the same core (`bt all` against
# `gdb -batch -ex 'thread apply all bt'`) and of the peak RSS to the core's
# size. Then `threads` on a 4 GiB core (the same program with 3 GiB more in
# 64 MiB buffers, cppdiag's full dump) against gdb's `info threads`.
# Run by hand (the test command never runs it); needs about 7 GiB of disk in
# WORKDIR and 4.5 GiB of memory.
#
#   bench/analyze/analyze_bench.sh BUILD_DIR [RUNS] [WORKDIR]
#
# The kernel's core is written where core_pattern says: the script needs it
# to be a plain file name ("core", the default) or root, to set it to
# "core" for the run (restored at exit).
set -eu
usage="usage: analyze_bench.sh BUILD_DIR [RUNS] [WORKDIR]"
build=$(cd "${1:?$usage}" && pwd)
runs=${2:-5}
work=${3:-}
target="$build/bench/analyze/heap_bench_target"
cppdiag="$build/src/cli/cppdiag"
for f in "$target" "$cppdiag"; do
  [ -x "$f" ] || { echo "analyze_bench: $f missing (cmake --build BUILD --target heap_bench_target cppdiag)" >&2; exit 1; }
done
command -v gdb >/dev/null || { echo "analyze_bench: gdb missing (apt-get install gdb)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "analyze_bench: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

if [ -z "$work" ]; then
  work=$(mktemp -d /var/tmp/analyze_bench.XXXXXX)
  cleanup_work=1
else
  mkdir -p "$work"
  cleanup_work=0
fi
saved_pattern=
restore() {
  [ -n "$saved_pattern" ] && printf '%s\n' "$saved_pattern" >/proc/sys/kernel/core_pattern
  [ "$cleanup_work" = 1 ] && rm -rf "$work"
  return 0
}
trap restore EXIT

pattern=$(cat /proc/sys/kernel/core_pattern)
case $pattern in
  core | core.*) ;;
  *)
    saved_pattern=$pattern
    echo core >/proc/sys/kernel/core_pattern ||
      { echo "analyze_bench: core_pattern is '$pattern' and cannot be set (not root?)" >&2; exit 1; }
    ;;
esac

# The kernel's core (coredump_filter 0x37, set by the target) and our full dump.
# (Braces: the shell's "Aborted (core dumped)" report goes to /dev/null too.)
{ (cd "$work" && rm -f core core.* && ulimit -c unlimited && exec "$target" abort >/dev/null 2>&1); } 2>/dev/null || true
kernel=$(ls "$work"/core "$work"/core.* 2>/dev/null | head -1)
[ -n "$kernel" ] || { echo "analyze_bench: the kernel wrote no core in $work" >&2; exit 1; }
mv "$kernel" "$work/kernel.core"
"$target" dump full "$work/full.core" >/dev/null
"$target" --extra-mib 3072 dump full "$work/big.core" >/dev/null

# "wall_seconds peak_rss_kb" of one run of the command in "$@".
measure() {
  /usr/bin/time -f '%e %M' -o "$work/time.out" "$@" >/dev/null 2>"$work/err.out" ||
    { echo "analyze_bench: failed: $*" >&2; cat "$work/err.out" >&2; exit 1; }
  cat "$work/time.out"
}
# The median of field $1 of the lines on stdin.
median() { awk -v f="$1" '{print $f}' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Runs "$@" RUNS times (one warm-up first, not counted, so the core is in the
# page cache for every variant alike); sets wall and rss (MiB).
bench() {
  measure "$@" >/dev/null
  : >"$work/runs"
  i=0
  while [ "$i" -lt "$runs" ]; do
    measure "$@" >>"$work/runs"
    i=$((i + 1))
  done
  wall=$(median 1 <"$work/runs")
  rss=$(median 2 <"$work/runs" | awk '{printf "%.0f", $1 / 1024}')
}

# The peak of the anonymous memory (RssAnon) of one run of "$@", sampled
# while it runs, in MiB: the part of the RSS that is not the mapped core's
# pages (those are the page cache's, shared and dropped under pressure).
anon_peak() {
  "$@" >/dev/null 2>&1 &
  pid=$!
  peak=0
  while :; do
    s=$(awk '/^State:/ {st = $2} /^RssAnon:/ {a = $2} END {print st, a + 0}' \
      "/proc/$pid/status" 2>/dev/null) || break
    # shellcheck disable=SC2086 # "state rss" split into two words
    set -- $s
    [ -z "${1:-}" ] || [ "$1" = Z ] && break
    [ "$2" -gt "$peak" ] && peak=$2
  done
  wait "$pid" || true
  anon=$(awk -v k="$peak" 'BEGIN {printf "%.0f", k / 1024}')
}

size_mib() { stat -c %s "$1" | awk '{printf "%.0f", $1 / 1048576}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf (b > 0 ? "%.2f" : "-"), a / b}'; }

echo "heap_bench_target cores, $runs runs each (medians); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| core | command | wall s | peak RSS MiB | RSS / core | anon MiB | vs gdb (wall) | gdb wall s | gdb RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
for core in kernel full; do
  file="$work/$core.core"
  size=$(size_mib "$file")
  bench gdb -batch -ex 'thread apply all bt' "$target" "$file"
  gdb_wall=$wall gdb_rss=$rss
  for cmd in threads 'bt all' heap 'heap types' 'heap leaked'; do
    bench "$cppdiag" dump analyze "$file" -c "$cmd"
    anon_peak "$cppdiag" dump analyze "$file" -c "$cmd"
    vs=- gw=- gr=-
    [ "$cmd" = 'bt all' ] && vs=$(ratio "$wall" "$gdb_wall") gw=$gdb_wall gr=$gdb_rss
    echo "| $core ($size MiB) | \`$cmd\` | $wall | $rss | $(ratio "$rss" "$size") | $anon | $vs | $gw | $gr |"
  done
done
size=$(size_mib "$work/big.core")
bench gdb -batch -ex 'info threads' "$target" "$work/big.core"
gdb_wall=$wall gdb_rss=$rss
bench "$cppdiag" dump analyze "$work/big.core" -c threads
anon_peak "$cppdiag" dump analyze "$work/big.core" -c threads
echo "| full ($size MiB) | \`threads\` | $wall | $rss | $(ratio "$rss" "$size") | $anon | $(ratio "$wall" "$gdb_wall") (\`info threads\`) | $gdb_wall | $gdb_rss |"

# What heap types and heap leaked found, against what the target built.
echo
"$cppdiag" dump analyze "$work/kernel.core" -c 'heap types 6' | sed 's/^/    /'
"$cppdiag" dump analyze "$work/kernel.core" -c 'heap leaked' | sed 's/^/    /'
