// PrepareSelfDump: normal context (it allocates, reads /proc with the usual
// helpers). It reserves, up front, everything the dump path needs, so that
// the dump path itself (self_dump.cc) never allocates.
#include <sys/auxv.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "common/cgroup.h"
#include "common/io.h"
#include "diag/dump/internal/self_dump_state.h"

namespace cppdiag::dump {
namespace {

using internal::State;

constexpr size_t kBytesPerMapsLine = 128;

// The auxiliary vector from getauxval, for when /proc/self/auxv is refused
// (a non-dumpable process): debuggers need AT_PHDR and AT_ENTRY to place a
// PIE executable, AT_SYSINFO_EHDR for the vDSO.
size_t AuxvFromGetauxval(uint8_t* out, size_t capacity) {
  size_t n = 0;
  for (uint64_t type = 1; type < 64 && n + 32 <= capacity; ++type) {
    if (type == AT_IGNORE) continue;
    errno = 0;
    uint64_t value = ::getauxval(type);
    if (value == 0 && errno == ENOENT) continue;
    uint64_t kv[2] = {type, value};
    std::memcpy(out + n, kv, sizeof kv);
    n += sizeof kv;
  }
  std::memset(out + n, 0, 16);  // AT_NULL
  return n + 16;
}

// What the core's notes say of the process and never changes: auxv, comm,
// the command line, the executable's name (for %e).
void LoadStatic(State* s) {
  if (auto auxv = ReadFileToString("/proc/self/auxv", internal::kAuxvBytes);
      auxv && !auxv->empty()) {
    s->auxv_size = std::min(auxv->size(), internal::kAuxvBytes);
    std::memcpy(s->auxv, auxv->data(), s->auxv_size);
  } else {
    s->auxv_size = AuxvFromGetauxval(s->auxv, internal::kAuxvBytes);
  }
  if (auto comm = ReadFileToString("/proc/self/comm", 64)) {
    std::string c = *comm;
    while (!c.empty() && c.back() == '\n') c.pop_back();
    std::strncpy(s->comm, c.c_str(), sizeof s->comm - 1);
  }
  if (auto cmdline = ReadFileToString("/proc/self/cmdline", 4096)) {
    std::string args = *cmdline;
    while (!args.empty() && args.back() == '\0') args.pop_back();
    for (char& c : args) c = c == '\0' ? ' ' : c;
    std::strncpy(s->psargs, args.c_str(), sizeof s->psargs - 1);
  }
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string name = s->comm;
  if (n > 0) {
    std::string path(exe, static_cast<size_t>(n));
    if (path.ends_with(" (deleted)")) path.resize(path.size() - 10);
    name = path.substr(path.rfind('/') + 1);
  }
  std::strncpy(s->exe, name.c_str(), sizeof s->exe - 1);
}

Status Configure(State* s, const SelfDumpConfig& c) {
  std::string tmpl = c.name_template;
  if (tmpl.empty()) {
    const char* tmpdir = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe): at start
    tmpl = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/core.%e.%p.%t";
  }
  if (tmpl.size() >= sizeof s->name_template) {
    return Error(ENAMETOOLONG, "", "dump name template is too long");
  }
  if (c.dump_dir.size() >= sizeof s->dump_dir) {
    return Error(ENAMETOOLONG, "", "dump directory (CPPDIAG_DUMP_DIR) is too long");
  }
  std::string usage_path;
  int version = c.cgroup_version;
  std::string dir = c.cgroup_dir;
  uint64_t limit = c.cgroup_limit_bytes.value_or(kCppdiagUnknown);
  if (version == 0) {
    if (auto mem = CgroupReader().ReadMemory(); mem.ok()) {
      version = mem->version;
      dir = mem->dir;
      if (!c.cgroup_limit_bytes && mem->limit_bytes) limit = *mem->limit_bytes;
    }
  }
  if (version == 1 || version == 2) {
    usage_path = dir + (version == 1 ? "/memory.usage_in_bytes" : "/memory.current");
  }
  if (usage_path.size() >= sizeof s->cgroup_usage_path) usage_path.clear();
  std::string limit_path;
  if (!usage_path.empty()) {
    limit_path = dir + (version == 1 ? "/memory.limit_in_bytes" : "/memory.max");
  }

