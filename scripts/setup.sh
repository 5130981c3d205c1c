#!/usr/bin/env bash
# Installs what the project needs to build, test and run the demo, from
# Debian's packages. Idempotent: apt runs only when something is missing.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake make pkg-config clang-format clang-tidy clang libclang-rt-14-dev
  # libraries (DESIGN.md: dependencies come from Debian)
  libcpp-httplib-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libdw-dev libelf-dev libunwind-dev libzstd-dev zlib1g-dev
  # the `dump analyze` prompt's line editing and history (libedit: BSD licence)
  libedit-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # leakapp's HTTP server (Beast, header-only, so leakapp links statically)
  libboost1.81-dev
  # static libdw's own dependencies (the static cppdiag in the images)
  liblzma-dev libbz2-dev
  # dump readers the tests check our cores with, and tools the tests drive
  gdb elfutils util-linux procps curl
  # glibc's local symbols (main_arena, mp_) that `dump analyze heap` starts from
  libc6-dbg
  # protoc decodes our pprof files against the published profile.proto (heap tests)
  protobuf-compiler
  # containers: the images and the e2e tests (runc: crun fails on hybrid cgroups)
  podman runc catatonit conmon netavark containernetworking-plugins iptables
  slirp4netns uidmap fuse-overlayfs busybox-static
  # the e2e pod-workflow test reads rendered manifests with Python
  python3-yaml
  # tests/browser drives leakapp's page in a headless chromium (playwright-core)
  chromium
)

# kubectl renders the kustomize overlays; the base image has a recent one
# (kustomize v5). Debian's kubernetes-client is older and only the fallback.
if ! command -v kubectl >/dev/null; then
  packages+=(kubernetes-client)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages and not root; run as root or install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- tests/deploy: npm packages of the manifests' schema check ---------------
# manifests_schema_test validates the kustomize output offline against the
# published Kubernetes and OpenShift schemas, from the npm packages pinned in
# tests/deploy/package-lock.json. node and npm come with the base image.
# Installed again only when node_modules is missing or older than the lock.
deploy_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/deploy"
if ! command -v npm >/dev/null; then
  echo "setup: installing nodejs npm (Debian's: node 18 is new enough)"
  [ "$(id -u)" -eq 0 ] || { echo "setup: npm is missing and not root" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# --- src/leakapp/page: uPlot, embedded in leakapp at build time -------------
# Pinned in src/leakapp/page/package-lock.json; after this the build needs no
# network (src/leakapp/CMakeLists.txt embeds node_modules/uplot/dist).
page_dir="$(cd "$(dirname "$0")/.." && pwd)/src/leakapp/page"
if [ ! -d "$page_dir/node_modules" ] ||
   [ "$page_dir/package-lock.json" -nt "$page_dir/node_modules" ]; then
  echo "setup: npm ci --prefix src/leakapp/page"
  npm ci --prefix "$page_dir" --no-audit --no-fund --ignore-scripts --loglevel=error
  touch "$page_dir/node_modules"
fi
# --- tests/browser: playwright-core, driving Debian's chromium --------------
browser_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if [ ! -d "$browser_tests/node_modules" ] ||
   [ "$browser_tests/package-lock.json" -nt "$browser_tests/node_modules" ]; then
  echo "setup: npm ci --prefix tests/browser"
  npm ci --prefix "$browser_tests" --no-audit --no-fund --ignore-scripts --loglevel=error
  touch "$browser_tests/node_modules"
fi
if [ ! -d "$deploy_tests/node_modules" ] ||
   [ "$deploy_tests/package-lock.json" -nt "$deploy_tests/node_modules" ]; then
  echo "setup: npm ci --prefix tests/deploy"
  npm ci --prefix "$deploy_tests" --no-audit --no-fund --ignore-scripts --loglevel=error
  touch "$deploy_tests/node_modules"
fi

# --- tests/trace: the speedscope schema and app, playwright-core --------------
# trace_cli_test validates what `cppdiag trace collect` writes against the
# schema speedscope publishes; trace_speedscope_browser_test opens a trace in
# speedscope's static app in chromium through playwright-core; both pinned in
# tests/trace/package-lock.json.
trace_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/trace"
if [ ! -d "$trace_tests/node_modules" ] ||
   [ "$trace_tests/package-lock.json" -nt "$trace_tests/node_modules" ]; then
  echo "setup: npm ci --prefix tests/trace"
  npm ci --prefix "$trace_tests" --no-audit --no-fund --ignore-scripts --loglevel=error
  touch "$trace_tests/node_modules"
fi
