#include "cli/heap/flame_html.h"

#include <map>
#include <memory>
#include <nlohmann/json.hpp>

namespace cppdiag::cli::heap {
namespace {

struct Node {
  std::string name;
  double bytes = 0, objects = 0;
  std::map<std::string, std::unique_ptr<Node>> children;
};

// Stacks come from profiles on disk (any file): the tree stops this deep, so
// that building, converting and freeing it (recursive) stay within the stack.
constexpr size_t kMaxFlameDepth = 1024;

// NOLINTNEXTLINE(misc-no-recursion): as deep as the tree, kMaxFlameDepth at most.
nlohmann::json ToJson(const Node& n) {
  nlohmann::json children = nlohmann::json::array();
  for (const auto& [name, child] : n.children) children.push_back(ToJson(*child));
  return {{"n", n.name}, {"b", n.bytes}, {"o", n.objects}, {"c", std::move(children)}};
}

// JSON inside <script>: "</" and "<!--" must not appear as such.
std::string ScriptSafe(const std::string& json) {
  std::string out;
  for (char c : json) {
    if (c == '<') {
      out += "\\u003c";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

constexpr const char* kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>cppdiag heap growth</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 16px; margin: 0 0 4px; }
#info { color: #555; margin-bottom: 8px; }
#tip { position: fixed; pointer-events: none; background: #fffbe6; border: 1px solid #bbb;
       padding: 4px 6px; font: 12px monospace; display: none; max-width: 70em; }
svg text { font: 11px monospace; pointer-events: none; }
svg rect { stroke: #fff; stroke-width: 0.5; cursor: pointer; }
</style>
</head>
<body>
<h1>Heap growth: @TITLE@</h1>
<div id="info">Width is the estimated growth in live bytes. Top: the outermost caller; bottom: the
allocating function. Hover for details; click to zoom, click the root to zoom out.</div>
<svg id="graph" width="100%" xmlns="http://www.w3.org/2000/svg"></svg>
<div id="tip"></div>
<script>
const data = @DATA@;
const svg = document.getElementById('graph');
const tip = document.getElementById('tip');
const H = 18;
function depth(n) { let d = 0; for (const c of n.c) d = Math.max(d, depth(c)); return d + 1; }
function fmt(b) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0; let v = Math.abs(b);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (b < 0 ? '-' : '') + v.toFixed(i ? 1 : 0) + ' ' + u[i];
}
function color(name) {
  let h = 0; for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  const lib = /^(std::|__gnu_cxx::|operator new|malloc|0x)/.test(name);
  return lib ? 'hsl(' + (200 + h % 30) + ',35%,' + (70 + h % 10) + '%)'
             : 'hsl(' + (h % 50) + ',80%,' + (58 + h % 12) + '%)';
}
function draw(root) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = svg.clientWidth || 1200;
  svg.setAttribute('height', depth(root) * H + 2);
  const ns = 'http://www.w3.org/2000/svg';
  function walk(n, x, y, w) {
    if (w < 0.5) return;
    const g = document.createElementNS(ns, 'g');
    const r = document.createElementNS(ns, 'rect');
    r.setAttribute('x', x); r.setAttribute('y', y); r.setAttribute('width', w);
    r.setAttribute('height', H - 1); r.setAttribute('fill', color(n.n));
    g.appendChild(r);
    if (w > 30) {
      const t = document.createElementNS(ns, 'text');
      t.setAttribute('x', x + 3); t.setAttribute('y', y + 13);
      const chars = Math.floor((w - 6) / 6.6);
      t.textContent = n.n.length > chars ? n.n.slice(0, Math.max(0, chars - 1)) + '\u2026' : n.n;
      g.appendChild(t);
    }
    g.addEventListener('mousemove', e => {
      tip.style.display = 'block';
      tip.style.left = Math.min(e.clientX + 12, window.innerWidth - 300) + 'px';
      tip.style.top = (e.clientY + 12) + 'px';
      tip.textContent = n.n + '\n+' + fmt(n.b) + ', ' + (n.o >= 0 ? '+' : '') + Math.round(n.o) + ' objects';
      tip.style.whiteSpace = 'pre-wrap';
    });
    g.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
    g.addEventListener('click', () => draw(n === root ? data : n));
    svg.appendChild(g);
    let cx = x;
    for (const c of n.c) { const cw = w * c.b / n.b; walk(c, cx, y + H, cw); cx += cw; }
  }
  walk(root, 0, 0, W);
}
draw(data);
window.addEventListener('resize', () => draw(data));
</script>
</body>
</html>
)HTML";

}  // namespace

std::string FlameGraphHtml(const std::vector<StackValue>& stacks, const std::string& title) {
  Node root{"all", 0, 0, {}};
  for (const auto& s : stacks) {
    if (s.bytes <= 0) continue;
    root.bytes += s.bytes;
    root.objects += s.objects;
    Node* n = &root;
    size_t depth = 0;
    for (auto it = s.frames.rbegin(); it != s.frames.rend() && depth < kMaxFlameDepth;
         ++it, ++depth) {
      auto& child = n->children[it->function];
      if (!child) child = std::make_unique<Node>(Node{it->function, 0, 0, {}});
      child->bytes += s.bytes;
      child->objects += s.objects;
      n = child.get();
    }
  }
  std::string page = kPage;
  auto replace = [&](const std::string& key, const std::string& value) {
    page.replace(page.find(key), key.size(), value);
  };
  replace("@TITLE@", HtmlEscape(title));
  // Names are whatever a binary or a profile held: bytes that are not UTF-8
  // become U+FFFD rather than an exception.
  replace("@DATA@",
          ScriptSafe(ToJson(root).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  return page;
}

}  // namespace cppdiag::cli::heap
