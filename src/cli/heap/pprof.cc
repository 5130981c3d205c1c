#include "cli/heap/pprof.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <unordered_map>

#include "common/io.h"

namespace cppdiag::cli::pprof {
namespace {

// ---- writing

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

class Writer {
 public:
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void Tag(uint32_t field, WireType type) { Varint((uint64_t{field} << 3) | type); }
  // proto3 scalars: zero is the default and is not written.
  void Uint(uint32_t field, uint64_t v) {
    if (v == 0) return;
    Tag(field, kVarint);
    Varint(v);
  }
  void Int(uint32_t field, int64_t v) { Uint(field, static_cast<uint64_t>(v)); }
  void Bool(uint32_t field, bool v) { Uint(field, v ? 1 : 0); }
  void Bytes(uint32_t field, std::string_view bytes) {
    Tag(field, kLengthDelimited);
    Varint(bytes.size());
    out_.append(bytes);
  }
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

// ---- reading

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return false;
      auto b = static_cast<uint8_t>(data_[pos_++]);
      *v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  // Reads one field: its number, wire type, and its value (varint/fixed in
  // `*num`, length-delimited bytes in `*bytes`).
  bool Field(uint32_t* field, uint32_t* type, uint64_t* num, std::string_view* bytes) {
    uint64_t key;
    if (!Varint(&key)) return false;
    *field = static_cast<uint32_t>(key >> 3);
    *type = static_cast<uint32_t>(key & 7);
    if (*field == 0) return false;
    switch (*type) {
      case kVarint:
        return Varint(num);
      case kFixed64:
        return Skip(8, num);
      case kFixed32:
        return Skip(4, num);
      case kLengthDelimited: {
        uint64_t len;
        if (!Varint(&len) || len > data_.size() - pos_) return false;
        *bytes = data_.substr(pos_, len);
        pos_ += len;
        return true;
      }
      default:
        return false;
    }
  }

