// leakapp's page (GET /) in a real browser: Debian's chromium, headless,
// driven by playwright-core (pinned in package-lock.json, installed by
// scripts/setup.sh). Starts the real leakapp, loads the page, presses the
// leak button and checks that the chart's RSS series and the displayed RSS
// grow and agree with /status within 5 %, presses stop and release and sees
// them fall, checks the log pane and that a crash button asks first (and
// does nothing when refused), and saves a screenshot.
//
//   node page_test.mjs --leakapp BUILD/src/leakapp/leakapp --screenshot OUT.png [--chromium PATH]
//
// Exit status 0 on success, 1 on a failure (the reason on stderr), 77 (the
// ctest skip code) when chromium cannot start here.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    leakapp: { type: "string" },
    screenshot: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
  },
});
if (!args.leakapp || !args.screenshot) {
  console.error("usage: page_test.mjs --leakapp PATH --screenshot OUT.png [--chromium PATH]");
  process.exit(2);
}

const MiB = 1024 * 1024;
const fail = (why) => {
  throw new Error(why);
};
const check = (ok, why) => ok || fail(why);
const within5 = (a, b) => Math.abs(a - b) <= 0.05 * Math.max(a, b);

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

// Polls `probe` (async, truthy when done) every 50 ms, for `ms` at most.
const until = async (what, probe, ms = 20000) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) fail("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
};

let app;
let browser;
let appExited = null;
try {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  app = spawn(args.leakapp, ["--bind", "127.0.0.1", "--port", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
    // A heap hard limit of its own, well above the 192 MiB the test leaks
    // (whatever the cgroup allows), for the chart's limit line.
    env: { ...process.env, CPPDIAG_HEAP_HARD_LIMIT: "512M" },
  });
  let appLog = "";
  app.stdout.on("data", (d) => (appLog += d));
  app.stderr.on("data", (d) => (appLog += d));
  app.on("exit", (code, signal) => (appExited = `leakapp exited (${code ?? signal}):\n${appLog}`));
  const status = async () => (await fetch(base + "/status")).json();
  await until("leakapp to be ready", async () => {
    if (appExited) fail(appExited);
    try {
      return (await fetch(base + "/readyz")).ok;
    } catch {
      return false;
    }
  });

  try {
    if (!existsSync(args.chromium)) throw new Error(args.chromium + " not found");
    browser = await chromium.launch({
      executablePath: args.chromium,
      headless: true,
      // As root (the test command), chromium's sandbox cannot start.
      args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
    });
  } catch (e) {
    console.log("SKIP: chromium cannot start here: " + String(e.message).split("\n")[0]);
    process.exitCode = 77;
    throw null;
  }
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Every request the page makes goes to leakapp: no network needed.
  const foreign = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(base)) foreign.push(r.url());
  });
  await page.goto(base + "/");

  const points = () => page.evaluate(() => window.leakapp.data[0].length);
  const chartRss = () =>
    page.evaluate(() => {
      const s = window.leakapp.data[1];
      return s[s.length - 1] * 1024 * 1024;
    });
  const shownRss = async () => Number(await page.getAttribute("#rss", "data-bytes"));
  const shownState = () => page.textContent("#leak-state");
  await until("the chart's first points", async () => (await points()) >= 3);
  check((await page.textContent("#versions")).includes("uPlot 1.6.32"), "the page states no uPlot version");
  const before = await shownRss();
  check(before > 0, "no RSS shown");

  // Leak 192 MiB, 4 MiB every 20 ms.
  await page.fill("#chunkKb", "4096");
  await page.fill("#intervalMs", "20");
  await page.fill("#maxMb", "192");
  await page.selectOption("#pattern", "vector");
  await page.click("#leak");
  await until("the displayed RSS to grow by 150 MiB", async () => (await shownRss()) > before + 150 * MiB);
  await until("the leak to reach its cap", async () => (await status()).leak.state === "stopped");
  await page.click("#stop");
  await until("the page to show the leak stopped", async () => (await shownState()).startsWith("stopped"));

  // Nothing moves now: the page's figures against /status.
  const points0 = await points();
  await until("two more points", async () => (await points()) >= points0 + 2);
  const truth = (await status()).rssBytes;
  const shown = await shownRss();
  const charted = await chartRss();
  check(within5(shown, truth), `displayed RSS ${shown} is not within 5 % of /status's ${truth}`);
  check(within5(charted, truth), `charted RSS ${charted} is not within 5 % of /status's ${truth}`);
  const series = await page.evaluate(() => window.leakapp.data[1]);
  check(series[series.length - 1] > series[0] + 150, `the RSS series did not grow: ${series[0]} -> ${series.at(-1)} MiB`);
  const heap = await page.evaluate(() => window.leakapp.data[2].at(-1));
  check(heap > 150, `the heap-in-use series did not grow (${heap} MiB)`);
  const limit = await page.evaluate(() => window.leakapp.data[5].at(-1));
  check(limit === 512, `the heap hard limit line is at ${limit} MiB, not 512`);
  const peak = shown;

  await page.click("#release");
  await until("the displayed RSS to fall below half its peak", async () => (await shownRss()) < peak / 2);
  await until("the charted RSS to fall", async () => (await chartRss()) < peak / 2);
  check((await page.textContent("#leaked")).startsWith("0.0"), "leaked is not 0 after release");

  // The log pane shows the rounds; a crash button asks first.
  await until("the log to show the rounds", async () => (await page.textContent("#log")).includes("Allocated"));
  let asked = "";
  page.once("dialog", (d) => {
    asked = d.message();
    d.dismiss();
  });
  await page.click("button[data-kind=segv]");
  check(asked.includes("Crash leakapp"), "the crash button did not ask for confirmation");
  check((await fetch(base + "/healthz")).ok && !appExited, "leakapp died although the crash was refused");

  await until("one more point after the release", async () => (await points()) >= 3);
  await mkdir(path.dirname(path.resolve(args.screenshot)), { recursive: true });
  await page.screenshot({ path: args.screenshot, fullPage: true });
  check(pageErrors.length === 0, "errors in the page: " + pageErrors.join("; "));
  check(foreign.length === 0, "the page fetched from elsewhere: " + foreign.join(", "));
  console.log(
    `ok: RSS ${(before / MiB).toFixed(0)} -> ${(peak / MiB).toFixed(0)} MiB (/status ${(truth / MiB).toFixed(0)}) ` +
      `-> ${((await shownRss()) / MiB).toFixed(0)} MiB after release; screenshot ${args.screenshot}`,
  );
} catch (e) {
  if (e !== null) {
    console.error("FAIL: " + (e && e.stack ? e.stack : e));
    process.exitCode = 1;
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  if (app && !appExited) app.kill("SIGKILL");
}
