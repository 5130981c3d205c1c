#include "cli/analyze/testing/fake_core.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "common/io.h"
#include "diag/dump/elf_core_writer.h"

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

ScopedTempDir::ScopedTempDir() {
  char tmpl[] = "/tmp/cppdiag-analyze-XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl), nullptr);
  path_ = tmpl;
}

ScopedTempDir::~ScopedTempDir() { std::filesystem::remove_all(path_); }

std::string ScopedTempDir::Write(const std::string& name, const std::vector<uint8_t>& bytes) const {
  std::string p = path_ + "/" + name;
  Status st = WriteStringToFile(
      p, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), 0600);
  EXPECT_TRUE(st.ok()) << st.error().message();
  return p;
}

}  // namespace cppdiag::cli::analyze::testing
