// The profile's file: written whole and private, read back (gzipped or not).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "cli/heap/pprof.h"
#include "common/io.h"

namespace cppdiag::cli::pprof {

Status WriteProfileFile(const Profile& profile, const std::string& path, bool overwrite) {
  CPPDIAG_ASSIGN_OR_RETURN(std::string gz, Gzip(Encode(profile)));
  struct stat st {};
  if (!overwrite && ::lstat(path.c_str(), &st) == 0) {
    return Error(EEXIST, "", path + " exists (use --overwrite to replace it)");
  }
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    CPPDIAG_ASSIGN_OR_RETURN(ScopedFd fd,
                             OpenFile(tmp, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0600));
    Status w = WriteAll(fd.get(), gz.data(), gz.size(), tmp.c_str());
    if (w.ok() && ::fsync(fd.get()) != 0) w = Error::FromErrno("fsync", tmp);
    if (!w) {
      ::unlink(tmp.c_str());
      return w.error();
    }
  }
  // link() refuses an existing target atomically; rename() replaces it.
  int rc = overwrite ? ::rename(tmp.c_str(), path.c_str()) : ::link(tmp.c_str(), path.c_str());
  int err = errno;
  if (!(overwrite && rc == 0)) ::unlink(tmp.c_str());
  if (rc != 0) {
    if (err == EEXIST) return Error(EEXIST, "", path + " exists (use --overwrite to replace it)");
    return Error(err, overwrite ? "rename" : "link", path);
  }
  return OkStatus();
}

Result<Profile> ParseProfile(std::string_view data) {
  std::string unzipped;
  if (LooksGzipped(data)) {
    CPPDIAG_ASSIGN_OR_RETURN(unzipped, Gunzip(data));
    data = unzipped;
  }
  CPPDIAG_ASSIGN_OR_RETURN(Profile profile, Decode(data));
  if (profile.sample_types.empty()) return Error::Invalid("not a pprof profile: no sample types");
  return profile;
}

Result<Profile> ReadProfileFile(const std::string& path) {
  auto data = ReadFileToString(path, 1u << 30);
  if (!data) return data.error();
  auto profile = ParseProfile(*data);
  if (!profile) return Error(profile.error().code(), "", path + ": " + profile.error().message());
  return profile;
}

}  // namespace cppdiag::cli::pprof
