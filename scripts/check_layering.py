#!/usr/bin/env python3
"""The layering of src/ that DESIGN.md draws, checked on every build.

Each folder under src/ may include only its own headers and those of the
layers below it (DESIGN.md: common <- diag/dump, diag/heap, diag/counters, diag/cpu
<- diag/ipc <- the runtime (src/diag) <- leakapp and the preload library; the CLI
uses common and the protocol's codec). A header in an `internal/` folder is
private to the folder that holds it. A wrong include makes this script fail,
and with it the build (the `check_layering` target is part of ALL).

  scripts/check_layering.py [SRC_DIR]     exit 0, or 1 with one line per violation
"""
import os
import re
import sys

# folder -> what its files may include besides their own folder: a folder
# (and everything below it) or one header. Longest folder match wins.
ALLOWED = {
    "common": [],
    "diag/dump": ["common"],
    # The profiler adds its live table to dumps through the note-provider hook.
    "diag/heap": ["common", "diag/dump/note_provider.h"],
    "diag/counters": ["common", "diag/dump/self_dump.h", "diag/heap"],
    "diag/cpu": ["common"],
    "diag/ipc": ["common", "diag/dump", "diag/heap", "diag/counters"],
    # The runtime itself: config, start-up, the request handlers.
    "diag": ["common", "diag/dump", "diag/heap", "diag/counters", "diag/cpu", "diag/ipc"],
    "diag/preload": ["diag/runtime.h"],
    # The CLI: common, the socket's client and codecs, the shared data layouts
    # and tables (dump_type.h's table is header-only), and the ptrace dumper
    # (`dump collect --ptrace`: the tool writes the core of another process)
    # with its attach layer (monitor --signal/--exit hold the threads stopped
    # in their own ptrace session, and hand them to the dumper).
    "cli": ["common", "diag/ipc/client.h", "diag/ipc/protocol.h", "diag/ipc/heap_snapshot.h",
            "diag/ipc/trace_data.h",
            "diag/counters/catalog.h", "diag/counters/sample.h", "diag/heap/heap_profile.h",
            "diag/dump/cppdiag_note_layout.h", "diag/dump/dump_type.h",
            "diag/heap/heap_note_layout.h", "diag/dump/ptrace_dump.h", "diag/dump/ptrace_attach.h"],
    "leakapp": ["common", "diag/runtime.h", "diag/config.h", "diag/counters/catalog.h",
                "diag/counters/collect.h", "diag/counters/sample.h"],
}
# Tests beside the code (and their `testing/` helpers) may also use the test
# support; the core reader's tests write the cores they read with the dump writer.
TEST_EXTRA = {"cli": ["support", "diag/dump"]}
DEFAULT_TEST_EXTRA = ["support"]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(rel):
    parts = rel.split("/")[:-1]
    while parts:
        f = "/".join(parts)
        if f in ALLOWED:
            return f
        parts.pop()
    return None


def covered(header, entries):
    return any(header == e or header.startswith(e + "/") for e in entries)


def check(src):
    problems = []
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".cc", ".h", ".c")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            folder = folder_of(rel)
            if folder is None:
                problems.append(f"{rel}: folder not in the layering table (scripts/check_layering.py)")
                continue
            own_dir = rel.rsplit("/", 1)[0]
            is_test = name.endswith("_test.cc") or "/testing/" in rel
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for header in INCLUDE.findall(text):
                if "/" not in header:
                    continue  # same directory
                if "/internal/" in header and not rel.startswith(header.split("/internal/")[0] + "/"):
                    problems.append(f"{rel}: includes {header}, private to its folder")
                    continue
                if covered(header, [folder]) and folder_of(header) == folder:
                    continue
                if header.startswith(own_dir + "/"):
                    continue  # below its own directory (testing/, internal/)
                allowed = ALLOWED[folder] + (TEST_EXTRA.get(folder, DEFAULT_TEST_EXTRA) if is_test else [])
                if not covered(header, allowed):
                    problems.append(f"{rel}: includes {header}, which {folder}/ may not use "
                                    f"(allowed: {', '.join(allowed) or 'nothing outside itself'})")
    return problems


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    problems = check(src)
    for p in problems:
        print(f"layering: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
