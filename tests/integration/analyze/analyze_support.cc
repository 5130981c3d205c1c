#include "analyze_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "support/subprocess.h"

namespace cppdiag::analyze_test {

using cppdiag::testing::BuiltBinary;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;

TempDir::TempDir() {
  char tmpl[] = "/tmp/cppdiag-analyze-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (std::getenv("CPPDIAG_KEEP_TEST_OUTPUT") == nullptr) std::filesystem::remove_all(path_, ec);
}

std::string Target() { return BuiltBinary("dump_test_target"); }

pid_t WriteOurDump(const std::string& type, const std::string& path, int threads) {
  Subprocess p(SubprocessOptions{.argv = {Target(), "dump", "--type", type, "--path", path,
                                          "--threads", std::to_string(threads), "--heap-mb", "8"}});
  auto end = p.Wait(std::chrono::seconds(120));
  EXPECT_TRUE(end && end->exit_code == 0) << (end ? end->ToString() : "timed out") << p.Stderr();
  std::smatch m;
  std::string out = p.Stdout();
  if (!std::regex_search(out, m, std::regex(R"(READY pid=(\d+))")) ||
      out.find("DUMP rc=0") == std::string::npos) {
    ADD_FAILURE() << "no dump: " << out << p.Stderr();
    return -1;
  }
  return std::stoi(m[1].str());
}

AnalyzeRun AnalyzeJson(const std::string& core, const std::vector<std::string>& commands,
                       const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {"dump", "analyze", core, "--json"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  for (const std::string& c : commands) {
    args.push_back("-c");
    args.push_back(c);
  }
  cppdiag::testing::CliRun r = cppdiag::testing::Cppdiag(args);
  AnalyzeRun out;
  out.exit_code = r.exit_code;
  out.out = r.out;
  out.err = r.err;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      ADD_FAILURE() << "not JSON: " << line;
      continue;
    }
    out.outputs.push_back(std::move(j));
  }
  return out;
}

std::vector<EuThread> EuStack(const std::string& core, const std::string& exe) {
  std::string text = cppdiag::testing::RunToCompletion(
      {"/usr/bin/eu-stack", "--core=" + core, "--executable=" + exe});
  static const std::regex kThread(R"(^TID (\d+):)");
  static const std::regex kFrame(R"(^#\d+\s+0x([0-9a-f]+)\s*(.*)$)");
  std::vector<EuThread> threads;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kThread)) {
      threads.push_back({.tid = std::stoi(m[1].str()), .frames = {}});
    } else if (!threads.empty() && std::regex_search(line, m, kFrame)) {
      threads.back().frames.push_back({std::stoull(m[1].str(), nullptr, 16), m[2].str()});
    }
  }
  return threads;
}

std::vector<pid_t> GdbThreads(const std::string& core, const std::string& exe) {
  std::string text = cppdiag::testing::GdbBatch(exe, core);
  static const std::regex kRow(R"(^\*?\s+\d+\s+(Thread 0x[0-9a-f]+ )?\(?LWP (\d+))");
  std::vector<pid_t> tids;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kRow)) tids.push_back(std::stoi(m[2].str()));
  }
  return tids;
}

}  // namespace cppdiag::analyze_test
