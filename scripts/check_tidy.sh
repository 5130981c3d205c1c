#!/usr/bin/env bash
# clang-tidy (.clang-tidy's checks, every one an error) on the production
# sources under src/: not the unit tests (*_test.cc), their helpers (testing/,
# *_test_util.cc), tests/ or the fuzzers. Needs build/release (its
# compile_commands.json); runs one clang-tidy per source, nproc at a time,
# prints each diagnostic once (a header's, once for all the sources that
# include it), grouped by file, and fails on any.
#   scripts/check_tidy.sh                 the tree
#   scripts/check_tidy.sh src/cli/x.cc    some sources
# The static analyzer (clang-analyzer-*) and performance-unnecessary-value-param
# run on the runtime that lives in other processes (src/common, src/diag); the
# other checks on everything. Both are costly where CLI11, Beast and fmt are
# included: the value-param check analyzes every inline function of those
# headers in every source (8 of a CLI source's 28 s of checks).
# CPPDIAG_TIDY_ANALYZER=all runs both everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
db=build/release/compile_commands.json
if [ ! -f "$db" ]; then
  echo "tidy: $db is missing: run scripts/build.sh release first" >&2
  exit 1
fi
tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [ -z "$tidy" ]; then
  echo "tidy: clang-tidy is not installed (scripts/setup.sh installs it)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A compilation database of the sources to check, one entry each: a source
# built into two targets (cppdiag and cppdiag-static) is checked once.
python3 - "$root" "$db" "$work" "$@" <<'EOF'
import json, os, sys
root, db, work, wanted = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def production(rel):
    return (rel.startswith("src/") and not rel.endswith("_test.cc")
            and not rel.endswith("_test_util.cc") and "/testing/" not in rel
            and "/fuzz/" not in rel)
wanted = {os.path.normpath(w) for w in wanted}
seen, entries = set(), []
for e in json.load(open(db)):
    path = os.path.normpath(os.path.join(e["directory"], e["file"]))
    rel = os.path.relpath(path, root)
    if rel in seen or not production(rel) or (wanted and rel not in wanted):
        continue
    seen.add(rel)
    entries.append(e)
if wanted - seen:
    sys.exit("tidy: not production sources of build/release: " + " ".join(sorted(wanted - seen)))
json.dump(entries, open(os.path.join(work, "compile_commands.json"), "w"))
with open(os.path.join(work, "sources"), "w") as f:
    f.write("".join(s + "\n" for s in sorted(seen)))
EOF

count=$(wc -l <"$work/sources")
echo "tidy: $count sources, $(nproc) at a time ($tidy)"
mkdir "$work/out"
# One job per source: its diagnostics in out/<name>, and a .failed mark when
# clang-tidy exits non-zero (a diagnostic, or a source that does not parse).
export tidy work
export analyzer=${CPPDIAG_TIDY_ANALYZER:-runtime}
xargs -P "$(nproc)" -I{} bash -c '
  src=$1
  out="$work/out/${src//\//_}"
  checks=()
  case "$src" in
    src/common/* | src/diag/*) ;;
    *) [ "$analyzer" = all ] ||
         checks=(-checks=-clang-analyzer-*,-performance-unnecessary-value-param) ;;
  esac
  "$tidy" -p "$work" --quiet "${checks[@]}" "$src" >"$out" 2>"$out.stderr" || touch "$out.failed"
' _ {} <"$work/sources"

# Each diagnostic (its first line and the notes and source lines after it)
# once, grouped by the file it is in.
python3 - "$root" "$work/out" <<'EOF'
import os, re, sys
root, out = sys.argv[1], sys.argv[2]
head = re.compile(r"^(/[^:]+):(\d+):(\d+): (error|warning): ")
blocks = {}
failed = sorted(f[:-len(".failed")] for f in os.listdir(out) if f.endswith(".failed"))
for name in sorted(os.listdir(out)):
    if name.endswith((".failed", ".stderr")):
        continue
    current = None
    for line in open(os.path.join(out, name), errors="replace"):
        m = head.match(line)
        if m:
            current = [line.replace(root + "/", "")]
            key = (os.path.relpath(m.group(1), root), int(m.group(2)), int(m.group(3)), line)
            blocks.setdefault(key, current)
        elif current is not None:
            current.append(line.replace(root + "/", ""))
files = {}
for key in sorted(blocks):
    files.setdefault(key[0], []).append("".join(blocks[key]))
for path, diags in files.items():
    print(f"=== {path}: {len(diags)} diagnostic(s)")
    for d in diags:
        sys.stdout.write(d)
# A clang-tidy that failed with nothing on stdout (a crash, a bad command
# line): its stderr says why.
for name in failed:
    if os.path.getsize(os.path.join(out, name)) == 0:
        print(f"=== clang-tidy failed on {name}:")
        sys.stdout.write(open(os.path.join(out, name + ".stderr"), errors="replace").read())
n = len(blocks)
print(f"tidy: {n} diagnostic(s) in {len(files)} file(s)" if n or failed else "tidy: no diagnostics")
sys.exit(1 if n or failed else 0)
EOF
