// Splitting and percent-decoding of a request target ("/path?a=1&b=x%20y"),
// by Boost.URL, with the rules cpp-httplib's server applied before leakapp
// moved to Beast: '+' is a space in the query but not in the path, a
// malformed escape ("100%", "%zz") or a character RFC 3986 does not allow
// there ('|', raw UTF-8) stays as written, a key without '=' has an empty
// value, repeated keys are all kept in order (request_params.h takes the
// last), empty keys are dropped, and a fragment ("#frag") after the query is
// ignored.
#pragma once

#include <string>
#include <string_view>

#include "leakapp/request_params.h"

namespace leakapp {

struct SplitTarget {
  std::string path;    // decoded
  QueryParams params;  // decoded
};

SplitTarget SplitRequestTarget(std::string_view target);

// One component decoded by the same rules: "%41+b" -> "A b" (plus_is_space,
// as the query's keys and values) or "A+b" (as the path).
std::string PercentDecode(std::string_view in, bool plus_is_space);

}  // namespace leakapp
