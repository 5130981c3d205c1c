// The reader on real cores: the project's writer (a fake process with known
// contents, and a self-dump of this process), gdb's gcore of a child, and a
// sparse 4 GiB core (reading its notes must not touch its data).
#include "cli/analyze/core_file.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <latch>
#include <thread>

#include "cli/analyze/core_notes.h"
#include "cli/analyze/testing/core_builder.h"
#include "cli/analyze/testing/fake_core.h"
#include "common/io.h"
#include "common/proc.h"
#include "diag/dump/self_dump.h"
#include "diag/dump/testing/core_file_reader.h"
#include "diag/dump/testing/typical_process.h"
#include "support/status_matchers.h"

namespace cppdiag::cli::analyze {
namespace {

using ::cppdiag::testing::IsOk;

using P = dump::testing::TypicalProcess;
using testing::ScopedTempDir;
constexpr uint64_t kPage = 4096;

bool Within(std::span<const uint8_t> inner, std::span<const uint8_t> outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

std::string Text(const MemoryPiece& p) {
  return {reinterpret_cast<const char*>(p.data.data()), p.data.size()};
}

std::vector<pid_t> Tids(const CoreNotes& notes) {
  std::vector<pid_t> out;
  for (const ThreadInfo& t : notes.threads) out.push_back(t.tid);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(CoreFileTest, ReadsTheWritersCoreOfAKnownProcess) {
  auto fake = dump::testing::MakeTypicalProcess();
  dump::CppdiagInfo info;
  dump::CopyReason("unit-test", &info);
  info.threads = 2;
  std::vector<uint8_t> bytes = testing::WriteFakeCore(*fake, DumpType::kFull, &info);
  ScopedTempDir dir;
  auto core = CoreFile::Open(testing::WriteBytes(dir, "core", bytes));
  ASSERT_THAT(core, IsOk());

  // The same program headers and notes as elfutils' libelf sees.
  auto elf = dump::testing::ParseCore(bytes);
  ASSERT_THAT(elf, IsOk());
  EXPECT_EQ(core->program_header_count(), elf->phnum);
  ASSERT_EQ(core->notes().size(), elf->notes.size());
  for (size_t i = 0; i < elf->notes.size(); ++i) {
    EXPECT_EQ(core->notes()[i].name, elf->notes[i].name);
    EXPECT_EQ(core->notes()[i].type, elf->notes[i].type);
    EXPECT_TRUE(std::equal(core->notes()[i].desc.begin(), core->notes()[i].desc.end(),
                           elf->notes[i].desc.begin(), elf->notes[i].desc.end()));
  }
  EXPECT_EQ(core->loads().size(), elf->Loads().size());

  auto notes = DecodeNotes(*core);
  ASSERT_THAT(notes, IsOk());
  ASSERT_EQ(notes->threads.size(), 2u);
  const ThreadInfo& t0 = notes->threads[0];
  EXPECT_EQ(t0.tid, P::kMainTid);
  EXPECT_EQ(t0.signal, SIGSEGV);
  EXPECT_EQ(t0.regs.rip, P::kExeText + 0x10);
  EXPECT_EQ(t0.regs.rsp, P::kMainSp);
  EXPECT_TRUE(t0.has_fpregs);
  EXPECT_EQ(notes->threads[1].tid, P::kWorkerTid);
  EXPECT_EQ(notes->threads[1].regs.rip, P::kLibc + 0x1100);
  EXPECT_FALSE(notes->threads[1].has_fpregs);
  ASSERT_TRUE(notes->process);
  EXPECT_EQ(notes->process->fname, "fake");
  EXPECT_EQ(notes->process->psargs, "fake --flag");
  ASSERT_TRUE(notes->siginfo);
  EXPECT_EQ(notes->siginfo->signo, SIGSEGV);
  EXPECT_EQ(notes->siginfo->code, SEGV_MAPERR);
  EXPECT_EQ(notes->siginfo->fault_address, 0u);
  ASSERT_TRUE(notes->auxv);
  ASSERT_EQ(notes->auxv->size(), 5u);
  EXPECT_EQ((*notes->auxv)[4].type, uint64_t{AT_SYSINFO_EHDR});
  EXPECT_EQ((*notes->auxv)[4].value, P::kVdso);
  ASSERT_TRUE(notes->files);
  EXPECT_EQ(notes->files->page_size, kPage);
  std::vector<std::string_view> paths;
  for (const FileMapping& m : notes->files->mappings) paths.push_back(m.path);
  EXPECT_EQ(paths.front(), "/usr/bin/app");
  EXPECT_NE(std::find(paths.begin(), paths.end(), "/dev/zero (deleted)"), paths.end());
  EXPECT_EQ(notes->files->mappings[1].start, P::kExeText);
  EXPECT_EQ(notes->files->mappings[1].file_offset, 0x1000u);
  ASSERT_TRUE(notes->cppdiag);
  EXPECT_STREQ(notes->cppdiag->reason, "unit-test");
  EXPECT_EQ(notes->cppdiag->threads, 2u);

  // Memory is a view of the mapping, not a copy.
  auto marker = core->ReadMemory(P::kHeapMarker, std::strlen(P::kMarker));
  ASSERT_THAT(marker, IsOk());
  ASSERT_EQ(marker->size(), 1u);
  EXPECT_EQ(Text((*marker)[0]), P::kMarker);
  EXPECT_TRUE(Within((*marker)[0].data, core->bytes()));
  // Adjacent segments are crossed: the end of text (0x90) into rodata (0x41).
  auto across = core->ReadMemory(P::kExeRodata - 2, 4);
  ASSERT_THAT(across, IsOk());
  ASSERT_EQ(across->size(), 2u);
  EXPECT_EQ(Text((*across)[0]), "\x90\x90");
  EXPECT_EQ(Text((*across)[1]), "AA");
  uint8_t buf[4];
  auto stored = core->CopyMemory(P::kExeRodata - 2, buf);
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ(*stored, 4u);
  EXPECT_EQ(std::memcmp(buf, "\x90\x90\x41\x41", 4), 0);
  // Between mappings: not in the dump, and the answer says where.
  constexpr uint64_t kHeapEnd = P::kHeap + 16 * kPage;  // then nothing up to the thread stack
  auto gap = core->ReadMemory(kHeapEnd, 8);
  ASSERT_FALSE(gap.ok());
  EXPECT_EQ(gap.error().message(),
            fmt::format("{:#x} is not in the dump: no segment holds it (nothing was mapped there)",
                        kHeapEnd));
  auto partly = core->ReadMemory(kHeapEnd - 8, 16);
  ASSERT_FALSE(partly.ok());
  EXPECT_NE(partly.error().message().find("(8 bytes into the 16 from"), std::string::npos);
}

TEST(CoreFileTest, WhatTheDumpTypeLeftOutIsInASegmentButNotStored) {
  auto fake = dump::testing::MakeTypicalProcess();
  auto core = CoreFile::FromBytes(testing::WriteFakeCore(*fake, DumpType::kTriage));
  ASSERT_THAT(core, IsOk());
  const LoadSegment* text = core->FindLoad(P::kLibc + kPage);
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->filesz, 0u);
  auto pieces = core->ReadMemory(P::kLibc + kPage + 0x10, 32);
  ASSERT_THAT(pieces, IsOk());
  ASSERT_EQ(pieces->size(), 1u);
  EXPECT_FALSE((*pieces)[0].stored());
  EXPECT_EQ((*pieces)[0].size, 32u);
  uint8_t buf[32];
  std::memset(buf, 0xff, sizeof buf);
  auto stored = core->CopyMemory(P::kLibc + kPage + 0x10, buf);
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ(*stored, 0u);
  EXPECT_EQ(buf[0], 0);
  EXPECT_EQ(buf[31], 0);
}

TEST(CoreFileTest, PartlyStoredSegmentsReadAsStoredBytesThenZeros) {
  testing::CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, testing::PrstatusDesc(7));
  b.Load(0x10000, 2 * kPage, std::string(kPage, 'x'));
  b.Load(0x12000, kPage, std::string(kPage, 'y'));
  auto core = CoreFile::FromBytes(b.Build().bytes);
  ASSERT_THAT(core, IsOk());
  auto pieces = core->ReadMemory(0x10000 + kPage - 1, kPage + 2);
  ASSERT_THAT(pieces, IsOk());
  ASSERT_EQ(pieces->size(), 3u);
  EXPECT_EQ(Text((*pieces)[0]), "x");
  EXPECT_FALSE((*pieces)[1].stored());
  EXPECT_EQ((*pieces)[1].size, kPage);
  EXPECT_EQ(Text((*pieces)[2]), "y");
}

TEST(CoreFileTest, ExtendedProgramHeaderNumbering) {
  testing::CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, testing::PrstatusDesc(7));
  b.Load(0x10000, kPage, "abc").ExtendedNumbering();
  auto core = CoreFile::FromBytes(b.Build().bytes);
  ASSERT_THAT(core, IsOk());
  EXPECT_EQ(core->program_header_count(), 2u);
  EXPECT_EQ(core->notes().size(), 1u);
  auto abc = core->ReadMemory(0x10000, 3);
  ASSERT_THAT(abc, IsOk());
  EXPECT_EQ(Text((*abc)[0]), "abc");
}

class SelfDumpCoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dump::SelfDumpConfig c;
    c.default_type = DumpType::kMini;
    c.name_template = "/tmp/cppdiag-analyze-selfdump.%p.%r";
    ASSERT_THAT(dump::PrepareSelfDump(c), IsOk());
  }
};

