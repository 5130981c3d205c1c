// leakapp's route table: a handler per method and path, and the dispatch of a
// request to it. HEAD is served by the GET handler (the transport drops the
// body); a known path with another method gets 405 and an Allow header, an
// unknown path 404, a handler that throws 500: all with a JSON error. Each
// request is logged as "GET /target -> 200".
#pragma once

#include <string>
#include <vector>

#include "leakapp/http_message.h"

namespace leakapp {

class HttpRouter {
 public:
  // The level of a route's request log line: probes and scrapes are frequent,
  // so they are logged at debug level only.
  enum class Logging { kInfo, kDebug };

  // Adds the handler of `method` `path`. Call before serving starts: Dispatch
  // reads the table without a lock.
  void Add(std::string method, std::string path, HttpHandler handler,
           Logging logging = Logging::kInfo);

  // Runs the handler of the request's path and method, and logs the request.
  // Never throws: an exception from the handler becomes a 500.
  void Dispatch(const HttpRequest& req, HttpResponse& res) const;

 private:
  struct Route {
    std::string method;
    std::string path;
    HttpHandler handler;
    Logging logging;
  };
  // The route of `path` (the first one added), or nullptr if none.
  const Route* Find(const std::string& path) const;
  // Fills `res` from the route's handler, or with a 405 or 404.
  static void Answer(const Route* route, const HttpRequest& req, HttpResponse& res);

  std::vector<Route> routes_;
};

}  // namespace leakapp
