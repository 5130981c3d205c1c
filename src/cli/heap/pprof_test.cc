#include "cli/heap/pprof.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/io.h"
#include "support/status_matchers.h"

namespace cppdiag::cli::pprof {
namespace {

using ::cppdiag::testing::IsOk;

Profile Sample() {
  Profile p;
  p.sample_types = {{"inuse_objects", "count"}, {"inuse_space", "bytes"}};
  p.default_sample_type = "inuse_space";
  p.period_type = {"space", "bytes"};
  p.period = 524288;
  p.time_nanos = 1763900000123456789;
  p.comments = {"made by a test"};
  p.mappings = {{.id = 1,
                 .memory_start = 0x555555554000,
                 .memory_limit = 0x555555600000,
                 .file_offset = 0x1000,
                 .filename = "/usr/bin/leakapp",
                 .build_id = "abcdef0123",
                 .has_functions = true,
                 .has_filenames = true,
                 .has_line_numbers = true,
                 .has_inline_frames = true}};
  p.functions = {{1, "leakapp::LeakIntoVector(unsigned long)", "_ZN7leakapp14LeakIntoVectorEm",
                  "leak_patterns.cc", 0},
                 {2, "main", "main", "main.cc", 0}};
  p.locations = {{1, 1, 0x555555555123, {{1, 52}}}, {2, 1, 0x555555556000, {{1, 60}, {2, 9}}}};
  p.samples = {{{1, 2}, {3, 3145728}}, {{2}, {1, 1024}}};
  return p;
}

std::string TempPath(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("cppdiag-pprof-test-") + std::to_string(::getpid()) + "-" + name))
      .string();
}

TEST(Pprof, EncodeThenDecodeGivesTheSameProfile) {
  Profile p = Sample();
  auto back = Decode(Encode(p));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, p);
}

TEST(Pprof, TheStringTableStartsWithTheEmptyString) {
  std::string bytes = Encode(Sample());
  // The first string (field 6, length-delimited: tag 0x32) is empty.
  auto first = bytes.find('\x32');
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(bytes[first + 1], '\0');
}

TEST(Pprof, DecodeRejectsWhatIsNotAProfile) {
  EXPECT_FALSE(Decode("hello, world").ok());
  EXPECT_FALSE(Decode(std::string("\x0a\x05\x08", 3)).ok());  // truncated
  EXPECT_FALSE(Decode("").ok());                              // no string table
}

TEST(Pprof, DecodeAcceptsUnpackedRepeatedFields) {
  // sample {location_id: 7 location_id: 8 value: 5} (unpacked), string_table "".
  std::string bytes("\x12\x06\x08\x07\x08\x08\x10\x05\x32\x00", 10);
  auto p = Decode(bytes);
  ASSERT_THAT(p, IsOk());
  ASSERT_EQ(p->samples.size(), 1u);
  EXPECT_EQ(p->samples[0].location_ids, (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(p->samples[0].values, (std::vector<int64_t>{5}));
}

TEST(Pprof, GzipRoundTripsAndIsRealGzip) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); i += 7) data[i] = static_cast<char>(i);
  auto gz = Gzip(data);
  ASSERT_THAT(gz, IsOk());
  EXPECT_TRUE(LooksGzipped(*gz));
  auto back = Gunzip(*gz);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, data);
  EXPECT_FALSE(Gunzip("plain").ok());
  EXPECT_FALSE(Gunzip(gz->substr(0, gz->size() / 2)).ok());

  // gzip(1) reads it too.
  std::string path = TempPath("gz.gz");
  ASSERT_THAT(WriteStringToFile(path, *gz), IsOk());
  FILE* f = ::popen(("gzip -dc " + path + " | wc -c").c_str(), "r");
  ASSERT_NE(f, nullptr);
  char buf[64] = {};
  ASSERT_NE(std::fgets(buf, sizeof buf, f), nullptr);
  ::pclose(f);
  EXPECT_EQ(std::stoul(buf), data.size());
  ::unlink(path.c_str());
}

TEST(Pprof, WritesMode0600AndRefusesToOverwrite) {
  std::string path = TempPath("w.pb.gz");
  ::unlink(path.c_str());
  ASSERT_THAT(WriteProfileFile(Sample(), path, false), IsOk());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = WriteProfileFile(Sample(), path, false);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), EEXIST);
  EXPECT_NE(again.error().message().find("--overwrite"), std::string::npos);
  EXPECT_THAT(WriteProfileFile(Sample(), path, true), IsOk());
  auto back = ReadProfileFile(path);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, Sample());
  // Nothing but the file is left in the directory (no temporary).
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    EXPECT_EQ(e.path().string().find(path + ".tmp"), std::string::npos) << e.path();
  }
  ::unlink(path.c_str());
}

TEST(Pprof, ReadingSaysWhatIsWrongWithTheFile) {
  auto missing = ReadProfileFile("/nonexistent/x.pb.gz");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("/nonexistent/x.pb.gz"), std::string::npos);
  std::string path = TempPath("not.pb.gz");
  ASSERT_THAT(WriteStringToFile(path, "this is text, not a profile\n"), IsOk());
  auto text = ReadProfileFile(path);
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.error().message().find("not a pprof profile"), std::string::npos)
      << text.error().message();
  ::unlink(path.c_str());
}

// ---- an independent reader: protoc, against the published profile.proto

std::string RunShell(const std::string& cmd, int* status) {
  FILE* f = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (f && (n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  *status = f ? ::pclose(f) : -1;
  return out;
}

TEST(Pprof, ProtocDecodesItAgainstThePublishedSchema) {
  if (::access("/usr/bin/protoc", X_OK) != 0) {
    GTEST_SKIP() << "protoc not installed (scripts/setup.sh installs protobuf-compiler)";
  }
  std::string raw = TempPath("raw.pb");
  ASSERT_THAT(WriteStringToFile(raw, Encode(Sample())), IsOk());
  std::string dir = std::string(CPPDIAG_SOURCE_DIR) + "/tests/integration/heap_cli";
  int status = 0;
  std::string text =
      RunShell("/usr/bin/protoc --proto_path=" + dir +
                   " --decode=perftools.profiles.Profile profile.proto < " + raw + " 2>&1",
               &status);
  ::unlink(raw.c_str());
  ASSERT_EQ(status, 0) << text;
  for (const char* expected :
       {"string_table: \"\"", "string_table: \"inuse_space\"", "string_table: \"bytes\"",
        "location_id: 1", "location_id: 2", "value: 3145728", "memory_start: 93824992231424",
        "file_offset: 4096", "has_inline_frames: true", "address: 93824992235811", "period: 524288",
        "time_nanos: 1763900000123456789", "function_id: 1", "line: 52"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
  // The first string is "" and sample_type[1] is inuse_space/bytes.
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> strings;
  while (std::getline(in, line)) {
    if (line.rfind("string_table: ", 0) == 0) strings.push_back(line.substr(14));
  }
  ASSERT_FALSE(strings.empty());
  EXPECT_EQ(strings[0], "\"\"");
}

}  // namespace
}  // namespace cppdiag::cli::pprof