 private:
  bool Skip(size_t n, uint64_t* num) {
    if (data_.size() - pos_ < n) return false;
    *num = 0;
    for (size_t i = 0; i < n; ++i)
      *num |= uint64_t{static_cast<uint8_t>(data_[pos_ + i])} << (8 * i);
    pos_ += n;
    return true;
  }
  std::string_view data_;
  size_t pos_ = 0;
};

Error Malformed(const std::string& what) {
  return Error::Invalid("not a pprof profile: malformed " + what);
}

// A repeated integer field, packed (length-delimited) or not.
template <typename T>
bool AppendRepeated(uint32_t type, uint64_t num, std::string_view bytes, std::vector<T>* out) {
  if (type == kVarint) {
    out->push_back(static_cast<T>(num));
    return true;
  }
  if (type != kLengthDelimited) return false;
  Reader r(bytes);
  while (!r.done()) {
    uint64_t v;
    if (!r.Varint(&v)) return false;
    out->push_back(static_cast<T>(v));
  }
  return true;
}

// Decodes a message whose fields are all integers (or nested messages we
// hand to `nested`), calling `on_int` for each integer field.
template <typename OnInt, typename OnBytes>
bool ForEachField(std::string_view bytes, OnInt on_int, OnBytes on_bytes) {
  Reader r(bytes);
  while (!r.done()) {
    uint32_t field, type;
    uint64_t num = 0;
    std::string_view sub;
    if (!r.Field(&field, &type, &num, &sub)) return false;
    if (type == kLengthDelimited) {
      if (!on_bytes(field, sub)) return false;
    } else {
      on_int(field, num);
    }
  }
  return true;
}

struct RawValueType {
  int64_t type = 0, unit = 0;
};

}  // namespace

std::string Encode(const Profile& p) {
  StringTable st;
  Writer w;
  for (const auto& vt : p.sample_types) w.Bytes(1, EncodeValueType(vt, st));
  for (const auto& s : p.samples) {
    Writer m;
    m.Packed(1, s.location_ids);
    m.Packed(2, s.values);
    w.Bytes(2, m.out());
  }
  for (const auto& mp : p.mappings) {
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
    w.Bytes(3, m.out());
  }
  for (const auto& loc : p.locations) {
    Writer m;
    m.Uint(1, loc.id);
    m.Uint(2, loc.mapping_id);
    m.Uint(3, loc.address);
    for (const auto& line : loc.lines) {
      Writer l;
      l.Uint(1, line.function_id);
      l.Int(2, line.line);
      m.Bytes(4, l.out());
    }
    w.Bytes(4, m.out());
  }
  for (const auto& fn : p.functions) {
    Writer m;
    m.Uint(1, fn.id);
    m.Int(2, st.Index(fn.name));
    m.Int(3, st.Index(fn.system_name));
    m.Int(4, st.Index(fn.filename));
    m.Int(5, fn.start_line);
    w.Bytes(5, m.out());
  }
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

Result<Profile> Decode(std::string_view bytes) {
  // Strings are referred to by index before the table may have been read:
  // collect indexes first, resolve at the end.
  std::vector<std::string> strings;
  std::vector<RawValueType> sample_types;
  RawValueType period_type;
  bool has_period_type = false;
  std::vector<int64_t> comments;
  int64_t default_sample_type = 0;
  struct RawMapping {
    Mapping m;
    int64_t filename = 0, build_id = 0;
  };
  struct RawFunction {
    Function f;
    int64_t name = 0, system_name = 0, filename = 0;
  };
  std::vector<RawMapping> mappings;
  std::vector<RawFunction> functions;
  Profile p;

  auto value_type = [](std::string_view b, RawValueType* vt) {
    return ForEachField(
        b,
        [&](uint32_t f, uint64_t v) {
          if (f == 1) vt->type = static_cast<int64_t>(v);
          if (f == 2) vt->unit = static_cast<int64_t>(v);
        },
        [](uint32_t, std::string_view) { return true; });
  };

  Reader r(bytes);
  while (!r.done()) {
    uint32_t field, type;
    uint64_t num = 0;
    std::string_view sub;
    if (!r.Field(&field, &type, &num, &sub)) return Malformed("field");
    bool ok = true;
    switch (field) {
      case 1:
        sample_types.emplace_back();
        ok = type == kLengthDelimited && value_type(sub, &sample_types.back());
        break;
      case 2: {
        Sample s;
        ok = type == kLengthDelimited &&
             ForEachField(
                 sub,
                 [&](uint32_t f, uint64_t v) {
                   if (f == 1) s.location_ids.push_back(v);
                   if (f == 2) s.values.push_back(static_cast<int64_t>(v));
                 },
                 [&](uint32_t f, std::string_view b) {
                   if (f == 1) return AppendRepeated(kLengthDelimited, 0, b, &s.location_ids);
                   if (f == 2) return AppendRepeated(kLengthDelimited, 0, b, &s.values);
                   return true;  // labels: not used here
                 });
        p.samples.push_back(std::move(s));
        break;
      }
      case 3: {
        RawMapping m;
        ok = type == kLengthDelimited && ForEachField(
                                             sub,
                                             [&](uint32_t f, uint64_t v) {
                                               switch (f) {
                                                 case 1:
                                                   m.m.id = v;
                                                   break;
                                                 case 2:
                                                   m.m.memory_start = v;
                                                   break;
                                                 case 3:
                                                   m.m.memory_limit = v;
                                                   break;
                                                 case 4:
                                                   m.m.file_offset = v;
                                                   break;
                                                 case 5:
                                                   m.filename = static_cast<int64_t>(v);
                                                   break;
                                                 case 6:
                                                   m.build_id = static_cast<int64_t>(v);
                                                   break;
                                                 case 7:
                                                   m.m.has_functions = v != 0;
                                                   break;
                                                 case 8:
                                                   m.m.has_filenames = v != 0;
                                                   break;
                                                 case 9:
                                                   m.m.has_line_numbers = v != 0;
                                                   break;
                                                 case 10:
                                                   m.m.has_inline_frames = v != 0;
                                                   break;
                                                 default:
                                                   break;
                                               }
                                             },
                                             [](uint32_t, std::string_view) { return true; });
        mappings.push_back(std::move(m));
        break;
      }
      case 4: {
        Location loc;
        ok = type == kLengthDelimited && ForEachField(
                                             sub,
                                             [&](uint32_t f, uint64_t v) {
                                               if (f == 1) loc.id = v;
                                               if (f == 2) loc.mapping_id = v;
                                               if (f == 3) loc.address = v;
                                             },
                                             [&](uint32_t f, std::string_view b) {
                                               if (f != 4) return true;
                                               Line line;
                                               loc.lines.push_back(line);
                                               return ForEachField(
                                                   b,
                                                   [&](uint32_t lf, uint64_t v) {
                                                     if (lf == 1) loc.lines.back().function_id = v;
                                                     if (lf == 2)
                                                       loc.lines.back().line =
                                                           static_cast<int64_t>(v);
                                                   },
                                                   [](uint32_t, std::string_view) { return true; });
                                             });
        p.locations.push_back(std::move(loc));
        break;
      }
      case 5: {
        RawFunction fn;
        ok = type == kLengthDelimited && ForEachField(
                                             sub,
                                             [&](uint32_t f, uint64_t v) {
                                               switch (f) {
                                                 case 1:
                                                   fn.f.id = v;
                                                   break;
                                                 case 2:
                                                   fn.name = static_cast<int64_t>(v);
                                                   break;
                                                 case 3:
                                                   fn.system_name = static_cast<int64_t>(v);
                                                   break;
                                                 case 4:
                                                   fn.filename = static_cast<int64_t>(v);
                                                   break;
                                                 case 5:
                                                   fn.f.start_line = static_cast<int64_t>(v);
                                                   break;
                                                 default:
                                                   break;
                                               }
                                             },
                                             [](uint32_t, std::string_view) { return true; });
        functions.push_back(std::move(fn));
        break;
      }
      case 6:
        ok = type == kLengthDelimited;
        strings.emplace_back(sub);
        break;
      case 9:
        p.time_nanos = static_cast<int64_t>(num);
        break;
      case 10:
        p.duration_nanos = static_cast<int64_t>(num);
        break;
      case 11:
        has_period_type = true;
        ok = type == kLengthDelimited && value_type(sub, &period_type);
        break;
      case 12:
        p.period = static_cast<int64_t>(num);
        break;
      case 13:
        ok = AppendRepeated(type, num, sub, &comments);
        break;
      case 14:
        default_sample_type = static_cast<int64_t>(num);
        break;
      default:
        break;  // drop_frames, keep_frames, fields we do not use
    }
    if (!ok) return Malformed("field " + std::to_string(field));
  }
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
  for (const auto& vt : sample_types) p.sample_types.push_back({str(vt.type), str(vt.unit)});
  if (has_period_type) p.period_type = {str(period_type.type), str(period_type.unit)};
  for (int64_t c : comments) p.comments.push_back(str(c));
  p.default_sample_type = str(default_sample_type);
  for (auto& m : mappings) {
    m.m.filename = str(m.filename);
    m.m.build_id = str(m.build_id);
    p.mappings.push_back(std::move(m.m));
  }
  for (auto& f : functions) {
    f.f.name = str(f.name);
    f.f.system_name = str(f.system_name);
    f.f.filename = str(f.filename);
    p.functions.push_back(std::move(f.f));
  }
  if (bad_index) return Malformed("string index");
  return p;
}

bool LooksGzipped(std::string_view data) {
  return data.size() >= 2 && static_cast<uint8_t>(data[0]) == 0x1f &&
         static_cast<uint8_t>(data[1]) == 0x8b;
}

Result<std::string> Gzip(std::string_view data) {
  z_stream z{};
  // 15 + 16: a gzip header and trailer rather than zlib's.
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Error(ENOMEM, "deflateInit2");
  }
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return Error(EIO, "deflate");
  return out;
}

Result<std::string> Gunzip(std::string_view data, size_t max_bytes) {
  if (!LooksGzipped(data)) return Error::Invalid("not gzip data");
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return Error(ENOMEM, "inflateInit2");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[64 * 1024];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.append(buf, sizeof buf - z.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&z);
      return Error(EFBIG, "", "uncompressed profile larger than " + std::to_string(max_bytes));
    }
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) break;  // truncated
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) return Error::Invalid("corrupt or truncated gzip data");
  return out;
}