TEST_F(SelfDumpCoreTest, ThreadsAndStackOfThisProcess) {
#if defined(__SANITIZE_ADDRESS__)
  // As scripts/test.sh says: the dump engine reads its own stack and address
  // space, which ASan reports; the release run covers this test.
  GTEST_SKIP() << "self-dumps are not run under ASan";
#endif
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::latch started(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      started.count_down();
      char c;
      while (::read(fds[0], &c, 1) > 0) {
      }
    });
  }
  started.wait();
  auto live = ListThreads(::getpid());
  ASSERT_THAT(live, IsOk());
  volatile char local[32];
  std::memcpy(const_cast<char*>(local), "analyze-stack-bytes", 20);
  ScopedTempDir dir;
  std::string path = dir.path() + "/self.core";
  dump::SelfDumpRequest req;
  req.path = path.c_str();
  req.reason = "analyze-test";
  dump::SelfDumpResult res;
  int err = dump::WriteSelfDump(req, &res);
  ::close(fds[1]);
  for (auto& t : threads) t.join();
  ::close(fds[0]);
  ASSERT_EQ(err, 0) << res.failed_call;

  auto core = CoreFile::Open(path);
  ASSERT_THAT(core, IsOk());
  auto notes = DecodeNotes(*core);
  ASSERT_THAT(notes, IsOk());
  EXPECT_EQ(Tids(*notes), *live);
  EXPECT_EQ(notes->threads[0].tid, static_cast<pid_t>(::syscall(SYS_gettid)));
  ASSERT_TRUE(notes->process);
  EXPECT_EQ(notes->process->pid, ::getpid());
  EXPECT_EQ(notes->process->uid, ::getuid());
  ASSERT_TRUE(notes->cppdiag);
  EXPECT_STREQ(notes->cppdiag->reason, "analyze-test");
  EXPECT_EQ(notes->cppdiag->threads, live->size());
  auto bytes = core->ReadMemory(reinterpret_cast<uint64_t>(&local[0]), 20);
  ASSERT_THAT(bytes, IsOk());
  EXPECT_EQ(Text((*bytes)[0]), std::string("analyze-stack-bytes", 20));
}

