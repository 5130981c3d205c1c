// Deliberate mistakes that check_manifests.mjs must notice in the rendered
// manifests: each one is a field a person could plausibly get wrong, and
// `expect` is the problem it must be reported as (not just any problem).

const deployment = (objects) => objects.find((o) => o.kind === "Deployment");
const app = (objects) => deployment(objects).spec.template.spec.containers[0];
const kind = (objects, k) => objects.find((o) => o.kind === k);

const debugger_ = (objects) => deployment(objects).spec.template.spec.containers[1];

export const MUTATIONS = [
  {
    overlay: "sidecar-ptrace",
    name: "the app container adds SYS_PTRACE too",
    expect: /SYS_PTRACE appears/,
    mutate: (o) => (app(o).securityContext = { capabilities: { drop: ["ALL"], add: ["SYS_PTRACE"] } }),
  },
  {
    overlay: "sidecar-ptrace",
    name: "the ptrace debugger adds SYS_ADMIN beside SYS_PTRACE",
    expect: /container debugger adds capabilities SYS_PTRACE,DAC_READ_SEARCH,SYS_ADMIN/,
    mutate: (o) => debugger_(o).securityContext.capabilities.add.push("SYS_ADMIN"),
  },
  {
    overlay: "sidecar-ptrace",
    name: "the ptrace debugger may escalate",
    expect: /SYS_PTRACE appears/,
    mutate: (o) => (debugger_(o).securityContext.allowPrivilegeEscalation = true),
  },
  {
    overlay: "secure",
    name: "readOnlyRootFilesystem: false",
    expect: /readOnlyRootFilesystem is not true/,
    mutate: (o) => (app(o).securityContext.readOnlyRootFilesystem = false),
  },
  {
    overlay: "secure",
    name: 'allowPrivilegeEscalation: "false" (a string)',
    expect: /allowPrivilegeEscalation must be boolean/,
    mutate: (o) => (app(o).securityContext.allowPrivilegeEscalation = "false"),
  },
  {
    overlay: "secure",
    name: "a misspelt field (readOnlyRootFileSystem)",
    expect: /readOnlyRootFileSystem is not a field/,
    mutate: (o) => {
      const sc = app(o).securityContext;
      sc.readOnlyRootFileSystem = sc.readOnlyRootFilesystem;
      delete sc.readOnlyRootFilesystem;
    },
  },
  {
    overlay: "secure",
    name: "capabilities add SYS_PTRACE",
    expect: /SYS_PTRACE appears/,
    mutate: (o) => (app(o).securityContext.capabilities = { drop: ["ALL"], add: ["SYS_PTRACE"] }),
  },
  {
    overlay: "secure",
    name: "seccompProfile Unconfined on the pod",
    expect: /pod seccompProfile is not RuntimeDefault/,
    mutate: (o) => (deployment(o).spec.template.spec.securityContext.seccompProfile = { type: "Unconfined" }),
  },
  {
    overlay: "secure",
    name: "the service account token mounted",
    expect: /automountServiceAccountToken is not false/,
    mutate: (o) => delete deployment(o).spec.template.spec.automountServiceAccountToken,
  },
  {
    overlay: "secure",
    name: "the namespace enforcing baseline",
    expect: /enforce is not restricted/,
    mutate: (o) => (kind(o, "Namespace").metadata.labels["pod-security.kubernetes.io/enforce"] = "baseline"),
  },
  {
    overlay: "secure",
    name: "a second container without hardening",
    expect: /container extra: readOnlyRootFilesystem is not true/,
    mutate: (o) => deployment(o).spec.template.spec.containers.push({ name: "extra", image: "busybox" }),
  },
  {
    overlay: "secure",
    name: "memory limit 256 Mebibytes (not a quantity)",
    expect: /memory must match format "quantity"/,
    mutate: (o) => (app(o).resources.limits.memory = "256 Mebibytes"),
  },
  {
    overlay: "openshift",
    name: "a fixed runAsUser on OpenShift",
    expect: /pod sets runAsUser/,
    mutate: (o) => (deployment(o).spec.template.spec.securityContext.runAsUser = 10001),
  },
  {
    overlay: "openshift",
    name: "SCC allowHostPID: true",
    expect: /allowHostPID is true, not false/,
    mutate: (o) => (kind(o, "SecurityContextConstraints").allowHostPID = true),
  },
  {
    overlay: "openshift",
    name: 'SCC allowHostPID: "no" (a string)',
    expect: /\/allowHostPID must be boolean/,
    mutate: (o) => (kind(o, "SecurityContextConstraints").allowHostPID = "no"),
  },
  {
    overlay: "openshift",
    name: "SCC allowing hostPath volumes",
    expect: /volumes .* go beyond/,
    mutate: (o) => kind(o, "SecurityContextConstraints").volumes.push("hostPath"),
  },
  {
    overlay: "openshift",
    name: "SCC runAsUser RunAsAny",
    expect: /runAsUser is RunAsAny/,
    mutate: (o) => (kind(o, "SecurityContextConstraints").runAsUser.type = "RunAsAny"),
  },
  {
    overlay: "openshift",
    name: "Route passthrough",
    expect: /termination is passthrough/,
    mutate: (o) => (kind(o, "Route").spec.tls.termination = "passthrough"),
  },
  {
    overlay: "openshift",
    name: "Route to a Service that does not exist",
    expect: /Service leakap is not in the overlay/,
    mutate: (o) => (kind(o, "Route").spec.to.name = "leakap"),
  },
  {
    overlay: "openshift",
    name: "a misspelt Route field (tlss)",
    expect: /\/spec\/tlss is not a field/,
    mutate: (o) => {
      const spec = kind(o, "Route").spec;
      spec.tlss = spec.tls;
      delete spec.tls;
    },
  },
  {
    overlay: "openshift",
    name: "the SCC's RoleBinding to another ServiceAccount",
    expect: /no RoleBinding of ClusterRole/,
    mutate: (o) =>
      (o.find((x) => x.kind === "RoleBinding" && x.roleRef?.kind === "ClusterRole").subjects[0].name = "default"),
  },
  {
    overlay: "base",
    name: "a Service without its namespace",
    expect: /Service\/leakapp: namespace is unset/,
    mutate: (o) => delete kind(o, "Service").metadata.namespace,
  },
  {
    overlay: "base",
    name: "containerPort 8080 as a string",
    expect: /containerPort must be integer/,
    mutate: (o) => (app(o).ports[0].containerPort = "8080"),
  },
];
