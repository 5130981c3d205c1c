#include "common/proc.h"

#include <dirent.h>

#include <algorithm>
#include <charconv>
#include <memory>

#include "common/io.h"
#include "common/parse.h"

namespace cppdiag {
namespace {

std::string PidPath(const std::string& root, pid_t pid, const char* leaf) {
  return root + "/" + std::to_string(pid) + "/" + leaf;
}

// Parses an unsigned number in `base` at the front of `s` and drops it.
template <typename T>
bool TakeNumber(std::string_view* s, T* out, int base = 10) {
  auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), *out, base);
  if (ec != std::errc() || ptr == s->data()) return false;
  s->remove_prefix(static_cast<size_t>(ptr - s->data()));
  return true;
}

bool TakeChar(std::string_view* s, char c) {
  if (s->empty() || s->front() != c) return false;
  s->remove_prefix(1);
  return true;
}

void SkipSpaces(std::string_view* s) {
  while (!s->empty() && (s->front() == ' ' || s->front() == '\t')) s->remove_prefix(1);
}

Result<std::vector<pid_t>> ListNumericEntries(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) return Error::FromErrno("opendir", dir);
  std::vector<pid_t> out;
  while (dirent* e = ::readdir(d.get())) {
    pid_t pid = 0;
    std::string_view name(e->d_name);
    if (TakeNumber(&name, &pid) && name.empty()) out.push_back(pid);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> SplitNul(const std::string& data) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t end = data.find('\0', pos);
    if (end == std::string::npos) end = data.size();
    out.emplace_back(data, pos, end - pos);
    pos = end + 1;
  }
  return out;
}

}  // namespace

Result<ProcStatus> ParseProcStatus(std::string_view text) {
  ProcStatus st;
  bool have_pid = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::string_view val = line.substr(colon + 1);
    SkipSpaces(&val);
    uint64_t n = 0;
    if (key == "Name") {
      st.name = std::string(val);
    } else if (key == "Pid") {
      have_pid = TakeNumber(&val, &st.pid);
    } else if (key == "PPid") {
      TakeNumber(&val, &st.ppid);
    } else if (key == "Uid") {
      TakeNumber(&val, &st.real_uid);
      SkipSpaces(&val);
      TakeNumber(&val, &st.effective_uid);
    } else if (key == "Threads") {
      TakeNumber(&val, &st.threads);
    } else if (key == "VmSize" && TakeNumber(&val, &n)) {
      st.vm_size_bytes = n * 1024;
    } else if (key == "VmRSS" && TakeNumber(&val, &n)) {
      st.vm_rss_bytes = n * 1024;
    } else if (key == "VmHWM" && TakeNumber(&val, &n)) {
      st.vm_hwm_bytes = n * 1024;
    }
  }
  if (!have_pid) return Error::Invalid("malformed /proc status: no Pid line");
  return st;
}

Result<ProcStatus> ReadProcStatus(pid_t pid, const std::string& proc_root) {
  CPPDIAG_ASSIGN_OR_RETURN(std::string text, ReadFileToString(PidPath(proc_root, pid, "status")));
  return ParseProcStatus(text);
}

