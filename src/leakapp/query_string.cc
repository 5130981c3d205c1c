#include "leakapp/query_string.h"

#include <boost/url/encode.hpp>
#include <boost/url/grammar/hexdig_chars.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/rfc/pchars.hpp>

namespace leakapp {
namespace {

namespace urls = boost::urls;

// What an origin-form target may hold besides percent escapes (RFC 3986:
// the path's and the query's characters).
constexpr auto kTargetChars = urls::pchars + '/' + '?';

// Boost.URL takes only valid targets; leakapp takes what clients send. So
// first escape what Boost.URL would refuse (a '%' that starts no escape, a
// byte outside kTargetChars): decoding gives each back as it was written.
std::string EscapeInvalid(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    std::string_view c = in.substr(i, 1);
    bool valid_escape = c[0] == '%' && i + 2 < in.size() &&
                        urls::grammar::hexdig_chars(in[i + 1]) &&
                        urls::grammar::hexdig_chars(in[i + 2]);
    if (valid_escape || kTargetChars(c[0])) {
      out += c;
    } else {
      out += urls::encode(c, kTargetChars);
    }
  }
  return out;
}

}  // namespace

std::string PercentDecode(std::string_view in, bool plus_is_space) {
  return urls::pct_string_view(EscapeInvalid(in)).decode(urls::encoding_opts(plus_is_space));
}

SplitTarget SplitRequestTarget(std::string_view target) {
  // A fragment never reaches a server, but a hand-written request may carry
  // one; a '#' before the query is part of the path.
  if (size_t question = target.find('?'); question != std::string_view::npos) {
    target = target.substr(0, target.find('#', question));
  }
  // '*' or an absolute-form target ("http://host/x") matches no route: read
  // it as if it began with '/', and drop that '/' again, so that its 404
  // names it decoded.
  const bool origin_form = target.starts_with('/');
  std::string escaped = origin_form ? "" : "/";
  escaped += EscapeInvalid(target);
  // Valid origin-form now: the parse cannot fail.
  urls::url_view url = urls::parse_origin_form(escaped).value();

  SplitTarget split;
  split.path = url.path();
  if (!origin_form) split.path.erase(0, 1);
  for (const auto& p : url.params(urls::encoding_opts(/*space_as_plus=*/true))) {
    if (!p.key.empty()) split.params.emplace(p.key, p.value);
  }
  return split;
}

}  // namespace leakapp
