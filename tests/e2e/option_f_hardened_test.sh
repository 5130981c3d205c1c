#!/usr/bin/env bash
# Hardened leakapp (what the "secure" overlay asks of a cluster): read-only root
# filesystem, every capability dropped, no-new-privileges, uid 10001, a tmpfs
# on /tmp and a volume for dumps. An on-demand dump through a debug container
# that shares only the PID namespace still works (the app writes it), and a
# crash (POST /crash?kind=segv) still leaves a crash dump; the container's exit
# status says SIGSEGV (139).
#   option_f_hardened_test.sh LEAKAPP_STATIC CPPDIAG_STATIC REPO
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init "$1" "$2" "$3" f

app=$E2E_ID-app
debug=$E2E_ID-debug
volume=$E2E_ID-dumps
port=$(e2e_free_port)
e2e_on_exit "podman volume rm -f '$volume'"
e2e_on_exit "podman rm -f -v -t 2 '$app'"
e2e_on_exit "podman rm -f -v -t 0 '$debug'"

e2e_log "podman run --read-only --cap-drop ALL --security-opt no-new-privileges --user 10001 $app"
podman run -d --name "$app" --user 10001:10001 --memory 256m \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  --tmpfs /tmp:rw,nosuid,nodev,noexec,mode=1777,size=16m \
  -v "$volume:/app/dumps" -p "127.0.0.1:$port:8080" \
  -e CPPDIAG_ENABLE_DUMP_ON_CRASH=1 -e CPPDIAG_DUMP_TYPE=full \
  -e CPPDIAG_DUMP_NAME=/app/dumps/core.%e.%p.%t -e CPPDIAG_DUMP_DIR=/app/dumps \
  localhost/cppdiag/leakapp:latest >/dev/null
url=http://127.0.0.1:$port
e2e_wait_ready "$url"
[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$app")" = true ] || e2e_fail "the root filesystem is writable"
caps=$(podman top "$app" capeff | tail -1 | awk '{print $1}')
[ "$caps" = none ] || e2e_fail "leakapp has capabilities: $caps"

e2e_log "on demand: podman run --pid container:$app --user 10001 --cap-drop ALL debug cppdiag dump collect -p 1"
out=$(podman run --name "$debug" --pid "container:$app" --user 10001:10001 \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  localhost/cppdiag/debug:latest \
  cppdiag dump collect -p 1 --type full -o /app/dumps/core.on-demand 2>&1) ||
  e2e_fail "on-demand dump failed: $out"
echo "$out"
dumps=$(e2e_volume_path "$volume")
e2e_check_dump_file "$dumps/core.on-demand"

e2e_log "POST /crash?kind=segv"
curl -fsS -X POST "$url/crash?kind=segv" || e2e_fail "the crash request failed"
echo
e2e_wait_exit "$app" 60
code=$(podman inspect --format '{{.State.ExitCode}}' "$app")
echo "leakapp's container exited with status $code"
[ "$code" = 139 ] || e2e_fail "exit status $code, expected 139 (SIGSEGV)"

ls -ln "$dumps"
core=$(find "$dumps" -maxdepth 1 -name 'core.leakapp.*' -type f | head -1)
[ -n "$core" ] || e2e_fail "no crash dump core.leakapp.* on the volume"
e2e_check_dump_file "$core"
bt=$(e2e_gdb "$core" "bt 12")
echo "$bt" | grep -E 'signal|^#' | head -14
echo "$bt" | grep -q 'terminated with signal SIGSEGV' || e2e_fail "gdb does not see SIGSEGV in $core"
echo "PASS: option F: hardened container, on-demand dump and SIGSEGV crash dump $core"
