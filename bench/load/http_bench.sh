#!/bin/sh
# leakapp's HTTP server under wrk, against nginx serving static files on the
# same machine, in one run: GET /healthz and GET /status at 1 and 64
# keep-alive connections. nginx serves /healthz as a 3-byte file ("ok\n", as
# leakapp answers) and /status as a copy of leakapp's /status body taken at
# start (same size; leakapp builds its reply afresh, reading /proc, each time).
# The pairs are interleaved (nginx, leakapp, nginx, leakapp...) ROUNDS times
# and each one's median req/s and p99 reported, so load from other processes
# hits both alike; the load average is printed before and after (see
# README.md). wrk and nginx are Debian's; installed here when missing (root).
#
#   bench/load/http_bench.sh BUILD_DIR [SECONDS] [ROUNDS]
set -eu
usage="usage: http_bench.sh BUILD_DIR [SECONDS] [ROUNDS]"
build=$(cd "${1:?$usage}" && pwd)
seconds=${2:-5}
rounds=${3:-3}
leakapp="$build/src/leakapp/leakapp"
[ -x "$leakapp" ] || { echo "http_bench: $leakapp missing (cmake --build BUILD --target leakapp)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need_debian_tools wrk:wrk nginx:nginx-light curl:curl

out=$(mktemp -d)
chmod 755 "$out"
nginx_pid=""
leakapp_pid=""
cleanup() {
  [ -n "$leakapp_pid" ] && kill "$leakapp_pid" 2>/dev/null && wait "$leakapp_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  rm -rf "$out"
}
trap cleanup EXIT INT TERM

leakapp_port=$(free_port)
start_leakapp "$leakapp_port" "$out/leakapp.log"
mkdir -p "$out/www"
printf 'ok\n' >"$out/www/healthz"
curl -sf "http://127.0.0.1:$leakapp_port/status" >"$out/www/status"
chmod -R a+rX "$out/www"

nginx_port=$(free_port)
cat >"$out/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $out/nginx.pid;
error_log $out/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  types { application/json status; text/plain healthz; }
  server {
    listen 127.0.0.1:$nginx_port;
    root $out/www;
    location / { try_files \$uri =404; }
  }
}
CONF
nginx -c "$out/nginx.conf" -p "$out" &
nginx_pid=$!
wait_http "http://127.0.0.1:$nginx_port/healthz"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
: >"$out/results"
i=1
while [ "$i" -le "$rounds" ]; do
  for conns in 1 64; do
    threads=1
    [ "$conns" -gt 1 ] && threads=2
    for path in healthz status; do
      for server in nginx leakapp; do
        port=$nginx_port
        [ $server = leakapp ] && port=$leakapp_port
        line=$(wrk_run "$threads" "$conns" "$seconds" "http://127.0.0.1:$port/$path")
        echo "$server $path $conns $line" >>"$out/results"
      done
    done
  done
  i=$((i + 1))
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# results: server path conns req_s p50_ms p99_ms max_ms requests non2xx socket_errors
echo
echo "| path | conns | nginx req/s | leakapp req/s | ratio | nginx p99 ms | leakapp p99 ms | leakapp p50 ms | leakapp max ms | leakapp requests | non-2xx | socket errors |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for conns in 1 64; do
  for path in healthz status; do
    n_rps=$(median_of nginx "$path" "$conns" 4)
    l_rps=$(median_of leakapp "$path" "$conns" 4)
    n_p99=$(median_of nginx "$path" "$conns" 6)
    l_p99=$(median_of leakapp "$path" "$conns" 6)
    l_p50=$(median_of leakapp "$path" "$conns" 5)
    l_max=$(max_of leakapp "$path" "$conns" 7)
    l_req=$(sum_of leakapp "$path" "$conns" 8)
    l_bad=$(sum_of leakapp "$path" "$conns" 9)
    l_err=$(sum_of leakapp "$path" "$conns" 10)
    ratio=$(echo "$l_rps $n_rps" | awk '{printf "%.2f", $1 / $2}')
    echo "| /$path | $conns | $n_rps | $l_rps | $ratio | $n_p99 | $l_p99 | $l_p50 | $l_max | $l_req | $l_bad | $l_err |"
  done
done
echo
echo "raw runs (server path conns req/s p50 p99 max requests non-2xx socket-errors):"
cat "$out/results"
