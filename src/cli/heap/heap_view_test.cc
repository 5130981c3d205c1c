#include "cli/heap/heap_view.h"

#include <gtest/gtest.h>

#include "cli/heap/flame_html.h"
#include "support/status_matchers.h"

namespace cppdiag::cli::heap {
namespace {

using ::cppdiag::testing::IsOk;

// A profile built by hand: each stack is a list of function names, innermost
// first, one location each.
pprof::Profile Make(const std::vector<std::pair<std::vector<std::string>, int64_t>>& stacks) {
  pprof::Profile p;
  p.sample_types = {{"inuse_objects", "count"}, {"inuse_space", "bytes"}};
  std::map<std::string, uint64_t> ids;
  for (const auto& [frames, bytes] : stacks) {
    pprof::Sample s;
    for (const auto& f : frames) {
      auto [it, inserted] = ids.try_emplace(f, ids.size() + 1);
      if (inserted) {
        p.functions.push_back({it->second, f, f, "x.cc", 0});
        p.locations.push_back({it->second, 0, 0x1000 + it->second, {{it->second, 10}}});
      }
      s.location_ids.push_back(it->second);
    }
    s.values = {bytes / 1024, bytes};
    p.samples.push_back(s);
  }
  return p;
}

TEST(HeapView, SkipsAllocatorFramesAndNamesTheLeakingFunction) {
  auto p = Make({{{"operator new(unsigned long)", "cppdiag::heap::SampleAllocation()",
                   "std::__cxx11::basic_string<char, std::char_traits<char>, "
                   "std::allocator<char> >::_M_create(unsigned long&, unsigned long)",
                   "leakapp::LeakIntoString(std::__cxx11::basic_string<char, "
                   "std::char_traits<char>, std::allocator<char> >&, unsigned long)",
                   "main"},
                  4096}});
  auto stacks = StacksByBytes(p);
  ASSERT_THAT(stacks, IsOk());
  ASSERT_EQ(stacks->size(), 1u);
  const auto& s = (*stacks)[0];
  EXPECT_EQ(s.frames[0].function.rfind("std::__cxx11::basic_string", 0), 0u);
  EXPECT_EQ(s.leaking_frame().function.rfind("leakapp::LeakIntoString(", 0), 0u);
  EXPECT_EQ(s.bytes, 4096);
}

TEST(HeapView, ClassifiesFrames) {
  EXPECT_TRUE(IsAllocatorFrame("malloc"));
  EXPECT_TRUE(IsAllocatorFrame("operator new[](unsigned long, std::align_val_t)"));
  EXPECT_TRUE(
      IsAllocatorFrame("__gnu_cxx::new_allocator<char>::allocate(unsigned long, void const*)"));
  EXPECT_FALSE(IsAllocatorFrame("leakapp::LeakIntoVector(unsigned long)"));
  EXPECT_TRUE(IsLibraryFrame(
      "void std::vector<char, std::allocator<char> >::_M_realloc_insert<int>(int&&)"));
  EXPECT_FALSE(IsLibraryFrame("(anonymous namespace)::Leak(std::vector<int>&)"));
  EXPECT_TRUE(IsLibraryFrame(
      "decltype (::new ((void*)(0)) std::vector<char, std::allocator<char> >((declval<unsigned "
      "long&>)(), (declval<char>)())) std::construct_at<std::vector<char, std::allocator<char> "
      ">, unsigned long&, char>(std::vector<char, std::allocator<char> >*, unsigned long&, "
      "char&&)"));
  EXPECT_TRUE(IsLibraryFrame("std::vector<char>::vector(unsigned long, char const&) const"));
  EXPECT_FALSE(IsLibraryFrame("Foo::operator()(int) const"));
  EXPECT_FALSE(IsLibraryFrame("leakapp::LeakThroughCycle(std::vector<std::weak_ptr<int> >&)"));
}

TEST(HeapView, DiffOrdersByGrowthAndDropsWhatShrankOrStayed) {
  auto before = Make({{{"malloc", "Steady", "main"}, 1000},
                      {{"malloc", "Shrinks", "main"}, 5000},
                      {{"malloc", "GrowsALittle", "main"}, 100},
                      {{"malloc", "GrowsALot", "main"}, 100}});
  auto after = Make({{{"malloc", "Steady", "main"}, 1000},
                     {{"malloc", "Shrinks", "main"}, 1000},
                     {{"malloc", "GrowsALittle", "main"}, 2100},
                     {{"malloc", "New", "main"}, 4000},
                     {{"malloc", "GrowsALot", "main"}, 10100}});
  auto growth = Growth(before, after);
  ASSERT_THAT(growth, IsOk());
  ASSERT_EQ(growth->size(), 3u);
  EXPECT_EQ((*growth)[0].leaking_frame().function, "GrowsALot");
  EXPECT_EQ((*growth)[0].bytes, 10000);
  EXPECT_EQ((*growth)[1].leaking_frame().function, "New");
  EXPECT_EQ((*growth)[2].leaking_frame().function, "GrowsALittle");
  EXPECT_EQ((*growth)[2].bytes, 2000);
  EXPECT_EQ((*growth)[0].objects, 10100 / 1024 - 100 / 1024);

  std::string text = FormatStacks(*growth, 2, 5, true);
  EXPECT_EQ(text.rfind("#1  +9.8 KiB", 0), 0u) << text;
  EXPECT_NE(text.find("in GrowsALot"), std::string::npos) << text;
  EXPECT_EQ(text.find("GrowsALittle"), std::string::npos) << text;  // --top 2
}

TEST(HeapView, FormatStacksEscapesNamesAndKeepsOneLinePerFrame) {
  std::string hostile = "Leak\x1b]0;pwned\x07\nFake line";
  std::string long_name(1000, 'L');
  auto stacks = StacksByBytes(Make({{{hostile, "main"}, 4096}, {{long_name, "main"}, 2048}}));
  ASSERT_THAT(stacks, IsOk());
  std::string text = FormatStacks(*stacks, 5, 5, false);
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  EXPECT_NE(text.find("      Leak\\x1b]0;pwned\\x07\\nFake line at x.cc:10\n"), std::string::npos)
      << text;
  // A name longer than any buffer: whole, and its line ended.
  EXPECT_NE(text.find("in " + long_name + "\n"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2 + 4) << text;
}

TEST(HeapView, StacksMatchByFunctionsNotAddresses) {
  auto before = Make({{{"Leak", "main"}, 100}});
  auto after = Make({{{"Leak", "main"}, 300}});
  for (auto& l : after.locations) l.address += 0x10000000;  // another run, another base
  auto growth = Growth(before, after);
  ASSERT_THAT(growth, IsOk());
  ASSERT_EQ(growth->size(), 1u);
  EXPECT_EQ((*growth)[0].bytes, 200);
}

TEST(HeapView, RefusesAProfileWithoutHeapValues) {
  pprof::Profile cpu;
  cpu.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  auto r = StacksByBytes(cpu);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("not a heap profile"), std::string::npos);
}

[[gnu::noinline]] uint64_t HeapViewTestAllocSite() {
  uint64_t pc = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");
  return pc;
}

[[gnu::noinline]] uint64_t HeapViewTestLeaker() {
  uint64_t pc = HeapViewTestAllocSite();
  asm volatile("" ::: "memory");
  return pc;
}

TEST(HeapView, BuildsAProfileFromAHeapSnapshot) {
  cppdiag::heap::HeapProfile heap;
  heap.sample_period_bytes = 65536;
  heap.time_unix_ns = 42;
  uint64_t pc = HeapViewTestLeaker();
  heap.stacks = {{{pc, pc}, 3, 3000, 70.4, 196608.6}, {{0x10}, 1, 10, 1, 10}};
  // The mapping that holds `pc`, from /proc/self/maps.
  FILE* maps = std::fopen("/proc/self/maps", "r");
  ASSERT_NE(maps, nullptr);
  char line[4096];
  while (std::fgets(line, sizeof line, maps)) {
    unsigned long start, end, offset;
    char perms[8], path[2048] = {};
    if (std::sscanf(line, "%lx-%lx %7s %lx %*s %*s %2047s", &start, &end, perms, &offset, path) ==
            5 &&
        pc >= start && pc < end) {
      heap.mappings.push_back({start, end, offset, path, "0011"});
    }
  }
  std::fclose(maps);
  ASSERT_EQ(heap.mappings.size(), 1u);
  Symbolizer sym(heap.mappings, "");
  pprof::Profile p = BuildProfile(heap, sym);
  EXPECT_EQ(p.period, 65536);
  EXPECT_EQ(p.time_nanos, 42);
  EXPECT_EQ(p.period_type, (pprof::ValueType{"space", "bytes"}));
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].values, (std::vector<int64_t>{70, 196609}));
  EXPECT_EQ(p.samples[0].location_ids, (std::vector<uint64_t>{1, 1}));  // one location per pc
  ASSERT_EQ(p.mappings.size(), 1u);
  EXPECT_TRUE(p.mappings[0].has_functions);
  EXPECT_EQ(p.mappings[0].build_id, "0011");
  EXPECT_EQ(p.locations[0].address, pc - 1);
  EXPECT_EQ(p.locations[0].mapping_id, 1u);
  auto stacks = StacksByBytes(p);
  ASSERT_THAT(stacks, IsOk());
  EXPECT_EQ((*stacks)[0].frames[0].function,
            "cppdiag::cli::heap::(anonymous namespace)::HeapViewTestLeaker()");
  EXPECT_EQ((*stacks)[1].frames[0].function, "0xf in ?");
  // And through the encoder and decoder.
  auto back = pprof::Decode(pprof::Encode(p));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, p);
}

