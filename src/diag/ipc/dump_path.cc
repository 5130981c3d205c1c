#include "diag/ipc/dump_path.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <memory>

namespace cppdiag::ipc {
namespace {

Result<std::string> RealPath(const std::string& path) {
  std::unique_ptr<char, void (*)(void*)> real(::realpath(path.c_str(), nullptr), &::free);
  if (!real) return Error::FromErrno("realpath", path);
  return std::string(real.get());
}

bool HasDotDot(const std::string& path) {
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    if (path.compare(pos, end - pos, "..") == 0 && end - pos == 2) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

Result<std::string> ResolveDumpPath(const std::string& requested, const std::string& dump_dir,
                                    bool overwrite) {
  if (requested.empty()) return Error::Invalid("empty dump path");
  if (HasDotDot(requested)) {
    return Error(EACCES, "", "dump path '" + requested + "' may not contain '..'");
  }
  auto dir = RealPath(dump_dir);
  if (!dir) {
    return Error(dir.error().code(), "",
                 "dump directory " + dump_dir + " (CPPDIAG_DUMP_DIR): " + dir.error().message());
  }
  std::string path = requested.front() == '/' ? requested : dump_dir + "/" + requested;
  size_t slash = path.rfind('/');
  std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  std::string name = path.substr(slash + 1);
  if (name.empty()) return Error::Invalid("dump path '" + requested + "' names a directory");
  auto real_parent = RealPath(parent);
  if (!real_parent) return real_parent.error();
  if (*real_parent != *dir && real_parent->rfind(*dir + "/", 0) != 0) {
    return Error(EACCES, "",
                 "dump path '" + requested + "' is outside the dump directory " + *dir +
                     " (CPPDIAG_DUMP_DIR)");
  }
  std::string final_path = *real_parent + "/" + name;
  struct stat st {};
  if (::lstat(final_path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return Error(EACCES, "", "dump path " + final_path + " is a symbolic link; refusing");
    }
    if (!S_ISREG(st.st_mode)) {
      return Error(EEXIST, "", "dump path " + final_path + " exists and is not a regular file");
    }
    if (!overwrite) {
      return Error(EEXIST, "", "dump path " + final_path + " exists (ask to overwrite it)");
    }
  }
  return final_path;
}

}  // namespace cppdiag::ipc
