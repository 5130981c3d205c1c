#!/usr/bin/env bash
# Option C in the local pod: scripts/pod.sh plays "local" with the sidecar
# overlay's add-debugger.json; `podman exec` into the debugger container (uid
# 10001, no capabilities, shared PID namespace) runs `cppdiag ps`, which shows
# leakapp, and `cppdiag dump collect`; leakapp writes the dump on its volume,
# which the debugger also sees.
#   option_c_sidecar_test.sh LEAKAPP_STATIC CPPDIAG_STATIC REPO
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init "$1" "$2" "$3" c

export LEAKAPP_POD_PREFIX=$E2E_ID-
LEAKAPP_HOST_PORT=$(e2e_free_port)
export LEAKAPP_HOST_PORT
pod_sh=$E2E_REPO/scripts/pod.sh
e2e_on_exit "'$pod_sh' down --volumes"

e2e_log "pod.sh up sidecar"
"$pod_sh" up sidecar
pod=${LEAKAPP_POD_PREFIX}leakapp-pod-0
podman pod exists "$pod" || pod=${LEAKAPP_POD_PREFIX}leakapp-pod
debugger=$pod-debugger
[ "$(podman inspect --format '{{.State.Status}}' "$debugger")" = running ] ||
  e2e_fail "the debugger container $debugger is not running"
[ "$(podman exec "$debugger" id -u)" = 10001 ] || e2e_fail "the debugger does not run as uid 10001"
caps=$(podman exec "$debugger" grep CapEff /proc/self/status | awk '{print $2}')
[ "$caps" = 0000000000000000 ] || e2e_fail "the debugger has capabilities $caps"

e2e_log "podman exec $debugger cppdiag ps"
ps_out=$(podman exec "$debugger" cppdiag ps) || e2e_fail "cppdiag ps failed in the debugger: $ps_out"
echo "$ps_out"
pid=$(echo "$ps_out" | awk '$2 == "leakapp" {print $1}' | head -1)
[ -n "$pid" ] || e2e_fail "cppdiag ps in the sidecar does not show leakapp"

e2e_log "podman exec $debugger cppdiag dump collect -p $pid --type full -o /app/dumps/core.sidecar"
out=$(podman exec "$debugger" cppdiag dump collect -p "$pid" --type full -o /app/dumps/core.sidecar 2>&1) ||
  e2e_fail "cppdiag dump collect failed: $out"
echo "$out"
echo "$out" | grep -q '^Writing full dump to /app/dumps/core.sidecar' || e2e_fail "no 'Writing full dump to' line"
echo "$out" | grep -q '^Complete' || e2e_fail "no 'Complete' line"

dumps=$(e2e_volume_path "${LEAKAPP_POD_PREFIX}leakapp-dumps")
e2e_check_dump_file "$dumps/core.sidecar"
podman exec "$debugger" ls -ln /app/dumps/core.sidecar || e2e_fail "the debugger does not see the dump on the shared volume"
bt=$(e2e_gdb "$dumps/core.sidecar" "info threads" "thread apply all bt 8")
echo "$bt" | grep -qE '^(\*| ) +[0-9]+ +Thread' || e2e_fail "gdb lists no threads in $dumps/core.sidecar"
echo "$bt" | grep -q ' main ' || e2e_fail "gdb finds no main() in $dumps/core.sidecar"
# The monitor in the sidecar (no capabilities) watches leakapp's memory
# cgroup, which the sidecar's own cgroup mount does not show: it asks
# leakapp over its socket, and dumps it at 70 % of the pod's limit, before
# leakapp runs out of memory and crashes. Not 80 %: leakapp's heap hard
# limit is 75 % of the limit, and with its 10 MiB besides the heap the
# cgroup stops near 79 % when it crashes; 80 % was reached only when the
# page cache of the dump written before happened to be charged to it.
# Leaking 25 MiB/s leaves the monitor about a second.
e2e_log "podman exec $debugger cppdiag monitor -p $pid --cgroup-memory 70, then the leak"
monitor_out=$(mktemp)
e2e_on_exit "rm -f '$monitor_out'"
timeout 120 podman exec "$debugger" cppdiag monitor -p "$pid" --cgroup-memory 70 --type heap \
  -o /app/dumps >"$monitor_out" 2>&1 </dev/null &
monitor=$!
e2e_on_exit "kill $monitor"
for _ in $(seq 100); do grep -q '^Monitoring process' "$monitor_out" && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$LEAKAPP_HOST_PORT/triggerMemoryLeak?intervalMs=40" >/dev/null ||
  e2e_fail "the leak request failed"
wait "$monitor" || e2e_fail "the monitor failed: $(cat "$monitor_out")"
cat "$monitor_out"
fired=$(awk '$3 == "cgroup-memory" && $5 == ">=" && $6 == "70.0%" {print $7}' "$monitor_out")
[ -n "$fired" ] || e2e_fail "the monitor did not fire on cgroup-memory 70 %"
e2e_check_dump_file "$dumps/$(basename "$fired")"
reason=$("$E2E_CPPDIAG" dump analyze "$dumps/$(basename "$fired")" --json -c info |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["cppdiag"]["reason"])')
echo "$reason" | grep -q '^trigger: cgroup-memory 7[0-9.]*% >= 70.0%$' ||
  e2e_fail "the monitor's dump has the reason '$reason'"
echo "PASS: option C: the sidecar found leakapp (pid $pid), leakapp wrote $dumps/core.sidecar, and the sidecar's monitor had it dump $fired at 70 % of its cgroup"
