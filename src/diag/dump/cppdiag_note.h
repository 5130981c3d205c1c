// The cppdiag note's writer side; the layout, CppdiagInfo and
// DecodeCppdiagInfo are in cppdiag_note_layout.h (header-only, for readers).
//
// EncodeCppdiagInfo and CopyReason are async-signal-safe.
#pragma once

#include <cstddef>
#include <cstdint>

#include "diag/dump/cppdiag_note_layout.h"
#include "diag/dump/dump_type.h"

namespace cppdiag::dump {

// .NET's dump type numbers (mini 1, heap 2, triage 3, full 4).
uint32_t DumpTypeNumber(DumpType type);

// Writes the version-1 descriptor into `out` (kCppdiagInfoSize bytes).
void EncodeCppdiagInfo(const CppdiagInfo& info, uint8_t* out);

// Copies a NUL-terminated string into a fixed field, cutting it to fit.
void CopyReason(const char* reason, CppdiagInfo* info);

}  // namespace cppdiag::dump
