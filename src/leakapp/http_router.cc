#include "leakapp/http_router.h"

#include <spdlog/spdlog.h>
#include <exception>
#include <utility>

namespace leakapp {

void HttpRouter::Add(std::string method, std::string path, HttpHandler handler, Logging logging) {
  routes_.push_back({std::move(method), std::move(path), std::move(handler), logging});
}

const HttpRouter::Route* HttpRouter::Find(const std::string& path) const {
  for (const auto& route : routes_) {
    if (route.path == path) return &route;
  }
  return nullptr;
}

void HttpRouter::Answer(const Route* route, const HttpRequest& req, HttpResponse& res) {
  if (route == nullptr) return ReplyJson(res, 404, {{"error", "no such endpoint: " + req.path}});
  bool head = req.method == "HEAD" && route->method == "GET";
  if (req.method == route->method || head) return route->handler(req, res);
  res.allow = route->method;
  ReplyJson(res, 405, {{"error", req.method + " not allowed; use " + route->method}});
}

void HttpRouter::Dispatch(const HttpRequest& req, HttpResponse& res) const {
  const Route* route = Find(req.path);
  try {
    Answer(route, req, res);
  } catch (const std::exception& e) {
    spdlog::error("{} {} failed: {}", req.method, req.path, e.what());
    res = HttpResponse{};
    ReplyJson(res, 500, {{"error", e.what()}});
  }
  bool quiet = route != nullptr && route->logging == Logging::kDebug;
  spdlog::log(quiet ? spdlog::level::debug : spdlog::level::info, "{} {} -> {}", req.method,
              req.target, res.status);
}

}  // namespace leakapp
