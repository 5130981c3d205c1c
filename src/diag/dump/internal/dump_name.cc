// Async-signal-safe: nothing here allocates, locks or uses stdio.
#include "diag/dump/internal/dump_name.h"

#include <cerrno>

#include "common/async_safe.h"

namespace cppdiag::dump {
namespace {

class Out {
 public:
  Out(char* buf, size_t size) : buf_(buf), size_(size) {}
  void Char(char c) {
    if (size_ == 0) return;
    if (len_ + 1 < size_) {
      buf_[len_++] = c;
    } else {
      overflow_ = true;
    }
  }
  // A value: '/' would add directories, so it becomes '_'.
  void Value(const char* s) {
    for (; s != nullptr && *s != '\0'; ++s) Char(*s == '/' ? '_' : *s);
  }
  void Number(int64_t v) {
    char digits[kMaxDecimalChars];
    size_t n = FormatDecimal(v, digits, sizeof digits);
    for (size_t i = 0; i < n; ++i) Char(digits[i]);
  }
  int Finish() {
    if (size_ == 0) return ENAMETOOLONG;
    buf_[len_] = '\0';
    return overflow_ ? ENAMETOOLONG : 0;
  }

 private:
  char* buf_;
  size_t size_;
  size_t len_ = 0;
  bool overflow_ = false;
};

}  // namespace

int ExpandDumpName(std::string_view tmpl, const DumpNameVars& vars, char* out, size_t out_size) {
  Out o(out, out_size);
  for (size_t i = 0; i < tmpl.size(); ++i) {
    char c = tmpl[i];
    if (c != '%' || i + 1 == tmpl.size()) {
      o.Char(c);
      continue;
    }
    char k = tmpl[++i];
    switch (k) {
      case 'p':
        o.Number(vars.pid);
        break;
      case 'e':
        o.Value(vars.exe);
        break;
      case 'h':
        o.Value(vars.host);
        break;
      case 't':
        o.Number(vars.unix_time);
        break;
      case 'r':
        o.Value(vars.reason);
        break;
      case '%':
        o.Char('%');
        break;
      default:
        o.Char('%');
        o.Char(k);
    }
  }
  return o.Finish();
}

}  // namespace cppdiag::dump
