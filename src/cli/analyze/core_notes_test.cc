#include "cli/analyze/core_notes.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <fmt/format.h>

#include <cstring>

#include "cli/analyze/testing/core_builder.h"
#include "support/status_matchers.h"

namespace cppdiag::cli::analyze {
namespace {

using ::cppdiag::testing::IsOk;

using testing::Bytes;
using testing::CoreBuilder;
using testing::FileEntry;
using testing::FileNoteDesc;
using testing::PrstatusDesc;

// The notes of a core made of `b`, decoded; or the error's message.
Result<CoreNotes> Decode(const CoreBuilder& b, std::unique_ptr<CoreFile>* keep) {
  auto core = CoreFile::FromBytes(b.Build().bytes);
  if (!core.ok()) return core.error();
  *keep = std::make_unique<CoreFile>(std::move(*core));
  return DecodeNotes(**keep);
}

std::string ErrorOf(const CoreBuilder& b) {
  std::unique_ptr<CoreFile> keep;
  auto notes = Decode(b, &keep);
  return notes.ok() ? "(decoded)" : notes.error().message();
}

CoreBuilder WithFileNote(std::vector<uint8_t> desc) {
  CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, PrstatusDesc(1));
  b.Note("CORE", NT_FILE, std::move(desc));
  return b;
}

template <typename T>
void Put(std::vector<uint8_t>* d, size_t offset, T v) {
  std::memcpy(d->data() + offset, &v, sizeof v);
}

TEST(CoreNotesTest, ThreadsTakeTheRegisterNotesThatFollowThem) {
  CoreBuilder b;
  b.Note("CORE", NT_PRPSINFO, testing::PrpsinfoDesc("0123456789abcdef", "app --serve", 1000));
  b.Note("CORE", NT_PRSTATUS, PrstatusDesc(41, SIGSEGV, 0x401000, 0x7ffc0000));
  b.Note("CORE", NT_SIGINFO, testing::SiginfoDesc(SIGSEGV, SEGV_MAPERR, 0xdead));
  b.Note("CORE", NT_PRFPREG, std::vector<uint8_t>(512));
  std::vector<uint8_t> xstate(1088);
  Put<uint64_t>(&xstate, kXstateXcr0Offset, 0x207);
  b.Note("LINUX", NT_X86_XSTATE, xstate);
  b.Note("CORE", NT_PRSTATUS, PrstatusDesc(42));
  b.Note("CORE", NT_SIGINFO, testing::SiginfoDesc(SIGSTOP, SI_TKILL, 0xbeef));
  b.Note("GDB", 0xff, Bytes("<target/>"));
  std::unique_ptr<CoreFile> keep;
  auto notes = Decode(b, &keep);
  ASSERT_THAT(notes, IsOk());
  ASSERT_EQ(notes->threads.size(), 2u);
  const ThreadInfo& a = notes->threads[0];
  EXPECT_EQ(a.tid, 41);
  EXPECT_EQ(a.signal, SIGSEGV);
  EXPECT_EQ(a.regs.rip, 0x401000u);
  EXPECT_EQ(a.regs.rsp, 0x7ffc0000u);
  EXPECT_TRUE(a.has_fpregs);
  EXPECT_EQ(a.xstate_size, 1088u);
  EXPECT_EQ(a.xcr0, 0x207u);
  ASSERT_TRUE(a.siginfo);
  EXPECT_EQ(a.siginfo->fault_address, 0xdeadu);
  const ThreadInfo& c = notes->threads[1];
  EXPECT_FALSE(c.has_fpregs);
  EXPECT_EQ(c.xstate_size, 0u);
  ASSERT_TRUE(c.siginfo);
  EXPECT_EQ(c.siginfo->signo, SIGSTOP);
  EXPECT_FALSE(c.siginfo->fault_address) << "sent by a process: no fault address";
  ASSERT_TRUE(notes->siginfo);
  EXPECT_EQ(notes->siginfo->signo, SIGSEGV);
  ASSERT_TRUE(notes->process);
  EXPECT_EQ(notes->process->fname, "0123456789abcdef") << "16 bytes, no NUL: cut at the field";
  EXPECT_EQ(notes->process->psargs, "app --serve");
  EXPECT_EQ(notes->process->uid, 1000u);
  EXPECT_EQ(NoteTypeName(keep->notes().back()), "GDB type 0xff");
}

// A core's strings are the target's: they must not reach a terminal raw.
TEST(CoreNotesTest, NamesFromTheCoreAreEscapedForATerminal) {
  CoreBuilder b;
  b.Note("\x1b]0;owned\x07\n", 7, Bytes("x"));
  std::unique_ptr<CoreFile> keep;
  ASSERT_THAT(Decode(b, &keep), IsOk());
  EXPECT_EQ(NoteTypeName(keep->notes()[0]), "\\x1b]0;owned\\x07\\x0a type 0x7");
  EXPECT_EQ(Printable("/usr/lib/libc.so.6 (deleted)"), "/usr/lib/libc.so.6 (deleted)");
  EXPECT_EQ(Printable("a\\b\x7f\xc3\xa9"), "a\\\\b\\x7f\\xc3\\xa9");
}

TEST(CoreNotesTest, FixedSizeDescriptorsMustHaveTheirSize) {
  CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, std::vector<uint8_t>(200));
  EXPECT_EQ(ErrorOf(b), "note 0 (NT_PRSTATUS) is corrupt: 200 bytes, an x86-64 prstatus has 336");
  CoreBuilder p;
  p.Note("CORE", NT_PRSTATUS, PrstatusDesc(1)).Note("CORE", NT_PRPSINFO, std::vector<uint8_t>(1));
  EXPECT_EQ(ErrorOf(p), "note 1 (NT_PRPSINFO) is corrupt: 1 bytes, an x86-64 prpsinfo has 136");
  CoreBuilder s;
  s.Note("CORE", NT_SIGINFO, std::vector<uint8_t>(127));
  EXPECT_EQ(ErrorOf(s), "note 0 (NT_SIGINFO) is corrupt: 127 bytes, an x86-64 siginfo has 128");
  CoreBuilder f;
  f.Note("CORE", NT_PRSTATUS, PrstatusDesc(1)).Note("CORE", NT_PRFPREG, std::vector<uint8_t>(8));
  EXPECT_EQ(ErrorOf(f), "note 1 (NT_PRFPREG) is corrupt: 8 bytes, an x86-64 FXSAVE area has 512");
  CoreBuilder x;
  x.Note("CORE", NT_PRSTATUS, PrstatusDesc(1))
      .Note("LINUX", NT_X86_XSTATE, std::vector<uint8_t>(470));
  EXPECT_EQ(ErrorOf(x),
            "note 1 (NT_X86_XSTATE) is corrupt: 470 bytes, an XSAVE area has at least 576");
}