Status WriteProfileFile(const Profile& profile, const std::string& path, bool overwrite) {
  CPPDIAG_ASSIGN_OR_RETURN(std::string gz, Gzip(Encode(profile)));
  struct stat st {};
  if (!overwrite && ::lstat(path.c_str(), &st) == 0) {
    return Error(EEXIST, "", path + " exists (use --overwrite to replace it)");
  }
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    CPPDIAG_ASSIGN_OR_RETURN(ScopedFd fd,
                             OpenFile(tmp, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0600));
    Status w = WriteAll(fd.get(), gz.data(), gz.size(), tmp.c_str());
    if (w.ok() && ::fsync(fd.get()) != 0) w = Error::FromErrno("fsync", tmp);
    if (!w) {
      ::unlink(tmp.c_str());
      return w.error();
    }
  }
  // link() refuses an existing target atomically; rename() replaces it.
  int rc = overwrite ? ::rename(tmp.c_str(), path.c_str()) : ::link(tmp.c_str(), path.c_str());
  int err = errno;
  if (!(overwrite && rc == 0)) ::unlink(tmp.c_str());
  if (rc != 0) {
    if (err == EEXIST) return Error(EEXIST, "", path + " exists (use --overwrite to replace it)");
    return Error(err, overwrite ? "rename" : "link", path);
  }
  return OkStatus();
}

Result<Profile> ParseProfile(std::string_view data) {
  std::string unzipped;
  if (LooksGzipped(data)) {
    CPPDIAG_ASSIGN_OR_RETURN(unzipped, Gunzip(data));
    data = unzipped;
  }
  CPPDIAG_ASSIGN_OR_RETURN(Profile profile, Decode(data));
  if (profile.sample_types.empty()) return Error::Invalid("not a pprof profile: no sample types");
  return profile;
}

Result<Profile> ReadProfileFile(const std::string& path) {
  auto data = ReadFileToString(path, 1u << 30);
  if (!data) return data.error();
  auto profile = ParseProfile(*data);
  if (!profile) return Error(profile.error().code(), "", path + ": " + profile.error().message());
  return profile;
}

}  // namespace cppdiag::cli::pprof
