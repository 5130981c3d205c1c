// A request as leakapp's handlers see it and the reply they fill in: the
// contract between the transport (http_listener.h, http_connection.h), the
// route table (http_router.h) and the endpoints (api_routes.h).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "leakapp/request_params.h"

namespace leakapp {

struct HttpRequest {
  std::string method;
  std::string target;  // as sent
  std::string path;    // decoded
  QueryParams params;  // decoded
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::string allow;                  // the Allow header of a 405
  std::function<void()> after_write;  // runs once the reply has been sent

  void set_content(std::string content, const char* type) {
    body = std::move(content);
    content_type = type;
  }
};

// Answers one request; the transport calls it on the connection's thread.
using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

inline constexpr const char* kJsonContentType = "application/json";

// `body` as one line of JSON with `status`: every reply that is an error, and
// most that are not.
void ReplyJson(HttpResponse& res, int status, const nlohmann::ordered_json& body);

}  // namespace leakapp
