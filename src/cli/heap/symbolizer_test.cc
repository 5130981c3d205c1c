#include "cli/heap/symbolizer.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/subprocess.h"

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

// Mappings whose files a target replaced: a FIFO opened for reading with no
// writer blocks for ever, so each test stops itself rather than hang.
class PlantedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::alarm(60);
    dir_ =
        std::filesystem::path(::testing::TempDir()) / ("symbolizer-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    ::alarm(0);
  }
  // This binary's mappings, with its own file's path replaced by `path`.
  std::vector<cppdiag::heap::HeapMapping> MappingsAt(const std::string& path) {
    auto maps = SelfMappings();
    std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    for (auto& m : maps) {
      if (m.path == self) m.path = path;
    }
    return maps;
  }
  std::string Copy(const std::string& name) {
    std::string to = (dir_ / name).string();
    std::filesystem::copy_file("/proc/self/exe", to);
    return to;
  }
  std::filesystem::path dir_;
};

TEST_F(PlantedFileTest, AFifoAtAMappingPathIsNotOpened) {
  std::string fifo = (dir_ / "libtrap.so").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Symbolizer sym(MappingsAt(fifo), "");
  auto where = sym.Symbolize(SymbolizerTestCaller() - 1);
  EXPECT_FALSE(where.resolved);
  EXPECT_EQ(where.frames.back().function.find("in libtrap.so"),
            where.frames.back().function.size() - 13)
      << where.frames.back().function;
}

TEST_F(PlantedFileTest, ASymlinkAtAMappingPathIsNotFollowed) {
  std::string fifo = (dir_ / "outside.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::filesystem::create_symlink(fifo, dir_ / "libtrap.so");
  std::filesystem::create_symlink("/proc/self/exe", dir_ / "libself.so");
  for (const char* name : {"libtrap.so", "libself.so"}) {
    Symbolizer sym(MappingsAt((dir_ / name).string()), "");
    EXPECT_FALSE(sym.Symbolize(SymbolizerTestCaller() - 1).resolved) << name;
  }
}

// A stripped copy whose .gnu_debuglink names its debug file: found beside
// it, under the root; and a debug link that names a FIFO is not opened.
TEST_F(PlantedFileTest, DebugLinksAreFollowedUnderTheRootToRegularFilesOnly) {
  std::string exe = Copy("stripped"), debug = exe + ".debug";
  std::string out =
      cppdiag::testing::RunToCompletion({"/usr/bin/objcopy", "--only-keep-debug", exe, debug});
  out += cppdiag::testing::RunToCompletion(
      {"/usr/bin/objcopy", "--strip-debug", "--add-gnu-debuglink=" + debug, exe});
  ASSERT_TRUE(out.empty()) << out;
  {
    Symbolizer sym(MappingsAt(exe), "");
    auto where = sym.Symbolize(SymbolizerTestCaller() - 1);
    ASSERT_TRUE(where.resolved);
    EXPECT_EQ(where.frames.back().line, kCallerLine) << "the lines come from the debug file";
  }
  std::filesystem::remove(debug);
  ASSERT_EQ(::mkfifo(debug.c_str(), 0600), 0);
  Symbolizer sym(MappingsAt(exe), "");
  auto where = sym.Symbolize(SymbolizerTestCaller() - 1);
  EXPECT_TRUE(where.resolved) << "by the symbol table";
  EXPECT_EQ(where.frames.back().line, 0);
}

}  // namespace
}  // namespace cppdiag::cli::heap
