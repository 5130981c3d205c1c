#include "cli/heap/heap_view.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "cli/display.h"
#include "cli/heap/pprof_locations.h"
#include "common/parse.h"

namespace cppdiag::cli::heap {
namespace {

// "void std::vector<char>::emplace_back<int>(int&&) const" →
// "std::vector::emplace_back": template arguments, the parameter list and a
// return type (decltype(...) included) removed.
std::string QualifiedName(const std::string& function) {
  std::string s = function;
  const std::string anon = "(anonymous namespace)";
  for (size_t p; (p = s.find(anon)) != std::string::npos;) s.replace(p, anon.size(), "anon");
  std::string flat;
  int depth = 0;
  for (char c : s) {
    if (c == '<') ++depth;
    if (depth == 0) flat.push_back(c);
    if (c == '>' && depth > 0) --depth;
  }
  // The parameter list: the parenthesised group that ends last.
  if (auto close = flat.rfind(')'); close != std::string::npos) {
    int d = 0;
    for (size_t i = close + 1; i-- > 0;) {
      if (flat[i] == ')') ++d;
      if (flat[i] == '(' && --d == 0) {
        flat.resize(i);
        break;
      }
    }
  }
  std::string name;
  depth = 0;
  for (char c : flat) {
    if (c == '(') {
      ++depth;
    } else if (c == ')') {
      depth = depth > 0 ? depth - 1 : 0;
    } else if (depth == 0) {
      name.push_back(c);
    }
  }
  while (!name.empty() && name.back() == ' ') name.pop_back();
  auto space = name.rfind(' ');
  return space == std::string::npos ? name : name.substr(space + 1);
}

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

int SampleIndex(const pprof::Profile& p, const char* type) {
  for (size_t i = 0; i < p.sample_types.size(); ++i) {
    if (p.sample_types[i].type == type) return static_cast<int>(i);
  }
  return -1;
}

struct ValueIndexes {
  int bytes = -1, objects = -1;
};

Result<ValueIndexes> Indexes(const pprof::Profile& p) {
  ValueIndexes ix{SampleIndex(p, "inuse_space"), SampleIndex(p, "inuse_objects")};
  if (ix.bytes < 0) ix = {SampleIndex(p, "alloc_space"), SampleIndex(p, "alloc_objects")};
  if (ix.bytes < 0) return Error::Invalid("not a heap profile: it has no inuse_space values");
  return ix;
}

double ValueAt(const pprof::Sample& s, int i) {
  return i >= 0 && static_cast<size_t>(i) < s.values.size() ? static_cast<double>(s.values[i]) : 0;
}

// Each sample's frames (innermost first, inlined ones expanded), allocator
// frames at the top dropped, keyed by functions and lines.
std::map<std::string, StackValue> Aggregate(const pprof::Profile& p, const ValueIndexes& ix) {
  std::unordered_map<uint64_t, const pprof::Location*> locations;
  for (const auto& l : p.locations) locations[l.id] = &l;
  std::unordered_map<uint64_t, const pprof::Function*> functions;
  for (const auto& f : p.functions) functions[f.id] = &f;
  std::map<std::string, StackValue> out;
  for (const auto& s : p.samples) {
    std::vector<Frame> frames;
    for (uint64_t id : s.location_ids) {
      auto it = locations.find(id);
      if (it == locations.end()) continue;
      const auto& loc = *it->second;
      if (loc.lines.empty()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "0x%" PRIx64, loc.address);
        frames.push_back({buf, "", 0});
      }
      for (const auto& line : loc.lines) {
        auto fn = functions.find(line.function_id);
        if (fn == functions.end()) continue;
        frames.push_back({fn->second->name, fn->second->filename, line.line});
      }
    }
    // What the profiler allocated to answer this very snapshot is not the
    // program's: leave it out of reports and diffs.
    if (std::any_of(frames.begin(), frames.end(), [](const Frame& f) {
          return StartsWith(QualifiedName(f.function), "cppdiag::heap::CollectHeapProfile");
        })) {
      continue;
    }
    size_t skip = 0;
    while (skip + 1 < frames.size() && IsAllocatorFrame(frames[skip].function)) ++skip;
    frames.erase(frames.begin(), frames.begin() + static_cast<ptrdiff_t>(skip));
    std::string key;
    for (const auto& f : frames) key += f.function + "\x1f" + std::to_string(f.line) + "\x1e";
    auto& v = out[key];
    if (v.frames.empty()) v.frames = std::move(frames);
    v.bytes += ValueAt(s, ix.bytes);
    v.objects += ValueAt(s, ix.objects);
  }
  return out;
}

void SortByBytes(std::vector<StackValue>& v) {
  std::stable_sort(v.begin(), v.end(),
                   [](const StackValue& a, const StackValue& b) { return a.bytes > b.bytes; });
}

}  // namespace

std::string Frame::ToString() const {
  if (file.empty()) return function;
  auto slash = file.rfind('/');
  std::string base = slash == std::string::npos ? file : file.substr(slash + 1);
  return function + " at " + base + (line > 0 ? ":" + std::to_string(line) : "");
}

const Frame& StackValue::leaking_frame() const {
  static const Frame kNone{"?", "", 0};
  for (const auto& f : frames) {
    if (!IsLibraryFrame(f.function)) return f;
  }
  return frames.empty() ? kNone : frames.front();
}

