// leakapp's live page (DESIGN.md's GET /), added to a route table:
//
//   GET /                    the page (index.html)
//   GET /page/<file>         its script, styles and uPlot, embedded at build time
//   GET /page/versions.json  {"leakapp": "0.1.0", "commit": ..., "uPlot": "1.6.32", ...}
//   GET /logs?lines=N        {"lines": [...]}: the last N (1..200, default 100)
//                            log lines at info or above, oldest first
//
// The page polls /status (twice a second) and /logs (once a second) rather
// than holding a Server-Sent Events stream: see leakapp.md. Its assets come
// from page_assets.h; nothing is fetched from elsewhere.
#pragma once

#include "leakapp/http_router.h"

namespace leakapp {

void AddPageRoutes(HttpRouter& router);

}  // namespace leakapp
