// What the manifests promise beyond their schema: no ptrace anywhere, the
// hardened overlay's security fields on every container, the Pod Security
// "restricted" profile, and an OpenShift overlay whose SCC, RBAC and Route
// fit together. Every check returns a list of one-line problems.

import { find } from "./render.mjs";

export const NAMESPACE = "leakapp";
const CLUSTER_SCOPED = new Set([
  "Namespace",
  "ClusterRole",
  "ClusterRoleBinding",
  "SecurityContextConstraints",
  "PersistentVolume",
  "StorageClass",
]);
// The volume kinds of the restricted profiles (Pod Security and our SCC).
const RESTRICTED_VOLUMES = [
  "configMap",
  "downwardAPI",
  "emptyDir",
  "persistentVolumeClaim",
  "projected",
  "secret",
];

export function podSpecs(objects) {
  return objects
    .filter((o) => o.spec?.template?.spec)
    .map((o) => ({ where: `${o.kind}/${o.metadata?.name}`, spec: o.spec.template.spec }));
}

export function allContainers(spec) {
  return [
    ...(spec.initContainers ?? []),
    ...(spec.containers ?? []),
    ...(spec.ephemeralContainers ?? []),
  ];
}

// Objects are in the leakapp namespace (or, cluster-scoped, in none); no
// object anywhere adds SYS_PTRACE, privilege or a host namespace. With
// `ptraceDebugger` (the sidecar-ptrace overlay) one exception: the container
// "debugger" adds SYS_PTRACE and DAC_READ_SEARCH (to open the target's
// /proc files as root) and nothing else, drops ALL, cannot escalate.
export function checkCommon(objects, text, { ptraceDebugger = false } = {}) {
  const problems = [];
  const ptraceOk = (c) => {
    const sc = c.securityContext ?? {};
    return (
      ptraceDebugger &&
      c.name === "debugger" &&
      JSON.stringify([...(sc.capabilities?.add ?? [])].sort()) === '["DAC_READ_SEARCH","SYS_PTRACE"]' &&
      (sc.capabilities?.drop ?? []).includes("ALL") &&
      sc.allowPrivilegeEscalation === false
    );
  };
  const mentions = (text.match(/SYS_PTRACE/g) ?? []).length;
  const allowed = podSpecs(objects).flatMap(({ spec }) => allContainers(spec)).filter(ptraceOk).length;
  if (mentions > allowed) problems.push("SYS_PTRACE appears in the rendered manifests");
  if (ptraceDebugger && allowed !== 1) problems.push("no debugger container adds SYS_PTRACE and DAC_READ_SEARCH alone");
  for (const o of objects) {
    const where = `${o.kind}/${o.metadata?.name}`;
    const ns = o.metadata?.namespace;
    if (CLUSTER_SCOPED.has(o.kind) && ns !== undefined) {
      problems.push(`${where}: cluster-scoped but has namespace ${ns}`);
    } else if (!CLUSTER_SCOPED.has(o.kind) && ns !== NAMESPACE) {
      problems.push(`${where}: namespace is ${ns ?? "unset"}, not ${NAMESPACE}`);
    }
  }
  for (const { where, spec } of podSpecs(objects)) {
    for (const f of ["hostPID", "hostIPC", "hostNetwork"]) {
      if (spec[f] === true) problems.push(`${where}: ${f} is true`);
    }
    for (const v of spec.volumes ?? []) {
      if (v.hostPath) problems.push(`${where}: volume ${v.name} is a hostPath`);
    }
    for (const c of allContainers(spec)) {
      const sc = c.securityContext ?? {};
      if (sc.privileged === true) problems.push(`${where}: container ${c.name} is privileged`);
      if ((sc.capabilities?.add ?? []).length > 0 && !ptraceOk(c)) {
        problems.push(`${where}: container ${c.name} adds capabilities ${sc.capabilities.add}`);
      }
    }
  }
  return problems;
}

