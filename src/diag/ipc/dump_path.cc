#include "diag/ipc/dump_path.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <memory>
#include <vector>

namespace cppdiag::ipc {
namespace {

Result<std::string> RealPath(const std::string& path) {
  std::unique_ptr<char, void (*)(void*)> real(::realpath(path.c_str(), nullptr), &::free);
  if (!real) return Error::FromErrno("realpath", path);
  return std::string(real.get());
}

// The components of `path`, without empty ones and ".". False if one is "..".
bool Components(const std::string& path, std::vector<std::string>* out) {
  out->clear();
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(pos, end - pos);
    if (part == "..") return false;
    if (!part.empty() && part != ".") out->push_back(part);
    pos = end + 1;
  }
  return true;
}

// `path` below `dir` (both as components): what follows, or false.
bool Below(const std::vector<std::string>& path, const std::vector<std::string>& dir,
           std::vector<std::string>* rest) {
  if (path.size() <= dir.size()) return false;
  for (size_t i = 0; i < dir.size(); ++i) {
    if (path[i] != dir[i]) return false;
  }
  rest->assign(path.begin() + static_cast<std::ptrdiff_t>(dir.size()), path.end());
  return true;
}

}  // namespace

Result<DumpPath> ResolveDumpPath(const std::string& requested, const std::string& dump_dir,
                                 bool overwrite) {
  if (requested.empty()) return Error::Invalid("empty dump path");
  std::vector<std::string> parts;
  if (!Components(requested, &parts)) {
    return Error(EACCES, "", "dump path '" + requested + "' may not contain '..'");
  }
  if (requested.back() == '/' || parts.empty()) {
    return Error::Invalid("dump path '" + requested + "' names a directory");
  }
  auto real_dir = RealPath(dump_dir);
  if (!real_dir) {
    return Error(
        real_dir.error().code(), "",
        "dump directory " + dump_dir + " (CPPDIAG_DUMP_DIR): " + real_dir.error().message());
  }
  std::vector<std::string> rel = parts;
  if (requested.front() == '/') {
    std::vector<std::string> as_written, as_resolved;
    bool ok = dump_dir.front() == '/' && Components(dump_dir, &as_written) &&
              Below(parts, as_written, &rel);
    if (!ok) ok = Components(*real_dir, &as_resolved) && Below(parts, as_resolved, &rel);
    if (!ok) {
      return Error(EACCES, "",
                   "dump path '" + requested + "' is outside the dump directory " + *real_dir +
                       " (CPPDIAG_DUMP_DIR)");
    }
  }
  DumpPath out;
  std::string at = *real_dir;
  for (size_t i = 0; i < rel.size(); ++i) {
    out.relative += (i == 0 ? "" : "/") + rel[i];
    at += "/" + rel[i];
    struct stat st {};
    bool last = i + 1 == rel.size();
    if (::lstat(at.c_str(), &st) != 0) {
      if (last && errno == ENOENT) break;  // a new dump
      return Error::FromErrno("lstat", at);
    }
    if (S_ISLNK(st.st_mode)) {
      return Error(ELOOP, "",
                   "dump path " + at + " is a symbolic link; refusing (dumps go only in real " +
                       "directories below CPPDIAG_DUMP_DIR)");
    }
    if (!last && !S_ISDIR(st.st_mode)) return Error(ENOTDIR, "", at + " is not a directory");
    if (last && !S_ISREG(st.st_mode)) {
      return Error(EEXIST, "", "dump path " + at + " exists and is not a regular file");
    }
    if (last && !overwrite) {
      return Error(EEXIST, "", "dump path " + at + " exists (ask to overwrite it)");
    }
  }
  out.path = at;
  return out;
}

}  // namespace cppdiag::ipc
