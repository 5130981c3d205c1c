// heap types [N]: the chunks in use (and mmapped) grouped by what they hold:
// a chunk whose first word points into a `vtable for T` symbol (_ZTV...) is
// a T; the others are grouped by chunk size. Count and bytes, largest first
// (dotnet-dump's `dumpheap -stat`, chap's `summarize used`).
#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "cli/analyze/commands/heap_subcommands.h"
#include "cli/analyze/format.h"
#include "cli/analyze/glibc_heap_reader.h"
#include "cli/heap/symbolizer.h"

namespace cppdiag::cli::analyze {
namespace {

struct Group {
  std::string type;  // empty: by size
  uint64_t chunk_size = 0;
  uint64_t count = 0, bytes = 0;
};

// "Widget" for a vtable symbol, or empty.
std::string TypeOfVtable(const std::string& symbol) {
  if (!symbol.starts_with("_ZTV")) return {};
  std::string d = heap::Demangle(symbol);
  constexpr std::string_view kPrefix = "vtable for ";
  return d.starts_with(kPrefix) ? d.substr(kPrefix.size()) : d;
}

}  // namespace

CommandOutput GroupChunks(Session& session, CoreDebugInfo& debug,
                          const std::vector<const HeapChunk*>& chunks, uint64_t top) {
  CoreWords words(session.core());
  std::unordered_map<uint64_t, std::string> type_of;  // first word -> type ("" none)
  std::unordered_map<std::string, Group> by_type;
  std::unordered_map<uint64_t, Group> by_size;
  for (const HeapChunk* c : chunks) {
    std::string type;
    // Only first words inside a module can be vtable pointers: only those are looked up.
    if (auto first = words.At(c->data()); first && debug.ModuleAt(*first) != nullptr) {
      auto it = type_of.find(*first);
      if (it == type_of.end()) {
        it = type_of.emplace(*first, TypeOfVtable(debug.SymbolNameAt(*first))).first;
      }
      type = it->second;
    }
    Group& g = type.empty() ? by_size[c->size] : by_type[type];
    if (type.empty()) {
      g.chunk_size = c->size;
    } else {
      g.type = type;
    }
    ++g.count;
    g.bytes += c->size;
  }
  std::vector<Group> groups;
  groups.reserve(by_type.size() + by_size.size());
  for (auto& [_, g] : by_type) groups.push_back(std::move(g));
  for (auto& [_, g] : by_size) groups.push_back(std::move(g));
  std::sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.type < b.type;
  });
  CommandOutput out;
  out.json = nlohmann::json::array();
  out.text = fmt::format("{:>10} {:>12}  {}\n", "COUNT", "BYTES", "TYPE (by vtable) or chunk size");
  for (size_t i = 0; i < groups.size() && i < top; ++i) {
    const Group& g = groups[i];
    std::string what =
        g.type.empty() ? fmt::format("({} bytes each)", g.chunk_size) : Printable(g.type);
    out.text += fmt::format("{:>10} {:>12}  {}\n", g.count, HumanBytes(g.bytes), what);
    nlohmann::json j = {{"count", g.count}, {"bytes", g.bytes}};
    if (g.type.empty()) {
      j["chunk_size"] = g.chunk_size;
    } else {
      j["type"] = g.type;
    }
    out.json.push_back(std::move(j));
  }
  if (groups.size() > top) out.text += fmt::format("({} more groups)\n", groups.size() - top);
  return out;
}

Result<uint64_t> TopArgument(const CommandArgs& args, const char* usage) {
  if (args.size() > 1) return Error::Invalid(std::string("usage: ") + usage);
  if (args.empty()) return uint64_t{30};
  return ParseCount(args[0], UINT32_MAX);
}

Result<CommandOutput> HeapTypes(Session& session, const CommandArgs& args) {
  CPPDIAG_ASSIGN_OR_RETURN(uint64_t top, TopArgument(args, "heap types [N]"));
  CPPDIAG_ASSIGN_OR_RETURN(GlibcHeap heap, ReadGlibcHeap(session));
  CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo * debug, session.debug());
  std::vector<const HeapChunk*> chunks;
  for (const HeapChunk& c : heap.chunks) {
    if (c.state == ChunkState::kInUse || c.state == ChunkState::kMmapped) chunks.push_back(&c);
  }
  CommandOutput out = GroupChunks(session, *debug, chunks, top);
  for (const std::string& w : heap.warnings) out.text += "warning: " + w + "\n";
  // As heap leaked's: the groups, and what the walk could not read.
  out.json = {
      {"allocations", chunks.size()}, {"groups", std::move(out.json)}, {"warnings", heap.warnings}};
  return out;
}

}  // namespace cppdiag::cli::analyze
