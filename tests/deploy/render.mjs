// Renders a kustomize directory with `kubectl kustomize` and parses the
// result into plain objects.

import { execFileSync } from "node:child_process";
import { parseAllDocuments } from "yaml";

export function render(kubectl, dir) {
  let text;
  try {
    text = execFileSync(kubectl, ["kustomize", dir], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    const why = (e.stderr || e.message || "").toString().trim().split("\n")[0];
    throw new Error(`kubectl kustomize ${dir} failed: ${why}`);
  }
  const objects = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${dir}: ${doc.errors[0].message}`);
    const obj = doc.toJS();
    if (obj !== null) objects.push(obj);
  }
  if (objects.length === 0) throw new Error(`kubectl kustomize ${dir} rendered nothing`);
  return { text, objects };
}

export function find(objects, kind, name) {
  return objects.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
}
