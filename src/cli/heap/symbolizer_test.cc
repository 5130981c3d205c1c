#include "cli/heap/symbolizer.h"

#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace cppdiag::cli::heap {

// Known functions of this test binary, out of any namespace the test uses.
[[gnu::noinline]] uint64_t SymbolizerTestReturnAddress() {
  uint64_t pc = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");
  return pc;
}

[[gnu::noinline]] uint64_t SymbolizerTestCaller() {
  uint64_t pc = SymbolizerTestReturnAddress();  // the line the test looks for
  asm volatile("" ::: "memory");
  return pc;
}
constexpr int kCallerLine = __LINE__ - 4;

[[gnu::always_inline]] inline uint64_t SymbolizerTestInlined() {
  return SymbolizerTestReturnAddress();  // the inlined frame's line
}
constexpr int kInlinedLine = __LINE__ - 2;

[[gnu::noinline]] uint64_t SymbolizerTestInlinedCaller() {
  uint64_t pc = SymbolizerTestInlined();  // the caller's line
  asm volatile("" ::: "memory");
  return pc;
}
constexpr int kInlinedCallerLine = __LINE__ - 4;

namespace {

// This process's executable file mappings, as the profiler reports them.
std::vector<cppdiag::heap::HeapMapping> SelfMappings() {
  std::vector<cppdiag::heap::HeapMapping> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    uint64_t start, end, offset;
    char perms[8] = {};
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %*s %*s %n", &start,
                    &end, perms, &offset, &path_at) < 4) {
      continue;
    }
    if (perms[2] != 'x' || path_at == 0 || line[static_cast<size_t>(path_at)] != '/') continue;
    out.push_back({start, end, offset, line.substr(static_cast<size_t>(path_at)), ""});
  }
  return out;
}

TEST(Symbolizer, DemanglesCppNamesAndLeavesOthers) {
  EXPECT_EQ(Demangle("_ZN7leakapp14LeakIntoVectorEm"), "leakapp::LeakIntoVector(unsigned long)");
  EXPECT_EQ(Demangle("malloc"), "malloc");
  EXPECT_EQ(Demangle("_Znot-a-name"), "_Znot-a-name");
}

TEST(Symbolizer, ResolvesAFunctionOfThisBinaryWithFileAndLine) {
  Symbolizer sym(SelfMappings(), "/proc/self/root");
  uint64_t pc = SymbolizerTestCaller();
  auto where = sym.Symbolize(pc - 1);
  ASSERT_TRUE(where.resolved) << where.frames.back().function;
  ASSERT_GE(where.mapping_index, 0);
  const auto& f = where.frames.back();
  EXPECT_EQ(f.function, "cppdiag::cli::heap::SymbolizerTestCaller()");
  EXPECT_EQ(f.system_name, "_ZN7cppdiag3cli4heap20SymbolizerTestCallerEv");
  EXPECT_NE(f.file.find("symbolizer_test.cc"), std::string::npos) << f.file;
  EXPECT_EQ(f.line, kCallerLine);
  EXPECT_TRUE(sym.HasSymbols(static_cast<size_t>(where.mapping_index)));
  EXPECT_TRUE(sym.HasLines(static_cast<size_t>(where.mapping_index)));
}

TEST(Symbolizer, ExpandsInlinedFunctionsInnermostFirst) {
  Symbolizer sym(SelfMappings(), "");
  auto where = sym.Symbolize(SymbolizerTestInlinedCaller() - 1);
  ASSERT_TRUE(where.resolved);
  ASSERT_EQ(where.frames.size(), 2u) << where.frames[0].function;
  EXPECT_EQ(where.frames[0].function, "cppdiag::cli::heap::SymbolizerTestInlined()");
  EXPECT_EQ(where.frames[0].line, kInlinedLine);
  EXPECT_EQ(where.frames[1].function, "cppdiag::cli::heap::SymbolizerTestInlinedCaller()");
  EXPECT_EQ(where.frames[1].line, kInlinedCallerLine);
  EXPECT_NE(where.frames[1].file.find("symbolizer_test.cc"), std::string::npos);
}

TEST(Symbolizer, ResolvesLibcByItsSymbolTable) {
  Symbolizer sym(SelfMappings(), "");
  auto where = sym.Symbolize(reinterpret_cast<uint64_t>(&::getpid) + 1);
  ASSERT_TRUE(where.resolved);
  EXPECT_NE(where.frames.back().function.find("getpid"), std::string::npos)
      << where.frames.back().function;
}

TEST(Symbolizer, AnAddressOutsideEveryMappingKeepsTheAddressAsItsName) {
  Symbolizer sym(SelfMappings(), "");
  auto where = sym.Symbolize(0x10);
  EXPECT_FALSE(where.resolved);
  ASSERT_EQ(where.frames.size(), 1u);
  EXPECT_EQ(where.frames[0].function, "0x10 in ?");
}

TEST(Symbolizer, AMappingWhoseFileIsGoneKeepsTheAddressAndTheFileName) {
  std::vector<cppdiag::heap::HeapMapping> maps = {
      {0x7f0000000000, 0x7f0000100000, 0, "/nonexistent/libgone.so", ""}};
  Symbolizer sym(maps, "");
  auto where = sym.Symbolize(0x7f0000001234);
  EXPECT_FALSE(where.resolved);
  EXPECT_EQ(where.frames[0].function, "0x7f0000001234 in libgone.so");
  EXPECT_EQ(where.mapping_index, 0);
}

}  // namespace
}  // namespace cppdiag::cli::heap
