# Helpers of the bench/load scripts (sourced; POSIX sh). Each function says
# what it needs; the caller sets `out` (a scratch directory) and traps its
# cleanup.

# need_debian_tools CMD:PACKAGE...: installs the packages whose command is
# missing (as root), or fails naming them.
need_debian_tools() {
  missing=""
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
  done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench: missing$missing; install them (apt-get install$missing)" >&2
    exit 1
  fi
  echo "bench: installing$missing" >&2
  apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; }
}

# free_port: a TCP port nobody listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL: until URL answers (10 s at most).
wait_http() {
  n=0
  until curl -sf -o /dev/null "$1"; do
    n=$((n + 1))
    [ $n -gt 100 ] && { echo "bench: $1 never answered" >&2; exit 1; }
    sleep 0.1
  done
}

# start_leakapp PORT LOG [ENV=VALUE...]: starts $leakapp on 127.0.0.1:PORT,
# sets leakapp_pid, waits until it is ready.
start_leakapp() {
  port=$1 log=$2
  shift 2
  env "$@" "$leakapp" --bind 127.0.0.1 --port "$port" >"$log" 2>&1 &
  leakapp_pid=$!
  wait_http "http://127.0.0.1:$port/readyz"
}

# to_ms VALUE: wrk's "1.23ms" / "456.00us" / "1.02s" in milliseconds.
to_ms() {
  echo "$1" | awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /m$/) {sub(/m$/,"",v); v*=60000} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}'
}

# wrk_run THREADS CONNS SECONDS URL [EXTRA_WRK_ARGS...]: one wrk run, printed
# as "req_s p50_ms p99_ms max_ms requests non2xx socket_errors".
wrk_run() {
  t=$1 c=$2 d=$3 url=$4
  shift 4
  r=$(wrk -t"$t" -c"$c" -d"${d}s" --latency "$@" "$url")
  rps=$(echo "$r" | awk '/^Requests\/sec:/ {printf "%.0f", $2}')
  p50=$(to_ms "$(echo "$r" | awk '$1 == "50%" || $1 == "50.000%" {print $2; exit}')")
  p99=$(to_ms "$(echo "$r" | awk '$1 == "99%" || $1 == "99.000%" {print $2; exit}')")
  max=$(to_ms "$(echo "$r" | awk '$1 == "Latency" && NF >= 4 {print $4; exit}')")
  reqs=$(echo "$r" | awk '/requests in/ {print $1; exit}')
  bad=$(echo "$r" | awk '/Non-2xx or 3xx responses:/ {print $NF}')
  errs=$(echo "$r" | awk -F'[ ,]+' '/Socket errors:/ {print $4 + $6 + $8 + $10}')
  echo "$rps $p50 $p99 $max $reqs ${bad:-0} ${errs:-0}"
}

# median_of SERVER PATH CONNS COLUMN / max_of / sum_of: over $out/results.
median_of() {
  awk -v s="$1" -v p="$2" -v c="$3" -v k="$4" '$1 == s && $2 == p && $3 == c {print $k}' "$out/results" |
    sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
max_of() {
  awk -v s="$1" -v p="$2" -v c="$3" -v k="$4" '$1 == s && $2 == p && $3 == c && $k > m {m=$k} END {print m+0}' "$out/results"
}
sum_of() {
  awk -v s="$1" -v p="$2" -v c="$3" -v k="$4" '$1 == s && $2 == p && $3 == c {t+=$k} END {print t+0}' "$out/results"
}