  // Under the dump lock, so a dump never sees half a template.
  internal::ScopedDumpLock lock(&s->lock, /*wait=*/true);
  if (lock.error() != 0) return Error(lock.error(), "", "reconfigure during a dump");
  std::memcpy(s->name_template, tmpl.c_str(), tmpl.size() + 1);
  s->cgroup_version = usage_path.empty() ? 0 : version;
  std::memset(s->cgroup_usage_path, 0, sizeof s->cgroup_usage_path);
  std::memcpy(s->cgroup_usage_path, usage_path.c_str(), usage_path.size());
  std::memset(s->cgroup_limit_path, 0, sizeof s->cgroup_limit_path);
  std::memcpy(s->cgroup_limit_path, limit_path.c_str(), limit_path.size());
  s->cgroup_limit = limit;
  s->timeout_ms = c.thread_timeout_ms;
  s->writeback_bytes = c.writeback_bytes;
  s->writer_stall_timeout_ms = c.writer_stall_timeout_ms;
  s->default_type.store(static_cast<int>(c.default_type));
  if (c.dump_dir != s->dump_dir || s->dump_dir_fd.load() < 0) {
    internal::CloseOwned(&s->dump_dir_fd);
    std::memcpy(s->dump_dir, c.dump_dir.c_str(), c.dump_dir.size() + 1);
    // A directory missing now is opened when the first request needs it;
    // the crash handler and the watchdog do not need it.
    (void)internal::OpenDumpDir(s);
  }
  return OkStatus();
}

Status Allocate(State* s, const SelfDumpConfig& c) {
  s->max_mappings = std::max<size_t>(c.max_mappings, 64);
  s->maps_capacity = (s->max_mappings * kBytesPerMapsLine + 4095) & ~size_t{4095};
  size_t mapping_bytes = (s->max_mappings * sizeof(MappingSnapshot) + 4095) & ~size_t{4095};
  // Populated now: charged to the cgroup before a dump near its limit needs it.
  s->region = ScopedMmap::Anonymous(s->maps_capacity + mapping_bytes + internal::kSinkBufferBytes,
                                    /*populate=*/true);
  if (!s->region.ok()) return Error::FromErrno("mmap", "self-dump buffers");
  auto* bytes = static_cast<uint8_t*>(s->region.get());
  s->maps_text = reinterpret_cast<char*>(bytes);
  s->mappings = reinterpret_cast<MappingSnapshot*>(bytes + s->maps_capacity);
  s->sink_buffer = bytes + s->maps_capacity + mapping_bytes;

  // Partial inclusions: a stack per thread, a header page per mapping, and
  // the module list (a few ranges per module).
  size_t extra = c.max_threads + size_t{4} * 4096;
  auto writer = CoreWriterBuffersOwner::Allocate(s->max_mappings, extra, c.io_buffer_bytes);
  if (!writer) return writer.error();
  s->writer.emplace(std::move(*writer));

  int signal = c.capture_signal != 0 ? c.capture_signal : SIGRTMAX - 3;
  CPPDIAG_RETURN_IF_ERROR(InstallThreadCapture(signal, c.max_threads));
  if (int err = internal::OpenProcFiles(s)) return Error(err, "open", "/proc/self files");
  s->reserve.Fill();

  s->report = internal::MapReportPage(nullptr);
  if (s->report == nullptr) return Error::FromErrno("mmap", "self-dump shared page");

  LoadStatic(s);
  s->snapshot.SetStatic(s->auxv, s->auxv_size, s->comm, s->psargs);
  s->xsave_layout_size = BuildXsaveLayout(s->xsave_layout, sizeof s->xsave_layout);
  s->snapshot.SetXsaveLayout(s->xsave_layout, s->xsave_layout_size);
  return OkStatus();
}

}  // namespace

Status PrepareSelfDump(const SelfDumpConfig& config) {
  State* s = internal::g_state.load();
  if (s == nullptr) {
    auto owned = std::make_unique<State>();
    CPPDIAG_RETURN_IF_ERROR(Allocate(owned.get(), config));
    CPPDIAG_RETURN_IF_ERROR(Configure(owned.get(), config));
    internal::g_state.store(owned.release(), std::memory_order_release);  // lives until exit
    return OkStatus();
  }
  return Configure(s, config);
}

}  // namespace cppdiag::dump
