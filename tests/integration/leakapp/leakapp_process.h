// The real leakapp binary for a test: started on a free port on 127.0.0.1,
// driven over HTTP, observed through /proc and its log. The process is killed
// and reaped when the object goes (Subprocess).
#pragma once

#include <sys/types.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/subprocess.h"

namespace cppdiag::testing {

// True in ASan/TSan builds (leakapp is built with the same flags as the
// tests). Their allocators replace glibc's: no heap hard limit, mallinfo2()
// reports nothing, a failed `new` is reported instead of thrown, and RSS
// includes shadow memory.
constexpr bool kSanitizerBuild =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#else
    false;
#endif
// ASan keeps freed memory in quarantine: RSS does not drop when it is freed.
constexpr bool kAsanBuild =
#if defined(__SANITIZE_ADDRESS__)
    true;
#else
    false;
#endif

struct LeakappOptions {
  std::string cgroup_procs;                // join this cgroup before exec
  std::map<std::string, std::string> env;  // added to the test's environment
};

class LeakappProcess {
 public:
  explicit LeakappProcess(LeakappOptions options = {});

  // Reads the port leakapp bound (it starts with --port 0) from its log, then
  // polls GET /readyz until it answers 200. Fails if the process ends first
  // or after 10 s.
  ::testing::AssertionResult WaitUntilReady();

  httplib::Result Get(const std::string& target);
  httplib::Result Post(const std::string& target);
  // Sends `request` as it is over a new connection and returns everything
  // read until the server closes it or 3 s pass.
  std::string RawRequest(const std::string& request);
  // GET `target` expecting 200 and a JSON body; null JSON after a failed
  // assertion.
  nlohmann::json GetJson(const std::string& target);

  // Polls /status until leak.state is `state` (10 s at most).
  ::testing::AssertionResult WaitForLeakState(const std::string& state);

  // VmRSS and VmSize from /proc/<pid>/status (0 if unreadable).
  uint64_t Rss() const;
  uint64_t VmSize() const;

  // Every "Total: Y MB" of the per-round log lines, in order.
  std::vector<double> LoggedTotals() const;

  Subprocess& process() { return *process_; }
  pid_t pid() const { return process_->pid(); }
  int port() const { return port_; }  // 0 until WaitUntilReady() has read it
  // stdout then stderr, for failure messages.
  std::string Output() const;

 private:
  void Start();

  LeakappOptions options_;
  int port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace cppdiag::testing
