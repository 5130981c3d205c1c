// The reader on what is not a good core: truncated, corrupt headers and
// notes, other architectures, other kinds of file. Each gets one line, never
// a crash, a hang or a read past the file (these tests run under ASan too).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "cli/analyze/core_file.h"
#include "cli/analyze/core_notes.h"
#include "cli/analyze/testing/core_builder.h"
#include "cli/analyze/testing/fake_core.h"
#include "diag/dump/testing/typical_process.h"
#include "support/status_matchers.h"

namespace cppdiag::cli::analyze {
namespace {

using ::cppdiag::testing::IsOk;

using testing::BuiltCore;
using testing::CoreBuilder;
using testing::ScopedTempDir;

std::string ErrorOf(std::vector<uint8_t> bytes) {
  auto core = CoreFile::FromBytes(std::move(bytes));
  if (core.ok()) return "(opened)";
  return core.error().message();
}

BuiltCore SmallCore() {
  CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, testing::PrstatusDesc(10));
  b.Note("CORE", NT_FILE, testing::FileNoteDesc({{0x10000, 0x11000, 0, "/bin/app"}}));
  b.Load(0x10000, 0x1000, "data");
  b.Load(0x20000, 0x1000, "more");
  return b.Build();
}

TEST(CoreFileCorruptTest, TruncatedAtEverySixteenthSaysTruncated) {
  auto fake = dump::testing::MakeTypicalProcess();
  std::vector<uint8_t> full = testing::WriteFakeCore(*fake, DumpType::kFull);
  ASSERT_THAT(CoreFile::FromBytes(full), IsOk());
  for (size_t k = 1; k < 16; ++k) {
    size_t size = full.size() * k / 16;
    std::string msg = ErrorOf({full.begin(), full.begin() + size});
    EXPECT_EQ(msg.rfind("truncated: ", 0), 0u) << size << ": " << msg;
    EXPECT_NE(msg.find(fmt::format("of a file of {} bytes", size)), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  // Every cut inside the headers and notes, byte by byte.
  auto elf = CoreFile::FromBytes(full);
  uint64_t notes_end = elf->notes().back().offset + 1;
  for (size_t size = 1; size < notes_end; ++size) {
    std::string msg = ErrorOf({full.begin(), full.begin() + size});
    EXPECT_TRUE(msg.rfind("truncated: ", 0) == 0 || msg == "not an ELF file")
        << size << ": " << msg;
  }
}

TEST(CoreFileCorruptTest, TruncatedProgramHeaderNamesItAndTheSizes) {
  BuiltCore c = SmallCore();
  c.bytes.resize(c.phdr_offset(2) + 10);
  EXPECT_EQ(ErrorOf(c.bytes), fmt::format("truncated: program header 2 ends at byte {} of a file "
                                          "of {} bytes",
                                          c.phdr_offset(3), c.bytes.size()));
  c = SmallCore();
  c.bytes.resize(c.load_offsets[1] + 2);
  EXPECT_EQ(ErrorOf(c.bytes),
            fmt::format("truncated: segment 2 (PT_LOAD at 0x20000) ends at byte {} of a file of "
                        "{} bytes",
                        c.load_offsets[1] + 4, c.bytes.size()));
}

TEST(CoreFileCorruptTest, NoteSizesThatOverflow) {
  for (uint32_t namesz : {0xffffffffu, 0xfffffffdu, 0x80000000u}) {
    BuiltCore c = SmallCore();
    c.Put<uint32_t>(c.note_offsets[1], namesz);
    EXPECT_EQ(ErrorOf(c.bytes),
              fmt::format("note 1 is corrupt: its name ({} bytes) runs past the end of its "
                          "PT_NOTE (segment 0, {} bytes)",
                          namesz, c.notes_size));
  }
  for (uint32_t descsz : {0xffffffffu, 0xfffffffdu, 1000u}) {
    BuiltCore c = SmallCore();
    c.Put<uint32_t>(c.note_offsets[0] + 4, descsz);
    std::string msg = ErrorOf(c.bytes);
    EXPECT_EQ(
        msg.rfind(fmt::format("note 0 is corrupt: its descriptor ({} bytes) runs past", descsz), 0),
        0u)
        << msg;
  }
}

TEST(CoreFileCorruptTest, AHugeProgramHeaderCount) {
  BuiltCore c = SmallCore();
  c.Put<uint16_t>(offsetof(Elf64_Ehdr, e_phnum), 0xfffe);
  std::string msg = ErrorOf(c.bytes);
  EXPECT_EQ(msg.rfind("truncated: program header ", 0), 0u) << msg;

  CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, testing::PrstatusDesc(10)).Load(0x1000, 0x1000, "x");
  BuiltCore x = b.ExtendedNumbering().Build();
  x.Put<uint32_t>(x.shoff + offsetof(Elf64_Shdr, sh_info), 0xffffffff);
  EXPECT_EQ(ErrorOf(x.bytes),
            "corrupt ELF header: 4294967295 program headers (cppdiag reads 4194304)");
  x.Put<uint32_t>(x.shoff + offsetof(Elf64_Shdr, sh_info), 1u << 22);
  EXPECT_EQ(ErrorOf(x.bytes).rfind("truncated: program header ", 0), 0u);
  x.Put<uint32_t>(x.shoff + offsetof(Elf64_Shdr, sh_info), 0);
  EXPECT_EQ(ErrorOf(x.bytes), "corrupt ELF header: no program headers");
  x.Put<uint64_t>(offsetof(Elf64_Ehdr, e_shoff), x.bytes.size() - 10);
  EXPECT_EQ(ErrorOf(x.bytes),
            fmt::format("truncated: section header 0 (the program header count) ends at byte {} "
                        "of a file of {} bytes",
                        x.bytes.size() + 54, x.bytes.size()));
  x.Put<uint64_t>(offsetof(Elf64_Ehdr, e_shoff), 0);
  EXPECT_EQ(ErrorOf(x.bytes).rfind("corrupt ELF header: e_phnum is PN_XNUM", 0), 0u);
}

TEST(CoreFileCorruptTest, ProgramHeadersPastTheEnd) {
  BuiltCore c = SmallCore();
  c.Put<uint64_t>(offsetof(Elf64_Ehdr, e_phoff), c.bytes.size() + 100);
  EXPECT_EQ(ErrorOf(c.bytes), fmt::format("truncated: the program headers start at byte {} of a "
                                          "file of {} bytes",
                                          c.bytes.size() + 100, c.bytes.size()));
  c.Put<uint64_t>(offsetof(Elf64_Ehdr, e_phoff), UINT64_MAX - 10);
  EXPECT_EQ(ErrorOf(c.bytes).rfind("truncated: the program headers start at byte", 0), 0u);
}

TEST(CoreFileCorruptTest, SegmentsThatCannotBe) {
  auto field = [](size_t i, size_t member) { return kEhdrSize + i * kPhdrSize + member; };
  BuiltCore c = SmallCore();
  c.Put<uint64_t>(field(1, offsetof(Elf64_Phdr, p_filesz)), 0x2000);
  EXPECT_EQ(ErrorOf(c.bytes).rfind("truncated: segment 1 (PT_LOAD at 0x10000)", 0), 0u);
  c = SmallCore();
  c.Put<uint64_t>(field(1, offsetof(Elf64_Phdr, p_memsz)), 2);
  EXPECT_EQ(ErrorOf(c.bytes),
            "corrupt: segment 1 (PT_LOAD at 0x10000) stores 4 bytes but maps only 2");
  c = SmallCore();
  c.Put<uint64_t>(field(1, offsetof(Elf64_Phdr, p_vaddr)), UINT64_MAX - 0x10);
  EXPECT_EQ(ErrorOf(c.bytes).rfind("corrupt: segment 1 (PT_LOAD at 0xffffffffffffffef) of 4096 "
                                   "bytes runs past the address space",
                                   0),
            0u);
  c = SmallCore();
  c.Put<uint64_t>(field(2, offsetof(Elf64_Phdr, p_vaddr)), 0x10800);
  EXPECT_EQ(ErrorOf(c.bytes),
            "corrupt: segments 1 and 2 overlap (0x10000-0x11000 and 0x10800-0x11800)");
  c = SmallCore();
  c.Put<uint64_t>(field(0, offsetof(Elf64_Phdr, p_offset)), UINT64_MAX - 1);
  EXPECT_EQ(ErrorOf(c.bytes).rfind("corrupt: segment 0 (PT_NOTE) has offset 0xfffffffffffffffe", 0),
            0u);
}

TEST(CoreFileCorruptTest, OtherArchitecturesAndFormatsAreNamed) {
  BuiltCore c = SmallCore();
  c.Put<uint16_t>(offsetof(Elf64_Ehdr, e_machine), EM_AARCH64);
  EXPECT_EQ(ErrorOf(c.bytes), "an ELF core of aarch64; cppdiag reads x86-64 cores");
  c.Put<uint16_t>(offsetof(Elf64_Ehdr, e_machine), 0x1234);
  EXPECT_EQ(ErrorOf(c.bytes), "an ELF core of machine 4660; cppdiag reads x86-64 cores");
  c = SmallCore();
  c.bytes[EI_CLASS] = ELFCLASS32;
  EXPECT_EQ(ErrorOf(c.bytes), "a 32-bit ELF file; cppdiag reads x86-64 cores");
  c.bytes[EI_CLASS] = 7;
  EXPECT_EQ(ErrorOf(c.bytes), "corrupt ELF header: class 7");
  c = SmallCore();
  c.bytes[EI_DATA] = ELFDATA2MSB;
  EXPECT_EQ(ErrorOf(c.bytes), "a big-endian ELF file; cppdiag reads x86-64 cores");
  c = SmallCore();
  c.Put<uint16_t>(offsetof(Elf64_Ehdr, e_phentsize), 32);
  EXPECT_EQ(ErrorOf(c.bytes), "corrupt ELF header: e_phentsize is 32, not 56");
  c = SmallCore();
  c.Put<uint16_t>(offsetof(Elf64_Ehdr, e_type), ET_EXEC);
  EXPECT_EQ(ErrorOf(c.bytes), "not a core: an ELF executable (ET_EXEC)");
  EXPECT_EQ(ErrorOf(testing::Bytes("\x7f"
                                   "EL")),
            "not an ELF file");
  EXPECT_EQ(ErrorOf(testing::Bytes("\x7f"
                                   "ELF\x02\x01")),
            "truncated: the ELF header ends at byte 64 of a file of 6 bytes");
  EXPECT_EQ(ErrorOf({}), "empty file");
}

TEST(CoreFileCorruptTest, FilesThatAreNotCores) {
  ScopedTempDir dir;
  auto open_error = [](const std::string& path) {
    auto core = CoreFile::Open(path);
    return core.ok() ? std::string("(opened)") : core.error().message();
  };
  EXPECT_EQ(open_error("/bin/true"),
            "/bin/true: not a core: an ELF shared object or PIE executable (ET_DYN)");
  std::string text =
      testing::WriteBytes(dir, "notes.txt", testing::Bytes("threads: 3\nnot a core\n"));
  EXPECT_EQ(open_error(text), text + ": not an ELF file");
  std::string empty = testing::WriteBytes(dir, "empty", {});
  EXPECT_EQ(open_error(empty), empty + ": empty file");
  EXPECT_EQ(open_error(dir.path()), dir.path() + ": not a regular file (a directory)");
  EXPECT_EQ(open_error("/dev/null"), "/dev/null: not a regular file (a character device)");
  std::string link = dir.path() + "/link";
  ASSERT_EQ(::symlink(text.c_str(), link.c_str()), 0);
  EXPECT_EQ(open_error(link).rfind(link + ": a symbolic link", 0), 0u);
  EXPECT_EQ(open_error(dir.path() + "/absent"),
            "open " + dir.path() + "/absent: No such file or directory");
}

TEST(CoreFileCorruptTest, AFifoIsRefusedWithoutWaitingForAWriter) {
  ScopedTempDir dir;
  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // In a child with an alarm, so a blocking open fails the test instead of hanging it.
  EXPECT_EXIT(
      {
        ::alarm(30);
        auto core = CoreFile::Open(fifo);
        std::fprintf(stderr, "%s\n", core.ok() ? "(opened)" : core.error().message().c_str());
        ::_exit(core.ok() ? 1 : 0);
      },
      ::testing::ExitedWithCode(0), "fifo: not a regular file \\(a FIFO\\)");
}

// The threat: another process truncates the core while it is read.
TEST(CoreFileCorruptTest, ACoreTruncatedWhileReadEndsWithOneLineNotACrash) {
  auto fake = dump::testing::MakeTypicalProcess();
  std::vector<uint8_t> bytes = testing::WriteFakeCore(*fake, DumpType::kFull);
  ScopedTempDir dir;
  std::string path = dir.path() + "/core";
  auto read_after_truncation = [&] {
    testing::WriteBytes(dir, "core", bytes);
    auto core = CoreFile::Open(path);
    if (!core.ok()) ::_exit(3);
    if (::truncate(path.c_str(), 4096) != 0) ::_exit(4);
    auto heap = core->ReadMemory(dump::testing::TypicalProcess::kHeapMarker, 4);
    if (!heap.ok()) ::_exit(5);
    volatile uint8_t b = (*heap)[0].data[0];  // the page is gone
    (void)b;
    ::_exit(0);
  };
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_EXIT(read_after_truncation(), ::testing::ExitedWithCode(1), "AddressSanitizer: BUS");
#else
  EXPECT_EXIT(read_after_truncation(), ::testing::KilledBySignal(SIGBUS), "");
#endif
  EXPECT_EXIT(
      {
        if (!InstallTruncationGuard().ok()) ::_exit(2);
        read_after_truncation();
      },
      ::testing::ExitedWithCode(1),
      "^cppdiag: " + path + ": the file shrank while it was being read \\(byte [0-9]+ is gone\\)");
}

TEST(CoreFileCorruptTest, MemoryRangesAtTheEdgeOfTheAddressSpace) {
  auto core = CoreFile::FromBytes(SmallCore().bytes);
  ASSERT_THAT(core, IsOk());
  EXPECT_EQ(core->ReadMemory(UINT64_MAX - 3, 8).error().message(),
            "8 bytes from 0xfffffffffffffffc run past the address space");
  EXPECT_FALSE(core->ReadMemory(UINT64_MAX, 1).ok());
  EXPECT_TRUE(core->ReadMemory(0x10000, 0).ok());
  EXPECT_FALSE(core->ReadMemory(0x10000, 0x1001).ok());
  EXPECT_TRUE(core->ReadMemory(0x10000, 0x1000).ok());
}

}  // namespace
}  // namespace cppdiag::cli::analyze
