// Validates speedscope files against the schema the speedscope npm package
// publishes (dist/release/file-format-schema.json), pinned in
// package-lock.json and installed by scripts/setup.sh.
//   node tests/trace/check_speedscope.mjs FILE...   exit 0, or 1 with the errors
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import Ajv from "ajv";

const require = createRequire(import.meta.url);
const schemaPath = require.resolve("speedscope/dist/release/file-format-schema.json");
const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
delete schema.$schema; // draft-07 meta-schema URL; ajv 8 validates draft-07 by default
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

let failed = 0;
for (const file of process.argv.slice(2)) {
  const data = JSON.parse(readFileSync(file, "utf8"));
  if (validate(data)) {
    console.log(`${file}: valid speedscope file (${data.profiles.length} profiles)`);
  } else {
    failed++;
    console.log(`${file}: invalid:`);
    for (const e of validate.errors.slice(0, 20)) console.log(`  ${e.instancePath} ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
