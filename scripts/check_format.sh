#!/usr/bin/env bash
# The tree is formatted as .clang-format says: lists the files that are not
# (clang-format -i FILE fixes one) and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.c')
bad=$(clang-format --dry-run "${files[@]}" 2>&1 | grep -oE '^[^:]+:[0-9]+:[0-9]+: (warning|error)' \
      | cut -d: -f1 | sort -u || true)
if [ -n "$bad" ]; then
  echo "format: not clang-formatted (run clang-format -i on them):"
  printf '  %s\n' $bad
  exit 1
fi
echo "format: ${#files[@]} files clang-formatted"
