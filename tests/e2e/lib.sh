# shellcheck shell=bash
# Shared by the e2e tests (sourced): the project's podman configuration, the
# images built from the build tree's static binaries, unique names, cleanup
# that runs even when a check fails, and checks on dumps.
# A test calls e2e_init LEAKAPP CPPDIAG REPO NAME first.
set -euo pipefail

# ctest's SKIP_RETURN_CODE.
readonly E2E_SKIP=77

e2e_fail() { echo "FAIL: $*" >&2; exit 1; }
e2e_skip() { echo "SKIP: $*"; exit $E2E_SKIP; }
e2e_log() { echo "--- $*"; }

# Cleanup actions, run in reverse order at exit (pass or fail).
_e2e_cleanups=()
e2e_on_exit() { _e2e_cleanups+=("$*"); }
_e2e_run_cleanups() {
  local status=$? i
  set +e
  for ((i = ${#_e2e_cleanups[@]} - 1; i >= 0; i--)); do
    eval "${_e2e_cleanups[$i]}" >/dev/null 2>&1
  done
  exit $status
}
trap _e2e_run_cleanups EXIT
trap 'exit 130' INT TERM

e2e_init() {
  [ -x "$1" ] || e2e_fail "$1 is missing (build the leakapp-static target)"
  [ -x "$2" ] || e2e_fail "$2 is missing (build the cppdiag-static target)"
  E2E_LEAKAPP=$(realpath "$1")
  E2E_CPPDIAG=$(realpath "$2")
  E2E_REPO=$(realpath "$3")
  # Unique per run: names of pods, containers and volumes never collide with
  # a user's pod or another run.
  E2E_ID="e2e-$4-$$-$(date +%s | tail -c 5)"
  export CONTAINERS_CONF=$E2E_REPO/deploy/container/containers.conf
  [ "$(id -u)" = 0 ] || e2e_skip "needs root (podman's rootful storage and cgroups)"
  command -v podman >/dev/null || e2e_skip "podman is not installed (scripts/setup.sh installs it)"
  [ -x /bin/busybox ] || e2e_fail "/bin/busybox is missing (busybox-static, scripts/setup.sh)"
  for tool in gdb curl kubectl; do
    command -v $tool >/dev/null || e2e_fail "$tool is not installed"
  done
  _e2e_probe_podman
  e2e_log "building the images from $E2E_LEAKAPP and $E2E_CPPDIAG"
  "$E2E_REPO/deploy/container/build-images.sh" --leakapp "$E2E_LEAKAPP" --cppdiag "$E2E_CPPDIAG" ||
    e2e_fail "building the images failed"
}

# Skip only when podman cannot run any container here: a busybox-only image
# (no project binary involved) that runs `true`.
_e2e_probe_podman() {
  local ctx probe=localhost/cppdiag-e2e-probe:$E2E_ID out
  ctx=$(mktemp -d)
  cp /bin/busybox "$ctx/busybox"
  printf 'FROM scratch\nCOPY busybox /busybox\nENTRYPOINT ["/busybox"]\n' >"$ctx/Containerfile"
  if ! out=$(podman build --quiet --pull=never -t "$probe" "$ctx" 2>&1); then
    rm -rf "$ctx"
    e2e_skip "podman cannot build an image here: $(echo "$out" | tail -1)"
  fi
  rm -rf "$ctx"
  if ! out=$(podman run --rm "$probe" true 2>&1); then
    podman rmi -f "$probe" >/dev/null 2>&1
    e2e_skip "podman cannot run a container here: $(echo "$out" | tail -1)"
  fi
  podman rmi -f "$probe" >/dev/null 2>&1
}

# A free TCP port on 127.0.0.1 for a hostPort or -p.
e2e_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

e2e_wait_ready() { # URL
  local i
  for i in $(seq 150); do
    curl -fsS "$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  e2e_fail "leakapp did not answer on $1/readyz within 30 s"
}

# Wait until container $1 is no longer running (up to $2 s).
e2e_wait_exit() {
  local i state
  for i in $(seq "$(($2 * 5))"); do
    state=$(podman inspect --format '{{.State.Status}}' "$1" 2>/dev/null) || return 0
    [ "$state" = running ] || return 0
    sleep 0.2
  done
  e2e_fail "container $1 still runs after $2 s"
}

# The exit status of container $1's first death (podman events), waiting up to $2 s.
e2e_wait_died() {
  local i code
  for i in $(seq "$(($2 * 2))"); do
    code=$(podman events --stream=false --since 30m --filter "container=$1" --filter event=died \
      --format '{{.ContainerExitCode}}' 2>/dev/null | head -1)
    if [ -n "$code" ]; then echo "$code"; return 0; fi
    sleep 0.5
  done
  e2e_fail "container $1 did not die within $2 s"
}

e2e_volume_path() { podman volume inspect --format '{{.Mountpoint}}' "$1"; }

# A dump on the host: a regular file, mode 0600, owned by uid 10001, an ELF core.
e2e_check_dump_file() { # PATH [OWNER_UID (10001, the app's)]
  [ -f "$1" ] || e2e_fail "no dump at $1"
  local mode_owner owner=${2:-10001}
  mode_owner=$(stat -c '%a %u' "$1")
  [ "$mode_owner" = "600 $owner" ] || e2e_fail "$1 has mode/owner '$mode_owner', expected '600 $owner'"
  [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ] || e2e_fail "$1 is not an ELF file"
  local type
  type=$(od -An -tu2 -j16 -N2 "$1" | tr -d ' ')
  [ "$type" = 4 ] || e2e_fail "$1 is ELF type $type, not a core (4)"
}

# gdb on the host, with the build tree's binary: prints the stacks.
e2e_gdb() { # CORE [gdb commands...]
  local core=$1
  shift
  local args=() c
  for c in "$@"; do args+=(-ex "$c"); done
  gdb -batch -nx "${args[@]}" "$E2E_LEAKAPP" "$core" 2>&1
}
