// The deployment manifests' check (ctest manifests_schema_test):
//   node check_manifests.mjs --kubectl PATH --root deploy/kubernetes
// renders the base and every overlay with `kubectl kustomize`, validates every
// object against the published schemas offline, checks the promises of the
// secure and openshift overlays, applies the sidecar JSON patches, and then
// breaks the rendered manifests on purpose to prove the checks notice.
// Prints one line per check and "N passed, N failed"; exits 1 on a failure,
// 2 on bad arguments.

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";

// The npm packages come from scripts/setup.sh; say so rather than fail on an import.
if (!existsSync(new URL("./node_modules/.package-lock.json", import.meta.url))) {
  console.error("check_manifests: tests/deploy/node_modules is missing: run scripts/setup.sh (npm ci --prefix tests/deploy)");
  process.exit(1);
}
const { render, find } = await import("./render.mjs");
const { schemaErrors } = await import("./schema.mjs");
const { readPatch, applyPatch } = await import("./patches.mjs");
const { allContainers, checkCommon, checkOpenShift, checkPodSecurityRestricted, checkSecure } =
  await import("./policy.mjs");
const { MUTATIONS } = await import("./mutations.mjs");

function parseArgs(argv) {
  const args = { kubectl: "kubectl", root: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--kubectl" && i + 1 < argv.length) args.kubectl = argv[++i];
    else if (argv[i] === "--root" && i + 1 < argv.length) args.root = argv[++i];
    else {
      console.error(`check_manifests: unknown argument '${argv[i]}' (use --kubectl PATH --root DIR)`);
      process.exit(2);
    }
  }
  if (!args.root || !existsSync(join(args.root, "base", "kustomization.yaml"))) {
    console.error(`check_manifests: --root must be deploy/kubernetes (no base/kustomization.yaml in '${args.root}')`);
    process.exit(2);
  }
  return args;
}

const results = [];
async function check(name, fn) {
  let problems;
  try {
    problems = await fn();
  } catch (e) {
    problems = [e.message];
  }
  results.push({ name, problems });
  console.log(`${problems.length === 0 ? "ok" : "FAIL"} - ${name}`);
  for (const p of problems) console.log(`    ${p}`);
}

// Schema plus the overlay's own promises: what a mutation must break.
async function allProblems(overlay, objects, text) {
  const problems = [];
  for (const o of objects) problems.push(...(await schemaErrors(o)));
  problems.push(...checkCommon(objects, text, { ptraceDebugger: overlay === "sidecar-ptrace" }));
  if (overlay === "secure") problems.push(...checkSecure(objects));
  if (overlay === "openshift") problems.push(...checkOpenShift(objects));
  return problems;
}

function withDeployment(objects, deployment) {
  return objects.map((o) => (o.kind === "Deployment" && o.metadata?.name === "leakapp" ? deployment : o));
}

function uidOf(spec, container) {
  return container.securityContext?.runAsUser ?? spec.securityContext?.runAsUser;
}

