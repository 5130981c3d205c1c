#include "cli/analyze/testing/fake_core.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <latch>
#include <thread>

#include "common/io.h"
#include "common/proc.h"
#include "diag/dump/elf_core_writer.h"
#include "support/status_matchers.h"
#include "support/subprocess.h"

namespace cppdiag::cli::analyze::testing {

std::vector<uint8_t> WriteFakeCore(const dump::ProcessSnapshot& snapshot, DumpType type,
                                   const dump::CppdiagInfo* info) {
  auto buffers =
      dump::CoreWriterBuffersOwner::Allocate(snapshot.mapping_count() + 16, 512, 64 << 10);
  EXPECT_TRUE(buffers.ok());
  if (!buffers.ok()) return {};
  dump::MemorySink sink;
  dump::CoreWriteStats stats;
  int err =
      dump::WriteElfCore(snapshot, {.type = type, .info = info}, buffers->get(), &sink, &stats);
  EXPECT_EQ(err, 0) << stats.failed_step;
  return sink.data();
}

namespace {
char g_child_marker[64];
}  // namespace

uint64_t ChildMarkerAddress() { return reinterpret_cast<uint64_t>(g_child_marker); }

GdbCore GcoreOfThreadedChild(const std::string& path, int threads) {
  GdbCore out;
  int ready[2], hold[2];
  if (::pipe(ready) != 0 || ::pipe(hold) != 0) {
    ADD_FAILURE() << "pipe";
    return out;
  }
  pid_t child = ::fork();
  if (child == 0) {
    ::close(ready[0]);
    ::close(hold[1]);
    std::snprintf(g_child_marker, sizeof g_child_marker, "gdb-child-%d", ::getpid());
    std::vector<std::thread> workers;
    std::latch started(threads);
    for (int i = 0; i < threads; ++i) {
      workers.emplace_back([&] {
        started.count_down();
        char c;
        (void)!::read(hold[0], &c, 1);  // until the parent closes its end
      });
    }
    started.wait();
    (void)!::write(ready[1], "r", 1);
    char c;
    (void)!::read(hold[0], &c, 1);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(hold[0]);
  out.pid = child;
  char c;
  if (child > 0 && ::read(ready[0], &c, 1) == 1) {
    if (auto tids = ListThreads(child); tids.ok()) out.tids = *tids;
    out.gdb_output = cppdiag::testing::RunToCompletion(
        {"/usr/bin/gdb", "-batch", "-nx", "-p", std::to_string(child), "-ex", "gcore " + path});
  }
  ::close(ready[0]);
  ::close(hold[1]);
  int status = 0;
  if (child > 0) ::waitpid(child, &status, 0);
  EXPECT_GT(child, 0) << "fork";
  return out;
}

std::string WriteBytes(const ScopedTempDir& dir, const std::string& name,
                       const std::vector<uint8_t>& bytes) {
  std::string p = dir.Join(name);
  Status st = WriteStringToFile(
      p, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), 0600);
  EXPECT_THAT(st, ::cppdiag::testing::IsOk());
  return p;
}

}  // namespace cppdiag::cli::analyze::testing
