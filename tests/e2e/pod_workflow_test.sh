#!/usr/bin/env bash
# The manifests and the local pod workflow: kustomize renders every overlay we
# own with what the contract promises, the sidecar's JSON patches add and
# remove the debugger (as `oc patch --type=json` applies them), and
# scripts/pod.sh images/up/url/status/logs/image-save/image-load/down work.
#   pod_workflow_test.sh LEAKAPP_STATIC CPPDIAG_STATIC REPO
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init "$1" "$2" "$3" w
k8s=$E2E_REPO/deploy/kubernetes
work=$(mktemp -d)
e2e_on_exit "rm -rf '$work'"

# kind/name of every object, one a line.
objects() { /usr/bin/python3 -c '
import sys, yaml
for d in yaml.safe_load_all(sys.stdin):
    if d: print(d["kind"] + "/" + d["metadata"]["name"])' | sort; }
# One field of the Deployment, as JSON (python expression on d).
deployment() { /usr/bin/python3 -c '
import sys, yaml, json
d = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Deployment"][0]
print(json.dumps(eval(sys.argv[2])))' "$@"; }

e2e_log "kubectl kustomize base"
kubectl kustomize "$k8s/base" >"$work/base.yaml"
expected="Deployment/leakapp
LimitRange/leakapp-limits
Namespace/leakapp
PersistentVolumeClaim/leakapp-dumps
Role/leakapp-debugger
RoleBinding/leakapp-debugger
Service/leakapp
ServiceAccount/leakapp
ServiceAccount/leakapp-debugger"
[ "$(objects <"$work/base.yaml")" = "$expected" ] || e2e_fail "base renders $(objects <"$work/base.yaml" | tr '\n' ' ')"
c='d["spec"]["template"]["spec"]["containers"][0]'
[ "$(deployment "$work/base.yaml" "${c}[\"image\"]")" = '"localhost/cppdiag/leakapp:latest"' ] || e2e_fail "base image"
[ "$(deployment "$work/base.yaml" "${c}[\"resources\"][\"limits\"][\"memory\"]")" = '"256Mi"' ] || e2e_fail "base memory limit"
[ "$(deployment "$work/base.yaml" 'd["spec"]["template"]["spec"]["shareProcessNamespace"]')" = true ] || e2e_fail "base shareProcessNamespace"
env=$(deployment "$work/base.yaml" "{e[\"name\"]: e[\"value\"] for e in ${c}[\"env\"]}")
for kv in '"CPPDIAG_ENABLE_DUMP_ON_CRASH": "1"' '"CPPDIAG_DUMP_TYPE": "full"' \
  '"CPPDIAG_DUMP_NAME": "/app/dumps/core.%e.%p.%t"' '"CPPDIAG_DUMP_DIR": "/app/dumps"' '"TMPDIR": "/tmp"'; do
  [[ $env == *"$kv"* ]] || e2e_fail "base env lacks $kv: $env"
done

e2e_log "kubectl kustomize overlays/local: only what podman kube play plays"
kubectl kustomize "$k8s/overlays/local" >"$work/local.yaml"
[ "$(objects <"$work/local.yaml" | tr '\n' ' ')" = "Deployment/leakapp PersistentVolumeClaim/leakapp-dumps " ] ||
  e2e_fail "local renders $(objects <"$work/local.yaml" | tr '\n' ' ')"
[ "$(deployment "$work/local.yaml" "${c}[\"ports\"][0][\"hostPort\"]")" = 8080 ] || e2e_fail "local hostPort"
[ "$(deployment "$work/local.yaml" "${c}[\"imagePullPolicy\"]")" = '"Never"' ] || e2e_fail "local pull policy"

e2e_log "overlays/sidecar and its JSON patches (kubectl patch --local --type=json, as oc patch)"
kubectl kustomize "$k8s/overlays/sidecar" >"$work/sidecar.yaml"
[ "$(deployment "$work/sidecar.yaml" '[x["name"] for x in d["spec"]["template"]["spec"]["containers"]]')" = '["leakapp", "debugger"]' ] ||
  e2e_fail "the sidecar overlay has no debugger container"
dbg='d["spec"]["template"]["spec"]["containers"][1]'
[ "$(deployment "$work/sidecar.yaml" "${dbg}[\"image\"]")" = '"localhost/cppdiag/debug:latest"' ] || e2e_fail "debugger image"
[ "$(deployment "$work/sidecar.yaml" "${dbg}[\"securityContext\"][\"runAsUser\"]")" = 10001 ] || e2e_fail "debugger uid"
[ "$(deployment "$work/sidecar.yaml" "${dbg}[\"securityContext\"][\"capabilities\"]")" = '{"drop": ["ALL"]}' ] ||
  e2e_fail "the debugger must add no capability"
/usr/bin/python3 -c '
import sys, yaml
d = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d["kind"] == "Deployment"][0]
yaml.safe_dump(d, open(sys.argv[2], "w"))' "$work/base.yaml" "$work/deployment.yaml"
kubectl patch --local -f "$work/deployment.yaml" --type=json \
  --patch-file "$k8s/overlays/sidecar/add-debugger.json" -o yaml >"$work/added.yaml"
[ "$(deployment "$work/added.yaml" '[x["name"] for x in d["spec"]["template"]["spec"]["containers"]]')" = '["leakapp", "debugger"]' ] ||
  e2e_fail "add-debugger.json did not add the debugger"
kubectl patch --local -f "$work/added.yaml" --type=json \
  --patch-file "$k8s/overlays/sidecar/remove-debugger.json" -o yaml >"$work/removed.yaml"
[ "$(deployment "$work/removed.yaml" 'd["spec"]')" = "$(deployment "$work/deployment.yaml" 'd["spec"]')" ] ||
  e2e_fail "remove-debugger.json did not give back the original deployment"
if kubectl patch --local -f "$work/removed.yaml" --type=json \
  --patch-file "$k8s/overlays/sidecar/remove-debugger.json" -o yaml >/dev/null 2>&1; then
  e2e_fail "remove-debugger.json removed a container from a deployment without a debugger"
fi

e2e_log "scripts/pod.sh up / url / status / logs / down"
export LEAKAPP_POD_PREFIX=$E2E_ID-
LEAKAPP_HOST_PORT=$(e2e_free_port)
export LEAKAPP_HOST_PORT
pod_sh=$E2E_REPO/scripts/pod.sh
e2e_on_exit "'$pod_sh' down --volumes"
"$pod_sh" up local
url=$("$pod_sh" url)
[ "$url" = "http://127.0.0.1:$LEAKAPP_HOST_PORT" ] || e2e_fail "pod.sh url says $url"
curl -fsS "$url/status" | grep -q '"pid"' || e2e_fail "GET $url/status failed"
# (Outputs are captured first: grep -q closing a pipe early fails under pipefail.)
out=$("$pod_sh" status)
echo "$out"
grep -q "leakapp answers on $url" <<<"$out" || e2e_fail "pod.sh status does not say leakapp answers"
grep -q "^${LEAKAPP_POD_PREFIX}leakapp-pod-0-leakapp.*Up" <<<"$out" || e2e_fail "pod.sh status does not show the container up"
out=$("$pod_sh" logs)
grep -q 'Listening on' <<<"$out" || e2e_fail "pod.sh logs shows no 'Listening on'"
out=$("$pod_sh" down)
grep -q "kept volume ${LEAKAPP_POD_PREFIX}leakapp-dumps" <<<"$out" || e2e_fail "pod.sh down did not keep the dumps volume: $out"
podman pod exists "${LEAKAPP_POD_PREFIX}leakapp-pod-0" && e2e_fail "pod.sh down left the pod"
"$pod_sh" down --volumes >/dev/null
podman volume exists "${LEAKAPP_POD_PREFIX}leakapp-dumps" && e2e_fail "pod.sh down --volumes left the volume"
out=$("$pod_sh" up nonsense 2>&1) && e2e_fail "pod.sh up accepted an unknown overlay"
grep -q "unknown overlay 'nonsense'" <<<"$out" || e2e_fail "pod.sh up nonsense said: $out"

e2e_log "scripts/pod.sh image-save / image-load"
"$pod_sh" image-save "$work/images" >/dev/null
[ "$(cd "$work/images" && ls | tr '\n' ' ')" = "SHA256SUMS cppdiag-autocollect.tar cppdiag-debug.tar cppdiag-leakapp-tools.tar cppdiag-leakapp.tar " ] ||
  e2e_fail "image-save wrote $(ls "$work/images")"
before=$(podman image inspect --format '{{.Id}}' localhost/cppdiag/debug:latest)
out=$("$pod_sh" image-load "$work/images")
[ "$(grep -c '^loaded' <<<"$out")" = 4 ] || e2e_fail "image-load did not load 4 images: $out"
[ "$(podman image inspect --format '{{.Id}}' localhost/cppdiag/debug:latest)" = "$before" ] ||
  e2e_fail "image-load gave localhost/cppdiag/debug:latest another image"
cp -r "$work/images" "$work/corrupt"
printf x >>"$work/corrupt/cppdiag-debug.tar"
"$pod_sh" image-load "$work/corrupt" >/dev/null 2>&1 && e2e_fail "image-load accepted a corrupt archive"
echo "PASS: manifests render as promised; pod.sh up/url/status/logs/down/image-save/image-load work"
