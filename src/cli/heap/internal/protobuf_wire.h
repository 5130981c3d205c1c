// The protobuf wire format (protobuf.dev/programming-guides/encoding), the
// little of it pprof's messages use: varints, length-delimited fields, and
// fixed-width fields only to skip them. Private to cli/heap (pprof_*.cc).
//
//   wire::Writer w;
//   w.Uint(1, id);
//   w.Bytes(6, "inuse_space");
//
//   wire::Reader r(bytes);
//   wire::Field f;
//   while (r.Next(&f)) { if (f.number == 1 && !f.is_bytes()) id = f.num; }
//   if (r.failed()) return Malformed("field");
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cppdiag::cli::pprof::wire {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Builds a message. Scalars follow proto3: zero is the default and is not
// written.
class Writer {
 public:
  void Varint(uint64_t v);
  void Tag(uint32_t field, WireType type) { Varint((uint64_t{field} << 3) | type); }
  void Uint(uint32_t field, uint64_t v);
  void Int(uint32_t field, int64_t v) { Uint(field, static_cast<uint64_t>(v)); }
  void Bool(uint32_t field, bool v) { Uint(field, v ? 1 : 0); }
  // A nested message, a string or packed values: written even when empty.
  void Bytes(uint32_t field, std::string_view bytes);
  // A packed repeated integer field; nothing when `values` is empty.
  template <typename T>
  void Packed(uint32_t field, const std::vector<T>& values) {
    if (values.empty()) return;
    Writer inner;
    for (T v : values) inner.Varint(static_cast<uint64_t>(v));
    Bytes(field, inner.out_);
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

// One field of a message: varint and fixed-width values in `num` (`bytes`
// empty), length-delimited ones in `bytes` (`num` 0).
struct Field {
  uint32_t number = 0;
  uint32_t type = kVarint;
  uint64_t num = 0;
  std::string_view bytes;
  bool is_bytes() const { return type == kLengthDelimited; }
};

// Reads the fields of one message in turn, never past its end.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }
  // False at the end of the message, or (failed() then true) on a field that
  // is not well-formed: a truncated value, field number 0, an unknown wire type.
  bool Next(Field* field);
  bool failed() const { return failed_; }
  bool Varint(uint64_t* v);

 private:
  bool Fixed(size_t n, uint64_t* num);
  std::string_view data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// Appends the values of a packed repeated integer field; false if `bytes`
// is not a sequence of varints.
template <typename T>
bool AppendPacked(std::string_view bytes, std::vector<T>* out) {
  Reader r(bytes);
  while (!r.done()) {
    uint64_t v;
    if (!r.Varint(&v)) return false;
    out->push_back(static_cast<T>(v));
  }
  return true;
}

// A repeated integer field, packed or one varint; false for other wire types.
template <typename T>
bool AppendRepeated(const Field& f, std::vector<T>* out) {
  if (f.type == kVarint) {
    out->push_back(static_cast<T>(f.num));
    return true;
  }
  return f.is_bytes() && AppendPacked(f.bytes, out);
}

}  // namespace cppdiag::cli::pprof::wire
