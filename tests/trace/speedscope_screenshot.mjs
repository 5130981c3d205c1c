// A real trace in speedscope's own app, in a real browser: runs the trace
// test target (a plain C program) under LD_PRELOAD=libcppdiag_preload.so,
// takes a 1 s CPU trace with `cppdiag trace collect`, serves speedscope's
// static app (its npm package's dist/release, pinned in package-lock.json)
// and the file over HTTP, opens it in Debian's chromium (headless, through
// playwright-core), checks that speedscope loaded it (the title names the
// profile, the flame graph canvas has drawn something, no page error) and
// saves a screenshot of the left-heavy view.
//
//   node speedscope_screenshot.mjs --cppdiag BIN --target BIN --preload SO --screenshot OUT.png [--chromium PATH]
//
// Exit status 0 on success, 1 on a failure, 77 (ctest's skip code) when
// chromium cannot start here.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, readFileSync, mkdtempSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    cppdiag: { type: "string" },
    target: { type: "string" },
    preload: { type: "string" },
    screenshot: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
  },
});
if (!args.cppdiag || !args.target || !args.preload || !args.screenshot) {
  console.error("usage: speedscope_screenshot.mjs --cppdiag BIN --target BIN --preload SO --screenshot OUT.png");
  process.exit(2);
}
const fail = (why) => {
  throw new Error(why);
};
const require = createRequire(import.meta.url);
const app = path.dirname(require.resolve("speedscope/dist/release/index.html"));
const dir = mkdtempSync(path.join(os.tmpdir(), "cppdiag-speedscope-"));
const profile = path.join(dir, "trace_target.speedscope.json");

let target, server, browser;
try {
  // The target, until it says it runs.
  target = spawn(args.target, [], {
    env: { ...process.env, LD_PRELOAD: args.preload, CPPDIAG_DUMP_DIR: dir },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const pid = await new Promise((resolve, reject) => {
    let out = "";
    target.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/ready (\d+)/);
      if (m) resolve(m[1]);
    });
    target.once("exit", (c) => reject(new Error("trace_target exited " + c)));
  });
  // The runtime's socket is there once `cppdiag ps` lists it.
  for (let i = 0; !execFileSync(args.cppdiag, ["ps"]).toString().includes(pid); ++i) {
    if (i > 600) fail("trace_target never listed by cppdiag ps");
    await new Promise((r) => setTimeout(r, 50));
  }
  execFileSync(args.cppdiag, ["trace", "collect", "-p", pid, "--duration", "1s", "--rate", "199", "-o", profile]);

  const files = { "/profile.json": profile };
  server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x").pathname;
    const file = files[url] ?? path.join(app, path.normalize(url === "/" ? "/index.html" : url));
    if (!file.startsWith(app) && !files[url]) return res.writeHead(403).end();
    if (!existsSync(file)) return res.writeHead(404).end();
    const type = file.endsWith(".html") ? "text/html" : file.endsWith(".js") ? "text/javascript"
               : file.endsWith(".css") ? "text/css" : file.endsWith(".wasm") ? "application/wasm"
               : file.endsWith(".json") ? "application/json" : "application/octet-stream";
    res.writeHead(200, { "Content-Type": type }).end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;

  try {
    if (!existsSync(args.chromium)) throw new Error(args.chromium + " not found");
    browser = await chromium.launch({
      executablePath: args.chromium,
      headless: true,
      args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
    });
  } catch (e) {
    console.log("SKIP: chromium cannot start here: " + String(e.message).split("\n")[0]);
    process.exitCode = 77;
    throw null;
  }
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`http://127.0.0.1:${port}/index.html#profileURL=/profile.json`);
  // speedscope titles the page after the profile once it has loaded it.
  await page.waitForFunction(() => document.title.includes("trace_target"), null, { timeout: 30000 });
  // The flame graph is a canvas: wait until it has non-background pixels.
  await page.waitForFunction(() => {
    for (const c of document.querySelectorAll("canvas")) {
      if (c.width < 100 || c.height < 100) continue;
      const ctx = c.getContext("2d");
      if (!ctx) continue;
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      for (let i = 0; i < d.length; i += 4 * 97) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      if (seen.size > 8) return true;
    }
    return false;
  }, null, { timeout: 30000 });
  if (errors.length) fail("page errors: " + errors.join("; "));
  // The left-heavy view (key 2): the spinner's HotA and HotB side by side.
  await page.keyboard.press("2");
  await page.waitForFunction(() => document.body.innerText.includes("Left Heavy"), null, { timeout: 5000 });
  await page.screenshot({ path: args.screenshot });
  console.log(`speedscope showed ${profile} (${await page.title()}); screenshot ${args.screenshot}`);
} catch (e) {
  if (e !== null) {
    console.error("FAIL: " + (e && e.stack ? e.stack : e));
    process.exitCode = 1;
  }
} finally {
  if (browser) await browser.close();
  if (server) server.close();
  if (target) target.kill("SIGKILL");
}
