// A heap dump against the kernel's own core of the same process state: the
// crash handler writes its dump, re-raises, and the kernel then writes its
// core (RLIMIT_CORE unlimited, core_pattern a file name in the working
// directory). Both follow the same rules (MADV_DONTDUMP, coredump_filter),
// so they hold about the same memory.
//
// Runs alone (SERIAL): when the system's core_pattern is a pipe or a path,
// it is set to "core" for the test and put back afterwards.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <optional>
#include <regex>
#include <string>

#include "common/io.h"
#include "diag/dump/testing/core_file_reader.h"
#include "marker.h"
#include "support/scoped_core_pattern.h"
#include "support/scoped_temp_dir.h"
#include "support/subprocess.h"

namespace cppdiag::dump {
namespace {

using ::cppdiag::testing::ScopedTempDir;

using cppdiag::dump_test::Marker;
using cppdiag::testing::BuiltBinary;
using cppdiag::testing::ScopedCorePattern;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
namespace fs = std::filesystem;

struct CoreSize {
  uint64_t load_bytes = 0;  // sum of PT_LOAD p_filesz
  uint64_t disk_bytes = 0;  // what the file holds on disk (holes left out)
};

std::optional<CoreSize> SizeOf(const std::string& path) {
  auto core = testing::ParseCoreFile(path);
  EXPECT_TRUE(core.ok()) << path << ": " << core.error().message();
  if (!core.ok()) return std::nullopt;
  CoreSize size;
  for (const GElf_Phdr& ph : core->Loads()) size.load_bytes += ph.p_filesz;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) size.disk_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
  return size;
}

bool FileContains(const std::string& path, const std::string& needle) {
  auto text = ReadFileToString(path, size_t{8} << 30);
  return text.ok() && text->find(needle) != std::string::npos;
}

TEST(KernelCoreTest, AHeapDumpHoldsAboutWhatTheKernelsCoreHolds) {
  ScopedCorePattern pattern;
  if (!pattern.ok()) GTEST_SKIP() << pattern.why_not();
  ScopedTempDir tmp("cppdiag-kernel-core");
  const std::string dir = tmp.path();
  const uint64_t secret = 21000 + ::getpid(), control = 22000 + ::getpid();

  // 128 MiB of MADV_DONTDUMP memory beside a 16 MiB heap: the kernel leaves
  // it out of its core, and so must the heap dump.
  SubprocessOptions o;
  o.argv = {BuiltBinary("dump_test_target"),
            "abort",
            "--type",
            "heap",
            "--threads",
            "3",
            "--heap-mb",
            "16",
            "--marker-seed",
            std::to_string(control),
            "--secret-seed",
            std::to_string(secret),
            "--dontdump-mb",
            "128",
            "--kernel-core",
            "1"};
  o.env = {{"CPPDIAG_DUMP_NAME", dir + "/cppdiag.%p"}};
  o.cwd = dir;
  Subprocess p(o);
  auto end = p.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(end.has_value());
  ASSERT_EQ(end->signal, SIGABRT) << end->ToString() << "\n" << p.Stderr();
  ASSERT_TRUE(end->core_dumped) << "the kernel wrote no core";

  std::smatch m;
  std::string out = p.Stdout();
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(READY pid=(\d+))"))) << out;
  const std::string ours = dir + "/cppdiag." + m[1].str();
  std::string kernel;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path() != ours) kernel = e.path();
  }
  ASSERT_TRUE(fs::exists(ours)) << p.Stderr();
  ASSERT_FALSE(kernel.empty()) << "no kernel core in " << dir;

  auto a = SizeOf(ours), b = SizeOf(kernel);
  ASSERT_TRUE(a && b);
  double load_ratio = static_cast<double>(a->load_bytes) / static_cast<double>(b->load_bytes);
  double disk_ratio = static_cast<double>(a->disk_bytes) / static_cast<double>(b->disk_bytes);
  std::cout << "heap dump / kernel core: PT_LOAD data " << a->load_bytes << " / " << b->load_bytes
            << " = " << load_ratio << ", on disk " << a->disk_bytes << " / " << b->disk_bytes
            << " = " << disk_ratio << "\n";
  EXPECT_LE(load_ratio, 1.5);
  EXPECT_GE(load_ratio, 1 / 1.5);
  EXPECT_TRUE(FileContains(ours, Marker(control)));
  EXPECT_TRUE(FileContains(kernel, Marker(control)));
  EXPECT_FALSE(FileContains(kernel, Marker(secret)));
  EXPECT_FALSE(FileContains(ours, Marker(secret)));
}

}  // namespace
}  // namespace cppdiag::dump
