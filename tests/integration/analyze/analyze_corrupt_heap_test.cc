// dump analyze on a real core whose glibc heap was corrupted afterwards, one
// way per test: an overwritten chunk header, a chunk size past its heap, a
// loop in a fastbin, in an arena's heap list and in the arena list. Each
// must give what could be read, a warning naming the damage, exit 0, and
// never crash or hang (the CLI runs under a timeout).
#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "analyze_support.h"
#include "support/subprocess.h"

namespace cppdiag::analyze_test {
namespace {

using cppdiag::testing::BuiltBinary;
using nlohmann::json;

constexpr uint64_t kNext = 2160, kFastbins = 16, kHeapMaxSize = uint64_t{64} << 20;

// heap_target's full dump, and where its objects are (from gdb).
class CorruptHeapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core_ = dir_.path() + "/core";
    std::string out =
        cppdiag::testing::RunToCompletion({BuiltBinary("heap_target"), "dump", "full", core_});
    ASSERT_NE(out.find("DUMP rc=0"), std::string::npos) << out;
    std::string gdb = cppdiag::testing::RunToCompletion(
        {"/usr/bin/gdb", "-batch", "-nx", "-ex",
         "print (void*)'(anonymous namespace)::g_widgets'[1000]", "-ex",
         "print (void*)'(anonymous namespace)::g_gadgets'[100]", BuiltBinary("heap_target"),
         core_});
    std::regex pointer(R"(\(void \*\) (0x[0-9a-f]+))");
    for (auto it = std::sregex_iterator(gdb.begin(), gdb.end(), pointer);
         it != std::sregex_iterator(); ++it) {
      objects_.push_back(std::stoull((*it)[1].str(), nullptr, 16));
    }
    ASSERT_EQ(objects_.size(), 2u) << gdb;
    std::ifstream in(core_, std::ios::binary);
    bytes_.assign(std::istreambuf_iterator<char>(in), {});
    AnalyzeRun run = AnalyzeJson(core_, {"heap"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    heap_ = run.outputs.at(0);
    ASSERT_TRUE(heap_["warnings"].empty()) << heap_;
    ASSERT_GE(heap_["arenas"].size(), 2u);
  }

  // The file offset of `vaddr` in the core (its PT_LOAD's stored bytes).
  uint64_t Offset(uint64_t vaddr) const {
    Elf64_Ehdr eh;
    std::memcpy(&eh, bytes_.data(), sizeof eh);
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
      Elf64_Phdr ph;
      std::memcpy(&ph, bytes_.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
      if (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr && vaddr + 8 <= ph.p_vaddr + ph.p_filesz) {
        return ph.p_offset + (vaddr - ph.p_vaddr);
      }
    }
    ADD_FAILURE() << std::hex << vaddr << " is not stored in the core";
    return 0;
  }
  uint64_t Get(uint64_t vaddr) const {
    uint64_t v = 0;
    std::memcpy(&v, bytes_.data() + Offset(vaddr), 8);
    return v;
  }
  void Put(uint64_t vaddr, uint64_t v) { std::memcpy(bytes_.data() + Offset(vaddr), &v, 8); }

  // Writes the corrupted bytes and reads them: heap, heap types, heap leaked.
  struct Views {
    json heap, types, leaked;
  };
  Views Analyze() {
    std::string path = dir_.path() + "/corrupt";
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(bytes_.data(), static_cast<std::streamsize>(bytes_.size()));
    AnalyzeRun run = AnalyzeJson(path, {"heap", "heap types 100000", "heap leaked 100000"});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    if (run.outputs.size() != 3) {
      ADD_FAILURE() << run.out << run.err;
      return {};
    }
    for (const json& j : {run.outputs[1], run.outputs[2]}) {
      EXPECT_EQ(j["warnings"], run.outputs[0]["warnings"]) << "every heap command warns";
    }
    return {run.outputs[0], run.outputs[1], run.outputs[2]};
  }

  static uint64_t Count(const json& types, const std::string& type) {
    for (const json& g : types["groups"]) {
      if (g.value("type", "") == type) return g["count"].get<uint64_t>();
    }
    return 0;
  }
  static bool Warns(const json& heap, const std::string& what) {
    for (const json& w : heap["warnings"]) {
      if (w.get<std::string>().find(what) != std::string::npos) return true;
    }
    return false;
  }

  TempDir dir_;
  std::string core_;
  std::vector<char> bytes_;
  std::vector<uint64_t> objects_;  // a Widget (main arena), a Gadget (the other arena)
  json heap_;
};

const char kWidget[] = "(anonymous namespace)::Widget";
const char kGadget[] = "(anonymous namespace)::Gadget";

TEST_F(CorruptHeapTest, AnOverwrittenChunkHeaderEndsItsHeapsWalkThere) {
  Put(objects_[0] - 8, 0x4141414141414141);  // the Widget's size field
  Views v = Analyze();
  EXPECT_TRUE(Warns(v.heap, "corrupt size 0x4141414141414141")) << v.heap["warnings"];
  uint64_t widgets = Count(v.types, kWidget);
  EXPECT_GT(widgets, 0u) << "the chunks before it are read";
  EXPECT_LT(widgets, 3000u);
  EXPECT_EQ(Count(v.types, kGadget), 500u) << "the other arena is untouched";
}

TEST_F(CorruptHeapTest, AChunkSizePastItsHeapEndsTheWalk) {
  Put(objects_[1] - 8, (uint64_t{1} << 30) | 1);  // a Gadget of 1 GiB, PREV_INUSE
  Views v = Analyze();
  EXPECT_TRUE(Warns(v.heap, "corrupt size 0x40000001")) << v.heap["warnings"];
  EXPECT_LT(Count(v.types, kGadget), 500u);
  EXPECT_EQ(Count(v.types, kWidget), 3000u);
}

TEST_F(CorruptHeapTest, AFastbinThatLoopsIsReadOnce) {
  uint64_t arena = heap_["main_arena"];
  // The freed 120-byte buffers' chunks (128 bytes): fastbin 6.
  uint64_t head_at = arena + kFastbins + 8 * 6, head = Get(head_at);
  ASSERT_NE(head, 0u) << "heap_target frees 43 of them to the fastbin";
  Put(head + 16, ((head + 16) >> 12) ^ head);  // its fd (safe-linked) points at itself
  Views v = Analyze();
  EXPECT_TRUE(Warns(v.heap, "fastbin 6 of arena")) << v.heap["warnings"];
  EXPECT_TRUE(Warns(v.heap, "loops")) << v.heap["warnings"];
  EXPECT_EQ(Count(v.types, kWidget), 3000u);
  EXPECT_EQ(Count(v.types, kGadget), 500u);
}

TEST_F(CorruptHeapTest, AHeapListThatLoopsIsReadOnce) {
  uint64_t arena = heap_["arenas"][1]["address"];
  uint64_t heap_info = arena & ~(kHeapMaxSize - 1);
  ASSERT_EQ(Get(heap_info), arena) << "heap_info.ar_ptr";
  Put(heap_info + 8, heap_info);  // prev: itself
  Views v = Analyze();
  EXPECT_TRUE(Warns(v.heap, "loop back")) << v.heap["warnings"];
  EXPECT_EQ(Count(v.types, kGadget), 500u);
}

TEST_F(CorruptHeapTest, AnArenaListThatLoopsIsReadOnce) {
  uint64_t arena = heap_["arenas"][1]["address"];
  Put(arena + kNext, arena);  // next: itself, never back to main_arena
  Views v = Analyze();
  EXPECT_TRUE(Warns(v.heap, "loops back")) << v.heap["warnings"];
  EXPECT_EQ(v.heap["arenas"].size(), heap_["arenas"].size());
  EXPECT_EQ(Count(v.types, kGadget), 500u);
  EXPECT_EQ(Count(v.types, kWidget), 3000u);
}

}  // namespace
}  // namespace cppdiag::analyze_test
