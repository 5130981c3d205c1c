#include "leakapp/api_routes.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <utility>
#include <variant>

#include "leakapp/crash.h"
#include "leakapp/process_metrics.h"
#include "leakapp/request_params.h"
#include "leakapp/status_report.h"

namespace leakapp {
namespace {

using Json = nlohmann::ordered_json;
using Logging = HttpRouter::Logging;

void ReplyBadParameter(HttpResponse& res, const ParamError& e) {
  ReplyJson(res, 400, {{"error", e.message}, {"parameter", e.parameter}});
}

}  // namespace

void AddApiRoutes(HttpRouter& router, ApiContext context) {
  // Shared by the handlers, which outlive this call.
  auto ctx = std::make_shared<const ApiContext>(std::move(context));
  auto metrics = std::make_shared<MetricsCache>(kMetricsMaxAge);

  router.Add(
      "GET", "/triggerMemoryLeak", [ctx, metrics](const HttpRequest& req, HttpResponse& res) {
        auto parsed = ParseLeakParams(req.params);
        if (auto* e = std::get_if<ParamError>(&parsed)) return ReplyBadParameter(res, *e);
        const auto& p = std::get<LeakParams>(parsed);
        if (!ctx->engine.Start(p)) {
          return ReplyJson(
              res, 409,
              {{"error", "a leak is already running; stop it with /stopMemoryLeak first"},
               {"leak", LeakJson(ctx->engine.Snapshot())}});
        }
        metrics->Invalidate();
        ReplyJson(
            res, 200,
            {{"status", "started"},
             {"pattern", LeakPatternName(p.pattern)},
             {"params",
              {{"chunkKb", p.chunk_kb}, {"intervalMs", p.interval_ms}, {"maxMb", p.max_mb}}}});
      });

  router.Add("GET", "/stopMemoryLeak", [ctx, metrics](const HttpRequest&, HttpResponse& res) {
    bool was_running = ctx->engine.Stop();
    metrics->Invalidate();
    LeakSnapshot s = ctx->engine.Snapshot();
    ReplyJson(res, 200,
              {{"status", LeakStateName(s.state)},
               {"wasRunning", was_running},
               {"leakedBytes", s.leaked_bytes}});
  });

  router.Add("GET", "/releaseMemory", [ctx, metrics](const HttpRequest&, HttpResponse& res) {
    uint64_t freed = ctx->engine.Release();
    metrics->Invalidate();
    Json body = {{"status", "released"}, {"freedBytes", freed}};
    if (auto m = ReadProcessMetrics()) body["rssBytes"] = m->rss_bytes;
    ReplyJson(res, 200, body);
  });

  router.Add(
      "GET", "/status",
      [ctx, metrics](const HttpRequest&, HttpResponse& res) {
        auto m = metrics->Read();
        if (!m) return ReplyJson(res, 500, {{"error", m.error().message()}});
        std::chrono::duration<double> uptime = std::chrono::steady_clock::now() - ctx->started;
        ReplyJson(
            res, 200,
            StatusJson(*m, ctx->engine.Snapshot(), ctx->heap_hard_limit_bytes, uptime.count()));
      },
      Logging::kDebug);

  router.Add(
      "GET", "/healthz",
      [](const HttpRequest&, HttpResponse& res) { res.set_content("ok\n", "text/plain"); },
      Logging::kDebug);

  router.Add(
      "GET", "/readyz",
      [ctx](const HttpRequest&, HttpResponse& res) {
        bool ready = ctx->ready();
        res.status = ready ? 200 : 503;
        res.set_content(ready ? "ready\n" : "shutting down\n", "text/plain");
      },
      Logging::kDebug);

  router.Add(
      "GET", "/metrics",
      [ctx, metrics](const HttpRequest&, HttpResponse& res) {
        auto m = metrics->Read();
        if (!m) return ReplyJson(res, 500, {{"error", m.error().message()}});
        res.set_content(MetricsText(*m, ctx->engine.Snapshot(), ctx->heap_hard_limit_bytes),
                        kPrometheusContentType);
      },
      Logging::kDebug);

  router.Add("POST", "/crash", [](const HttpRequest& req, HttpResponse& res) {
    auto parsed = ParseCrashParams(req.params);
    if (auto* e = std::get_if<ParamError>(&parsed)) return ReplyBadParameter(res, *e);
    CrashKind kind = std::get<CrashKind>(parsed);
    ReplyJson(res, 202, {{"status", "crashing"}, {"kind", CrashKindName(kind)}});
    // Only once the reply has been written, so the client gets it before the
    // process dies.
    res.after_write = [kind] { CrashOnNewThread(kind); };
  });
}

}  // namespace leakapp