// The Pod Security Standards' "restricted" profile (kubernetes.io/docs/concepts/
// security/pod-security-standards), as the API server enforces it.
export function checkPodSecurityRestricted(where, spec) {
  const problems = [];
  const pod = spec.securityContext ?? {};
  for (const v of spec.volumes ?? []) {
    const kinds = Object.keys(v).filter((k) => k !== "name");
    if (!kinds.every((k) => RESTRICTED_VOLUMES.includes(k))) {
      problems.push(`${where}: volume ${v.name} (${kinds}) is not allowed by restricted`);
    }
  }
  for (const c of allContainers(spec)) {
    const sc = c.securityContext ?? {};
    const name = `${where}: container ${c.name}`;
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${name}: allowPrivilegeEscalation is not false`);
    if (!(sc.capabilities?.drop ?? []).includes("ALL")) problems.push(`${name}: capabilities do not drop ALL`);
    const added = (sc.capabilities?.add ?? []).filter((cap) => cap !== "NET_BIND_SERVICE");
    if (added.length > 0) problems.push(`${name}: adds ${added}`);
    const nonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot;
    if (nonRoot !== true) problems.push(`${name}: runAsNonRoot is not true (container or pod)`);
    if ((sc.runAsUser ?? pod.runAsUser) === 0) problems.push(`${name}: runs as uid 0`);
    const seccomp = (sc.seccompProfile ?? pod.seccompProfile)?.type;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") {
      problems.push(`${name}: seccompProfile is ${seccomp ?? "unset"} (container or pod)`);
    }
  }
  return problems;
}

// Option F: every field of the hardened overlay, on the pod and on every
// container (not merely inherited), and the namespace enforcing restricted.
export function checkSecure(objects) {
  const problems = [];
  const ns = find(objects, "Namespace", NAMESPACE);
  const labels = ns?.metadata?.labels ?? {};
  if (labels["pod-security.kubernetes.io/enforce"] !== "restricted") {
    problems.push(`Namespace/${NAMESPACE}: label pod-security.kubernetes.io/enforce is not restricted`);
  }
  const specs = podSpecs(objects);
  if (specs.length === 0) problems.push("no pod template in the secure overlay");
  for (const { where, spec } of specs) {
    problems.push(...checkPodSecurityRestricted(where, spec));
    problems.push(...checkHardenedPod(where, spec));
  }
  return problems;
}

export function checkHardenedPod(where, spec) {
  const problems = [];
  if (spec.automountServiceAccountToken !== false) {
    problems.push(`${where}: automountServiceAccountToken is not false`);
  }
  const pod = spec.securityContext ?? {};
  if (pod.runAsNonRoot !== true) problems.push(`${where}: pod runAsNonRoot is not true`);
  if (pod.seccompProfile?.type !== "RuntimeDefault") {
    problems.push(`${where}: pod seccompProfile is not RuntimeDefault`);
  }
  for (const c of allContainers(spec)) {
    const sc = c.securityContext ?? {};
    const name = `${where}: container ${c.name}`;
    if (sc.runAsNonRoot !== true) problems.push(`${name}: runAsNonRoot is not true`);
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${name}: readOnlyRootFilesystem is not true`);
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${name}: allowPrivilegeEscalation is not false`);
    const drop = sc.capabilities?.drop ?? [];
    if (drop.length !== 1 || drop[0] !== "ALL") problems.push(`${name}: capabilities.drop is not [ALL]`);
    if ((sc.capabilities?.add ?? []).length > 0) problems.push(`${name}: adds capabilities`);
    if (sc.seccompProfile?.type !== "RuntimeDefault") problems.push(`${name}: seccompProfile is not RuntimeDefault`);
    // The diagnostic socket lives in TMPDIR: with a read-only root it must be a volume.
    const tmpdir = (c.env ?? []).find((e) => e.name === "TMPDIR")?.value ?? "/tmp";
    if (!(c.volumeMounts ?? []).some((m) => m.mountPath === tmpdir && !m.readOnly)) {
      problems.push(`${name}: TMPDIR ${tmpdir} is not a writable volume (read-only root)`);
    }
  }
  return problems;
}

const SCC_EXPECTED = {
  allowPrivilegedContainer: false,
  allowPrivilegeEscalation: false,
  defaultAllowPrivilegeEscalation: false,
  allowHostDirVolumePlugin: false,
  allowHostIPC: false,
  allowHostNetwork: false,
  allowHostPID: false,
  allowHostPorts: false,
  readOnlyRootFilesystem: true,
};

export function checkOpenShift(objects) {
  const problems = [];
  const scc = find(objects, "SecurityContextConstraints", "leakapp-restricted");
  if (!scc) {
    problems.push("no SecurityContextConstraints leakapp-restricted");
  } else {
    for (const [field, value] of Object.entries(SCC_EXPECTED)) {
      if (scc[field] !== value) problems.push(`SCC: ${field} is ${scc[field]}, not ${value}`);
    }
    if (JSON.stringify(scc.requiredDropCapabilities) !== '["ALL"]') {
      problems.push("SCC: requiredDropCapabilities is not [ALL]");
    }
    for (const f of ["allowedCapabilities", "defaultAddCapabilities"]) {
      if ((scc[f] ?? []).length > 0) problems.push(`SCC: ${f} is not empty`);
    }
    if (!["MustRunAsNonRoot", "MustRunAsRange"].includes(scc.runAsUser?.type)) {
      problems.push(`SCC: runAsUser is ${scc.runAsUser?.type}, not MustRunAsNonRoot or MustRunAsRange`);
    }
    if (scc.seLinuxContext?.type !== "MustRunAs") problems.push("SCC: seLinuxContext is not MustRunAs");
    for (const f of ["fsGroup", "supplementalGroups"]) {
      if (scc[f]?.type !== "MustRunAs") problems.push(`SCC: ${f} is not MustRunAs`);
    }
    if (JSON.stringify(scc.seccompProfiles) !== '["runtime/default"]') {
      problems.push("SCC: seccompProfiles is not [runtime/default]");
    }
    const extra = (scc.volumes ?? []).filter((v) => !RESTRICTED_VOLUMES.includes(v));
    if (extra.length > 0 || (scc.volumes ?? []).length === 0) {
      problems.push(`SCC: volumes ${scc.volumes} go beyond ${RESTRICTED_VOLUMES}`);
    }
    if ((scc.users ?? []).length > 0 || (scc.groups ?? []).length > 0) {
      problems.push("SCC: grants itself to users or groups (RBAC grants it)");
    }
    problems.push(...checkSccGrant(objects));
  }
  problems.push(...checkRoute(objects));
  for (const { where, spec } of podSpecs(objects)) {
    // restricted-v2 and MustRunAsRange pick the uid from the namespace's range.
    for (const f of ["runAsUser", "runAsGroup", "fsGroup"]) {
      if (spec.securityContext?.[f] !== undefined) problems.push(`${where}: pod sets ${f} (the SCC assigns it)`);
    }
    for (const c of allContainers(spec)) {
      for (const f of ["runAsUser", "runAsGroup"]) {
        if (c.securityContext?.[f] !== undefined) problems.push(`${where}: container ${c.name} sets ${f}`);
      }
      if (c.securityContext?.readOnlyRootFilesystem === false) {
        problems.push(`${where}: container ${c.name} asks for a writable root (the SCC refuses it)`);
      }
    }
    for (const v of spec.volumes ?? []) {
      const kinds = Object.keys(v).filter((k) => k !== "name");
      if (scc && !kinds.every((k) => (scc.volumes ?? []).includes(k))) {
        problems.push(`${where}: volume ${v.name} (${kinds}) is not allowed by the SCC`);
      }
    }
  }
  return problems;
}

function checkSccGrant(objects) {
  const role = objects.find(
    (o) =>
      o.kind === "ClusterRole" &&
      (o.rules ?? []).some(
        (r) =>
          (r.apiGroups ?? []).includes("security.openshift.io") &&
          (r.resources ?? []).includes("securitycontextconstraints") &&
          (r.resourceNames ?? []).includes("leakapp-restricted") &&
          (r.verbs ?? []).includes("use"),
      ),
  );
  if (!role) return ["no ClusterRole with verb use on SCC leakapp-restricted"];
  const binding = objects.find(
    (o) =>
      o.kind === "RoleBinding" &&
      o.metadata?.namespace === NAMESPACE &&
      o.roleRef?.kind === "ClusterRole" &&
      o.roleRef?.name === role.metadata.name &&
      (o.subjects ?? []).some(
        (s) => s.kind === "ServiceAccount" && s.name === "leakapp" && s.namespace === NAMESPACE,
      ),
  );
  if (!binding) return [`no RoleBinding of ClusterRole ${role.metadata.name} to ServiceAccount leakapp`];
  const deployment = find(objects, "Deployment", "leakapp");
  if (deployment?.spec?.template?.spec?.serviceAccountName !== "leakapp") {
    return ["Deployment/leakapp does not run as ServiceAccount leakapp (the SCC is granted to it)"];
  }
  return [];
}

function checkRoute(objects) {
  const route = find(objects, "Route");
  if (!route) return ["no Route"];
  const problems = [];
  const tls = route.spec?.tls ?? {};
  if (tls.termination !== "edge") problems.push(`Route: tls.termination is ${tls.termination}, not edge`);
  if (!["Redirect", "None"].includes(tls.insecureEdgeTerminationPolicy)) {
    problems.push(`Route: insecureEdgeTerminationPolicy ${tls.insecureEdgeTerminationPolicy} lets plain HTTP in`);
  }
  if (route.spec?.to?.kind !== "Service") problems.push("Route: does not point at a Service");
  const service = find(objects, "Service", route.spec?.to?.name);
  if (!service) {
    problems.push(`Route: Service ${route.spec?.to?.name} is not in the overlay`);
  } else {
    const port = route.spec?.port?.targetPort;
    const ok = (service.spec?.ports ?? []).some(
      (p) => p.name === port || p.targetPort === port || p.port === port,
    );
    if (!ok) problems.push(`Route: port ${port} is not a port of Service ${service.metadata.name}`);
  }
  return problems;
}
