#include "diag/config.h"

#include <unistd.h>

namespace cppdiag {
namespace {

Result<bool> ParseBool(const std::string& name, const std::string& v) {
  if (v == "1" || v == "true" || v == "on" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "off" || v == "no" || v.empty()) return false;
  return Error::Invalid(name + "='" + v + "': expected 1 or 0");
}

Error Named(const std::string& name, const Error& e) {
  return Error::Invalid(name + ": " + e.message());
}

}  // namespace

std::map<std::string, std::string> CurrentEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    size_t eq = entry.find('=');
    if (eq != std::string::npos && eq > 0) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

Result<DiagConfig> ParseDiagConfig(const std::map<std::string, std::string>& env,
                                   std::optional<SizeOrPercent> default_heap_limit) {
  DiagConfig c;
  auto get = [&](const char* name) -> const std::string* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : &it->second;
  };
  if (const auto* v = get("TMPDIR"); v && !v->empty()) c.tmpdir = *v;
  if (const auto* v = get("CPPDIAG_ENABLE_DIAGNOSTICS")) {
    CPPDIAG_ASSIGN_OR_RETURN(c.enable_diagnostics, ParseBool("CPPDIAG_ENABLE_DIAGNOSTICS", *v));
  }
  if (const auto* v = get("CPPDIAG_ENABLE_DUMP_ON_CRASH")) {
    CPPDIAG_ASSIGN_OR_RETURN(c.enable_dump_on_crash, ParseBool("CPPDIAG_ENABLE_DUMP_ON_CRASH", *v));
  }
  if (const auto* v = get("CPPDIAG_DUMP_TYPE")) {
    auto t = ParseDumpType(*v);
    if (!t) return Named("CPPDIAG_DUMP_TYPE", t.error());
    c.dump_type = *t;
  }
  c.dump_name = c.tmpdir + "/core.%e.%p.%t";
  if (const auto* v = get("CPPDIAG_DUMP_NAME"); v && !v->empty()) c.dump_name = *v;
  size_t slash = c.dump_name.rfind('/');
  c.dump_dir = slash == std::string::npos ? "." : slash == 0 ? "/" : c.dump_name.substr(0, slash);
  if (const auto* v = get("CPPDIAG_DUMP_DIR"); v && !v->empty()) c.dump_dir = *v;

  c.heap_hard_limit = default_heap_limit;
  if (const auto* v = get("CPPDIAG_HEAP_HARD_LIMIT")) {
    if (*v == "0") {
      c.heap_hard_limit.reset();
    } else {
      auto l = ParseSizeOrPercent(*v);
      if (!l) return Named("CPPDIAG_HEAP_HARD_LIMIT", l.error());
      c.heap_hard_limit = *l;
    }
  }
  if (const auto* v = get("CPPDIAG_OOM_DUMP_THRESHOLD"); v && !v->empty()) {
    auto p = ParsePercent(*v);
    if (!p) return Named("CPPDIAG_OOM_DUMP_THRESHOLD", p.error());
    c.oom_dump_threshold = *p;
  }
  if (const auto* v = get("CPPDIAG_HEAP_SAMPLE_BYTES")) {
    auto n = ParseSize(*v);
    if (!n) return Named("CPPDIAG_HEAP_SAMPLE_BYTES", n.error());
    c.heap_sample_bytes = *n;
  }
  return c;
}

}  // namespace cppdiag
