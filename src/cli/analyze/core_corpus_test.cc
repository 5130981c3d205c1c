// The fuzzer's seed corpus (tests/fuzz/corpus_core): small real cores that
// must keep parsing, and the (disabled) test that writes them:
//
//   CPPDIAG_CORE_CORPUS_OUT=tests/fuzz/corpus_core
//   build/release/src/cli/analyze/cli_analyze_unit_test
//       --gtest_also_run_disabled_tests --gtest_filter='*WriteSeedCorpus*'
// (one command line, in the source tree).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "cli/analyze/core_file.h"
#include "cli/analyze/core_notes.h"
#include "cli/analyze/testing/core_builder.h"
#include "cli/analyze/testing/fake_core.h"
#include "common/io.h"
#include "diag/dump/testing/fake_process_snapshot.h"
#include "support/status_matchers.h"

namespace cppdiag::cli::analyze {
namespace {

using ::cppdiag::testing::IsOk;

namespace fs = std::filesystem;
constexpr size_t kMaxSeedBytes = 64 << 10;

std::vector<uint8_t> ReadBytes(const std::string& path) {
  auto text = ReadFileToString(path);
  EXPECT_THAT(text, IsOk());
  return text.ok() ? std::vector<uint8_t>(text->begin(), text->end()) : std::vector<uint8_t>{};
}

// A process of a few pages: every note the writer makes, some memory stored.
std::unique_ptr<dump::testing::FakeProcessSnapshot> SmallProcess() {
  auto f = std::make_unique<dump::testing::FakeProcessSnapshot>();
  f->AddMapping(0x400000, 0x1000, "r-xp", "/usr/bin/small", 0, 11);
  f->AddMapping(0x601000, 0x2000, "rw-p", "[heap]");
  f->AddMapping(0x7ffd0000, 0x1000, "rw-p", "[stack]");
  f->SetBytes(0x400000,
              "\x7f"
              "ELF");
  f->SetBytes(0x601010, "heap-bytes");
  f->Fill(0x7ffd0800, 0x800, 0x5a);
  static uint8_t xstate[1024];
  uint64_t xcr0 = 7;
  std::memcpy(xstate + kXstateXcr0Offset, &xcr0, sizeof xcr0);
  for (pid_t tid : {300, 301}) {
    dump::ThreadSnapshot& t = f->AddThread(tid);
    t.regs.rip = 0x400010;
    t.regs.rsp = 0x7ffd0900;
    t.has_fpregs = true;
    t.xstate = xstate;
    t.xstate_size = sizeof xstate;
  }
  f->SetAuxv({{AT_PAGESZ, 4096}, {AT_ENTRY, 0x400000}});
  siginfo_t si{};
  si.si_signo = SIGBUS;
  si.si_code = BUS_ADRERR;
  si.si_addr = reinterpret_cast<void*>(0x602000);
  f->SetSiginfo(si);
  return f;
}

// gdb's notes with none of its memory: the headers, the PT_LOADs with no
// stored bytes, and the PT_NOTE moved right after them.
std::vector<uint8_t> StripToNotes(const std::vector<uint8_t>& core) {
  Elf64_Ehdr eh;
  std::memcpy(&eh, core.data(), sizeof eh);
  std::vector<uint8_t> out(kEhdrSize + eh.e_phnum * kPhdrSize);
  eh.e_shoff = 0;
  eh.e_shnum = 0;
  eh.e_shstrndx = 0;
  std::memcpy(out.data(), &eh, sizeof eh);
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, core.data() + eh.e_phoff + i * kPhdrSize, sizeof ph);
    if (ph.p_type == PT_NOTE) {
      uint64_t at = out.size();
      out.insert(out.end(), core.begin() + ph.p_offset, core.begin() + ph.p_offset + ph.p_filesz);
      ph.p_offset = at;
    } else {
      ph.p_offset = 0;
      ph.p_filesz = 0;
    }
    std::memcpy(out.data() + kEhdrSize + i * kPhdrSize, &ph, sizeof ph);
  }
  return out;
}

TEST(CoreCorpusTest, SeedCoresParse) {
  std::string dir = std::string(CPPDIAG_SOURCE_DIR) + "/tests/fuzz/corpus_core";
  size_t seeds = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    SCOPED_TRACE(e.path().string());
    EXPECT_LT(e.file_size(), kMaxSeedBytes);
    auto core = CoreFile::Open(e.path());
    ASSERT_THAT(core, IsOk());
    auto notes = DecodeNotes(*core);
    ASSERT_THAT(notes, IsOk());
    EXPECT_FALSE(notes->threads.empty());
    ++seeds;
  }
  EXPECT_GE(seeds, 4u);
}

TEST(CoreCorpusTest, DISABLED_WriteSeedCorpus) {
  const char* out = std::getenv("CPPDIAG_CORE_CORPUS_OUT");
  ASSERT_NE(out, nullptr) << "set CPPDIAG_CORE_CORPUS_OUT to the corpus directory";
  auto write = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    ASSERT_LT(bytes.size(), kMaxSeedBytes) << name;
    ASSERT_TRUE(CoreFile::FromBytes(bytes).ok()) << name;
    std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    ASSERT_THAT(WriteStringToFile(std::string(out) + "/" + name, text, 0644), IsOk());
  };
  auto small = SmallProcess();
  dump::CppdiagInfo info;
  dump::CopyReason("crash", &info);
  info.threads = 2;
  write("writer-full.core", testing::WriteFakeCore(*small, DumpType::kFull, &info));
  write("writer-mini.core", testing::WriteFakeCore(*small, DumpType::kMini, &info));

  testing::CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, testing::PrstatusDesc(9, SIGABRT, 0x1010, 0x2ff0));
  b.Note("CORE", NT_PRPSINFO, testing::PrpsinfoDesc("xnum", "xnum --seed", 0));
  b.Note("CORE", NT_SIGINFO, testing::SiginfoDesc(SIGABRT, -6, 0));
  b.Note("CORE", NT_FILE, testing::FileNoteDesc({{0x1000, 0x2000, 0, "/bin/xnum"}}));
  b.Load(0x1000, 0x1000, "code").Load(0x2000, 0x1000, std::string(0x1000, 's'));
  write("builder-xnum.core", b.ExtendedNumbering().Build().bytes);

  if (::access("/usr/bin/gdb", X_OK) != 0) GTEST_SKIP() << "no gdb: the gdb seed is not written";
  testing::ScopedTempDir tmp;
  testing::GdbCore gdb = testing::GcoreOfThreadedChild(tmp.path() + "/gdb.core", 1);
  write("gdb-notes.core", StripToNotes(ReadBytes(tmp.path() + "/gdb.core")));
}

}  // namespace
}  // namespace cppdiag::cli::analyze
