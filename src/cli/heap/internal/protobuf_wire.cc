#include "cli/heap/internal/protobuf_wire.h"

namespace cppdiag::cli::pprof::wire {

void Writer::Varint(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<char>(v));
}

void Writer::Uint(uint32_t field, uint64_t v) {
  if (v == 0) return;
  Tag(field, kVarint);
  Varint(v);
}

void Writer::Bytes(uint32_t field, std::string_view bytes) {
  Tag(field, kLengthDelimited);
  Varint(bytes.size());
  out_.append(bytes);
}

bool Reader::Varint(uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= data_.size()) return false;
    auto b = static_cast<uint8_t>(data_[pos_++]);
    *v |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

bool Reader::Fixed(size_t n, uint64_t* num) {
  if (data_.size() - pos_ < n) return false;
  *num = 0;
  for (size_t i = 0; i < n; ++i) {
    *num |= uint64_t{static_cast<uint8_t>(data_[pos_ + i])} << (8 * i);
  }
  pos_ += n;
  return true;
}

bool Reader::Next(Field* f) {
  if (done() || failed_) return false;
  *f = Field{};
  uint64_t key;
  bool ok = Varint(&key);
  f->number = static_cast<uint32_t>(key >> 3);
  f->type = static_cast<uint32_t>(key & 7);
  ok = ok && f->number != 0;
  if (ok) {
    switch (f->type) {
      case kVarint:
        ok = Varint(&f->num);
        break;
      case kFixed64:
        ok = Fixed(8, &f->num);
        break;
      case kFixed32:
        ok = Fixed(4, &f->num);
        break;
      case kLengthDelimited: {
        uint64_t len;
        ok = Varint(&len) && len <= data_.size() - pos_;
        if (ok) {
          f->bytes = data_.substr(pos_, len);
          pos_ += len;
        }
        break;
      }
      default:
        ok = false;
    }
  }
  failed_ = !ok;
  return ok;
}

}  // namespace cppdiag::cli::pprof::wire
