#include "leakapp/page_routes.h"

#include <nlohmann/json.hpp>
#include <string>

#include "leakapp/logging.h"
#include "leakapp/page_assets.h"
#include "leakapp/request_params.h"

namespace leakapp {

void AddPageRoutes(HttpRouter& router) {
  using Logging = HttpRouter::Logging;
  for (size_t i = 0; i < kPageAssetCount; ++i) {
    const PageAsset& asset = kPageAssets[i];
    router.Add(
        "GET", asset.path,
        [&asset](const HttpRequest&, HttpResponse& res) {
          res.set_content(std::string(reinterpret_cast<const char*>(asset.data), asset.size),
                          asset.content_type);
        },
        Logging::kDebug);
  }

  router.Add(
      "GET", "/page/versions.json",
      [](const HttpRequest&, HttpResponse& res) {
        nlohmann::ordered_json versions = nlohmann::ordered_json::object();
        for (size_t i = 0; i < kPageVersionCount; ++i) {
          versions[kPageVersions[i].name] = kPageVersions[i].version;
        }
        ReplyJson(res, 200, versions);
      },
      Logging::kDebug);

  router.Add(
      "GET", "/logs",
      [](const HttpRequest& req, HttpResponse& res) {
        auto lines = ParseLogLinesParam(req.params, kRecentLogLines);
        if (auto* e = std::get_if<ParamError>(&lines)) {
          return ReplyJson(res, 400, {{"error", e->message}, {"parameter", e->parameter}});
        }
        ReplyJson(res, 200, {{"lines", RecentLogLines(std::get<size_t>(lines))}});
      },
      Logging::kDebug);
}

}  // namespace leakapp
