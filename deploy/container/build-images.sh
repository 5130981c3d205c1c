#!/usr/bin/env bash
# Builds the four images offline from binaries the project builds: stages them
# into a build context (FROM scratch + COPY, no RUN, no registry) and runs
# `podman build` for each.
#   deploy/container/build-images.sh --leakapp PATH --cppdiag PATH [--busybox PATH] [--tag TAG]
# PATHs are the static binaries (targets leakapp-static and cppdiag-static);
# busybox defaults to /bin/busybox (Debian's busybox-static).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}

leakapp='' cppdiag='' busybox=/bin/busybox tag=latest
while [ $# -gt 0 ]; do
  case $1 in
    --leakapp) leakapp=$2; shift 2 ;;
    --cppdiag) cppdiag=$2; shift 2 ;;
    --busybox) busybox=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    *) echo "build-images.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

# A FROM scratch image has no loader and no libc: only static binaries run.
require_static() {
  local what=$1 path=$2
  if [ -z "$path" ]; then echo "build-images.sh: --$what PATH is required" >&2; exit 2; fi
  if [ ! -x "$path" ]; then echo "build-images.sh: $what binary '$path' is missing or not executable" >&2; exit 2; fi
  if readelf -lW "$path" 2>/dev/null | grep -q 'Requesting program interpreter'; then
    echo "build-images.sh: $what binary '$path' is dynamically linked (build the static target)" >&2
    exit 2
  fi
}
require_static leakapp "$leakapp"
require_static cppdiag "$cppdiag"
require_static busybox "$busybox"

ctx=$(mktemp -d "${TMPDIR:-/tmp}/cppdiag-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT

# The common skeleton: /tmp (1777), a passwd/group naming uid 10001 (so tools
# print a name, and nothing else in the image knows the user), /app/dumps.
mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc" "$ctx/app/dumps" "$ctx/bin"
chmod 1777 "$ctx/rootfs/tmp"
chmod 0770 "$ctx/app/dumps"
printf 'root:x:0:0:root:/:/sbin/nologin\napp:x:10001:10001:app:/app:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\napp:x:10001:\n' >"$ctx/rootfs/etc/group"
install -m 0755 "$leakapp" "$ctx/leakapp"
install -m 0755 "$cppdiag" "$ctx/cppdiag"
# busybox and its applets as symbolic links (made here, so the image needs no RUN).
install -m 0755 "$busybox" "$ctx/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$ctx/bin/$applet"
done
cp "$here"/Containerfile.* "$ctx/"

# Order matters: leakapp-tools is built FROM the leakapp image.
stale=()
for image in leakapp leakapp-tools debug autocollect; do
  echo "building localhost/cppdiag/$image:$tag"
  previous=$(podman image inspect --format '{{.Id}}' "localhost/cppdiag/$image:$tag" 2>/dev/null || true)
  podman build --quiet --pull=never --build-arg "TAG=$tag" \
    -f "$ctx/Containerfile.$image" -t "localhost/cppdiag/$image:$tag" "$ctx" >/dev/null
  # The image this tag named before, now nameless: remove it unless a
  # container still uses it (rmi without -f refuses then).
  current=$(podman image inspect --format '{{.Id}}' "localhost/cppdiag/$image:$tag")
  if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    stale+=("$previous")
  fi
done
# Children first (leakapp-tools is built on leakapp).
for ((i = ${#stale[@]} - 1; i >= 0; i--)); do
  podman rmi "${stale[$i]}" >/dev/null 2>&1 || true
done
podman images --filter reference='localhost/cppdiag/*' --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep ":$tag " || true
