// pprof::Decode: a serialized perftools.profiles.Profile back into a
// Profile, one function per message type. Messages refer to strings by
// their index in the string table, which may come after them: each is
// decoded with its indexes (the Raw* structs), resolved once all is read.
// Field numbers are profile.proto's; fields we do not use are skipped.
#include <string>

#include "cli/heap/internal/protobuf_wire.h"
#include "cli/heap/pprof.h"

namespace cppdiag::cli::pprof {
namespace {

using wire::Field;
using wire::Reader;

struct RawValueType {
  int64_t type = 0, unit = 0;
};

struct RawMapping {
  Mapping m;
  int64_t filename = 0, build_id = 0;
};

struct RawFunction {
  Function f;
  int64_t name = 0, system_name = 0, filename = 0;
};

// A Profile whose strings are still indexes.
struct RawProfile {
  Profile p;  // what holds no string
  std::vector<std::string> strings;
  std::vector<RawValueType> sample_types;
  bool has_period_type = false;
  RawValueType period_type;
  std::vector<int64_t> comments;
  int64_t default_sample_type = 0;
  std::vector<RawMapping> mappings;
  std::vector<RawFunction> functions;
};

Error Malformed(const std::string& what) {
  return Error::Invalid("not a pprof profile: malformed " + what);
}

int64_t Signed(uint64_t v) { return static_cast<int64_t>(v); }

bool DecodeValueType(std::string_view bytes, RawValueType* vt) {
  Reader r(bytes);
  Field f;
  while (r.Next(&f)) {
    if (f.is_bytes()) continue;
    if (f.number == 1) vt->type = Signed(f.num);
    if (f.number == 2) vt->unit = Signed(f.num);
  }
  return !r.failed();
}

// A repeated integer field as pprof's writers send it: packed, or one value
// per field.
template <typename T>
bool AppendInts(const Field& f, std::vector<T>* out) {
  if (f.is_bytes()) return wire::AppendPacked(f.bytes, out);
  out->push_back(static_cast<T>(f.num));
  return true;
}

// location_id and value; labels are not used here.
bool DecodeSample(std::string_view bytes, Sample* s) {
  Reader r(bytes);
  Field f;
  while (r.Next(&f)) {
    if (f.number == 1 && !AppendInts(f, &s->location_ids)) return false;
    if (f.number == 2 && !AppendInts(f, &s->values)) return false;
  }
  return !r.failed();
}

bool DecodeMapping(std::string_view bytes, RawMapping* m) {
  Reader r(bytes);
  Field f;
  while (r.Next(&f)) {
    if (f.is_bytes()) continue;
    switch (f.number) {
      case 1:
        m->m.id = f.num;
        break;
      case 2:
        m->m.memory_start = f.num;
        break;
      case 3:
        m->m.memory_limit = f.num;
        break;
      case 4:
        m->m.file_offset = f.num;
        break;
      case 5:
        m->filename = Signed(f.num);
        break;
      case 6:
        m->build_id = Signed(f.num);
        break;
      case 7:
        m->m.has_functions = f.num != 0;
        break;
      case 8:
        m->m.has_filenames = f.num != 0;
        break;
      case 9:
        m->m.has_line_numbers = f.num != 0;
        break;
      case 10:
        m->m.has_inline_frames = f.num != 0;
        break;
      default:
        break;
    }
  }
  return !r.failed();
}

bool DecodeLine(std::string_view bytes, Line* line) {
  Reader r(bytes);
  Field f;
  while (r.Next(&f)) {
    if (f.is_bytes()) continue;
    if (f.number == 1) line->function_id = f.num;
    if (f.number == 2) line->line = Signed(f.num);
  }
  return !r.failed();
}

bool DecodeLocation(std::string_view bytes, Location* loc) {
  Reader r(bytes);
  Field f;
  while (r.Next(&f)) {
    if (f.is_bytes()) {
      if (f.number == 4 && !DecodeLine(f.bytes, &loc->lines.emplace_back())) return false;
      continue;
    }
    if (f.number == 1) loc->id = f.num;
    if (f.number == 2) loc->mapping_id = f.num;
    if (f.number == 3) loc->address = f.num;
  }
  return !r.failed();
}

bool DecodeFunction(std::string_view bytes, RawFunction* fn) {
  Reader r(bytes);
  Field f;
  while (r.Next(&f)) {
    if (f.is_bytes()) continue;
    switch (f.number) {
      case 1:
        fn->f.id = f.num;
        break;
      case 2:
        fn->name = Signed(f.num);
        break;
      case 3:
        fn->system_name = Signed(f.num);
        break;
      case 4:
        fn->filename = Signed(f.num);
        break;
      case 5:
        fn->f.start_line = Signed(f.num);
        break;
      default:
        break;
    }
  }
  return !r.failed();
}

// One field of the Profile message; false if it is not well-formed.
bool DecodeProfileField(const Field& f, RawProfile* raw) {
  Profile& p = raw->p;
  switch (f.number) {
    case 1:
      return f.is_bytes() && DecodeValueType(f.bytes, &raw->sample_types.emplace_back());
    case 2:
      return f.is_bytes() && DecodeSample(f.bytes, &p.samples.emplace_back());
    case 3:
      return f.is_bytes() && DecodeMapping(f.bytes, &raw->mappings.emplace_back());
    case 4:
      return f.is_bytes() && DecodeLocation(f.bytes, &p.locations.emplace_back());
    case 5:
      return f.is_bytes() && DecodeFunction(f.bytes, &raw->functions.emplace_back());
    case 6:
      raw->strings.emplace_back(f.bytes);
      return f.is_bytes();
    case 9:
      p.time_nanos = Signed(f.num);
      return true;
    case 10:
      p.duration_nanos = Signed(f.num);
      return true;
    case 11:
      raw->has_period_type = true;
      return f.is_bytes() && DecodeValueType(f.bytes, &raw->period_type);
    case 12:
      p.period = Signed(f.num);
      return true;
    case 13:
      return wire::AppendRepeated(f, &raw->comments);
    case 14:
      raw->default_sample_type = Signed(f.num);
      return true;
    default:
      return true;  // drop_frames, keep_frames, fields we do not use
  }
}

// The Profile with each string index replaced by its string.
Result<Profile> ResolveStrings(RawProfile raw) {
  const std::vector<std::string>& strings = raw.strings;
  if (strings.empty() || !strings[0].empty()) {
    return Error::Invalid("not a pprof profile: the string table does not start with \"\"");
  }
  bool bad_index = false;
  auto str = [&](int64_t i) -> std::string {
    if (i < 0 || static_cast<size_t>(i) >= strings.size()) {
      bad_index = true;
      return {};
    }
    return strings[static_cast<size_t>(i)];
  };
  Profile p = std::move(raw.p);
  for (const auto& vt : raw.sample_types) p.sample_types.push_back({str(vt.type), str(vt.unit)});
  if (raw.has_period_type) p.period_type = {str(raw.period_type.type), str(raw.period_type.unit)};
  for (int64_t c : raw.comments) p.comments.push_back(str(c));
  p.default_sample_type = str(raw.default_sample_type);
  for (auto& m : raw.mappings) {
    m.m.filename = str(m.filename);
    m.m.build_id = str(m.build_id);
    p.mappings.push_back(std::move(m.m));
  }
  for (auto& f : raw.functions) {
    f.f.name = str(f.name);
    f.f.system_name = str(f.system_name);
    f.f.filename = str(f.filename);
    p.functions.push_back(std::move(f.f));
  }
  if (bad_index) return Malformed("string index");
  return p;
}

}  // namespace

Result<Profile> Decode(std::string_view bytes) {
  RawProfile raw;
  Reader r(bytes);
  Field f;
  while (r.Next(&f)) {
    if (!DecodeProfileField(f, &raw)) return Malformed("field " + std::to_string(f.number));
  }
  if (r.failed()) return Malformed("field");
  return ResolveStrings(std::move(raw));
}

}  // namespace cppdiag::cli::pprof
