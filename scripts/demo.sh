#!/usr/bin/env bash
# The demo: builds leakapp, starts it, triggers a leak and shows memory
# growing round after round, then frees it and stops the service.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh release --target leakapp >/dev/null

port=${LEAKAPP_PORT:-18080}
log=$(mktemp /tmp/leakapp-demo.XXXXXX.log)
build/release/src/leakapp/leakapp --port "$port" --bind 127.0.0.1 >"$log" 2>&1 &
app=$!
trap 'kill $app 2>/dev/null || true' EXIT

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "leakapp is up on http://127.0.0.1:$port (pid $app, log $log)"

show() { curl -fsS "http://127.0.0.1:$port/status"; echo; }
echo "--- status before the leak"; show
echo "--- GET /triggerMemoryLeak?intervalMs=50&maxMb=200"
curl -fsS "http://127.0.0.1:$port/triggerMemoryLeak?intervalMs=50&maxMb=200"; echo
for _ in 1 2 3 4 5; do
  sleep 1
  grep -a "Allocated" "$log" | tail -1
done
echo "--- status after the leak"; show
echo "--- GET /releaseMemory"
curl -fsS "http://127.0.0.1:$port/releaseMemory"; echo
show
kill -TERM $app
wait $app && echo "leakapp stopped cleanly (exit 0)"
trap - EXIT