Result<ProcStat> ParseProcStat(std::string_view line) {
  ProcStat st;
  size_t open = line.find('(');
  size_t close = line.rfind(')');  // comm may itself contain ')'
  std::string_view head = line.substr(0, open);
  if (open == std::string_view::npos || close == std::string_view::npos || close < open ||
      !TakeNumber(&head, &st.pid)) {
    return Error::Invalid("malformed /proc stat line");
  }
  st.comm = std::string(line.substr(open + 1, close - open - 1));
  std::string_view rest = line.substr(close + 1);
  SkipSpaces(&rest);
  if (rest.empty()) return Error::Invalid("malformed /proc stat line: no state");
  st.state = rest.front();
  rest.remove_prefix(1);
  // Fields after state, numbered as in proc(5) from 4 (ppid).
  std::vector<std::string_view> f;
  while (!rest.empty()) {
    SkipSpaces(&rest);
    size_t end = rest.find(' ');
    f.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  auto field = [&](int n) { return f.size() > size_t(n - 4) ? f[n - 4] : std::string_view(); };
  if (f.size() < 21) return Error::Invalid("malformed /proc stat line: too few fields");
  auto num = [&](int n, auto* out) {
    std::string_view s = field(n);
    return TakeNumber(&s, out);
  };
  bool ok = num(4, &st.ppid) && num(5, &st.pgrp) && num(10, &st.minor_faults) &&
            num(12, &st.major_faults) && num(14, &st.utime_ticks) && num(15, &st.stime_ticks) &&
            num(20, &st.num_threads) && num(22, &st.start_time_ticks) && num(23, &st.vsize_bytes) &&
            num(24, &st.rss_pages);
  if (!ok) return Error::Invalid("malformed /proc stat line: bad number");
  return st;
}

Result<ProcStat> ReadProcStat(pid_t pid, const std::string& proc_root) {
  CPPDIAG_ASSIGN_OR_RETURN(std::string text, ReadFileToString(PidPath(proc_root, pid, "stat")));
  return ParseProcStat(text);
}

bool ParseMapsLine(std::string_view line, MapsLine* out) {
  std::string_view s = line;  // what is left to parse
  MapsLine m;
  if (!TakeNumber(&s, &m.start, 16) || !TakeChar(&s, '-') || !TakeNumber(&s, &m.end, 16) ||
      !TakeChar(&s, ' ') || s.size() < 4) {
    return false;
  }
  m.read = s[0] == 'r';
  m.write = s[1] == 'w';
  m.exec = s[2] == 'x';
  m.shared = s[3] == 's';
  s.remove_prefix(4);
  if (!TakeChar(&s, ' ') || !TakeNumber(&s, &m.offset, 16) || !TakeChar(&s, ' ') ||
      !TakeNumber(&s, &m.dev_major, 16) || !TakeChar(&s, ':') ||
      !TakeNumber(&s, &m.dev_minor, 16) || !TakeChar(&s, ' ') || !TakeNumber(&s, &m.inode)) {
    return false;
  }
  SkipSpaces(&s);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  m.path = s;
  *out = m;
  return true;
}

Result<std::vector<MemoryMapping>> ParseMaps(std::string_view text) {
  std::vector<MemoryMapping> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty()) continue;
    MapsLine m;
    if (!ParseMapsLine(line, &m)) {
      return Error::Invalid("malformed maps line: " + std::string(line));
    }
    MemoryMapping owned;
    static_cast<MappingRange&>(owned) = m;
    owned.path = std::string(m.path);
    out.push_back(std::move(owned));
  }
  return out;
}

Result<std::vector<MemoryMapping>> ReadMaps(pid_t pid, const std::string& proc_root) {
  CPPDIAG_ASSIGN_OR_RETURN(std::string text, ReadFileToString(PidPath(proc_root, pid, "maps")));
  return ParseMaps(text);
}

Result<std::map<std::string, std::string>> ReadEnviron(pid_t pid, const std::string& proc_root) {
  CPPDIAG_ASSIGN_OR_RETURN(std::string data, ReadFileToString(PidPath(proc_root, pid, "environ")));
  std::map<std::string, std::string> env;
  for (const std::string& entry : SplitNul(data)) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

Result<std::vector<std::string>> ReadCmdline(pid_t pid, const std::string& proc_root) {
  CPPDIAG_ASSIGN_OR_RETURN(std::string data, ReadFileToString(PidPath(proc_root, pid, "cmdline")));
  return SplitNul(data);
}

Result<std::vector<pid_t>> ListPids(const std::string& proc_root) {
  return ListNumericEntries(proc_root);
}

Result<std::vector<pid_t>> ListThreads(pid_t pid, const std::string& proc_root) {
  return ListNumericEntries(proc_root + "/" + std::to_string(pid) + "/task");
}

}  // namespace cppdiag
