// Expands a dump name template (CPPDIAG_DUMP_NAME) without allocating:
//   %p  pid            %e  executable name     %h  host name
//   %t  unix time (s)  %r  reason ("crash")    %%  a '%'
// Any other %x is kept as written. Values are made safe for a file name ('/'
// becomes '_'), as the kernel does for core_pattern.
//
//   char path[PATH_MAX];
//   int err = ExpandDumpName("/dumps/core.%e.%p.%t", {.pid = 42, .exe = "leakapp",
//                            .host = "pod-1", .unix_time = 1700000000, .reason = "crash"},
//                            path, sizeof path);   // "/dumps/core.leakapp.42.1700000000"
//
// Async-signal-safe.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cppdiag::dump {

struct DumpNameVars {
  pid_t pid = 0;
  const char* exe = "";
  const char* host = "";
  int64_t unix_time = 0;
  const char* reason = "";
};

// Writes the NUL-terminated expansion into `out`. Returns 0, or ENAMETOOLONG
// if it does not fit (`out` then holds a cut, terminated string).
int ExpandDumpName(std::string_view tmpl, const DumpNameVars& vars, char* out, size_t out_size);

}  // namespace cppdiag::dump
