#!/usr/bin/env bash
# Options D and E, the hard case: leakapp runs as a plain container (not in a
# pod) with its own dumps volume and its own /tmp; the debug container shares
# ONLY its PID namespace (`--pid container:<app>`, uid 10001, no volumes, no
# shared /tmp, no shared network, so no abstract socket either). cppdiag finds
# the target through /proc/<pid>/root and the target's TMPDIR; leakapp writes
# the dump into its own volume; gdb on the host reads it.
#   D: the debug image (with a shell) runs `cppdiag ps` and `cppdiag dump collect -p 1`
#   E: the shell-less autocollect image runs its entrypoint, cppdiag auto-collect
#   option_de_debug_container_test.sh D|E LEAKAPP_STATIC CPPDIAG_STATIC REPO
mode=${1:-}
[ "$mode" = D ] || [ "$mode" = E ] || { echo "usage: $0 D|E LEAKAPP CPPDIAG REPO" >&2; exit 2; }
shift
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init "$1" "$2" "$3" "${mode,,}"

app=$E2E_ID-app
debug=$E2E_ID-debug
volume=$E2E_ID-dumps
e2e_on_exit "podman volume rm -f '$volume'"
e2e_on_exit "podman rm -f -v -t 2 '$app'"
e2e_on_exit "podman rm -f -v -t 0 '$debug'"

e2e_log "podman run $app (leakapp, uid 10001, volume $volume on /app/dumps)"
podman run -d --name "$app" --user 10001:10001 --memory 256m \
  -v "$volume:/app/dumps" \
  -e CPPDIAG_ENABLE_DUMP_ON_CRASH=1 -e CPPDIAG_DUMP_TYPE=full \
  -e CPPDIAG_DUMP_NAME=/app/dumps/core.%e.%p.%t -e CPPDIAG_DUMP_DIR=/app/dumps \
  localhost/cppdiag/leakapp:latest >/dev/null
# Ready when its diagnostic socket is in its own /tmp (the image's anonymous volume).
tmp_dir=$(podman inspect --format '{{range .Mounts}}{{if eq .Destination "/tmp"}}{{.Source}}{{end}}{{end}}' "$app")
[ -n "$tmp_dir" ] || e2e_fail "the app container has no /tmp volume"
for _ in $(seq 100); do
  compgen -G "$tmp_dir/cppdiag-1-*-socket" >/dev/null && break
  sleep 0.2
done
compgen -G "$tmp_dir/cppdiag-1-*-socket" >/dev/null || e2e_fail "leakapp made no diagnostic socket in its /tmp"
out_file=$(mktemp)
e2e_on_exit "rm -f '$out_file'"

if [ "$mode" = D ]; then
  e2e_log "podman run --pid container:$app --user 10001 debug: cppdiag ps; cppdiag dump collect -p 1"
  podman run --name "$debug" --pid "container:$app" --user 10001:10001 \
    localhost/cppdiag/debug:latest \
    sh -c 'cppdiag ps && cppdiag dump collect -p 1 --type full -o /app/dumps/core.debug-container' \
    >"$out_file" 2>&1 || { cat "$out_file"; e2e_fail "the debug container failed"; }
  dump_name=core.debug-container
else
  e2e_log "podman run --pid container:$app --user 10001 autocollect (entrypoint cppdiag auto-collect)"
  podman run --name "$debug" --pid "container:$app" --user 10001:10001 \
    localhost/cppdiag/autocollect:latest --type full \
    >"$out_file" 2>&1 || { cat "$out_file"; e2e_fail "the autocollect container failed"; }
  dump_name=
fi
out=$(cat "$out_file")
echo "$out"

# The debug container shared nothing but the PID namespace.
[ "$(podman inspect --format '{{len .Mounts}}' "$debug")" = 0 ] || e2e_fail "the debug container has mounts"
[ "$(podman inspect --format '{{.HostConfig.NetworkMode}}' "$debug")" != "container:$app" ] ||
  e2e_fail "the debug container shares the app's network"
[ "$(podman inspect --format '{{.HostConfig.PidMode}}' "$debug")" = "container:$(podman inspect --format '{{.Id}}' "$app")" ] ||
  [ "$(podman inspect --format '{{.HostConfig.PidMode}}' "$debug")" = "container:$app" ] ||
  e2e_fail "the debug container does not share the app's PID namespace: $(podman inspect --format '{{.HostConfig.PidMode}}' "$debug")"

if [ "$mode" = D ]; then
  echo "$out" | grep -qE '^ +1 +leakapp' || e2e_fail "cppdiag ps does not show leakapp as pid 1"
fi
written=$(echo "$out" | sed -n 's/^Writing full dump to //p' | head -1)
[ -n "$written" ] || e2e_fail "no 'Writing full dump to' line"
echo "$out" | grep -q '^Complete' || e2e_fail "no 'Complete' line"
[ -z "$dump_name" ] || [ "$written" = "/app/dumps/$dump_name" ] || e2e_fail "dump written to $written"
case $written in /app/dumps/*) ;; *) e2e_fail "dump written outside /app/dumps: $written" ;; esac

host=$(e2e_volume_path "$volume")/${written#/app/dumps/}
e2e_check_dump_file "$host"
e2e_log "gdb on the host: $host"
bt=$(e2e_gdb "$host" "info threads" "thread apply all bt 8")
echo "$bt" | grep -E '^(\*| ) +[0-9]+ +Thread|^#' | head -12
echo "$bt" | grep -qE '^(\*| ) +[0-9]+ +Thread' || e2e_fail "gdb lists no threads in $host"
echo "$bt" | grep -q ' main ' || e2e_fail "gdb finds no main() in $host"
echo "PASS: option $mode: leakapp wrote $host (its own volume) for a debug container that shared only its PID namespace"