TEST(GdbCoreTest, ThreadsAgreeWithProcTask) {
  if (::access("/usr/bin/gdb", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/gdb";
#if defined(__SANITIZE_ADDRESS__)
  // gcore of an ASan process dumps its shadow memory (terabytes reserved) for
  // minutes; the seed corpus holds a gdb core that the ASan run reads.
  GTEST_SKIP() << "gcore of an ASan process takes minutes";
#endif
  ScopedTempDir dir;
  std::string path = dir.path() + "/gdb.core";
  testing::GdbCore gdb = testing::GcoreOfThreadedChild(path, 3);
  ASSERT_TRUE(std::filesystem::exists(path)) << gdb.gdb_output;
  const pid_t child = gdb.pid;
  ASSERT_EQ(gdb.tids.size(), 4u);

  auto core = CoreFile::Open(path);
  ASSERT_THAT(core, IsOk());
  auto notes = DecodeNotes(*core);
  ASSERT_THAT(notes, IsOk());
  EXPECT_EQ(Tids(*notes), gdb.tids);
  ASSERT_TRUE(notes->process);
  EXPECT_EQ(notes->process->pid, child);
  EXPECT_TRUE(notes->files && !notes->files->mappings.empty());
  for (const ThreadInfo& t : notes->threads) {
    EXPECT_TRUE(t.has_fpregs) << t.tid;
    EXPECT_GT(t.xstate_size, 0u) << t.tid;
    EXPECT_NE(core->FindLoad(t.regs.rsp), nullptr) << "the stack of " << t.tid;
  }
  std::string expected = "gdb-child-" + std::to_string(child);
  auto marker = core->ReadMemory(testing::ChildMarkerAddress(), expected.size());
  ASSERT_THAT(marker, IsOk());
  ASSERT_EQ(marker->size(), 1u);
  EXPECT_EQ(Text((*marker)[0]), expected);
}

TEST(CoreFileTest, NotesOfASparse4GiBCoreAreReadWithoutTouchingItsData) {
  constexpr uint64_t kData = uint64_t{4} << 30;
  testing::CoreBuilder b;
  for (pid_t tid = 100; tid < 164; ++tid) b.Note("CORE", NT_PRSTATUS, testing::PrstatusDesc(tid));
  b.Load(0x7f0000000000, kData, "");
  testing::BuiltCore built = b.Build();
  uint64_t data_at = (built.bytes.size() + kPage - 1) & ~(kPage - 1);
  built.Put<uint64_t>(built.phdr_offset(1) + offsetof(Elf64_Phdr, p_offset), data_at);
  built.Put<uint64_t>(built.phdr_offset(1) + offsetof(Elf64_Phdr, p_filesz), kData);
  ScopedTempDir dir;
  std::string path = testing::WriteBytes(dir, "big.core", built.bytes);
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(data_at + kData)), 0);

  auto before = ReadProcStatus(::getpid());
  ASSERT_THAT(before, IsOk());
  auto core = CoreFile::Open(path);
  ASSERT_THAT(core, IsOk());
  auto notes = DecodeNotes(*core);
  ASSERT_THAT(notes, IsOk());
  EXPECT_EQ(notes->threads.size(), 64u);
  for (uint64_t off : {uint64_t{0}, kData / 2, kData - 8}) {
    auto word = core->ReadMemory(0x7f0000000000 + off, 8);
    ASSERT_THAT(word, IsOk());
    EXPECT_TRUE((*word)[0].stored());
    EXPECT_EQ((*word)[0].data[0], 0);
  }
  auto after = ReadProcStatus(::getpid());
  ASSERT_THAT(after, IsOk());
  EXPECT_GT(core->bytes().size(), kData);
  // A copy would be 4 GiB; the mapping's touched pages are a few.
  EXPECT_LT(after->vm_rss_bytes, before->vm_rss_bytes + (16 << 20));
}

}  // namespace
}  // namespace cppdiag::cli::analyze
