// The files of leakapp's GET / page, embedded in the binary at build time
// (src/leakapp/page/embed_assets.cmake generates their definitions from
// src/leakapp/page/ and the uPlot package npm installed there), so the page
// needs no network and no file beside the binary.
#pragma once

#include <cstddef>

namespace leakapp {

struct PageAsset {
  const char* path;          // as requested: "/" or "/page/app.js"
  const char* content_type;  // the Content-Type it is served with
  const unsigned char* data;
  size_t size;
};

// What the page says it is made of: {"leakapp", "0.1.0"}, {"uPlot", "1.6.32"}...
struct PageVersion {
  const char* name;
  const char* version;
};

extern const PageAsset kPageAssets[];
extern const size_t kPageAssetCount;
extern const PageVersion kPageVersions[];
extern const size_t kPageVersionCount;

}  // namespace leakapp
