#include "diag/dump/testing/fake_process_snapshot.h"

#include <cstring>

namespace cppdiag::dump::testing {
namespace {
constexpr uint64_t kPage = 4096;
}

FakeProcessSnapshot::FakeProcessSnapshot() {
  info_.pid = 4242;
  info_.ppid = 1;
  info_.pgrp = 4242;
  info_.sid = 4242;
  std::strncpy(info_.comm, "fake", sizeof info_.comm - 1);
  std::strncpy(info_.psargs, "fake --flag", sizeof info_.psargs - 1);
}

MappingSnapshot& FakeProcessSnapshot::AddMapping(uint64_t start, uint64_t size,
                                                 std::string_view perms, std::string path,
                                                 uint64_t offset, uint64_t inode) {
  auto m = std::make_unique<MappingSnapshot>();
  m->start = start;
  m->end = start + size;
  m->read = perms.size() > 0 && perms[0] == 'r';
  m->write = perms.size() > 1 && perms[1] == 'w';
  m->exec = perms.size() > 2 && perms[2] == 'x';
  m->shared = perms.size() > 3 && perms[3] == 's';
  m->offset = offset;
  if (inode == 0 && !path.empty() && path[0] == '/') {
    inode = 1000 + mappings_.size();
    for (const auto& other : mappings_) {  // the same file, the same inode
      if (other->path == path) inode = other->inode;
    }
  }
  m->inode = inode;
  if (inode != 0) {
    m->dev_major = 8;
    m->dev_minor = 1;
  }
  paths_.push_back(std::make_unique<std::string>(std::move(path)));
  m->path = *paths_.back();
  mappings_.push_back(std::move(m));
  return *mappings_.back();
}

ThreadSnapshot& FakeProcessSnapshot::AddThread(pid_t tid) {
  auto t = std::make_unique<ThreadSnapshot>();
  t->tid = tid;
  t->source = RegisterSource::kSignalFrame;
  threads_.push_back(std::move(t));
  return *threads_.back();
}

void FakeProcessSnapshot::SetBytes(uint64_t addr, std::string_view bytes) {
  SetBytes(addr, bytes.data(), bytes.size());
}

void FakeProcessSnapshot::SetBytes(uint64_t addr, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < len; ++i) {
    uint64_t a = addr + i;
    auto& page = pages_[a & ~(kPage - 1)];
    if (page.empty()) page.resize(kPage, 0);
    page[a & (kPage - 1)] = p[i];
  }
}

void FakeProcessSnapshot::Fill(uint64_t addr, uint64_t len, uint8_t value) {
  std::vector<uint8_t> bytes(len, value);
  SetBytes(addr, bytes.data(), bytes.size());
}

void FakeProcessSnapshot::SetUnreadable(uint64_t addr, uint64_t len) {
  for (uint64_t p = addr & ~(kPage - 1); p < addr + len; p += kPage) unreadable_.insert(p);
}

void FakeProcessSnapshot::SetAuxv(std::vector<std::pair<uint64_t, uint64_t>> entries) {
  auxv_.clear();
  entries.emplace_back(0, 0);  // AT_NULL
  for (auto [k, v] : entries) {
    uint64_t kv[2] = {k, v};
    auxv_.insert(auxv_.end(), reinterpret_cast<uint8_t*>(kv), reinterpret_cast<uint8_t*>(kv + 2));
  }
}

bool FakeProcessSnapshot::Readable(uint64_t page) const {
  if (unreadable_.count(page)) return false;
  size_t i = FindMapping(*this, page);
  return i != SIZE_MAX;
}

ssize_t FakeProcessSnapshot::ReadMemory(uint64_t addr, void* buf, size_t len) const {
  ++reads_;
  auto* out = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    uint64_t a = addr + done;
    uint64_t page = a & ~(kPage - 1);
    if (!Readable(page)) break;
    size_t n = std::min<uint64_t>(len - done, page + kPage - a);
    auto it = pages_.find(page);
    if (it == pages_.end()) {
      std::memset(out + done, 0, n);
    } else {
      std::memcpy(out + done, it->second.data() + (a - page), n);
    }
    done += n;
  }
  if (done == 0 && len > 0) return -EIO;
  return static_cast<ssize_t>(done);
}

int FakeProcessSnapshot::QueryPages(uint64_t addr, size_t npages, uint8_t* flags) const {
  if (!page_queries_) return ENOSYS;
  for (size_t i = 0; i < npages; ++i) {
    uint64_t page = addr + i * kPage;
    auto it = page_flags_.find(page);
    if (it != page_flags_.end()) {
      flags[i] = it->second;
    } else if (pages_.count(page)) {
      // A written page of a file mapping is the file's page-cache page unless
      // the test says it is a private copy.
      size_t m = FindMapping(*this, page);
      bool file = m != SIZE_MAX && mappings_[m]->file_backed();
      flags[i] = kPagePresent | (file ? kPageFileOrSharedAnon : 0);
    } else {
      flags[i] = 0;
    }
  }
  return 0;
}

}  // namespace cppdiag::dump::testing
