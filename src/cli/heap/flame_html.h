// A self-contained HTML page (inline CSS, JS and SVG; nothing fetched) with
// an icicle flame graph of heap growth: the root is the outermost caller,
// each frame's width its growth in bytes; hovering shows the frame, bytes and
// objects; clicking zooms into a frame.
#pragma once

#include <string>
#include <vector>

#include "cli/heap/heap_view.h"

namespace cppdiag::cli::heap {

// `title` is shown as the page's heading (e.g. "a.pb.gz → b.pb.gz").
std::string FlameGraphHtml(const std::vector<StackValue>& stacks, const std::string& title);

}  // namespace cppdiag::cli::heap
