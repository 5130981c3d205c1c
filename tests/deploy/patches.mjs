// JSON Patch (RFC 6902) files, as `oc patch --type=json --patch-file` and
// kustomize use them: read, check every operation, apply to a copy.

import { readFileSync } from "node:fs";
import jsonpatch from "fast-json-patch";

export function readPatch(file) {
  let ops;
  try {
    ops = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not JSON: ${e.message}`);
  }
  if (!Array.isArray(ops) || ops.length === 0) {
    throw new Error(`${file}: a JSON Patch is a non-empty array of operations`);
  }
  const bad = jsonpatch.validate(ops);
  if (bad) throw new Error(`${file}: operation ${bad.index}: ${bad.message} (${bad.name})`);
  return ops;
}

// Returns the patched copy; throws (the first failing operation) as the API
// server would refuse the whole patch.
export function applyPatch(doc, ops, label) {
  try {
    return jsonpatch.applyPatch(structuredClone(doc), structuredClone(ops), true, true).newDocument;
  } catch (e) {
    const op = ops[e.index];
    throw new Error(`${label}: operation ${e.index} (${op?.op} ${op?.path}) fails: ${e.message.split("\n")[0]}`);
  }
}
