#include "cli/heap/internal/protobuf_wire.h"

#include <gtest/gtest.h>

namespace cppdiag::cli::pprof::wire {
namespace {

TEST(ProtobufWire, WritesAndReadsEachKindOfField) {
  Writer w;
  w.Uint(1, 300);  // a two-byte varint
  w.Uint(2, 0);    // the default: not written
  w.Int(3, -1);    // ten bytes
  w.Bytes(4, "abc");
  w.Packed(5, std::vector<uint64_t>{1, 128});
  EXPECT_EQ(w.out(), std::string("\x08\xac\x02"
                                 "\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
                                 "\x22\x03"
                                 "abc"
                                 "\x2a\x03\x01\x80\x01",
                                 24));
  Reader r(w.out());
  Field f;
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.number, 1u);
  EXPECT_EQ(f.num, 300u);
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.number, 3u);
  EXPECT_EQ(static_cast<int64_t>(f.num), -1);
  ASSERT_TRUE(r.Next(&f));
  EXPECT_TRUE(f.is_bytes());
  EXPECT_EQ(f.bytes, "abc");
  ASSERT_TRUE(r.Next(&f));
  std::vector<uint64_t> packed;
  EXPECT_TRUE(AppendRepeated(f, &packed));
  EXPECT_EQ(packed, (std::vector<uint64_t>{1, 128}));
  EXPECT_FALSE(r.Next(&f));
  EXPECT_FALSE(r.failed());
}

TEST(ProtobufWire, SkipsFixedWidthFields) {
  // field 1 fixed64, field 2 fixed32, field 3 varint 7.
  std::string bytes("\x09\x01\x00\x00\x00\x00\x00\x00\x00\x15\x02\x00\x00\x00\x18\x07", 16);
  Reader r(bytes);
  Field f;
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.num, 1u);
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.num, 2u);
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.num, 7u);
  EXPECT_FALSE(r.Next(&f));
  EXPECT_FALSE(r.failed());
}

TEST(ProtobufWire, RefusesWhatIsNotWellFormed) {
  for (std::string bytes : {std::string("\x08", 1),          // a varint cut short
                            std::string("\x00\x01", 2),      // field number 0
                            std::string("\x0b\x01", 2),      // wire type 3 (groups)
                            std::string("\x0a\x05\x61", 3),  // bytes past the end
                            std::string("\x09\x01\x02", 3),  // a short fixed64
                            std::string(11, '\xff')}) {      // a varint of 11 bytes
    Reader r(bytes);
    Field f;
    EXPECT_FALSE(r.Next(&f));
    EXPECT_TRUE(r.failed());
    EXPECT_FALSE(r.Next(&f)) << "stays failed";
  }
  std::vector<int> out;
  EXPECT_FALSE(AppendRepeated(Field{.number = 1, .type = kFixed32, .num = 1}, &out));
  EXPECT_FALSE(AppendPacked(std::string_view("\x80", 1), &out));
}

}  // namespace
}  // namespace cppdiag::cli::pprof::wire
