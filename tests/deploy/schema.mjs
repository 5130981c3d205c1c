// Validates one Kubernetes or OpenShift object against the published schemas,
// offline: Kubernetes kinds through kubernetes-models (generated from the
// Kubernetes OpenAPI spec), Route and SecurityContextConstraints through the
// OpenShift OpenAPI spec that openshift-rest-client ships. Both are pinned by
// package-lock.json.
//
// The published schemas do not forbid unknown fields (the API server drops
// them, so a misspelt field silently does nothing). unknownFields() finds
// them: a field the schema knows fails validation when its value is replaced
// by a Symbol, which no JSON type matches; a field it does not know passes.

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import Ajv from "ajv";

const require = createRequire(import.meta.url);
const PROBE = Symbol("unknown-field probe");

// kubernetes-models lays modules out as <group>/<version>, "v1" for core.
async function kubernetesModel(apiVersion, kind) {
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion)) return null;
  let mod;
  try {
    mod = await import(`kubernetes-models/${apiVersion}`);
  } catch {
    return null;
  }
  const Model = mod[kind];
  if (typeof Model !== "function" || Model.kind !== kind) return null;
  return (obj) => {
    try {
      new Model(obj).validate();
      return [];
    } catch (e) {
      if (Array.isArray(e.errors)) return e.errors;
      throw e;
    }
  };
}

let openshiftAjv = null;
const OPENSHIFT_KINDS = {
  "route.openshift.io/v1/Route": "com.github.openshift.api.route.v1.Route",
  "security.openshift.io/v1/SecurityContextConstraints":
    "com.github.openshift.api.security.v1.SecurityContextConstraints",
};

function openshiftModel(apiVersion, kind) {
  const def = OPENSHIFT_KINDS[`${apiVersion}/${kind}`];
  if (!def) return null;
  if (!openshiftAjv) {
    const specPath = require.resolve("openshift-rest-client/lib/specs/openshift-openapi-spec.json.gz");
    const spec = JSON.parse(gunzipSync(readFileSync(specPath)).toString("utf8"));
    // The spec describes what the server returns: a Route's status and
    // (when none is given) its host are filled in by the router, so they
    // cannot be required of what we apply.
    const unrequire = (def, field) => {
      const d = spec.definitions[def];
      d.required = (d.required || []).filter((f) => f !== field);
    };
    unrequire("com.github.openshift.api.route.v1.Route", "status");
    unrequire("com.github.openshift.api.route.v1.RouteSpec", "host");
    // Swagger 2 definitions often leave out `type: object`; without it a
    // non-object would pass, and so would the unknown-field probe.
    for (const d of Object.values(spec.definitions)) {
      if (d.properties && !d.type) d.type = "object";
    }
    // Swagger 2 schemas: x-kubernetes-* extensions and int-or-string formats
    // are not JSON Schema keywords, hence strict: false.
    openshiftAjv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    openshiftAjv.addSchema({ $id: "openshift", definitions: spec.definitions });
  }
  const validate = openshiftAjv.getSchema(`openshift#/definitions/${def}`);
  return (obj) => (validate(obj) ? [] : validate.errors);
}

// Returns a function obj -> [ajv-style errors], or null if no schema is known.
export async function validatorFor(apiVersion, kind) {
  return (await kubernetesModel(apiVersion, kind)) ?? openshiftModel(apiVersion, kind);
}

function pointer(path) {
  return "/" + path.map((p) => String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
}

// Paths (JSON pointers) of the fields in obj that the schema does not know.
export function unknownFields(validate, obj) {
  const unknown = [];
  const walk = (node, path) => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, [...path, i]));
      return;
    }
    if (node === null || typeof node !== "object") return;
    for (const key of Object.keys(node)) {
      const here = [...path, key];
      const saved = node[key];
      node[key] = PROBE;
      const at = pointer(here);
      const known = validate(obj).some((e) => e.instancePath === at);
      node[key] = saved;
      if (!known) {
        unknown.push(at);
        continue; // nothing below an unknown field is known either
      }
      walk(saved, here);
    }
  };
  walk(obj, []);
  return unknown;
}

// All schema problems of one object, as one-line strings.
export async function schemaErrors(obj) {
  const where = `${obj?.kind ?? "?"}/${obj?.metadata?.name ?? "?"}`;
  if (!obj || typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
    return [`${where}: no apiVersion or kind`];
  }
  const validate = await validatorFor(obj.apiVersion, obj.kind);
  if (!validate) return [`${where}: no published schema for ${obj.apiVersion} ${obj.kind}`];
  const copy = structuredClone(obj);
  const errors = validate(copy).map((e) => `${where}: ${e.instancePath || "/"} ${e.message}`);
  for (const path of unknownFields(validate, copy)) {
    errors.push(`${where}: ${path} is not a field of ${obj.apiVersion} ${obj.kind}`);
  }
  return errors;
}