bool IsAllocatorFrame(const std::string& function) {
  static const char* const kExact[] = {
      "malloc",        "calloc",         "realloc",         "posix_memalign", "aligned_alloc",
      "memalign",      "valloc",         "pvalloc",         "reallocarray",   "__libc_malloc",
      "__libc_calloc", "__libc_realloc", "__libc_memalign", "strdup",         "strndup"};
  std::string q = QualifiedName(function);
  for (const char* e : kExact) {
    if (q == e) return true;
  }
  if (StartsWith(function, "operator new") || StartsWith(function, "operator delete")) return true;
  return StartsWith(q, "cppdiag::heap::") || StartsWith(q, "std::allocator") ||
         StartsWith(q, "std::__new_allocator") || StartsWith(q, "__gnu_cxx::new_allocator") ||
         StartsWith(q, "std::allocator_traits") ||
         StartsWith(q, "std::_Vector_base::_M_allocate") ||
         StartsWith(q, "std::__allocate_guarded");
}

bool IsLibraryFrame(const std::string& function) {
  if (IsAllocatorFrame(function)) return true;
  std::string q = QualifiedName(function);
  return StartsWith(q, "std::") || StartsWith(q, "__gnu_cxx::") || StartsWith(q, "__cxxabiv1::");
}

pprof::Profile BuildProfile(const cppdiag::heap::HeapProfile& heap, Symbolizer& symbolizer) {
  pprof::Profile p;
  p.sample_types = {{"inuse_objects", "count"}, {"inuse_space", "bytes"}};
  p.default_sample_type = "inuse_space";
  p.period_type = {"space", "bytes"};
  p.period = static_cast<int64_t>(heap.sample_period_bytes);
  p.time_nanos = heap.time_unix_ns;
  p.comments.emplace_back("cppdiag heap snapshot: sampled live heap, unbiased estimates");
  p.comments.push_back("total_allocated_bytes=" + std::to_string(heap.total_allocated_bytes));
  p.comments.push_back("total_freed_bytes=" + std::to_string(heap.total_freed_bytes));

  ProfileLocations where(p, symbolizer);
  for (const auto& stack : heap.stacks) {
    pprof::Sample s;
    for (uint64_t pc : stack.pcs) {
      if (pc != 0) s.location_ids.push_back(where.LocationOf(pc - 1));
    }
    s.values = {std::llround(stack.estimated_count), std::llround(stack.estimated_bytes)};
    p.samples.push_back(std::move(s));
  }
  where.Finish();
  return p;
}

Result<std::vector<StackValue>> StacksByBytes(const pprof::Profile& profile) {
  CPPDIAG_ASSIGN_OR_RETURN(ValueIndexes ix, Indexes(profile));
  std::vector<StackValue> out;
  for (auto& [key, v] : Aggregate(profile, ix)) out.push_back(std::move(v));
  SortByBytes(out);
  return out;
}

Result<std::vector<StackValue>> Growth(const pprof::Profile& before, const pprof::Profile& after) {
  CPPDIAG_ASSIGN_OR_RETURN(ValueIndexes bix, Indexes(before));
  CPPDIAG_ASSIGN_OR_RETURN(ValueIndexes aix, Indexes(after));
  auto b = Aggregate(before, bix);
  std::vector<StackValue> out;
  for (auto& [key, v] : Aggregate(after, aix)) {
    if (auto it = b.find(key); it != b.end()) {
      v.bytes -= it->second.bytes;
      v.objects -= it->second.objects;
    }
    if (v.bytes > 0) out.push_back(std::move(v));
  }
  SortByBytes(out);
  return out;
}

Totals ProfileTotals(const pprof::Profile& profile) {
  Totals t;
  auto stacks = StacksByBytes(profile);
  if (!stacks) return t;
  for (const auto& s : *stacks) {
    t.bytes += s.bytes;
    t.objects += s.objects;
  }
  return t;
}

std::string FormatStacks(const std::vector<StackValue>& stacks, size_t top, size_t max_frames,
                         bool growth) {
  std::string out;
  double total = 0;
  for (const auto& s : stacks) total += s.bytes;
  char buf[256];
  for (size_t i = 0; i < stacks.size() && i < top; ++i) {
    const auto& s = stacks[i];
    std::snprintf(
        buf, sizeof buf, "#%zu  %s%s  %s%.0f objects  (%.1f%%)  in ", i + 1, growth ? "+" : "",
        FormatBytes(static_cast<uint64_t>(std::llround(s.bytes))).c_str(),
        growth && s.objects >= 0 ? "+" : "", s.objects, total > 0 ? 100.0 * s.bytes / total : 0.0);
    out += buf + ForTerminal(QualifiedName(s.leaking_frame().function)) + "\n";
    // Names and files come from the target's binaries, or a profile from
    // anywhere: escaped for the terminal.
    for (size_t f = 0; f < s.frames.size() && f < max_frames; ++f) {
      out += "      " + ForTerminal(s.frames[f].ToString()) + "\n";
    }
    if (s.frames.size() > max_frames) {
      out += "      ... " + std::to_string(s.frames.size() - max_frames) + " more frames\n";
    }
  }
  return out;
}

}  // namespace cppdiag::cli::heap
