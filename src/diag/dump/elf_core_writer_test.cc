#include "diag/dump/elf_core_writer.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <sys/procfs.h>

#include <cstring>
#include <string>

#include "diag/dump/testing/core_file_reader.h"
#include "diag/dump/testing/typical_process.h"
#include "support/status_matchers.h"

namespace cppdiag::dump {
namespace {

using ::cppdiag::testing::IsOk;

using testing::CoreFile;
using testing::FakeProcessSnapshot;
using P = testing::TypicalProcess;
constexpr uint64_t kPage = 4096;

struct Written {
  int err = 0;
  CoreWriteStats stats;
  MemorySink sink;
  CoreFile core;
};

std::unique_ptr<Written> Write(const ProcessSnapshot& s, CoreWriterOptions o,
                               uint64_t sink_limit = UINT64_MAX, size_t io = 64 << 10) {
  auto w = std::make_unique<Written>();
  w->sink = MemorySink(sink_limit);
  auto buffers = CoreWriterBuffersOwner::Allocate(s.mapping_count() + 16, 512, io);
  EXPECT_THAT(buffers, IsOk());
  w->err = WriteElfCore(s, o, buffers->get(), &w->sink, &w->stats);
  if (w->err == 0) {
    auto core = testing::ParseCore(w->sink.data());
    EXPECT_THAT(core, IsOk());
    if (core.ok()) w->core = std::move(*core);
  }
  return w;
}

bool Contains(const std::vector<uint8_t>& hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

std::string NoteKey(const testing::CoreNote& n) { return n.name + ":" + std::to_string(n.type); }

TEST(ElfCoreWriterTest, HeaderIsAnX8664CoreWithNoteFirst) {
  auto f = testing::MakeTypicalProcess();
  auto w = Write(*f, {.type = DumpType::kFull});
  ASSERT_EQ(w->err, 0);
  const CoreFile& c = w->core;
  EXPECT_EQ(c.ehdr.e_type, ET_CORE);
  EXPECT_EQ(c.ehdr.e_machine, EM_X86_64);
  EXPECT_EQ(c.ehdr.e_ident[EI_CLASS], ELFCLASS64);
  ASSERT_GE(c.phnum, 2u);
  EXPECT_EQ(c.phdrs[0].p_type, PT_NOTE);
  EXPECT_EQ(c.phnum, 1 + w->stats.segments);
  EXPECT_EQ(w->stats.file_size, w->sink.data().size());
  EXPECT_TRUE(w->sink.finished());
}

TEST(ElfCoreWriterTest, NotesComeInTheKernelsOrder) {
  auto f = testing::MakeTypicalProcess();
  static uint8_t xstate[1024];
  ThreadSnapshot& t0 = const_cast<ThreadSnapshot&>(f->thread(0));
  t0.xstate = xstate;
  t0.xstate_size = sizeof xstate;
  CppdiagInfo info;
  CopyReason("crash", &info);
  auto w = Write(*f, {.type = DumpType::kMini, .info = &info});
  ASSERT_EQ(w->err, 0);
  std::vector<std::string> keys;
  for (const auto& n : w->core.notes) keys.push_back(NoteKey(n));
  auto core = [](int t) { return "CORE:" + std::to_string(t); };
  std::vector<std::string> expected = {core(NT_PRSTATUS),
                                       core(NT_PRPSINFO),
                                       core(NT_SIGINFO),
                                       core(NT_AUXV),
                                       core(NT_FILE),
                                       core(NT_PRFPREG),
                                       "LINUX:" + std::to_string(NT_X86_XSTATE),
                                       core(NT_PRSTATUS),  // the worker: no fp registers known
                                       "CPPDIAG:" + std::to_string(kNtCppdiagInfo)};
  EXPECT_EQ(keys, expected);
}

TEST(ElfCoreWriterTest, PrstatusCarriesThreadIdsSignalAndRegisters) {
  auto f = testing::MakeTypicalProcess();
  f->info().ppid = 77;
  f->info().pgrp = 88;
  f->info().sid = 99;
  auto w = Write(*f, {.type = DumpType::kTriage});
  ASSERT_EQ(w->err, 0);
  auto st = w->core.NotesOfType("CORE", NT_PRSTATUS);
  ASSERT_EQ(st.size(), 2u);
  elf_prstatus pr[2];
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(st[i]->desc.size(), sizeof(elf_prstatus));
    std::memcpy(&pr[i], st[i]->desc.data(), sizeof pr[i]);
  }
  EXPECT_EQ(pr[0].pr_pid, P::kMainTid);
  EXPECT_EQ(pr[1].pr_pid, P::kWorkerTid);
  EXPECT_EQ(pr[0].pr_ppid, 77);
  EXPECT_EQ(pr[0].pr_pgrp, 88);
  EXPECT_EQ(pr[1].pr_sid, 99);
  EXPECT_EQ(pr[0].pr_cursig, SIGSEGV);
  EXPECT_EQ(pr[1].pr_cursig, SIGSEGV);  // every thread, as the kernel writes it
  EXPECT_EQ(pr[0].pr_fpvalid, 1);
  EXPECT_EQ(pr[1].pr_fpvalid, 0);
  user_regs_struct regs;
  std::memcpy(&regs, &pr[0].pr_reg, sizeof regs);
  EXPECT_EQ(regs.rip, P::kExeText + 0x10);
  EXPECT_EQ(regs.rsp, P::kMainSp);

  auto ps = w->core.NotesOfType("CORE", NT_PRPSINFO);
  ASSERT_EQ(ps.size(), 1u);
  elf_prpsinfo info;
  std::memcpy(&info, ps[0]->desc.data(), sizeof info);
  EXPECT_STREQ(info.pr_fname, "fake");
  EXPECT_STREQ(info.pr_psargs, "fake --flag");
  EXPECT_EQ(info.pr_pid, 4242);

  auto si = w->core.NotesOfType("CORE", NT_SIGINFO);
  ASSERT_EQ(si.size(), 1u);
  siginfo_t sig;
  std::memcpy(&sig, si[0]->desc.data(), sizeof sig);
  EXPECT_EQ(sig.si_signo, SIGSEGV);
  EXPECT_EQ(sig.si_code, SEGV_MAPERR);

  auto fp = w->core.NotesOfType("CORE", NT_PRFPREG);
  ASSERT_EQ(fp.size(), 1u);
  user_fpregs_struct fpregs;
  std::memcpy(&fpregs, fp[0]->desc.data(), sizeof fpregs);
  EXPECT_EQ(fpregs.mxcsr, 0x1f80u);
}

TEST(ElfCoreWriterTest, NoSiginfoNoteForADumpOnRequest) {
  auto f = testing::MakeTypicalProcess();
  FakeProcessSnapshot plain;
  plain.AddMapping(0x10000, kPage, "rw-p");
  plain.AddThread(1);
  auto w = Write(plain, {.type = DumpType::kFull});
  ASSERT_EQ(w->err, 0);
  EXPECT_TRUE(w->core.NotesOfType("CORE", NT_SIGINFO).empty());
  EXPECT_EQ(w->core.NotesOfType("CORE", NT_PRSTATUS).size(), 1u);
}

TEST(ElfCoreWriterTest, FileNoteListsFileMappings) {
  auto f = testing::MakeTypicalProcess();
  auto w = Write(*f, {.type = DumpType::kMini});
  ASSERT_EQ(w->err, 0);
  auto notes = w->core.NotesOfType("CORE", NT_FILE);
  ASSERT_EQ(notes.size(), 1u);
  const std::vector<uint8_t>& d = notes[0]->desc;
  uint64_t head[2];
  std::memcpy(head, d.data(), sizeof head);
  size_t expected = 0;
  for (size_t i = 0; i < f->mapping_count(); ++i) expected += f->mapping(i).file_backed();
  ASSERT_EQ(head[0], expected);
  EXPECT_EQ(head[1], kPage);
  const char* names = reinterpret_cast<const char*>(d.data()) + 16 + 24 * head[0];
  std::vector<std::string> paths;
  for (size_t i = 0; i < head[0]; ++i) {
    paths.emplace_back(names);
    names += paths.back().size() + 1;
  }
  EXPECT_EQ(paths[0], "/usr/bin/app");
  EXPECT_NE(std::find(paths.begin(), paths.end(), "/lib/libc.so.6"), paths.end());
  EXPECT_NE(std::find(paths.begin(), paths.end(), "/dev/zero (deleted)"), paths.end());
  uint64_t e[3];
  std::memcpy(e, d.data() + 16 + 24, sizeof e);  // second entry: exe text
  EXPECT_EQ(e[0], P::kExeText);
  EXPECT_EQ(e[1], P::kExeText + kPage);
  EXPECT_EQ(e[2], 1u);  // offset 0x1000 in pages
}

TEST(ElfCoreWriterTest, LoadsArePageAlignedAndCoverEveryMapping) {
  auto f = testing::MakeTypicalProcess();
  for (DumpType type : {DumpType::kFull, DumpType::kHeap, DumpType::kMini, DumpType::kTriage}) {
    auto w = Write(*f, {.type = type});
    ASSERT_EQ(w->err, 0);
    uint64_t expect_offset = 0;
    for (const GElf_Phdr& ph : w->core.Loads()) {
      EXPECT_EQ(ph.p_offset % kPage, 0u);
      EXPECT_EQ(ph.p_vaddr % kPage, 0u);
      EXPECT_TRUE(ph.p_filesz == 0 || ph.p_filesz == ph.p_memsz);
      if (expect_offset != 0) {
        EXPECT_EQ(ph.p_offset, expect_offset);
      }
      expect_offset = ph.p_offset + ph.p_filesz;
    }
    for (size_t i = 0; i < f->mapping_count(); ++i) {
      const MappingSnapshot& m = f->mapping(i);
      for (uint64_t a = m.start; a < m.end; a += kPage) {
        EXPECT_NE(w->core.LoadAt(a), nullptr) << DumpTypeName(type) << " " << std::hex << a;
      }
    }
    EXPECT_EQ(w->sink.data().size(), expect_offset);
  }
}

TEST(ElfCoreWriterTest, MemoryReadsBackAndEachTypeSelects) {
  auto f = testing::MakeTypicalProcess();
  std::string marker = P::kMarker, secret = P::kSecret;
  auto full = Write(*f, {.type = DumpType::kFull});
  auto heap = Write(*f, {.type = DumpType::kHeap});
  auto mini = Write(*f, {.type = DumpType::kMini});
  auto triage = Write(*f, {.type = DumpType::kTriage});
  for (auto* w : {full.get(), heap.get(), mini.get(), triage.get()}) ASSERT_EQ(w->err, 0);

  auto m = full->core.ReadMemory(P::kHeapMarker, marker.size());
  ASSERT_TRUE(m);
  EXPECT_EQ(std::string(m->begin(), m->end()), marker);
  EXPECT_TRUE(Contains(full->sink.data(), marker));
  EXPECT_TRUE(Contains(heap->sink.data(), marker));
  EXPECT_FALSE(Contains(mini->sink.data(), marker));
  EXPECT_FALSE(Contains(triage->sink.data(), marker));
  EXPECT_TRUE(Contains(mini->sink.data(), secret));  // mini keeps module-list pages whole
  EXPECT_FALSE(Contains(triage->sink.data(), secret));

  // Code: only in full.
  EXPECT_TRUE(full->core.ReadMemory(P::kLibc + kPage, 16));
  EXPECT_FALSE(heap->core.ReadMemory(P::kLibc + kPage, 16));
  // The module list reads back from a triage dump exactly.
  auto lm = triage->core.ReadMemory(P::kLibcLinkMap, 40);
  ASSERT_TRUE(lm);
  uint64_t fields[5];
  std::memcpy(fields, lm->data(), sizeof fields);
  EXPECT_EQ(fields[0], P::kLibc);
  auto name = triage->core.ReadMemory(fields[1], 15);
  ASSERT_TRUE(name);
  EXPECT_STREQ(reinterpret_cast<const char*>(name->data()), "/lib/libc.so.6");
  auto dyn = triage->core.ReadMemory(P::kExeRelro + 0xe00, 16);
  ASSERT_TRUE(dyn);
  Elf64_Dyn d;
  std::memcpy(&d, dyn->data(), sizeof d);
  EXPECT_EQ(d.d_tag, DT_DEBUG);
  // Stack bytes near SP are in every type.
  for (auto* w : {full.get(), heap.get(), mini.get(), triage.get()}) {
    auto sp = w->core.ReadMemory(P::kThreadSp, 8);
    ASSERT_TRUE(sp);
    EXPECT_EQ((*sp)[0], 0x77);
  }
  EXPECT_LT(triage->sink.data().size(), mini->sink.data().size());
  EXPECT_LT(mini->sink.data().size(), heap->sink.data().size());
  EXPECT_LT(heap->sink.data().size(), full->sink.data().size());
}

TEST(ElfCoreWriterTest, ZeroPagesAreSkippedNotWritten) {
  FakeProcessSnapshot f;
  f.AddThread(1);
  f.AddMapping(0x100000, 8 * kPage, "rw-p", "", 0, 0);
  f.Fill(0x100000, kPage, 0xab);              // page 0: data
  f.Fill(0x100000 + 2 * kPage, kPage, 0x00);  // page 2: present, all zero
  f.Fill(0x100000 + 5 * kPage, 10, 0xcd);     // page 5: data
  auto w = Write(f, {.type = DumpType::kFull});
  ASSERT_EQ(w->err, 0);
  EXPECT_EQ(w->stats.data_bytes, 2 * kPage);
  EXPECT_EQ(w->stats.zero_bytes, 6 * kPage);
  EXPECT_GE(w->sink.skipped_bytes(), 6 * kPage);
  auto all = w->core.ReadMemory(0x100000, 8 * kPage);
  ASSERT_TRUE(all);
  EXPECT_EQ((*all)[0], 0xab);
  EXPECT_EQ((*all)[2 * kPage], 0);
  EXPECT_EQ((*all)[5 * kPage], 0xcd);
  EXPECT_EQ((*all)[5 * kPage + 10], 0);
}

TEST(ElfCoreWriterTest, UntouchedAnonymousPagesAreNotRead) {
  FakeProcessSnapshot f;
  f.AddThread(1);
  f.AddMapping(0x100000, 256 * kPage, "rw-p");
  f.Fill(0x100000 + 100 * kPage, kPage, 0x5a);
  auto w = Write(f, {.type = DumpType::kFull});
  ASSERT_EQ(w->err, 0);
  EXPECT_EQ(w->stats.data_bytes, kPage);
  EXPECT_LE(f.reads(), 2u);  // only the present page
  auto p = w->core.ReadMemory(0x100000 + 100 * kPage, 1);
  ASSERT_TRUE(p);
  EXPECT_EQ((*p)[0], 0x5a);
}

TEST(ElfCoreWriterTest, UnreadablePagesLeaveHolesAndTheDumpGoesOn) {
  FakeProcessSnapshot f;
  f.AddThread(1);
  f.AddMapping(0x100000, 4 * kPage, "r--p", "/data/file", 0);
  f.Fill(0x100000, 4 * kPage, 0x11);
  f.SetUnreadable(0x100000 + kPage, 2 * kPage);  // e.g. past the end of a truncated file
  f.AddMapping(0x200000, kPage, "rw-p");
  f.Fill(0x200000, kPage, 0x22);
  auto w = Write(f, {.type = DumpType::kFull});
  ASSERT_EQ(w->err, 0);
  EXPECT_EQ(w->stats.unreadable_bytes, 2 * kPage);
  auto first = w->core.ReadMemory(0x100000, 1);
  auto hole = w->core.ReadMemory(0x100000 + kPage, 1);
  auto last = w->core.ReadMemory(0x100000 + 3 * kPage, 1);
  auto next = w->core.ReadMemory(0x200000, 1);
  ASSERT_TRUE(first && hole && last && next);
  EXPECT_EQ((*first)[0], 0x11);
  EXPECT_EQ((*hole)[0], 0);
  EXPECT_EQ((*last)[0], 0x11);
  EXPECT_EQ((*next)[0], 0x22);
}

TEST(ElfCoreWriterTest, SinkFailureIsReturned) {
  auto f = testing::MakeTypicalProcess();
  auto w = Write(*f, {.type = DumpType::kFull}, /*sink_limit=*/8192);
  EXPECT_EQ(w->err, ENOSPC);
  EXPECT_STREQ(w->stats.failed_step, "write");
  EXPECT_FALSE(w->sink.finished());
}

TEST(ElfCoreWriterTest, CppdiagNoteRoundTrips) {
  auto f = testing::MakeTypicalProcess();
  CppdiagInfo info;
  info.pid = 4242;
  info.signal = SIGABRT;
  info.dump_type = DumpTypeNumber(DumpType::kHeap);
  info.cgroup_version = 2;
  info.cgroup_usage_bytes = 123 << 20;
  info.cgroup_limit_bytes = 256 << 20;
  info.unix_time_sec = 1700000000;
  CopyReason("oom-watchdog", &info);
  auto w = Write(*f, {.type = DumpType::kHeap, .info = &info});
  ASSERT_EQ(w->err, 0);
  auto notes = w->core.NotesOfType(kCppdiagNoteName, kNtCppdiagInfo);
  ASSERT_EQ(notes.size(), 1u);
  CppdiagInfo back;
  ASSERT_TRUE(DecodeCppdiagInfo(notes[0]->desc, &back));
  EXPECT_EQ(back.pid, 4242);
  EXPECT_EQ(back.signal, SIGABRT);
  EXPECT_EQ(back.dump_type, 2u);
  EXPECT_EQ(back.cgroup_usage_bytes, uint64_t{123} << 20);
  EXPECT_EQ(back.cgroup_limit_bytes, uint64_t{256} << 20);
  EXPECT_EQ(back.unix_time_sec, 1700000000);
  EXPECT_STREQ(back.reason, "oom-watchdog");
}

struct Table {
  std::string payload;
  int calls = 0;
  // What the provider does differently on its second (writing) call.
  enum { kSame, kLongerAppendAndExtraNote, kBiggerNote } second_call = kSame;
};

void ProvideTable(void* ctx, NoteOutput* out) {
  auto* t = static_cast<Table*>(ctx);
  ++t->calls;
  bool second = t->calls == 2;
  std::string p = t->payload;
  size_t declared = p.size();
  if (second && t->second_call != Table::kSame) p += "-and-more-than-measured";
  if (second && t->second_call == Table::kBiggerNote) declared = p.size();
  out->Begin("HEAPPROF", 7, declared);
  out->Append(p.data(), 3);
  out->Append(p.data() + 3, p.size() - 3);
  if (second && t->second_call == Table::kLongerAppendAndExtraNote) out->Begin("EXTRA", 8, 4);
}

TEST(ElfCoreWriterTest, NoteProvidersAddNotesMeasuredThenWritten) {
  auto f = testing::MakeTypicalProcess();
  Table table{"live-heap-table-v1"};
  NoteProvider providers[] = {{&ProvideTable, &table}};
  auto w = Write(*f, {.type = DumpType::kMini, .providers = providers, .provider_count = 1});
  ASSERT_EQ(w->err, 0);
  EXPECT_EQ(table.calls, 2);
  auto notes = w->core.NotesOfType("HEAPPROF", 7);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(std::string(notes[0]->desc.begin(), notes[0]->desc.end()), "live-heap-table-v1");
  EXPECT_EQ(w->core.notes.back().name, "HEAPPROF");
}

TEST(ElfCoreWriterTest, ExtraBytesAndNotesOfAProviderAreCut) {
  auto f = testing::MakeTypicalProcess();
  Table table{"abcdefgh", 0, Table::kLongerAppendAndExtraNote};
  NoteProvider providers[] = {{&ProvideTable, &table}};
  auto w = Write(*f, {.type = DumpType::kMini, .providers = providers, .provider_count = 1});
  ASSERT_EQ(w->err, 0);  // and libelf parsed it
  auto notes = w->core.NotesOfType("HEAPPROF", 7);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(std::string(notes[0]->desc.begin(), notes[0]->desc.end()), "abcdefgh");
  EXPECT_TRUE(w->core.NotesOfType("EXTRA", 8).empty());
}

TEST(ElfCoreWriterTest, ANoteBiggerThanMeasuredIsReplacedByPadding) {
  auto f = testing::MakeTypicalProcess();
  Table table{"abcdefgh", 0, Table::kBiggerNote};
  NoteProvider providers[] = {{&ProvideTable, &table}};
  auto w = Write(*f, {.type = DumpType::kMini, .providers = providers, .provider_count = 1});
  ASSERT_EQ(w->err, 0);
  EXPECT_TRUE(w->core.NotesOfType("HEAPPROF", 7).empty());
  ASSERT_FALSE(w->core.notes.empty());
  EXPECT_EQ(w->core.notes.back().name, "");
  EXPECT_EQ(w->core.notes.back().type, 0u);
  // The PT_LOAD data still starts where the headers said.
  auto sp = w->core.ReadMemory(P::kThreadSp, 1);
  ASSERT_TRUE(sp);
  EXPECT_EQ((*sp)[0], 0x77);
}

TEST(ElfCoreWriterTest, ManyMappingsUseExtendedProgramHeaderCount) {
  FakeProcessSnapshot f;
  f.AddThread(1);
  const size_t n = 70000;
  for (size_t i = 0; i < n; ++i) f.AddMapping(0x10000000 + i * 2 * kPage, kPage, "r--p");
  f.Fill(0x10000000 + 2 * kPage * (n - 1), 4, 0x99);
  auto w = Write(f, {.type = DumpType::kFull});
  ASSERT_EQ(w->err, 0);
  EXPECT_EQ(w->core.ehdr.e_phnum, PN_XNUM);
  EXPECT_EQ(w->core.phnum, n + 1);
  auto last = w->core.ReadMemory(0x10000000 + 2 * kPage * (n - 1), 1);
  ASSERT_TRUE(last);
  EXPECT_EQ((*last)[0], 0x99);
}

TEST(ElfCoreWriterTest, TinyIoBufferGivesTheSameCore) {
  auto f = testing::MakeTypicalProcess();
  auto big = Write(*f, {.type = DumpType::kFull}, UINT64_MAX, 1 << 20);
  auto small = Write(*f, {.type = DumpType::kFull}, UINT64_MAX, 64 << 10);
  ASSERT_EQ(big->err, 0);
  ASSERT_EQ(small->err, 0);
  EXPECT_EQ(big->sink.data(), small->sink.data());
}

}  // namespace
}  // namespace cppdiag::dump
