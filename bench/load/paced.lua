-- wrk script: each connection waits 1000 * BENCH_CONNS / BENCH_RATE ms after
-- a reply before its next request, so that all of them together send about
-- BENCH_RATE requests a second; requests alternate GET /healthz and
-- GET /status. (Debian's wrk has no fixed-rate mode; see README.md for what
-- this pacing means for the latencies during a stall.)
local rate = tonumber(os.getenv("BENCH_RATE") or "2000")
local conns = tonumber(os.getenv("BENCH_CONNS") or "16")
local counter = 0

function delay()
  return math.floor(1000 * conns / rate)
end

function request()
  counter = counter + 1
  if counter % 2 == 0 then
    return wrk.format("GET", "/status")
  end
  return wrk.format("GET", "/healthz")
end
