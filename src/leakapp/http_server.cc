#include "leakapp/http_server.h"

#include <chrono>

#include "leakapp/api_routes.h"
#include "leakapp/page_routes.h"

namespace leakapp {

HttpServer::HttpServer(LeakEngine& engine, std::optional<uint64_t> heap_hard_limit_bytes,
                       int max_connections)
    : listener_([this](const HttpRequest& req, HttpResponse& res) { router_.Dispatch(req, res); },
                max_connections) {
  AddApiRoutes(router_, {.engine = engine,
                         .heap_hard_limit_bytes = heap_hard_limit_bytes,
                         .started = std::chrono::steady_clock::now(),
                         .ready = [this] { return listener_.ready(); }});
  AddPageRoutes(router_);
}

}  // namespace leakapp
