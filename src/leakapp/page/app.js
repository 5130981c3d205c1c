// leakapp's live page: polls GET /status twice a second and GET /logs once a
// second (leakapp.md says why polling and not Server-Sent Events), draws RSS,
// heap in use, the cgroup's usage and limit and the heap hard limit with
// uPlot, and drives the leak endpoints. Served from the binary; no network
// beyond leakapp itself.
"use strict";
(() => {
  const STATUS_PERIOD_MS = 500;
  const LOG_PERIOD_MS = 1000;
  const WINDOW_POINTS = 1200; // 10 minutes at 2 Hz
  const MiB = 1024 * 1024;
  const $ = (id) => document.getElementById(id);

  const fmt = (bytes) => {
    if (bytes === null || bytes === undefined) return "none";
    if (bytes >= 1024 * MiB) return (bytes / (1024 * MiB)).toFixed(2) + " GiB";
    return (bytes / MiB).toFixed(1) + " MiB";
  };
  const setBytes = (id, bytes) => {
    const el = $(id);
    el.textContent = fmt(bytes);
    el.dataset.bytes = bytes === null || bytes === undefined ? "" : String(bytes);
  };

  // Series in MiB against the time of each reading (unix seconds): time,
  // RSS, heap in use, cgroup usage, cgroup limit, heap hard limit.
  const data = [[], [], [], [], [], []];
  const css = getComputedStyle(document.documentElement);
  const color = (v) => css.getPropertyValue(v).trim();
  const mib = (b) => (b === null || b === undefined ? null : b / MiB);
  const chart = new uPlot(
    {
      width: Math.max(400, $("chart").clientWidth || 900),
      height: 340,
      scales: { x: { time: true } },
      axes: [{}, { label: "MiB", size: 70 }],
      series: [
        {},
        { label: "RSS", stroke: color("--rss"), width: 2 },
        { label: "heap in use", stroke: color("--heap"), width: 2 },
        { label: "cgroup usage", stroke: color("--cg"), width: 1.5 },
        { label: "cgroup limit", stroke: color("--cglim"), dash: [8, 4], width: 1.5 },
        { label: "heap hard limit", stroke: color("--hl"), dash: [4, 4], width: 2 },
      ],
    },
    data,
    $("chart"),
  );
  window.addEventListener("resize", () =>
    chart.setSize({ width: Math.max(400, $("chart").clientWidth), height: 340 }),
  );

  const setConnected = (ok) => {
    const b = $("connection");
    b.textContent = ok ? "live" : "no answer from leakapp";
    b.className = "badge " + (ok ? "ok" : "down");
  };

  let lastStatus = null;
  const showStatus = (s) => {
    lastStatus = s;
    $("pid").textContent = "pid " + s.pid;
    setBytes("rss", s.rssBytes);
    setBytes("heap", s.heapInUseBytes);
    setBytes("leaked", s.leakedBytes);
    setBytes("heap-limit", s.heapHardLimitBytes);
    const cg = s.cgroup;
    $("cgroup").textContent = cg ? fmt(cg.usageBytes) + " / " + fmt(cg.limitBytes) : "no cgroup";
    const leak = s.leak;
    $("leak-state").textContent =
      leak.state + (leak.pattern ? " (" + leak.pattern + ", " + leak.rounds + " rounds)" : "");
    $("dumps").textContent = String(s.dumpsWritten ?? "–");

    data[0].push(Date.now() / 1000);
    data[1].push(mib(s.rssBytes));
    data[2].push(mib(s.heapInUseBytes));
    data[3].push(mib(cg ? cg.usageBytes : null));
    data[4].push(mib(cg ? cg.limitBytes : null));
    data[5].push(mib(s.heapHardLimitBytes));
    if (data[0].length > WINDOW_POINTS) data.forEach((series) => series.shift());
    chart.setData(data);
  };

  const pollStatus = async () => {
    try {
      const r = await fetch("status", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      showStatus(await r.json());
      setConnected(true);
    } catch (e) {
      setConnected(false);
    }
    setTimeout(pollStatus, STATUS_PERIOD_MS);
  };

  const pollLogs = async () => {
    try {
      const r = await fetch("logs", { cache: "no-store" });
      if (r.ok) {
        const body = await r.json();
        const pre = $("log");
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent = body.lines.join("\n");
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      }
    } catch (e) {
      // shown by the status badge
    }
    setTimeout(pollLogs, LOG_PERIOD_MS);
  };

  const call = async (method, target) => {
    try {
      const r = await fetch(target, { method, cache: "no-store" });
      $("reply").textContent = method + " " + target + " → " + r.status + " " + (await r.text()).trim();
    } catch (e) {
      $("reply").textContent = method + " " + target + " → " + e;
    }
  };

  $("leak-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const name of ["pattern", "chunkKb", "intervalMs", "maxMb"]) q.set(name, $(name).value);
    call("GET", "triggerMemoryLeak?" + q);
  });
  $("stop").addEventListener("click", () => call("GET", "stopMemoryLeak"));
  $("release").addEventListener("click", () => call("GET", "releaseMemory"));
  for (const b of document.querySelectorAll("button[data-kind]")) {
    b.addEventListener("click", () => {
      const kind = b.dataset.kind;
      if (confirm("Crash leakapp with " + kind + "? The process dies (and writes a crash dump if enabled)."))
        call("POST", "crash?kind=" + kind);
    });
  }

  fetch("page/versions.json")
    .then((r) => r.json())
    .then((v) => {
      $("versions").textContent = Object.entries(v).map(([k, x]) => k + " " + x).join(" · ");
    })
    .catch(() => {});

  // For the browser test and the curious: the chart and the last /status.
  window.leakapp = { chart, data, lastStatus: () => lastStatus };
  pollStatus();
  pollLogs();
})();
