// pprof::Encode: a Profile as the serialized perftools.profiles.Profile
// message, its strings gathered into the string table as they are met.
// Field numbers are profile.proto's.
#include <unordered_map>

#include "cli/heap/internal/protobuf_wire.h"
#include "cli/heap/pprof.h"

namespace cppdiag::cli::pprof {
namespace {

using wire::Writer;

class StringTable {
 public:
  StringTable() { Index(""); }
  int64_t Index(const std::string& s) {
    auto [it, inserted] = index_.try_emplace(s, static_cast<int64_t>(strings_.size()));
    if (inserted) strings_.push_back(s);
    return it->second;
  }
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::unordered_map<std::string, int64_t> index_;
  std::vector<std::string> strings_;
};

std::string EncodeValueType(const ValueType& v, StringTable& st) {
  Writer w;
  w.Int(1, st.Index(v.type));
  w.Int(2, st.Index(v.unit));
  return w.out();
}

std::string EncodeSample(const Sample& s) {
  Writer m;
  m.Packed(1, s.location_ids);
  m.Packed(2, s.values);
  return m.out();
}

std::string EncodeMapping(const Mapping& mp, StringTable& st) {
  Writer m;
  m.Uint(1, mp.id);
  m.Uint(2, mp.memory_start);
  m.Uint(3, mp.memory_limit);
  m.Uint(4, mp.file_offset);
  m.Int(5, st.Index(mp.filename));
  m.Int(6, st.Index(mp.build_id));
  m.Bool(7, mp.has_functions);
  m.Bool(8, mp.has_filenames);
  m.Bool(9, mp.has_line_numbers);
  m.Bool(10, mp.has_inline_frames);
  return m.out();
}

std::string EncodeLine(const Line& line) {
  Writer l;
  l.Uint(1, line.function_id);
  l.Int(2, line.line);
  return l.out();
}

std::string EncodeLocation(const Location& loc) {
  Writer m;
  m.Uint(1, loc.id);
  m.Uint(2, loc.mapping_id);
  m.Uint(3, loc.address);
  for (const auto& line : loc.lines) m.Bytes(4, EncodeLine(line));
  return m.out();
}

std::string EncodeFunction(const Function& fn, StringTable& st) {
  Writer m;
  m.Uint(1, fn.id);
  m.Int(2, st.Index(fn.name));
  m.Int(3, st.Index(fn.system_name));
  m.Int(4, st.Index(fn.filename));
  m.Int(5, fn.start_line);
  return m.out();
}

}  // namespace

std::string Encode(const Profile& p) {
  StringTable st;
  Writer w;
  for (const auto& vt : p.sample_types) w.Bytes(1, EncodeValueType(vt, st));
  for (const auto& s : p.samples) w.Bytes(2, EncodeSample(s));
  for (const auto& mp : p.mappings) w.Bytes(3, EncodeMapping(mp, st));
  for (const auto& loc : p.locations) w.Bytes(4, EncodeLocation(loc));
  for (const auto& fn : p.functions) w.Bytes(5, EncodeFunction(fn, st));
  // Every string is indexed before the table is written, after the messages
  // that refer to it.
  Writer tail;
  tail.Int(9, p.time_nanos);
  tail.Int(10, p.duration_nanos);
  if (!p.period_type.type.empty() || !p.period_type.unit.empty()) {
    tail.Bytes(11, EncodeValueType(p.period_type, st));
  }
  tail.Int(12, p.period);
  std::vector<int64_t> comments;
  for (const auto& c : p.comments) comments.push_back(st.Index(c));
  tail.Packed(13, comments);
  if (!p.default_sample_type.empty()) tail.Int(14, st.Index(p.default_sample_type));
  for (const auto& s : st.strings()) w.Bytes(6, s);
  w.out().append(tail.out());
  return std::move(w.out());
}

}  // namespace cppdiag::cli::pprof