TEST(CoreNotesTest, ThreadsMustBeDistinctAndComeBeforeTheirRegisters) {
  CoreBuilder orphan;
  orphan.Note("CORE", NT_PRFPREG, std::vector<uint8_t>(512));
  EXPECT_EQ(ErrorOf(orphan), "note 0 (NT_PRFPREG) is corrupt: it comes before any NT_PRSTATUS");
  CoreBuilder twice;
  twice.Note("CORE", NT_PRSTATUS, PrstatusDesc(5)).Note("CORE", NT_PRSTATUS, PrstatusDesc(5));
  EXPECT_EQ(ErrorOf(twice), "note 1 (NT_PRSTATUS) is corrupt: thread 5 again (first in note 0)");
  CoreBuilder zero;
  zero.Note("CORE", NT_PRSTATUS, PrstatusDesc(0));
  EXPECT_EQ(ErrorOf(zero), "note 0 (NT_PRSTATUS) is corrupt: thread id 0");
  // A type number is only NT_PRSTATUS under the CORE owner.
  CoreBuilder other;
  other.Note("LINUX", NT_PRSTATUS, std::vector<uint8_t>(3));
  std::unique_ptr<CoreFile> keep;
  auto notes = Decode(other, &keep);
  ASSERT_THAT(notes, IsOk());
  EXPECT_TRUE(notes->threads.empty());
}

TEST(CoreNotesTest, AuxvIsWholeEntriesUpToAtNull) {
  std::vector<uint8_t> auxv(16 * 3);
  Put<uint64_t>(&auxv, 0, AT_PAGESZ);
  Put<uint64_t>(&auxv, 8, 4096);
  Put<uint64_t>(&auxv, 16, AT_NULL);
  Put<uint64_t>(&auxv, 32, AT_BASE);  // after AT_NULL: not read
  CoreBuilder b;
  b.Note("CORE", NT_AUXV, auxv);
  std::unique_ptr<CoreFile> keep;
  auto notes = Decode(b, &keep);
  ASSERT_THAT(notes, IsOk());
  ASSERT_TRUE(notes->auxv);
  ASSERT_EQ(notes->auxv->size(), 1u);
  EXPECT_EQ((*notes->auxv)[0].value, 4096u);
  auxv.resize(20);
  CoreBuilder odd;
  odd.Note("CORE", NT_AUXV, auxv);
  EXPECT_EQ(ErrorOf(odd),
            "note 0 (NT_AUXV) is corrupt: 20 bytes, not a whole number of 16-byte entries");
}

