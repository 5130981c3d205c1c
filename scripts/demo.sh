#!/usr/bin/env bash
# The demo (DESIGN.md flow 1 and 3): leakapp runs with libcppdiag's crash
# dumps on and a heap hard limit; we list it with `cppdiag ps`, take an
# on-demand dump over its diagnostic socket, then make it leak until the hard
# limit makes `operator new` throw: it logs the OOM, crashes, and leaves an
# ELF core that gdb opens with the leak function on the stack.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "=== building leakapp and cppdiag"
scripts/build.sh release --target leakapp cppdiag >/dev/null
bin=build/release/src

port=${LEAKAPP_PORT:-18080}
work=$(mktemp -d /tmp/leakapp-demo.XXXXXX)
mkdir -p "$work/dumps"
log=$work/leakapp.log
export CPPDIAG_ENABLE_DUMP_ON_CRASH=1
export CPPDIAG_DUMP_TYPE=full
export CPPDIAG_DUMP_NAME=$work/dumps/core.%e.%p.%r
# In a container the default is 75 % of the cgroup limit; here we set it.
export CPPDIAG_HEAP_HARD_LIMIT=${CPPDIAG_HEAP_HARD_LIMIT:-256M}
"$bin/leakapp/leakapp" --port "$port" --bind 127.0.0.1 >"$log" 2>&1 &
app=$!
trap 'kill -9 $app 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "leakapp is up on http://127.0.0.1:$port (pid $app, heap hard limit $CPPDIAG_HEAP_HARD_LIMIT)"

echo; echo "=== cppdiag ps"
"$bin/cli/cppdiag" ps
echo; echo "=== cppdiag dump collect -p $app --type mini   (on demand, written by the target itself)"
"$bin/cli/cppdiag" dump collect -p "$app" --type mini -o "$work/dumps/core.on-demand.mini"

echo; echo "=== GET /triggerMemoryLeak?intervalMs=20   (1 MiB a round)"
curl -fsS "http://127.0.0.1:$port/triggerMemoryLeak?intervalMs=20"; echo
while kill -0 $app 2>/dev/null; do
  sleep 1
  grep -a "Allocated" "$log" | tail -1 || true
done
set +e
wait $app
code=$?
set -e
trap - EXIT

echo; echo "=== the end of leakapp's log"
grep -aE "OutOfMemory|terminate|cppdiag:" "$log" | head -8
echo "leakapp exited with status $code (128 + $((code - 128)): $(kill -l $((code - 128)) 2>/dev/null || echo ?))"

echo; echo "=== dumps"
ls -l "$work/dumps"
core=$(ls "$work"/dumps/core.leakapp.*.crash 2>/dev/null | head -1)
if [ -n "$core" ]; then
  echo; echo "=== gdb: the crashing thread's stack"
  gdb -batch -nx -ex "bt 14" "$bin/leakapp/leakapp" "$core" 2>/dev/null | grep -E "^#" | awk '!seen[$0]++' | cut -c1-150
  echo; echo "The dump is $core; open it with: gdb $bin/leakapp/leakapp $core"
else
  echo "no crash dump was written (see $log)" >&2
  exit 1
fi
