#!/usr/bin/env bash
# Option C with ptrace, in the local pod: scripts/pod.sh plays "local" with the
# sidecar-ptrace overlay's patches. The debugger runs as uid 0 with
# SYS_PTRACE and DAC_READ_SEARCH alone; `cppdiag dump collect --ptrace` from
# it dumps leakapp (in stop mode: the app container's cgroup is not in the
# sidecar's view) and the debugger's own sleep, which embeds nothing; gdb
# opens both cores.
#   option_c_ptrace_sidecar_test.sh LEAKAPP_STATIC CPPDIAG_STATIC REPO
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init "$1" "$2" "$3" cp

export LEAKAPP_POD_PREFIX=$E2E_ID-
LEAKAPP_HOST_PORT=$(e2e_free_port)
export LEAKAPP_HOST_PORT
pod_sh=$E2E_REPO/scripts/pod.sh
e2e_on_exit "'$pod_sh' down --volumes"

e2e_log "pod.sh up sidecar-ptrace"
"$pod_sh" up sidecar-ptrace
pod=${LEAKAPP_POD_PREFIX}leakapp-pod-0
podman pod exists "$pod" || pod=${LEAKAPP_POD_PREFIX}leakapp-pod
debugger=$pod-debugger
[ "$(podman exec "$debugger" id -u)" = 0 ] || e2e_fail "the ptrace debugger does not run as uid 0"
caps=$(podman exec "$debugger" grep CapEff /proc/self/status | awk '{print $2}')
# CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE (19), nothing else.
[ "$caps" = 0000000000080004 ] || e2e_fail "the debugger has capabilities $caps, not SYS_PTRACE and DAC_READ_SEARCH"

ps_out=$(podman exec "$debugger" cppdiag ps) || e2e_fail "cppdiag ps failed in the debugger: $ps_out"
pid=$(echo "$ps_out" | awk '$2 == "leakapp" {print $1}' | head -1)
[ -n "$pid" ] || e2e_fail "cppdiag ps in the sidecar does not show leakapp"
# The loop's status is its last test's: end with true, or pipefail fails the
# assignment whenever the highest pid is not a sleep.
sleep_pid=$(podman exec "$debugger" sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = sleep ] && basename $p; done; true' | head -1)
[ -n "$sleep_pid" ] || e2e_fail "no sleep process in the debugger"

dumps=$(e2e_volume_path "${LEAKAPP_POD_PREFIX}leakapp-dumps")
e2e_log "cppdiag dump collect --ptrace -p $pid (leakapp)"
out=$(podman exec "$debugger" cppdiag dump collect --ptrace -p "$pid" --type full -o /app/dumps/core.ptrace 2>&1) ||
  e2e_fail "dump collect --ptrace of leakapp failed: $out"
echo "$out"
echo "$out" | grep -q "stop: the target's memory cgroup is not visible here" ||
  e2e_fail "the dump did not say why it stopped the target instead of forking"
e2e_check_dump_file "$dumps/core.ptrace" 0  # written by the tool (root)
bt=$(e2e_gdb "$dumps/core.ptrace" "info threads" "thread apply all bt 8")
echo "$bt" | grep -qE '^(\*| ) +[0-9]+ +Thread' || e2e_fail "gdb lists no threads in core.ptrace"
echo "$bt" | grep -q ' main ' || e2e_fail "gdb finds no main() in core.ptrace"
curl -fsS "http://127.0.0.1:$LEAKAPP_HOST_PORT/healthz" >/dev/null || e2e_fail "leakapp stopped serving after the ptrace dump"

e2e_log "cppdiag dump collect --ptrace -p $sleep_pid (sleep: no libcppdiag)"
out=$(podman exec "$debugger" cppdiag dump collect --ptrace -p "$sleep_pid" --type full -o /app/dumps/core.sleep 2>&1) ||
  e2e_fail "dump collect --ptrace of sleep failed: $out"
echo "$out"
e2e_check_dump_file "$dumps/core.sleep" 0
podman exec "$debugger" sh -c "[ -d /proc/$sleep_pid ]" || e2e_fail "sleep did not survive its dump"
echo "PASS: option C with ptrace: the sidecar dumped leakapp (pid $pid) and sleep (pid $sleep_pid) with ptrace"
