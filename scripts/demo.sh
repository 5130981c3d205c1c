#!/usr/bin/env bash
# The demo. Where podman can run a container: option B end to end in the local
# pod (DESIGN.md flow 6): the images are built from the static binaries,
# scripts/pod.sh plays the "local" overlay (memory limit 256 MiB), we trigger
# the leak, leakapp hits its heap hard limit (75 % of the limit), logs the OOM
# and crashes, and its crash handler leaves an ELF core on the pod's dumps
# volume; we print where it is on the host and read it with `cppdiag dump
# analyze`: what crashed (info), the crashing thread's stack (bt) and what held
# the memory (heapstat, the profiler's live heap carried in the dump).
# Otherwise (flows 1 and 3, no container): leakapp runs with libcppdiag's
# crash dumps on and a heap hard limit; we list it with `cppdiag ps`, take an
# on-demand dump over its diagnostic socket, then make it leak until it crashes.
#   scripts/demo.sh            the pod demo if podman works, else the host demo
#   scripts/demo.sh host       the host demo
# LEAKAPP_PORT sets the port on the host (18080).
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's podman configuration (runc, cgroupfs): podman's defaults fail here.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/container/containers.conf}

scripts/setup.sh

# A trivial container: busybox on an empty image, running `true`.
podman_works() {
  command -v podman >/dev/null || return 1
  local ctx ok=0
  ctx=$(mktemp -d)
  cp /bin/busybox "$ctx/busybox" 2>/dev/null || { rm -rf "$ctx"; return 1; }
  printf 'FROM scratch\nCOPY busybox /busybox\nENTRYPOINT ["/busybox"]\n' >"$ctx/Containerfile"
  podman build --quiet --pull=never -t localhost/cppdiag-demo-probe:latest "$ctx" >/dev/null 2>&1 &&
    podman run --rm localhost/cppdiag-demo-probe:latest true >/dev/null 2>&1 || ok=1
  podman rmi -f localhost/cppdiag-demo-probe:latest >/dev/null 2>&1 || true
  rm -rf "$ctx"
  return $ok
}

# The crash dump read by cppdiag dump analyze (no gdb): what crashed, the
# crashing thread's stack (bt: the first thread, the one that crashed), and the
# live heap by call stack from the dump's cppdiag note.
analyze_dump() {
  local cppdiag=$1 core=$2
  shift 2
  echo; echo "=== cppdiag dump analyze $core $* -c info -c bt -c 'heapstat 5'"
  "$cppdiag" dump analyze "$core" "$@" -c info -c bt -c "heapstat 5" | cut -c1-150
}

pod_demo() {
  # LEAKAPP_BIN and CPPDIAG_BIN (static binaries) skip the build.
  if [ -z "${LEAKAPP_BIN:-}" ] || [ -z "${CPPDIAG_BIN:-}" ]; then
    echo "=== building leakapp-static and cppdiag-static"
    scripts/build.sh release --target leakapp-static cppdiag-static >/dev/null
    export LEAKAPP_BIN=build/release/src/leakapp/leakapp-static CPPDIAG_BIN=build/release/src/cli/cppdiag-static
  fi
  export LEAKAPP_BIN CPPDIAG_BIN
  # Its own names and port, so the demo leaves a pod of yours alone.
  export LEAKAPP_POD_PREFIX=demo- LEAKAPP_HOST_PORT=${LEAKAPP_PORT:-18080}
  scripts/pod.sh images
  scripts/pod.sh down --volumes >/dev/null
  echo; echo "=== scripts/pod.sh up local   (kubectl kustomize deploy/kubernetes/overlays/local | podman kube play -)"
  scripts/pod.sh up local
  trap 'scripts/pod.sh down >/dev/null 2>&1 || true' EXIT
  local pod=demo-leakapp-pod-0
  podman pod exists "$pod" || pod=demo-leakapp-pod
  local app=$pod-leakapp url
  url=$(scripts/pod.sh url)
  echo "memory limit $(($(podman inspect --format '{{.HostConfig.Memory}}' "$app") / 1048576)) MiB; heap hard limit 75 % of it"
  echo "live memory page: $url/   (open it in a browser to watch the leak)"
  local app_id
  app_id=$(podman inspect --format '{{.Id}}' "$app")

  echo; echo "=== GET $url/triggerMemoryLeak?intervalMs=10   (1 MiB a round)"
  curl -fsS "$url/triggerMemoryLeak?intervalMs=10"; echo
  # The pod starts leakapp again after it dies (restart policy Always, as in
  # a Deployment), so its state shows the new run: podman's event log keeps
  # the exit status of the death.
  local i code=
  for i in $(seq 240); do
    code=$(podman events --stream=false --since 30m --filter "container=$app_id" --filter event=died \
      --format '{{.ContainerExitCode}}' 2>/dev/null | head -1)
    [ -n "$code" ] && break
    sleep 0.5
    ((i % 2)) || podman logs "$app" 2>&1 | grep -a "Allocated" | tail -1 || true
  done
  [ -n "$code" ] || { echo "leakapp did not die within 2 minutes" >&2; exit 1; }

  echo; echo "=== the end of leakapp's log (scripts/pod.sh logs)"
  podman logs "$app" 2>&1 | grep -aE "OutOfMemory|terminate|cppdiag:" | head -8 || true
  echo "leakapp's container exited with status $code$( ((code > 128)) && echo " (128 + $((code - 128)): SIG$(kill -l $((code - 128))))")"

  echo; echo "=== the dumps volume (scripts/pod.sh dumps)"
  scripts/pod.sh dumps
  local core
  core=$(find "$(podman volume inspect --format '{{.Mountpoint}}' demo-leakapp-dumps)" -maxdepth 1 -name 'core.leakapp.*' -type f | head -1)
  scripts/pod.sh down >/dev/null
  trap - EXIT
  if [ -z "$core" ]; then
    echo "no crash dump was written" >&2
    exit 1
  fi
  # The core names the image's path of leakapp; --exe gives the host's copy.
  analyze_dump "$CPPDIAG_BIN" "$core" --exe "$LEAKAPP_BIN"
  echo
  echo "The pod is down; its dumps volume stays. The dump on the host:"
  echo "  $core"
  echo "Open it with: $CPPDIAG_BIN dump analyze $core --exe $LEAKAPP_BIN   (or gdb $LEAKAPP_BIN $core)"
  echo "Remove the volume with: LEAKAPP_POD_PREFIX=demo- scripts/pod.sh down --volumes"
}

host_demo() {
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
  echo "live memory page: http://127.0.0.1:$port/"

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
    analyze_dump "$bin/cli/cppdiag" "$core"
    echo; echo "The dump is $core; open it with: $bin/cli/cppdiag dump analyze $core"
  else
    echo "no crash dump was written (see $log)" >&2
    exit 1
  fi
}

if [ "${1:-}" != host ] && podman_works; then
  pod_demo
else
  [ "${1:-}" = host ] || echo "(podman cannot run a container here: the demo runs leakapp on the host)"
  host_demo
fi
