#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds
# once, runs every label from the same build tree.
#   scripts/test.sh                 everything
#   scripts/test.sh unit            one ctest label (unit, integration, e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's start, with the seconds since this script started: CI's budget
# is 45 minutes on 2 cores, and its log shows where they go.
step() { echo "=== [${SECONDS} s] $*"; }

step setup
scripts/setup.sh
# The tree as .clang-format and DESIGN.md's layering say (the layering check
# also runs in every build), then the release build with warnings as errors,
# and clang-tidy's checks (.clang-tidy) on the production sources, which reads
# that build's compile_commands.json.
step format
scripts/check_format.sh
step "release build"
CPPDIAG_WERROR=ON scripts/build.sh release
step tidy
scripts/check_tidy.sh

status=0
labels=${1:-}
if [ -z "$labels" ]; then
  # Short fuzz runs of the diagnostic socket's request path, the CLI's pprof
  # reader, the core reader of dump analyze and its glibc heap walker, and
  # leakapp's HTTP connection (clang, ASan+UBSan).
  step "fuzz build"
  scripts/build.sh fuzz >/dev/null
  for fuzzer in request_fuzzer:corpus:70000 pprof_fuzzer:pprof_corpus:20000 \
                core_file_fuzzer:corpus_core:65536 heap_walk_fuzzer:corpus_heap:65536 \
                http_fuzzer:http_corpus:16384; do
    IFS=: read -r name seeds max_len <<<"$fuzzer"
    step "fuzz: $name, 10 s"
    corpus=$(mktemp -d)
    cp tests/fuzz/"$seeds"/* "$corpus"/
    if build/fuzz/tests/fuzz/"$name" -max_total_time=10 -max_len="$max_len" \
         -print_final_stats=1 "$corpus" >"$corpus.log" 2>&1; then
      grep -E "^stat::number_of_executed_units" "$corpus.log" || true
      echo "fuzz: no crash"
    else
      tail -40 "$corpus.log"
      echo "fuzz: FAILED"
      status=1
    fi
    rm -rf "$corpus" "$corpus.log"
  done

  # Sanitizers on a focused subset: the code with threads, parsers and sockets,
  # the heap sampler's table (8 threads allocating and freeing across threads) and
  # the CPU sampler's rings (producers in signal handlers, one drain).
  # (The dump engine reads its own address space and the heap hooks replace
  # the allocator: both are exercised by the release run instead.)
  sanitized=(common_unit_test ipc_unit_test diag_unit_test leakapp_unit_test heap_unit_test
             counters_unit_test cli_counters_unit_test cpu_unit_test)
  for preset in asan tsan; do
    step "$preset: ${sanitized[*]}"
    scripts/build.sh "$preset" --target "${sanitized[@]}" >/dev/null
    # Only these executables are built in the sanitizer trees: skip the rest.
    ctest --preset "$preset" -L unit -E "_NOT_BUILT" -j 2 --timeout 300 >"build/$preset-ctest.log" 2>&1 || { tail -60 "build/$preset-ctest.log"; status=1; }
    grep -E "tests passed|tests failed" "build/$preset-ctest.log" || true
  done
  labels="unit|integration|e2e"
fi

# One ctest run, so its closing summary counts every test.
step "ctest -L '$labels'"
ctest --preset release -L "^($labels)\$" -j 2 --timeout 900 || status=1
step "done: exit $status"
exit $status
