// heap who ADDR: the allocation holding ADDR and the chain of pointers that
// reaches it from a root (the first the scan found: dotnet-dump's gcroot),
// each step the allocation or root holding the pointer and where in it.
#include <fmt/format.h>

#include "cli/analyze/commands/heap_subcommands.h"
#include "cli/analyze/format.h"
#include "cli/analyze/heap_reachability.h"
#include "cli/heap/symbolizer.h"

namespace cppdiag::cli::analyze {
namespace {

// What holds a root word: a module's data, a thread's stack, other memory.
std::string RootText(Session& session, CoreDebugInfo& debug, uint64_t address) {
  for (const ThreadInfo& t : session.notes().threads) {
    const LoadSegment* s = session.core().FindLoad(t.regs.rsp);
    if (s && address >= s->vaddr && address < s->end()) {
      return fmt::format("the stack of thread {} (rsp+{:#x})", t.tid, address - t.regs.rsp);
    }
  }
  uint64_t offset = 0;
  if (std::string module = debug.ModuleNameAt(address, &offset); !module.empty()) {
    std::string sym = debug.SymbolNameAt(address);
    return fmt::format("{}'s data ({}+{:#x}{})", Printable(module), Printable(module), offset,
                       sym.empty() ? "" : ", in " + Printable(heap::Demangle(sym)));
  }
  return "writable memory outside the heap (TLS, anonymous mappings)";
}

}  // namespace

Result<CommandOutput> HeapWho(Session& session, const CommandArgs& args) {
  if (args.size() != 1) return Error::Invalid("usage: heap who ADDR");
  CPPDIAG_ASSIGN_OR_RETURN(uint64_t addr, ParseAddress(args[0]));
  CPPDIAG_ASSIGN_OR_RETURN(GlibcHeap heap, ReadGlibcHeap(session));
  CPPDIAG_ASSIGN_OR_RETURN(CoreDebugInfo * debug, session.debug());
  Reachability r = FindReachable(session, heap);
  int64_t i = r.Find(addr);
  if (i < 0) {
    return Error::Invalid(fmt::format("{:#x} is in no allocation in use", addr));
  }
  CommandOutput out;
  nlohmann::json chain = nlohmann::json::array();
  const HeapChunk* c = r.allocations[i];
  out.text =
      fmt::format("{:#x} is in the allocation at {:#x} ({} bytes)\n", addr, c->data(), c->usable());
  out.json = {{"address", addr}, {"allocation", c->data()}, {"size", c->usable()}};
  if (!r.reached(i)) {
    out.text += "no root reaches it: it is leaked\n";
    out.json["leaked"] = true;
    return out;
  }
  out.json["leaked"] = false;
  for (size_t hops = 0; hops < 256 && i >= 0; ++hops) {
    const Referrer& from = *r.referrer[i];
    if (from.reg >= 0) {
      out.text +=
          fmt::format("  <- register {} of thread {}\n", kX86RegisterNames[from.reg], from.tid);
      chain.push_back({{"register", kX86RegisterNames[from.reg]}, {"tid", from.tid}});
      break;
    }
    int64_t holder = r.Find(from.address);
    if (holder < 0) {
      std::string root = RootText(session, *debug, from.address);
      out.text += fmt::format("  <- {:#x} in {}\n", from.address, root);
      chain.push_back({{"address", from.address}, {"root", root}});
      break;
    }
    const HeapChunk* h = r.allocations[holder];
    out.text += fmt::format("  <- {:#x}: +{:#x} of the allocation at {:#x} ({} bytes)\n",
                            from.address, from.address - h->data(), h->data(), h->usable());
    chain.push_back({{"address", from.address}, {"allocation", h->data()}, {"size", h->usable()}});
    i = holder;
  }
  out.json["chain"] = std::move(chain);
  return out;
}

}  // namespace cppdiag::cli::analyze
