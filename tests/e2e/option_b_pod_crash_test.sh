#!/usr/bin/env bash
# Option B in the local pod: scripts/pod.sh plays the "local" overlay (256 MiB
# memory limit, so a 192 MiB heap hard limit), we trigger the leak through the
# published hostPort, leakapp logs the OOM and dies of its own SIGABRT, its
# crash handler leaves a full core on the dumps volume (mode 0600, uid 10001),
# and gdb on the host shows LeakIntoVector on the crashing stack.
#   option_b_pod_crash_test.sh LEAKAPP_STATIC CPPDIAG_STATIC REPO
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init "$1" "$2" "$3" b

export LEAKAPP_POD_PREFIX=$E2E_ID-
LEAKAPP_HOST_PORT=$(e2e_free_port)
export LEAKAPP_HOST_PORT
pod_sh=$E2E_REPO/scripts/pod.sh
e2e_on_exit "'$pod_sh' down --volumes"

e2e_log "pod.sh up local (prefix $LEAKAPP_POD_PREFIX, hostPort $LEAKAPP_HOST_PORT)"
"$pod_sh" up local
pod=${LEAKAPP_POD_PREFIX}leakapp-pod-0
podman pod exists "$pod" || pod=${LEAKAPP_POD_PREFIX}leakapp-pod
app=$pod-leakapp
url=http://127.0.0.1:$LEAKAPP_HOST_PORT

limit=$(podman inspect --format '{{.HostConfig.Memory}}' "$app")
[ "$limit" = $((256 * 1024 * 1024)) ] || e2e_fail "container memory limit is '$limit', expected 256 MiB"
app_id=$(podman inspect --format '{{.Id}}' "$app")

e2e_log "GET /triggerMemoryLeak?intervalMs=10"
curl -fsS "$url/triggerMemoryLeak?intervalMs=10" || e2e_fail "the trigger request failed"
echo

# The pod's restart policy (Always, as in a Deployment) starts the container
# again at once, and its state then shows the new run: podman's event log
# keeps the exit status of the death.
exit_code=$(e2e_wait_died "$app_id" 120)
echo "leakapp's container exited with status $exit_code"
podman logs "$app" 2>&1 | grep -aE "OutOfMemory|terminate|cppdiag:" | head -5 || true
# 134 = 128 + SIGABRT: its own signal, re-raised by the crash handler (the
# kernel's OOM killer would give 137).
[ "$exit_code" = 134 ] || e2e_fail "exit status $exit_code, expected 134 (SIGABRT, its own signal)"

dumps=$(e2e_volume_path "${LEAKAPP_POD_PREFIX}leakapp-dumps")
ls -ln "$dumps"
core=$(find "$dumps" -maxdepth 1 -name 'core.leakapp.*' -type f | head -1)
[ -n "$core" ] || e2e_fail "no core.leakapp.* on the dumps volume $dumps"
e2e_check_dump_file "$core"

e2e_log "gdb -batch -ex bt $E2E_LEAKAPP $core"
bt=$(e2e_gdb "$core" "bt 20")
echo "$bt" | grep -E '^#' | head -20
echo "$bt" | grep -q 'LeakIntoVector' || e2e_fail "gdb shows no LeakIntoVector on the crashing stack"
echo "PASS: option B: SIGABRT (134), core $core with LeakIntoVector"
