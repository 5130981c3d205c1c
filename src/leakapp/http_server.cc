#include "leakapp/http_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <thread>
#include <variant>

#include "leakapp/crash.h"
#include "leakapp/request_params.h"
#include "leakapp/status_report.h"

namespace leakapp {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kJson = "application/json";

void Reply(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", kJson);
}

void ReplyBadParameter(httplib::Response& res, const ParamError& e) {
  Reply(res, 400, {{"error", e.message}, {"parameter", e.parameter}});
}

// Probes and scrapes are frequent: log them at debug level only.
bool IsQuiet(const std::string& path) {
  return path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/status";
}

}  // namespace

struct HttpServer::Route {
  const char* method;
  const char* path;
  httplib::Server::Handler handler;
};

HttpServer::HttpServer(LeakEngine& engine, std::optional<uint64_t> heap_hard_limit_bytes)
    : engine_(engine),
      heap_hard_limit_bytes_(heap_hard_limit_bytes),
      server_(std::make_unique<httplib::Server>()) {
  AddRoutes();
  // Idle keep-alive connections hold up shutdown for up to this long (httplib
  // checks for stop() only between requests).
  server_->set_keep_alive_timeout(1);
  server_->set_logger([](const httplib::Request& req, const httplib::Response& res) {
    spdlog::log(IsQuiet(req.path) ? spdlog::level::debug : spdlog::level::info, "{} {} -> {}",
                req.method, req.target, res.status);
  });
  // Routing failures (404) and anything a handler left without a body.
  server_->set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string what = res.status == 404 ? "no such endpoint: " + req.path
                                             : "HTTP error " + std::to_string(res.status);
        Reply(res, res.status, {{"error", what}});
        return httplib::Server::HandlerResponse::Handled;
      }));
  server_->set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::error("{} {} failed: {}", req.method, req.path, what);
        Reply(res, 500, {{"error", what}});
      });
}

HttpServer::~HttpServer() = default;

