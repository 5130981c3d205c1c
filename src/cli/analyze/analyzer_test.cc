// The analyzer's pieces on small built cores: command parsing, the heap
// note's decoder (hostile sizes included), heapstat's ordering, x, and the
// errors of bad commands. Real cores are read in tests/integration/analyze.
#include <gtest/gtest.h>

#include <cstring>

#include "cli/analyze/command.h"
#include "cli/analyze/format.h"
#include "cli/analyze/testing/core_builder.h"
#include "cli/analyze/testing/fake_core.h"
#include "diag/heap/heap_note_layout.h"

namespace cppdiag::cli::analyze {
namespace {

using testing::CoreBuilder;

template <typename T>
void Put(std::vector<uint8_t>* d, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  d->insert(d->end(), p, p + sizeof v);
}

struct Record {
  uint64_t count, bytes;
  double est_count, est_bytes;
  std::vector<uint64_t> pcs;
};

// A heap note descriptor as heap_note.cc writes it.
std::vector<uint8_t> HeapNoteDesc(const std::vector<Record>& records) {
  std::vector<uint8_t> d;
  Put<uint32_t>(&d, 1);
  Put<uint32_t>(&d, cppdiag::heap::kHeapNoteHeaderSize);
  Put<uint64_t>(&d, 524288);
  Put<uint64_t>(&d, 1 << 30);
  Put<uint64_t>(&d, 0);
  Put<uint32_t>(&d, static_cast<uint32_t>(records.size()));
  Put<uint32_t>(&d, cppdiag::heap::kHeapNoteRecordHeaderSize);
  Put<uint64_t>(&d, 7);
  for (const Record& r : records) {
    Put<uint64_t>(&d, r.count);
    Put<uint64_t>(&d, r.bytes);
    Put<double>(&d, r.est_count);
    Put<double>(&d, r.est_bytes);
    Put<uint32_t>(&d, static_cast<uint32_t>(r.pcs.size()));
    Put<uint32_t>(&d, 0);
    for (uint64_t pc : r.pcs) Put<uint64_t>(&d, pc);
  }
  return d;
}

TEST(AnalyzerTest, SplitsWordsAndParsesNumbers) {
  EXPECT_EQ(SplitWords("  bt \t all  "), (std::vector<std::string>{"bt", "all"}));
  EXPECT_TRUE(SplitWords(" \t ").empty());
  EXPECT_EQ(*ParseAddress("0x7fFF10"), 0x7fff10u);
  EXPECT_EQ(*ParseAddress("4096"), 4096u);
  EXPECT_FALSE(ParseAddress("0x").ok());
  EXPECT_FALSE(ParseAddress("12k").ok());
  EXPECT_FALSE(ParseAddress("0x1ffffffffffffffff").ok());  // past 64 bits
  EXPECT_EQ(*ParseCount("16", 100), 16u);
  EXPECT_FALSE(ParseCount("101", 100).ok());
  EXPECT_FALSE(ParseCount("-1", 100).ok());
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(3 << 19), "1.5 MiB");
  EXPECT_EQ(SignalName(11), "SIGSEGV");
}

TEST(AnalyzerTest, HeapNoteDecodesAndSkipsEmptyStacks) {
  auto desc = HeapNoteDesc(
      {{2, 64, 2000, 64000, {0x401000, 0x402000}}, {0, 0, 0, 0, {0x1}}, {1, 8, 100, 800, {}}});
  cppdiag::heap::HeapNote note;
  ASSERT_TRUE(cppdiag::heap::DecodeHeapNote(desc, &note));
  EXPECT_EQ(note.sample_period_bytes, 524288u);
  EXPECT_EQ(note.live_samples, 7u);
  ASSERT_EQ(note.records.size(), 2u);
  EXPECT_EQ(note.records[0].pcs, (std::vector<uint64_t>{0x401000, 0x402000}));
  EXPECT_EQ(note.records[1].estimated_bytes, 800);
}

TEST(AnalyzerTest, HeapNoteRejectsHostileSizes) {
  auto good = HeapNoteDesc({{2, 64, 2000, 64000, {0x401000, 0x402000}}});
  cppdiag::heap::HeapNote note;
  for (size_t cut = 0; cut < good.size(); ++cut) {
    std::vector<uint8_t> d(good.begin(), good.begin() + static_cast<ptrdiff_t>(cut));
    EXPECT_FALSE(cppdiag::heap::DecodeHeapNote(d, &note)) << "cut at " << cut;
  }
  auto bad = good;
  uint32_t records = 0xffffffff;
  std::memcpy(bad.data() + 32, &records, 4);  // more records than bytes
  EXPECT_FALSE(cppdiag::heap::DecodeHeapNote(bad, &note));
  bad = good;
  uint32_t depth = 0x40000000;
  std::memcpy(bad.data() + 48 + 32, &depth, 4);  // a depth past the descriptor
  EXPECT_FALSE(cppdiag::heap::DecodeHeapNote(bad, &note));
  bad = good;
  uint32_t header = 0xfffffff0;
  std::memcpy(bad.data() + 4, &header, 4);
  EXPECT_FALSE(cppdiag::heap::DecodeHeapNote(bad, &note));
}

class BuiltCoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Session> Open(const CoreBuilder& b) {
    std::string path = testing::WriteBytes(dir_, "core", b.Build().bytes);
    auto s = Session::Open(path, {});
    EXPECT_TRUE(s.ok()) << s.error().message();
    return s.ok() ? std::move(*s) : nullptr;
  }
  testing::ScopedTempDir dir_;
};

