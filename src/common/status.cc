#include "common/status.h"

#include <cstring>

namespace cppdiag {

std::string ErrnoDescription(int err) {
  // strerror's text without its shared buffer (strerror is not thread-safe).
  if (const char* text = ::strerrordesc_np(err)) return text;
  return "Unknown error " + std::to_string(err);
}

std::string Error::message() const {
  if (call_.empty()) return detail_.empty() ? ErrnoDescription(code_) : detail_;
  std::string out = call_;
  if (!detail_.empty()) out += " " + detail_;
  out += ": ";
  out += ErrnoDescription(code_);
  return out;
}

}  // namespace cppdiag
