#!/usr/bin/env bash
# The local pod workflow: leakapp's Kubernetes manifests (kustomize overlay
# "local") played by podman on this machine.
#   scripts/pod.sh images            build the static binaries and the four images
#   scripts/pod.sh up [local|sidecar|sidecar-ptrace]   render with kubectl kustomize, podman kube play
#   scripts/pod.sh url               where leakapp answers (the hostPort)
#   scripts/pod.sh port-forward      the same: podman publishes a hostPort instead
#   scripts/pod.sh logs [-f]         leakapp's log (podman logs options pass through)
#   scripts/pod.sh status            pod, containers, URL, dumps on the volume
#   scripts/pod.sh dumps             the dumps volume's path on the host and its files
#   scripts/pod.sh down [--volumes]  tear the pod down (--volumes: the dumps too)
#   scripts/pod.sh render [local|sidecar|sidecar-ptrace]   print what up plays
#   scripts/pod.sh image-save DIR    the four images as OCI archives + SHA256SUMS (air-gapped installs)
#   scripts/pod.sh image-load DIR    check the sums and load them
# Environment: LEAKAPP_HOST_PORT (8080), LEAKAPP_POD_PREFIX (a name prefix for a
# second, independent pod; the tests use it), BUILD_PRESET (release),
# LEAKAPP_BIN/CPPDIAG_BIN (static binaries to use instead of building them).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/deploy/container/containers.conf}

host_port=${LEAKAPP_HOST_PORT:-8080}
prefix=${LEAKAPP_POD_PREFIX:-}
images=(leakapp leakapp-tools debug autocollect)
deployment=${prefix}leakapp
volume=${prefix}leakapp-dumps

die() { echo "pod.sh: $*" >&2; exit 1; }

need_podman() {
  command -v podman >/dev/null || die "podman is not installed (scripts/setup.sh installs it)"
}

# The manifests for podman: the local overlay, optionally with the sidecar's
# JSON patch, a name prefix and another hostPort. kustomize accepts only
# relative paths to a base, hence the relative path from the scratch directory.
render() {
  local overlay=${1:-local}
  case $overlay in
    local | sidecar | sidecar-ptrace) ;;
    *) die "unknown overlay '$overlay' (local, sidecar or sidecar-ptrace)" ;;
  esac
  command -v kubectl >/dev/null || die "kubectl is not installed (it renders the kustomize overlays)"
  if [ "$overlay" = local ] && [ -z "$prefix" ] && [ "$host_port" = 8080 ]; then
    kubectl kustomize "$repo/deploy/kubernetes/overlays/local"
    return
  fi
  if ! [[ $host_port =~ ^[0-9]+$ ]] || [ "$host_port" -lt 1 ] || [ "$host_port" -gt 65535 ]; then
    die "LEAKAPP_HOST_PORT '$host_port' is not a port number"
  fi
  [[ -z $prefix || $prefix =~ ^[a-z0-9][a-z0-9-]*$ ]] ||
    die "LEAKAPP_POD_PREFIX '$prefix' must be lower-case letters, digits and '-'"
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/leakapp-render.XXXXXX")
  {
    echo "resources:"
    echo "  - $(realpath --relative-to="$dir" "$repo/deploy/kubernetes/overlays/local")"
    [ -n "$prefix" ] && echo "namePrefix: $prefix"
    echo "patches:"
    echo "  - path: port.json"
    echo "    target: {kind: Deployment}"
    if [ "$overlay" != local ]; then
      cp "$repo/deploy/kubernetes/overlays/sidecar/add-debugger.json" "$dir/"
      echo "  - path: add-debugger.json"
      echo "    target: {kind: Deployment}"
    fi
    if [ "$overlay" = sidecar-ptrace ]; then
      cp "$repo/deploy/kubernetes/overlays/sidecar-ptrace/ptrace-debugger.json" "$dir/"
      echo "  - path: ptrace-debugger.json"
      echo "    target: {kind: Deployment}"
    fi
  } >"$dir/kustomization.yaml"
  cat >"$dir/port.json" <<JSON
[
  {"op": "replace", "path": "/spec/template/spec/containers/0/ports/0/hostPort", "value": $host_port},
  {"op": "test", "path": "/spec/template/spec/volumes/1/name", "value": "leakapp-tmp"},
  {"op": "replace", "path": "/spec/template/spec/volumes/1/name", "value": "${prefix}leakapp-tmp"},
  {"op": "replace", "path": "/spec/template/spec/containers/0/volumeMounts/1/name", "value": "${prefix}leakapp-tmp"}
]
JSON
  local status=0
  kubectl kustomize "$dir" || status=$?
  rm -rf "$dir"
  return $status
}

# podman 4.3 names a Deployment's pod <name>-pod-0; other versions <name>-pod.
pod_name() {
  local p
  for p in "$deployment-pod-0" "$deployment-pod"; do
    if podman pod exists "$p" 2>/dev/null; then echo "$p"; return; fi
  done
  return 1
}

url() { echo "http://127.0.0.1:$host_port"; }

volume_path() { podman volume inspect --format '{{.Mountpoint}}' "$volume" 2>/dev/null; }

cmd_images() {
  need_podman
  local leakapp=${LEAKAPP_BIN:-} cppdiag=${CPPDIAG_BIN:-}
  if [ -z "$leakapp" ] || [ -z "$cppdiag" ]; then
    local preset=${BUILD_PRESET:-release}
    echo "=== building leakapp-static and cppdiag-static (build/$preset)"
    "$repo/scripts/build.sh" "$preset" --target leakapp-static cppdiag-static >/dev/null
    leakapp=${leakapp:-$repo/build/$preset/src/leakapp/leakapp-static}
    cppdiag=${cppdiag:-$repo/build/$preset/src/cli/cppdiag-static}
  fi
  echo "=== building the images"
  "$repo/deploy/container/build-images.sh" --leakapp "$leakapp" --cppdiag "$cppdiag"
}

