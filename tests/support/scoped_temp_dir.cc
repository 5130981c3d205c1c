#include "support/scoped_temp_dir.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <utility>

namespace cppdiag::testing {

ScopedTempDir::ScopedTempDir(std::string_view prefix, std::string_view base) {
  std::string tmpl = std::string(base) + "/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  path_ = std::move(tmpl);
}

ScopedTempDir::~ScopedTempDir() { Remove(); }

ScopedTempDir::ScopedTempDir(ScopedTempDir&& other) noexcept
    : path_(std::exchange(other.path_, {})) {}

ScopedTempDir& ScopedTempDir::operator=(ScopedTempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

std::string ScopedTempDir::Join(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

std::string ScopedTempDir::Release() { return std::exchange(path_, {}); }

void ScopedTempDir::Remove() {
  if (path_.empty()) return;
  if (std::getenv("CPPDIAG_KEEP_TEST_OUTPUT") == nullptr) {
    std::error_code ec;  // a test that made a file unremovable must not throw here
    std::filesystem::remove_all(path_, ec);
  }
  path_.clear();
}

}  // namespace cppdiag::testing
