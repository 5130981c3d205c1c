#include "common/status.h"

#include <cstring>

namespace cppdiag {

std::string Error::message() const {
  if (call_.empty()) return detail_.empty() ? std::string(std::strerror(code_)) : detail_;
  std::string out = call_;
  if (!detail_.empty()) out += " " + detail_;
  out += ": ";
  out += std::strerror(code_);
  return out;
}

}  // namespace cppdiag
