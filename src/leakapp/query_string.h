// Splitting and percent-decoding of a request target ("/path?a=1&b=x%20y"),
// with the rules cpp-httplib's server applied before leakapp moved to Beast:
// '+' is a space in the query but not in the path, a malformed escape stays
// as written, a key without '=' has an empty value, repeated keys are all
// kept (request_params.h takes the last), empty keys are dropped.
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

// "%41+b" -> "A b" (plus_is_space) or "A+b".
std::string PercentDecode(std::string_view in, bool plus_is_space);

}  // namespace leakapp
