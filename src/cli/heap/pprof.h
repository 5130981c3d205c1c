// pprof's profile format (github.com/google/pprof/proto/profile.proto),
// written and read by hand: the protobuf wire format of the messages we use,
// gzipped, with no libprotobuf.
//
// The structs hold resolved strings; the encoder builds the string table
// ("" first, as the format requires) and the decoder resolves it.
// pprof_encode.cc and pprof_decode.cc (over internal/protobuf_wire.h) do the
// messages, pprof_gzip.cc the compression, pprof_file.cc the files.
//
//   pprof::Profile p;
//   p.sample_types = {{"inuse_objects", "count"}, {"inuse_space", "bytes"}};
//   ...
//   auto st = pprof::WriteProfileFile(p, "heap.pb.gz", /*overwrite=*/false);
//   auto back = pprof::ReadProfileFile("heap.pb.gz");
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cppdiag::cli::pprof {

struct ValueType {
  std::string type;  // "inuse_space"
  std::string unit;  // "bytes"
  bool operator==(const ValueType&) const = default;
};

struct Line {
  uint64_t function_id = 0;
  int64_t line = 0;
  bool operator==(const Line&) const = default;
};

// One pc. Several lines when functions were inlined there: the innermost
// first, the function the pc is really in last (pprof's order).
struct Location {
  uint64_t id = 0;
  uint64_t mapping_id = 0;
  uint64_t address = 0;
  std::vector<Line> lines;
  bool operator==(const Location&) const = default;
};

struct Function {
  uint64_t id = 0;
  std::string name;         // demangled
  std::string system_name;  // as in the symbol table (mangled)
  std::string filename;
  int64_t start_line = 0;
  bool operator==(const Function&) const = default;
};

struct Mapping {
  uint64_t id = 0;
  uint64_t memory_start = 0;
  uint64_t memory_limit = 0;
  uint64_t file_offset = 0;
  std::string filename;
  std::string build_id;
  bool has_functions = false;
  bool has_filenames = false;
  bool has_line_numbers = false;
  bool has_inline_frames = false;
  bool operator==(const Mapping&) const = default;
};

struct Sample {
  std::vector<uint64_t> location_ids;  // innermost first
  std::vector<int64_t> values;         // one per sample type
  bool operator==(const Sample&) const = default;
};

struct Profile {
  std::vector<ValueType> sample_types;
  std::vector<Sample> samples;
  std::vector<Mapping> mappings;
  std::vector<Location> locations;
  std::vector<Function> functions;
  int64_t time_nanos = 0;
  int64_t duration_nanos = 0;
  ValueType period_type;
  int64_t period = 0;
  std::vector<std::string> comments;
  std::string default_sample_type;
  bool operator==(const Profile&) const = default;
};

// The serialized (uncompressed) Profile message.
std::string Encode(const Profile& profile);
// Parses a serialized Profile. Fails with a one-line reason on anything that
// is not well-formed protobuf or refers to strings that are not there.
Result<Profile> Decode(std::string_view bytes);

// gzip (RFC 1952) of `data`, and back. Gunzip fails on anything not gzip.
Result<std::string> Gzip(std::string_view data);
Result<std::string> Gunzip(std::string_view data, size_t max_bytes = 1u << 30);
bool LooksGzipped(std::string_view data);

// Writes the gzipped profile, mode 0600 (a profile reveals code paths),
// refusing to replace an existing file unless `overwrite`. The file appears
// whole (written to a temporary name, then renamed).
Status WriteProfileFile(const Profile& profile, const std::string& path, bool overwrite);
// Parses the bytes of a .pb.gz (or an uncompressed .pb) written by us or
// any pprof tool: what ReadProfileFile does once it has read the file (and
// what tests/fuzz/pprof_fuzzer feeds any bytes to).
Result<Profile> ParseProfile(std::string_view data);
// Reads a .pb.gz (or an uncompressed .pb) written by us or any pprof tool.
// Errors say "<path>: ...".
Result<Profile> ReadProfileFile(const std::string& path);

}  // namespace cppdiag::cli::pprof