TEST(FlameGraph, IsOneSelfContainedPageWithTheFramesAsData) {
  auto growth = Growth(Make({}), Make({{{"malloc", "Leak<a></script>", "main"}, 2048},
                                       {{"malloc", "Other", "main"}, 1024}}));
  ASSERT_THAT(growth, IsOk());
  std::string page = FlameGraphHtml(*growth, "a.pb.gz -> b.pb.gz");
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("</html>"), std::string::npos);
  EXPECT_EQ(page.find("http://", 0), page.find("http://www.w3.org/2000/svg"));  // no fetches
  EXPECT_EQ(page.find("src="), std::string::npos);
  EXPECT_EQ(page.find("</script>"), page.rfind("</script>"));  // the name cannot end the script
  EXPECT_NE(page.find("Leak\\u003ca>\\u003c/script>"), std::string::npos);
  EXPECT_NE(page.find("\"b\":3072.0"), std::string::npos);  // the root: all the growth
}

// A profile's names are any bytes (found by tests/fuzz/pprof_fuzzer: JSON
// would not take them, and `heap diff --html` failed).
TEST(FlameGraph, TakesNamesThatAreNotUtf8) {
  auto growth = Growth(Make({}), Make({{{"Leak\xff\xfe", "main"}, 2048}}));
  ASSERT_THAT(growth, IsOk());
  std::string page;
  ASSERT_NO_THROW(page = FlameGraphHtml(*growth, "a \xff -> b"));
  EXPECT_NE(page.find("Leak\xef\xbf\xbd\xef\xbf\xbd"), std::string::npos);  // U+FFFD each
}

}  // namespace
}  // namespace cppdiag::cli::heap