cmd_up() {
  need_podman
  local overlay=${1:-local} image
  for image in leakapp debug; do
    podman image exists "localhost/cppdiag/$image:latest" ||
      die "image localhost/cppdiag/$image:latest is missing: run scripts/pod.sh images"
  done
  local yaml
  yaml=$(render "$overlay")
  # --replace: a second `up` restarts the pod; the dumps volume stays.
  echo "$yaml" | podman kube play --replace - >/dev/null 2> >(grep -v -e 'systemd' -e 'syslog' >&2)
  local pod
  pod=$(pod_name) || die "podman kube play created no pod named $deployment-pod-0"
  for _ in $(seq 100); do
    if curl -fsS "$(url)/readyz" >/dev/null 2>&1; then
      echo "leakapp is up: $(url)  (pod $pod, overlay $overlay)"
      echo "dumps volume $volume: $(volume_path)"
      return 0
    fi
    sleep 0.2
  done
  podman logs --tail 20 "$pod-leakapp" >&2 || true
  die "leakapp did not answer on $(url)/readyz within 20 s"
}

cmd_down() {
  need_podman
  local volumes=no
  [ "${1:-}" = --volumes ] && volumes=yes
  if pod=$(pod_name); then
    # Stop first: leakapp exits on SIGTERM at once; `pod rm -f` alone waits
    # out its timeout.
    podman pod stop -t 10 "$pod" >/dev/null || true
    podman pod rm -f "$pod" >/dev/null
    echo "removed pod $pod"
  else
    echo "no pod $deployment-pod-0 is running"
  fi
  if [ $volumes = yes ] && podman volume exists "$volume"; then
    podman volume rm -f "$volume" >/dev/null
    echo "removed volume $volume"
  elif podman volume exists "$volume"; then
    echo "kept volume $volume ($(volume_path)); 'down --volumes' removes it"
  fi
}

cmd_logs() {
  need_podman
  local pod
  pod=$(pod_name) || die "no pod $deployment-pod-0 is running"
  podman logs "$@" "$pod-leakapp"
}

cmd_status() {
  need_podman
  local pod
  if ! pod=$(pod_name); then
    echo "no pod $deployment-pod-0"
  else
    podman pod ps --filter "name=^$pod\$"
    podman ps -a --filter "pod=$pod" --format '{{.Names}}\t{{.Status}}\t{{.Image}}'
    if curl -fsS "$(url)/readyz" >/dev/null 2>&1; then
      echo "leakapp answers on $(url)"
    else
      echo "leakapp does not answer on $(url)"
    fi
  fi
  cmd_dumps
}

cmd_dumps() {
  local path
  if path=$(volume_path); then
    echo "dumps volume $volume: $path"
    ls -ln "$path"
  else
    echo "no dumps volume $volume"
  fi
}

cmd_image_save() {
  need_podman
  local dir=${1:-}
  [ -n "$dir" ] || die "image-save needs a directory"
  mkdir -p "$dir"
  local image
  for image in "${images[@]}"; do
    podman image exists "localhost/cppdiag/$image:latest" ||
      die "image localhost/cppdiag/$image:latest is missing: run scripts/pod.sh images"
    rm -f "$dir/cppdiag-$image.tar"
    podman save --quiet --format oci-archive -o "$dir/cppdiag-$image.tar" "localhost/cppdiag/$image:latest"
  done
  (cd "$dir" && sha256sum cppdiag-*.tar >SHA256SUMS)
  echo "saved ${#images[@]} images to $dir:"
  (cd "$dir" && ls -l cppdiag-*.tar SHA256SUMS)
}

cmd_image_load() {
  need_podman
  local dir=${1:-}
  [ -n "$dir" ] || die "image-load needs a directory"
  [ -f "$dir/SHA256SUMS" ] || die "$dir/SHA256SUMS is missing (made by image-save)"
  (cd "$dir" && sha256sum --quiet -c SHA256SUMS) || die "checksums in $dir do not match"
  local image
  for image in "${images[@]}"; do
    [ -f "$dir/cppdiag-$image.tar" ] || die "$dir/cppdiag-$image.tar is missing"
    # An OCI archive carries no name when read back: tag it explicitly.
    local id
    id=$(podman load --quiet -i "$dir/cppdiag-$image.tar" | sed -n 's/^Loaded image[^:]*: *//p' | tail -1)
    [ -n "$id" ] || die "podman load read no image from $dir/cppdiag-$image.tar"
    podman tag "$id" "localhost/cppdiag/$image:latest"
    echo "loaded localhost/cppdiag/$image:latest"
  done
}

sub=${1:-}
shift || true
case $sub in
  images) cmd_images "$@" ;;
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  render) render "$@" ;;
  url | port-forward)
    [ "$sub" = port-forward ] && echo "podman publishes leakapp's hostPort; no forward is needed:" >&2
    url ;;
  logs) cmd_logs "$@" ;;
  status) cmd_status ;;
  dumps) cmd_dumps ;;
  image-save) cmd_image_save "$@" ;;
  image-load) cmd_image_load "$@" ;;
  "" | -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$sub' (images, up, down, url, port-forward, logs, status, dumps, render, image-save, image-load)" ;;
esac
