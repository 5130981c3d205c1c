#include "integration/dump/dump_integration_fixture.h"

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

#include "diag/dump/testing/core_file_reader.h"

namespace cppdiag::dump::integration_test {

using cppdiag::testing::BuiltBinary;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
using std::chrono::seconds;
namespace fs = std::filesystem;

std::string Target() { return BuiltBinary("dump_test_target"); }

ProcessRun RunToEnd(std::vector<std::string> argv, std::map<std::string, std::string> env,
                    seconds timeout) {
  Subprocess p(SubprocessOptions{std::move(argv), std::move(env)});
  auto t = p.Wait(timeout);
  EXPECT_TRUE(t.has_value()) << "timed out";
  ProcessRun r;
  if (t) r.end = *t;
  r.out = p.Stdout();
  r.err = p.Stderr();
  return r;
}

std::string Gdb(const std::string& core) {
  return cppdiag::testing::GdbBatch(Target(), core, {"info sharedlibrary"});
}

ProcessRun EuStack(const std::string& core) {
  return RunToEnd({"/usr/bin/eu-stack", "--core=" + core, "--executable=" + Target()});
}

int GdbThreadCount(const std::string& gdb) {
  static const std::regex kRow(R"(^\*?\s+\d+\s+(Thread 0x[0-9a-f]+ )?\(?LWP \d+)");
  int n = 0;
  std::istringstream in(gdb);
  for (std::string line; std::getline(in, line);) n += std::regex_search(line, kRow);
  return n;
}

int ReadyThreads(const std::string& out) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(out, m, std::regex(R"(READY pid=\d+ threads=(\d+))"))) << out;
  return m.empty() ? -1 : std::stoi(m[1]);
}

pid_t ReadyPid(const std::string& out) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(out, m, std::regex(R"(READY pid=(\d+))"))) << out;
  return m.empty() ? -1 : std::stoi(m[1]);
}

bool FileContains(const std::string& path, const std::string& needle) {
  std::ifstream in(path, std::ios::binary);
  std::string carry, chunk(1 << 20, '\0');
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    std::string window = carry + chunk.substr(0, static_cast<size_t>(in.gcount()));
    if (window.find(needle) != std::string::npos) return true;
    carry = window.size() >= needle.size() ? window.substr(window.size() - needle.size()) : window;
  }
  return false;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string Backtrace(const std::string& gdb, int thread) {
  size_t a = gdb.find("\nThread " + std::to_string(thread) + " ");
  if (a == std::string::npos) return "";
  size_t b = gdb.find("\nThread ", a + 1);
  size_t c = gdb.find("\nFrom ", a + 1);  // info sharedlibrary
  return gdb.substr(a, std::min(b, c) - a);
}

CppdiagInfo ReadCppdiagNote(const std::string& core) {
  CppdiagInfo info;
  auto parsed = ::cppdiag::dump::testing::ParseCoreFile(core);
  EXPECT_TRUE(parsed.ok()) << parsed.error().message();
  if (!parsed.ok()) return info;
  auto notes = parsed->NotesOfType(kCppdiagNoteName, kNtCppdiagInfo);
  EXPECT_EQ(notes.size(), 1u);
  if (notes.size() == 1) {
    EXPECT_TRUE(DecodeCppdiagInfo(notes[0]->desc, &info));
  }
  return info;
}

}  // namespace cppdiag::dump::integration_test