TEST_F(BuiltCoreTest, HeapstatListsStacksLargestFirst) {
  CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, testing::PrstatusDesc(100));
  b.Note("CPPDIAG", cppdiag::heap::kNtCppdiagHeap,
         HeapNoteDesc({{1, 8, 100, 800, {0x1000}}, {2, 64, 2000, 64000, {0x2000, 0x3000}}}));
  auto session = Open(b);
  ASSERT_TRUE(session);
  auto out = RunCommandLine(*session, "heapstat");
  ASSERT_TRUE(out.ok()) << out.error().message();
  ASSERT_EQ(out->json["stacks"].size(), 2u);
  EXPECT_EQ(out->json["stacks"][0]["estimated_bytes"], 64000);
  EXPECT_EQ(out->json["stacks"][0]["frames"][1]["pc"], 0x3000);
  EXPECT_EQ(out->json["estimated_bytes"], 64800);
  EXPECT_LT(out->text.find("62.5 KiB"), out->text.find("800 B")) << out->text;
  out = RunCommandLine(*session, "heapstat 1");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->json["stacks"].size(), 1u);
}

TEST_F(BuiltCoreTest, ExamineShowsStoredAndMissingBytes) {
  CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, testing::PrstatusDesc(100));
  b.Load(0x10000, 0x2000, "ELF!");  // 4 bytes stored, the rest not
  auto session = Open(b);
  ASSERT_TRUE(session);
  auto out = RunCommandLine(*session, "x 0x10000 6");
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->json["hex"], "454c46210000");
  EXPECT_EQ(out->json["stored"], "111100");
  EXPECT_NE(out->text.find(" 45 4c 46 21 .. .."), std::string::npos) << out->text;
  auto bad = RunCommandLine(*session, "x 0x20000");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("x: 0x20000 is not in the dump"), std::string::npos)
      << bad.error().message();
  bad = RunCommandLine(*session, "x 0x10000 99999999");
  ASSERT_FALSE(bad.ok());
}

TEST_F(BuiltCoreTest, BadCommandsFailWithOneLine) {
  CoreBuilder b;
  b.Note("CORE", NT_PRSTATUS, testing::PrstatusDesc(100));
  auto session = Open(b);
  ASSERT_TRUE(session);
  for (const char* line :
       {"", "frob", "info extra", "bt 1 2", "bt 7", "heapstat", "sym", "sym zz", "x", "\x1b[31m"}) {
    auto out = RunCommandLine(*session, line);
    ASSERT_FALSE(out.ok()) << line;
    EXPECT_EQ(out.error().message().find('\n'), std::string::npos);
    EXPECT_EQ(out.error().message().find('\x1b'), std::string::npos);  // escaped
  }
  auto help = RunCommandLine(*session, "help");
  ASSERT_TRUE(help.ok());
  EXPECT_NE(help->text.find("bt [TID|all]"), std::string::npos);
  // A core of no modules and a thread libdwfl cannot unwind still answers.
  auto threads = RunCommandLine(*session, "threads");
  ASSERT_TRUE(threads.ok()) << threads.error().message();
  EXPECT_EQ(threads->json[0]["tid"], 100);
}

}  // namespace
}  // namespace cppdiag::cli::analyze