TEST(CoreNotesTest, FileNoteEntriesAndNamesMustAgree) {
  std::vector<FileEntry> two = {{0x1000, 0x3000, 2, "/bin/app"}, {0x5000, 0x6000, 0, "/lib/c.so"}};
  std::unique_ptr<CoreFile> keep;
  auto good = Decode(WithFileNote(FileNoteDesc(two)), &keep);
  ASSERT_THAT(good, IsOk());
  ASSERT_EQ(good->files->mappings.size(), 2u);
  EXPECT_EQ(good->files->mappings[0].file_offset, 0x2000u);
  EXPECT_EQ(good->files->mappings[1].path, "/lib/c.so");

  auto msg = [](std::vector<uint8_t> d) { return ErrorOf(WithFileNote(std::move(d))); };
  const std::string head = "note 1 (NT_FILE) is corrupt: ";
  std::vector<uint8_t> d = FileNoteDesc(two);
  d.resize(d.size() - 10);  // without "/lib/c.so"
  EXPECT_EQ(msg(d), head + "names for only 1 of its 2 entries");
  Put<uint64_t>(&d, 0, 3);
  EXPECT_EQ(msg(d), head + fmt::format("3 entries do not fit in {} bytes", d.size()));
  Put<uint64_t>(&d, 0, 0x0aaaaaaaaaaaaaab);  // * 24 wraps around to a small number
  EXPECT_EQ(msg(d),
            head + fmt::format("768614336404564651 entries do not fit in {} bytes", d.size()));
  d = FileNoteDesc(two);
  Put<uint64_t>(&d, 0, 1);
  EXPECT_EQ(msg(d), head + "more names than its 1 entries");
  d = FileNoteDesc(two);
  d.pop_back();  // the last name loses its NUL
  EXPECT_EQ(msg(d), head + "name 1 runs past the end of the note");
  d = FileNoteDesc(two);
  Put<uint64_t>(&d, 16 + 8, 0x10);
  EXPECT_EQ(msg(d), head + "entry 0 ends (0x10) before it starts (0x1000)");
  d = FileNoteDesc(two);
  Put<uint64_t>(&d, 16 + 16, UINT64_MAX / 2);
  EXPECT_EQ(msg(d), head + "entry 0's file offset (9223372036854775807 pages) overflows");
  d = FileNoteDesc(two, 3000);
  EXPECT_EQ(msg(d), head + "page size 3000 is not a power of two");
  EXPECT_EQ(msg(std::vector<uint8_t>(15)), head + "15 bytes, shorter than its 16-byte header");
  // Zero padding after the last name is fine.
  d = FileNoteDesc(two);
  d.resize(d.size() + 5, 0);
  EXPECT_EQ(msg(d), "(decoded)");
}

TEST(CoreNotesTest, TheCppdiagNoteUsesTheWritersDecoder) {
  std::vector<uint8_t> desc(dump::kCppdiagInfoSize);
  Put<uint32_t>(&desc, 0, 1);
  Put<uint32_t>(&desc, 4, dump::kCppdiagInfoSize);
  Put<int32_t>(&desc, 20, 1234);
  std::memcpy(desc.data() + 64, "on-demand", 10);
  CoreBuilder b;
  b.Note(dump::kCppdiagNoteName, dump::kNtCppdiagInfo, desc);
  std::unique_ptr<CoreFile> keep;
  auto notes = Decode(b, &keep);
  ASSERT_THAT(notes, IsOk());
  ASSERT_TRUE(notes->cppdiag);
  EXPECT_EQ(notes->cppdiag->pid, 1234);
  EXPECT_STREQ(notes->cppdiag->reason, "on-demand");

  Put<uint32_t>(&desc, 4, 4096);  // claims more than it has
  CoreBuilder bad;
  bad.Note(dump::kCppdiagNoteName, dump::kNtCppdiagInfo, desc);
  EXPECT_EQ(ErrorOf(bad),
            "note 0 (CPPDIAG info) is corrupt: version 1, size 4096 in a descriptor of 128 bytes");
  CoreBuilder tiny;
  tiny.Note(dump::kCppdiagNoteName, dump::kNtCppdiagInfo, Bytes("ab"));
  EXPECT_EQ(ErrorOf(tiny),
            "note 0 (CPPDIAG info) is corrupt: version 0, size 0 in a descriptor of 2 bytes");
}

}  // namespace
}  // namespace cppdiag::cli::analyze