// Add the debugger with addFile, check it, remove it again with removeFile.
async function sidecarRoundTrip(label, overlay, rendered, addFile, removeFile, expectRendered) {
  const deployment = find(rendered.objects, "Deployment", "leakapp");
  await check(`${label}: ${addFile} then ${removeFile}`, async () => {
    if (!deployment) return ["no Deployment/leakapp"];
    const added = applyPatch(deployment, readPatch(addFile), addFile);
    const objects = withDeployment(rendered.objects, added);
    const problems = await allProblems(overlay === "secure" ? "secure-sidecar" : overlay, objects, JSON.stringify(objects));
    const spec = added.spec.template.spec;
    const app = spec.containers.find((c) => c.name === "leakapp");
    const debuggers = allContainers(spec).filter((c) => c.name === "debugger");
    if (debuggers.length !== 1) return [...problems, `${debuggers.length} debugger containers after the add patch`];
    // The diagnostic socket serves only the same uid (SO_PEERCRED).
    if (uidOf(spec, debuggers[0]) !== uidOf(spec, app)) {
      problems.push(`debugger runs as uid ${uidOf(spec, debuggers[0])}, leakapp as ${uidOf(spec, app)}`);
    }
    if (spec.shareProcessNamespace !== true) problems.push("the pod does not share its PID namespace");
    if (overlay === "secure") problems.push(...checkPodSecurityRestricted("Deployment/leakapp", spec));
    if (expectRendered) {
      const viaKustomize = find(expectRendered.objects, "Deployment", "leakapp");
      if (!isDeepStrictEqual(added, viaKustomize)) problems.push("differs from what the sidecar overlay renders");
    }
    const removed = applyPatch(added, readPatch(removeFile), removeFile);
    if (!isDeepStrictEqual(removed, deployment)) problems.push("removing the debugger does not restore the Deployment");
    return problems;
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const overlaysDir = join(args.root, "overlays");
  const dirs = { base: join(args.root, "base") };
  for (const d of readdirSync(overlaysDir, { withFileTypes: true })) {
    if (d.isDirectory() && existsSync(join(overlaysDir, d.name, "kustomization.yaml"))) {
      dirs[d.name] = join(overlaysDir, d.name);
    }
  }
  const rendered = {};
  for (const [name, dir] of Object.entries(dirs)) {
    await check(`${name}: kubectl kustomize renders, every object matches its published schema`, async () => {
      rendered[name] = render(args.kubectl, dir);
      const problems = [];
      for (const o of rendered[name].objects) problems.push(...(await schemaErrors(o)));
      return problems;
    });
    if (!rendered[name]) continue;
    const ptrace = name === "sidecar-ptrace" ? "SYS_PTRACE in the debugger alone" : "no SYS_PTRACE";
    await check(`${name}: namespaces; ${ptrace}, no privilege, host namespace or hostPath`, () =>
      checkCommon(rendered[name].objects, rendered[name].text, { ptraceDebugger: name === "sidecar-ptrace" }),
    );
  }
  for (const needed of ["base", "sidecar", "secure", "openshift"]) {
    if (!dirs[needed]) await check(`overlay ${needed} exists`, () => [`no ${needed}/kustomization.yaml`]);
  }
  if (rendered.secure) {
    await check("secure: hardened pod and containers, namespace enforces restricted", () =>
      checkSecure(rendered.secure.objects),
    );
  }
  if (rendered.openshift) {
    await check("openshift: SCC, its grant to ServiceAccount leakapp, Route, no fixed uid", () =>
      checkOpenShift(rendered.openshift.objects),
    );
  }

  const patchFiles = [];
  for (const name of Object.keys(dirs).filter((n) => n !== "base")) {
    for (const f of readdirSync(dirs[name]).filter((f) => f.endsWith(".json"))) {
      patchFiles.push(join(dirs[name], f));
    }
  }
  for (const file of patchFiles) {
    await check(`${file} is a valid JSON Patch`, () => (readPatch(file), []));
  }
  const add = join(overlaysDir, "sidecar", "add-debugger.json");
  const remove = join(overlaysDir, "sidecar", "remove-debugger.json");
  if (rendered.base) await sidecarRoundTrip("base", "base", rendered.base, add, remove, rendered.sidecar);
  if (rendered.secure) await sidecarRoundTrip("secure", "secure", rendered.secure, add, remove, null);
  if (rendered.openshift) {
    const addOs = join(overlaysDir, "openshift", "add-debugger.json");
    await sidecarRoundTrip("openshift", "openshift", rendered.openshift, addOs, remove, null);
  }

  // Break the manifests on purpose: a check that cannot fail proves nothing.
  for (const m of MUTATIONS) {
    if (!rendered[m.overlay]) continue;
    await check(`self-test: the checks notice ${m.name}`, async () => {
      const objects = structuredClone(rendered[m.overlay].objects);
      m.mutate(objects);
      const problems = await allProblems(m.overlay, objects, JSON.stringify(objects));
      if (problems.some((p) => m.expect.test(p))) return [];
      return [`expected a problem matching ${m.expect}, got: ${problems.join("; ") || "none"}`];
    });
  }

  const failed = results.filter((r) => r.problems.length > 0).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

await main();