void HttpServer::AddRoutes() {
  routes_ = {
      {"GET", "/triggerMemoryLeak",
       [this](const httplib::Request& req, httplib::Response& res) {
         auto parsed = ParseLeakParams(req.params);
         if (auto* e = std::get_if<ParamError>(&parsed)) return ReplyBadParameter(res, *e);
         const auto& p = std::get<LeakParams>(parsed);
         if (!engine_.Start(p)) {
           return Reply(res, 409,
                        {{"error", "a leak is already running; stop it with /stopMemoryLeak first"},
                         {"leak", LeakJson(engine_.Snapshot())}});
         }
         Reply(res, 200,
               {{"status", "started"},
                {"pattern", LeakPatternName(p.pattern)},
                {"params",
                 {{"chunkKb", p.chunk_kb}, {"intervalMs", p.interval_ms}, {"maxMb", p.max_mb}}}});
       }},
      {"GET", "/stopMemoryLeak",
       [this](const httplib::Request&, httplib::Response& res) {
         bool was_running = engine_.Stop();
         LeakSnapshot s = engine_.Snapshot();
         Reply(res, 200,
               {{"status", LeakStateName(s.state)},
                {"wasRunning", was_running},
                {"leakedBytes", s.leaked_bytes}});
       }},
      {"GET", "/releaseMemory",
       [this](const httplib::Request&, httplib::Response& res) {
         uint64_t freed = engine_.Release();
         Json body = {{"status", "released"}, {"freedBytes", freed}};
         if (auto m = ReadProcessMetrics()) body["rssBytes"] = m->rss_bytes;
         Reply(res, 200, body);
       }},
      {"GET", "/status",
       [this](const httplib::Request&, httplib::Response& res) {
         auto m = ReadProcessMetrics();
         if (!m) return Reply(res, 500, {{"error", m.error().message()}});
         std::chrono::duration<double> uptime = std::chrono::steady_clock::now() - started_;
         Reply(res, 200,
               StatusJson(*m, engine_.Snapshot(), heap_hard_limit_bytes_, uptime.count()));
       }},
      {"GET", "/healthz",
       [](const httplib::Request&, httplib::Response& res) {
         res.set_content("ok\n", "text/plain");
       }},
      {"GET", "/readyz",
       [this](const httplib::Request&, httplib::Response& res) {
         bool ready = ready_ && !shutting_down_;
         res.status = ready ? 200 : 503;
         res.set_content(ready ? "ready\n" : "shutting down\n", "text/plain");
       }},
      {"GET", "/metrics",
       [this](const httplib::Request&, httplib::Response& res) {
         auto m = ReadProcessMetrics();
         if (!m) return Reply(res, 500, {{"error", m.error().message()}});
         res.set_content(MetricsText(*m, engine_.Snapshot(), heap_hard_limit_bytes_),
                         kPrometheusContentType);
       }},
      {"POST", "/crash",
       [](const httplib::Request& req, httplib::Response& res) {
         auto parsed = ParseCrashParams(req.params);
         if (auto* e = std::get_if<ParamError>(&parsed)) return ReplyBadParameter(res, *e);
         CrashKind kind = std::get<CrashKind>(parsed);
         auto body = std::make_shared<std::string>(
             Json{{"status", "crashing"}, {"kind", CrashKindName(kind)}}.dump() + "\n");
         res.status = 202;
         // The releaser runs once the reply has been written, so the client
         // gets it before the process dies.
         res.set_content_provider(
             body->size(), kJson,
             [body](size_t offset, size_t length, httplib::DataSink& sink) {
               return sink.write(body->data() + offset, length);
             },
             [kind](bool) { CrashOnNewThread(kind); });
       }},
  };

  // Every method of a known path reaches Dispatch, so a wrong one gets 405
  // rather than 404.
  auto dispatch = [this](const httplib::Request& req, httplib::Response& res) {
    Dispatch(req, res);
  };
  for (const auto& route : routes_) {
    server_->Get(route.path, dispatch);
    server_->Post(route.path, dispatch);
    server_->Put(route.path, dispatch);
    server_->Patch(route.path, dispatch);
    server_->Delete(route.path, dispatch);
    server_->Options(route.path, dispatch);
  }
  // httplib waits for the body of a POST without Content-Length until the
  // read times out (and then answers 400), yet that is what `curl -X POST`
  // sends. No endpoint reads a body, so such requests are served at once.
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    bool may_have_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                         req.method == "DELETE";
    if (!may_have_body || req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    Dispatch(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
}

void HttpServer::Dispatch(const httplib::Request& req, httplib::Response& res) const {
  for (const auto& route : routes_) {
    if (req.path != route.path) continue;
    bool head = req.method == "HEAD" && std::string_view(route.method) == "GET";
    if (req.method == route.method || head) return route.handler(req, res);
    res.set_header("Allow", route.method);
    return Reply(res, 405, {{"error", req.method + " not allowed; use " + route.method}});
  }
  Reply(res, 404, {{"error", "no such endpoint: " + req.path}});
}

cppdiag::Status HttpServer::Bind(const std::string& host, int port) {
  if (!server_->bind_to_port(host, port)) {
    return cppdiag::Error::Invalid("cannot listen on " + host + ":" + std::to_string(port) +
                                   " (address in use, or not an address of this host)");
  }
  ready_ = true;
  spdlog::info("Listening on http://{}:{}", host, port);
  return cppdiag::OkStatus();
}

cppdiag::Status HttpServer::Serve() {
  bool ok = shutting_down_ || server_->listen_after_bind();
  serve_returned_ = true;
  if (!ok && !shutting_down_) return cppdiag::Error::Invalid("the HTTP server stopped on an error");
  return cppdiag::OkStatus();
}

void HttpServer::Shutdown() {
  shutting_down_ = true;
  // httplib's stop() only works once the accept loop runs, and offers nothing
  // to wait on: poll briefly for either that or Serve() having returned.
  while (!serve_returned_) {
    if (server_->is_running()) {
      server_->stop();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace leakapp
