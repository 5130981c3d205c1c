#include "cli/analyze/heap_reachability.h"

#include <algorithm>
#include <cstring>

namespace cppdiag::cli::analyze {

int64_t Reachability::Find(uint64_t address) const {
  auto it = std::upper_bound(allocations.begin(), allocations.end(), address,
                             [](uint64_t a, const HeapChunk* c) { return a < c->address; });
  if (it == allocations.begin()) return -1;
  --it;
  return address < (*it)->address + (*it)->size ? it - allocations.begin() : -1;
}

namespace {

class Marker {
 public:
  Marker(const CoreFile& core, Reachability* r) : core_(core), r_(r) {}

  void Candidate(uint64_t value, const Referrer& from) {
    int64_t i = r_->Find(value);
    if (i < 0 || r_->referrer[i]) return;
    r_->referrer[i] = from;
    work_.push_back(static_cast<size_t>(i));
  }

  // Every aligned word of [start, end) as a candidate.
  void ScanRange(uint64_t start, uint64_t end) {
    start = (start + 7) & ~uint64_t{7};
    if (end <= start) return;
    auto pieces = core_.ReadMemory(start, end - start);
    if (!pieces) return;
    for (const MemoryPiece& p : *pieces) {
      if (!p.stored()) continue;
      for (uint64_t off = 0; off + 8 <= p.size; off += 8) {
        uint64_t v;
        std::memcpy(&v, p.data.data() + off, 8);
        if (v >= min_ && v < max_) Candidate(v, {.address = p.vaddr + off});
      }
    }
  }

  void Drain() {
    while (!work_.empty()) {
      const HeapChunk* c = r_->allocations[work_.back()];
      work_.pop_back();
      ScanRange(c->data(), c->address + c->size);
    }
  }

  void SetBounds(uint64_t min, uint64_t max) {
    min_ = min;
    max_ = max;
  }

 private:
  const CoreFile& core_;
  Reachability* r_;
  std::vector<size_t> work_;
  uint64_t min_ = 0, max_ = 0;
};

}  // namespace

Reachability FindReachable(Session& session, const GlibcHeap& heap) {
  Reachability r;
  // Heap ranges: runs of adjacent chunks (of any state), not roots.
  std::vector<const HeapChunk*> all;
  for (const HeapChunk& c : heap.chunks) {
    all.push_back(&c);
    if (c.state == ChunkState::kInUse || c.state == ChunkState::kMmapped) {
      r.allocations.push_back(&c);
    }
  }
  auto by_address = [](const HeapChunk* a, const HeapChunk* b) { return a->address < b->address; };
  std::sort(all.begin(), all.end(), by_address);
  std::sort(r.allocations.begin(), r.allocations.end(), by_address);
  r.referrer.assign(r.allocations.size(), std::nullopt);
  std::vector<std::pair<uint64_t, uint64_t>> heap_ranges;
  for (const HeapChunk* c : all) {
    if (!heap_ranges.empty() && heap_ranges.back().second == c->address) {
      heap_ranges.back().second = c->address + c->size;
    } else {
      heap_ranges.emplace_back(c->address, c->address + c->size);
    }
  }
  Marker m(session.core(), &r);
  if (!r.allocations.empty()) {
    m.SetBounds(r.allocations.front()->address,
                r.allocations.back()->address + r.allocations.back()->size);
  }
  const CoreNotes& notes = session.notes();
  for (const ThreadInfo& t : notes.threads) {
    uint64_t regs[kX86RegisterCount];
    std::memcpy(regs, &t.regs, sizeof regs);
    for (size_t k = 0; k < kX86RegisterCount; ++k) {
      m.Candidate(regs[k], {.address = 0, .tid = t.tid, .reg = static_cast<int>(k)});
    }
  }
  for (const LoadSegment& s : session.core().loads()) {
    if (!(s.flags & 2) || s.filesz == 0) continue;
    uint64_t start = s.vaddr, end = s.vaddr + s.filesz;
    // A thread's stack: only from its rsp (and red zone) up; below is dead.
    for (const ThreadInfo& t : notes.threads) {
      if (t.regs.rsp >= s.vaddr && t.regs.rsp < s.end()) {
        start = std::max(start, t.regs.rsp >= 128 ? t.regs.rsp - 128 : 0);
      }
    }
    // The segment less the heap ranges inside it.
    uint64_t at = start;
    auto it = std::lower_bound(heap_ranges.begin(), heap_ranges.end(),
                               std::make_pair(start, uint64_t{0}));
    if (it != heap_ranges.begin() && std::prev(it)->second > start) --it;
    for (; it != heap_ranges.end() && it->first < end; ++it) {
      if (it->first > at) m.ScanRange(at, it->first);
      at = std::max(at, it->second);
    }
    if (at < end) m.ScanRange(at, end);
    m.Drain();
  }
  m.Drain();
  return r;
}

}  // namespace cppdiag::cli::analyze
