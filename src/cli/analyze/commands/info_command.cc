// info: what the core is of and why it was written: executable, command
// line, pid, the signal and faulting address (NT_SIGINFO), the dump type and
// the cppdiag note (reason, time, cgroup usage and limit) when present.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <ctime>

#include "cli/analyze/command.h"
#include "cli/analyze/format.h"
#include "diag/dump/dump_type.h"

namespace cppdiag::cli::analyze {
namespace {

std::string DumpTypeText(uint32_t number) {
  for (const DumpTypeInfo& t : kDumpTypes) {
    if (static_cast<uint32_t>(t.type) == number) return t.name;
  }
  return fmt::format("type {}", number);
}

std::string CgroupBytes(uint64_t v) {
  return v == dump::kCppdiagUnknown ? "unknown" : HumanBytes(v);
}

std::string ExecutablePath(const CoreNotes& notes) {
  if (!notes.auxv || !notes.files) return {};
  for (const AuxvEntry& e : *notes.auxv) {
    if (e.type != AT_ENTRY) continue;
    for (const FileMapping& m : notes.files->mappings) {
      if (e.value >= m.start && e.value < m.end) return std::string(m.path);
    }
  }
  return {};
}

Result<CommandOutput> Info(Session& session, const CommandArgs& args) {
  if (!args.empty()) return Error::Invalid("takes no arguments");
  const CoreNotes& n = session.notes();
  CommandOutput out;
  auto line = [&](std::string_view key, const std::string& value) {
    out.text += fmt::format("{:<18} {}\n", key, value);
  };
  nlohmann::json& j = out.json;
  j = nlohmann::json::object();
  j["file"] = session.path();
  line("dump:", Printable(session.path()));
  std::string exe = ExecutablePath(n);
  if (!exe.empty()) {
    line("executable:", Printable(exe));
    j["executable"] = exe;
  }
  if (n.process) {
    line("command line:", Printable(n.process->psargs));
    line("pid:",
         fmt::format("{} (uid {}, gid {})", n.process->pid, n.process->uid, n.process->gid));
    j["command_line"] = n.process->psargs;
    j["name"] = n.process->fname;
    j["pid"] = n.process->pid;
    j["uid"] = n.process->uid;
    j["gid"] = n.process->gid;
  }
  line("threads:", std::to_string(n.threads.size()));
  j["threads"] = n.threads.size();
  if (n.siginfo) {
    std::string sig = fmt::format("{} (si_code {})", SignalName(n.siginfo->signo), n.siginfo->code);
    if (n.siginfo->fault_address) sig += " at " + ShortAddress(*n.siginfo->fault_address);
    line("signal:", sig);
    j["signal"] = {{"number", n.siginfo->signo},
                   {"name", SignalName(n.siginfo->signo)},
                   {"code", n.siginfo->code}};
    if (n.siginfo->fault_address) j["signal"]["fault_address"] = *n.siginfo->fault_address;
  } else {
    line("signal:", "none recorded (no NT_SIGINFO)");
  }
  uint64_t stored = 0, mapped = 0;
  for (const LoadSegment& s : session.core().loads()) {
    stored += s.filesz;
    mapped += s.memsz;
  }
  line("memory:", fmt::format("{} segments, {} of {} mapped stored", session.core().loads().size(),
                              HumanBytes(stored), HumanBytes(mapped)));
  j["segments"] = session.core().loads().size();
  j["stored_bytes"] = stored;
  j["mapped_bytes"] = mapped;
  if (n.cppdiag) {
    const dump::CppdiagInfo& c = *n.cppdiag;
    std::time_t t = c.unix_time_sec;
    std::tm tm{};
    gmtime_r(&t, &tm);
    line("dump type:", DumpTypeText(c.dump_type) + " (written by cppdiag)");
    line("reason:", Printable(c.reason));
    line("written at:", fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", tm));
    line("cgroup memory:",
         fmt::format("{} used of {} (cgroup v{})", CgroupBytes(c.cgroup_usage_bytes),
                     c.cgroup_limit_bytes == dump::kCppdiagUnknown
                         ? std::string("no limit")
                         : HumanBytes(c.cgroup_limit_bytes),
                     c.cgroup_version));
    if (c.threads_not_captured > 0) {
      line("not captured:",
           fmt::format("{} threads (registers from /proc only)", c.threads_not_captured));
    }
    j["cppdiag"] = {
        {"dump_type", DumpTypeText(c.dump_type)}, {"reason", std::string(c.reason)},
        {"unix_time", c.unix_time_sec},           {"signal", c.signal},
        {"cgroup_version", c.cgroup_version},     {"threads_not_captured", c.threads_not_captured}};
    if (c.cgroup_usage_bytes != dump::kCppdiagUnknown) {
      j["cppdiag"]["cgroup_usage_bytes"] = c.cgroup_usage_bytes;
    }
    if (c.cgroup_limit_bytes != dump::kCppdiagUnknown) {
      j["cppdiag"]["cgroup_limit_bytes"] = c.cgroup_limit_bytes;
    }
  } else {
    line("dump type:", "unknown (no cppdiag note: a kernel or gdb core)");
  }
  return out;
}

}  // namespace

const Command kInfoCommand{"info", "info",
                           "executable, command line, pid, signal and faulting address, dump "
                           "type, cppdiag note",
                           Info};

}  // namespace cppdiag::cli::analyze
