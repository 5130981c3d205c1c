// Helpers of the dump analyze integration tests: cores of dump_test_target
// written by cppdiag, the kernel and gdb, and the readers' views of them
// (cppdiag dump analyze --json, eu-stack) as data.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cppdiag::analyze_test {

// A fresh directory under /tmp, removed with what it holds (kept when
// CPPDIAG_KEEP_TEST_OUTPUT is set).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Target();  // dump_test_target

// dump_test_target's self-dump of `type` ("full", "heap", "mini", "triage")
// at `path`, with `threads` workers; its pid, or -1 after a test failure.
pid_t WriteOurDump(const std::string& type, const std::string& path, int threads);

// `cppdiag dump analyze core --json -c ...`: each command's JSON, in order.
struct AnalyzeRun {
  int exit_code = -1;
  std::vector<nlohmann::json> outputs;
  std::string out, err;
};
AnalyzeRun AnalyzeJson(const std::string& core, const std::vector<std::string>& commands,
                       const std::vector<std::string>& extra_args = {});

// eu-stack's view: per thread (in its order) the frames' pcs and names
// (empty name: eu-stack had none).
struct EuFrame {
  uint64_t pc = 0;
  std::string name;
};
struct EuThread {
  pid_t tid = 0;
  std::vector<EuFrame> frames;
};
std::vector<EuThread> EuStack(const std::string& core, const std::string& exe);

// The LWP ids gdb's "info threads" lists for `core` of `exe`.
std::vector<pid_t> GdbThreads(const std::string& core, const std::string& exe);

}  // namespace cppdiag::analyze_test
