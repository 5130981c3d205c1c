// What a dump must leave out: memory marked MADV_DONTDUMP (on request and
// in a crash dump) and what /proc/<pid>/coredump_filter excludes.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "common/io.h"
#include "diag/dump/cppdiag_note.h"
#include "diag/dump/testing/core_file_reader.h"
#include "integration/dump/dump_integration_fixture.h"
#include "marker.h"
#include "support/scoped_cgroup.h"
#include "support/status_matchers.h"
#include "support/subprocess.h"

namespace cppdiag::dump::integration_test {
namespace {

using ::cppdiag::testing::IsOk;

using cppdiag::dump_test::Marker;

using cppdiag::testing::BuiltBinary;
using cppdiag::testing::Subprocess;
using cppdiag::testing::SubprocessOptions;
using cppdiag::testing::Termination;
using std::chrono::seconds;
namespace fs = std::filesystem;

// --- what a dump must leave out ---

// MADV_DONTDUMP memory (keys, tokens, buffers the program marked) is in no
// dump of any type or mode, as in the kernel's core; the heap marker beside
// it still is where the type stores the heap.
struct DontDumpCase {
  const char* type;
  const char* mode;
};

void PrintTo(const DontDumpCase& c, std::ostream* os) { *os << c.type << "/" << c.mode; }

class DontDumpTest : public DumpIntegrationTest,
                     public ::testing::WithParamInterface<DontDumpCase> {};

TEST_P(DontDumpTest, MemoryMarkedDontDumpIsNotInTheDump) {
  const DontDumpCase c = GetParam();
  const uint64_t control = 11000 + ::getpid(), secret = 12000 + ::getpid();
  const std::string core = dir_ + "/core";
  ProcessRun r =
      RunToEnd({Target(), "dump", "--type", c.type, "--mode", c.mode, "--path", core, "--threads",
                "2", "--heap-mb", "2", "--marker-seed", std::to_string(control), "--secret-seed",
                std::to_string(secret), "--print-dontdump", "1"});
  ASSERT_EQ(r.end.exit_code, 0) << r.end.ToString() << "\n" << r.out << r.err;
  EXPECT_FALSE(FileContains(core, Marker(secret))) << c.type << " dump holds MADV_DONTDUMP memory";
  bool stores_heap = std::string(c.type) == "full" || std::string(c.type) == "heap";
  EXPECT_EQ(FileContains(core, Marker(control)), stores_heap) << c.type;

  // No data at all for any mapping smaps showed as dd: the secret's, [vvar],
  // and the dumper's own buffers.
  static const std::regex kDontDump(R"(DONTDUMP ([0-9a-f]+)-([0-9a-f]+))");
  std::vector<std::pair<uint64_t, uint64_t>> dd;
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), kDontDump), end; it != end; ++it) {
    dd.emplace_back(std::stoull((*it)[1], nullptr, 16), std::stoull((*it)[2], nullptr, 16));
  }
  EXPECT_GE(dd.size(), 4u) << r.out;  // secret, I/O buffers, thread capture, fork report, [vvar]
  auto parsed = testing::ParseCoreFile(core);
  ASSERT_THAT(parsed, IsOk());
  for (const GElf_Phdr& ph : parsed->Loads()) {
    if (ph.p_filesz == 0) continue;
    for (auto [start, end] : dd) {
      EXPECT_FALSE(ph.p_vaddr < end && start < ph.p_vaddr + ph.p_filesz)
          << std::hex << "data at 0x" << ph.p_vaddr << "+0x" << ph.p_filesz << " in a dd mapping 0x"
          << start << "-0x" << end;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    TypesAndModes, DontDumpTest,
    ::testing::Values(DontDumpCase{"full", "suspend"}, DontDumpCase{"heap", "suspend"},
                      DontDumpCase{"mini", "suspend"}, DontDumpCase{"triage", "suspend"},
                      DontDumpCase{"full", "fork"}, DontDumpCase{"heap", "fork"}),
    [](const ::testing::TestParamInfo<DontDumpCase>& param) {
      return std::string(param.param.type) + "_" + param.param.mode;
    });

TEST_F(DumpIntegrationTest, ACrashDumpLeavesOutDontDumpMemory) {
  const uint64_t control = 13000 + ::getpid(), secret = 14000 + ::getpid();
  ProcessRun r =
      RunToEnd({Target(), "segv", "--type", "heap", "--threads", "2", "--heap-mb", "2",
                "--marker-seed", std::to_string(control), "--secret-seed", std::to_string(secret)},
               {{"CPPDIAG_DUMP_NAME", dir_ + "/core.%p"}});
  ASSERT_EQ(r.end.signal, SIGSEGV) << r.end.ToString() << "\n" << r.err;
  const std::string core = dir_ + "/core." + std::to_string(ReadyPid(r.out));
  EXPECT_TRUE(FileContains(core, Marker(control)));
  EXPECT_FALSE(FileContains(core, Marker(secret)));
}

// A heap dump stores what the kernel's core would under the process's
// /proc/<pid>/coredump_filter: bit 1 anonymous shared memory, bit 2
// file-backed private mappings (0x33 by default: bit 1 on, bit 2 off).
// A full dump ignores the filter.
struct FilterCase {
  const char* type;
  const char* filter;  // "" leaves the default
  bool anon_shared;    // expected in the dump
  bool file_private;
};

void PrintTo(const FilterCase& c, std::ostream* os) { *os << c.type << " " << c.filter; }

class CoredumpFilterTest : public DumpIntegrationTest,
                           public ::testing::WithParamInterface<FilterCase> {};

TEST_P(CoredumpFilterTest, TheDumpFollowsTheFilter) {
  const FilterCase c = GetParam();
  const uint64_t shared = 15000 + ::getpid(), file = 16000 + ::getpid();
  const std::string mapped = dir_ + "/mapped", core = dir_ + "/core";
  std::string page = Marker(file);
  page.resize(4096, 'f');
  ASSERT_THAT(WriteStringToFile(mapped, page), IsOk());
  std::vector<std::string> argv = {Target(),     "dump", "--type",        c.type,
                                   "--path",     core,   "--threads",     "1",
                                   "--heap-mb",  "1",    "--shared-seed", std::to_string(shared),
                                   "--map-file", mapped};
  if (*c.filter != '\0') argv.insert(argv.end(), {"--coredump-filter", c.filter});
  ProcessRun r = RunToEnd(argv);
  ASSERT_EQ(r.end.exit_code, 0) << r.end.ToString() << "\n" << r.out << r.err;
  EXPECT_EQ(FileContains(core, Marker(shared)), c.anon_shared) << "anonymous shared memory";
  EXPECT_EQ(FileContains(core, Marker(file)), c.file_private) << "file-backed private mapping";
}

INSTANTIATE_TEST_SUITE_P(Filters, CoredumpFilterTest,
                         ::testing::Values(FilterCase{"heap", "", true, false},
                                           FilterCase{"heap", "0x31", false, false},
                                           FilterCase{"heap", "0x37", true, true},
                                           FilterCase{"full", "0x31", true, true}),
                         [](const ::testing::TestParamInfo<FilterCase>& param) {
                           std::string f = *param.param.filter ? param.param.filter : "default";
                           return std::string(param.param.type) + "_" + f;
                         });

}  // namespace
}  // namespace cppdiag::dump::integration_test
