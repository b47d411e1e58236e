#!/usr/bin/env bash
# Profile of defender-token-proxy on the benchmark's hot path, with valgrind's callgrind (which
# counts instructions, so the result does not depend on what else the machine is doing; `perf stat`
# reports "not supported" for hardware counters on the machine this was written on).
#
#   bash bench/profile.sh            # BIN=path to skip the build; SECS=load seconds (default 20)
#
# Same set-up as bench/run.sh (upstream nginx with the ~2.5 KB alerts page on CPU 0, the demo's
# simulated Entra ID, our proxy with TOKIO_WORKER_THREADS=1 on CPU 1), but our proxy runs under
# callgrind, its counters zeroed once it is ready (callgrind_control -z), and the load is wrk with
# 8 connections for SECS seconds (default 20); the instructions are divided by the requests wrk
# counted. Runs twice, with the default log filter and with RUST_LOG=warn, and prints the top
# functions by inclusive and exclusive cost and the instructions per request. 127.0.0.1 only; everything it starts is stopped on exit.
# Without nginx, the upstream is a small Python HTTP/1.1 keep-alive server with the same page and
# the same 401 (callgrind counts only our proxy's instructions, so the upstream only sets the pace).
# Then the peers in PEERS (default "nginx haproxy"; PEERS= skips them), each as a proxy in front of
# the same upstream with the fixed token (one process: nginx with `master_process off`, HAProxy in
# the foreground, one thread), under callgrind and counted the same way: zeroed once a request
# through it answers 200, the same wrk load, instructions from then to its exit divided by the
# requests wrk counted. The last table has every row side by side.
set -euo pipefail
SECS=${SECS:-20}
BASE_PORT=${BASE_PORT:-18280}
PEERS=${PEERS-nginx haproxy}
TOKEN='eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJiZW5jaCJ9.c3RhdGlj'
P_PEER=$((BASE_PORT + 3))
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
source "$REPO/bench/common.sh"
P_UP=$BASE_PORT P_OURS=$((BASE_PORT + 1)) P_SIM=$((BASE_PORT + 2))
die() { echo "profile: $*" >&2; exit 2; }
for tool in valgrind callgrind_annotate callgrind_control wrk curl taskset; do
    command -v "$tool" >/dev/null || die "needs $tool (Debian: valgrind, wrk, nginx-light, curl)"
done
if [[ -z ${BIN:-} ]]; then
    (cd "$REPO" && cargo build --release --locked --quiet) || die "cargo build failed"
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/defender-token-proxy
fi
D=$(mktemp -d /tmp/dtp-profile.XXXXXX)
chmod 755 "$D"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    [[ ${KEEP:-} == 1 ]] && echo "kept $D" >&2 || rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The page names its upstream in @odata.context, as a Defender page names its host, so that our
# proxy rewrites that link (https://learn.microsoft.com/en-us/defender-endpoint/api/get-alerts).
printf '{"@odata.context":"http://127.0.0.1:%s/api/$metadata#Alerts","value":[%s]}' "$P_UP" "$(printf '{"id":"da%020d","severity":"High","title":"Suspicious PowerShell command line","machineId":"1e5bc9d7e413ddd7902c2932e418702b84d0cc07"},' $(seq 20) | sed 's/,$//')" >"$D/alerts.json"
cat >"$D/nginx.conf" <<NG
worker_processes 1; daemon off; pid $D/nginx.pid; error_log $D/error.log warn;
events { worker_connections 1024; }
http { access_log off; default_type application/json; keepalive_requests 1000000;
  server { listen 127.0.0.1:$P_UP; root $D;
    location = /api/alerts { if (\$http_authorization = "") { return 401; } try_files /alerts.json =404; } } }
NG
if command -v nginx >/dev/null; then
    taskset -c 0 nginx -c "$D/nginx.conf" -p "$D" -e "$D/error.log" & pids+=($!)
else
    command -v python3 >/dev/null || die "needs nginx or python3 for the upstream"
    cat >"$D/upstream.py" <<'PY'
import http.server, sys
page = open(sys.argv[2], "rb").read()
class Page(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path != "/api/alerts" or not self.headers.get("Authorization"):
            self.send_response(401 if self.path == "/api/alerts" else 404)
            self.send_header("Content-Length", "0"); self.end_headers(); return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(page))); self.end_headers()
        self.wfile.write(page)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Page).serve_forever()
PY
    taskset -c 0 python3 "$D/upstream.py" "$P_UP" "$D/alerts.json" & pids+=($!)
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$P_UP/" && break; sleep 0.1; done
fi
taskset -c 0 "$BIN" demo --listen "127.0.0.1:$P_SIM" >"$D/sim.out" 2>/dev/null & pids+=($!)
for _ in $(seq 100); do grep -q 'simulated Entra ID' "$D/sim.out" 2>/dev/null && break; sleep 0.1; done
AUTHORITY=$(awk '/^  simulated Entra ID /{print $4; exit}' "$D/sim.out")
[[ $AUTHORITY == http://127.0.0.1:* ]] || die "the simulator did not start"
write_proxy_config "$D/ours.toml" "$AUTHORITY" "$P_OURS" "$P_UP"

summary=()
# measure NAME PID BASE READY SIGNAL OUT: once BASE+READY answers 200, zeroes the counters of the
# callgrind run PID (writing OUT), puts the wrk load on BASE/mde/api/alerts, stops the run with
# SIGNAL, and adds NAME's row to the summary; sets done_requests and total.
measure() {
    local name=$1 vpid=$2 base=$3 ready=$4 signal=$5 out=$6
    for _ in $(seq 300); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base$ready") == 200 ]] && break
        sleep 0.1
    done
    callgrind_control -z "$vpid" >/dev/null || die "callgrind_control -z failed for $name"
    taskset -c 0 timeout $((SECS + 30)) wrk -t1 -c8 -d"${SECS}s" --timeout 10s "$base/mde/api/alerts" \
        >"$out.wrk" || die "wrk failed for $name"
    kill "-$signal" "$vpid"
    for _ in $(seq 300); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
    done_requests=$(awk '/requests in/{print $1}' "$out.wrk")
    total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1}')
    summary+=("$name|$done_requests|$((total / done_requests))")
}
for mode in default quiet; do
    log_env=()
    [[ $mode == quiet ]] && log_env=(RUST_LOG=warn)
    out=$D/callgrind.$mode
    env "${log_env[@]}" BENCH_CLIENT_SECRET=demo-secret TOKIO_WORKER_THREADS=1 taskset -c 1 \
        valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no \
        "$BIN" serve --config "$D/ours.toml" 2>"$D/ours.$mode.log" &
    vpid=$!; pids+=($vpid)
    measure "ours ($mode log filter)" "$vpid" "http://127.0.0.1:$P_OURS" /-/ready INT "$out"
    echo "## callgrind, $mode log filter: $done_requests requests, $total instructions in all, $((total / done_requests)) per request (counted from ready to shutdown)"
    echo
    echo '### inclusive (top 40)'
    echo '```'
    callgrind_annotate --inclusive=yes "$out" 2>/dev/null | grep -E '^\s*[0-9,]+ \(' | sed -n 1,41p | cut -c1-200
    echo '```'
    # After `callgrind_control -z`, the frames that were on the stack at that moment (the runtime's
    # outer loop) get the whole cost as "self" cost: rows of 90 % and more are that artifact.
    echo '### exclusive (top 25; the zeroing artifact removed)'
    echo '```'
    callgrind_annotate --threshold=100 "$out" 2>/dev/null | grep -E '^\s*[0-9,]+ \(' \
        | awk '/PROGRAM TOTALS/ || !/\((9[0-9]\.[0-9]+|100\.0)%\)/' | sed -n 1,26p | cut -c1-200
    echo '```'
    echo
done

# The peers, as proxies of the same page, counted the same way.
mkdir -p "$D/peer"
cat >"$D/peer/nginx.conf" <<NG
worker_processes 1; master_process off; daemon off; pid $D/peer/nginx.pid;
error_log $D/peer/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream up { server 127.0.0.1:$P_UP; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$P_PEER;
    location /mde/ {
      proxy_pass http://up/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer $TOKEN";
    }
  }
}
NG
cat >"$D/peer/haproxy.cfg" <<HA
global
  nbthread 1
  maxconn 1024
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend f
  bind 127.0.0.1:$P_PEER
  default_backend b
backend b
  http-request set-header Authorization "Bearer $TOKEN"
  http-request replace-path /mde(/.*) \1
  server s1 127.0.0.1:$P_UP
HA
for peer in $PEERS; do
    case $peer in
        nginx) cmd=(nginx -c "$D/peer/nginx.conf" -p "$D/peer" -e "$D/peer/error.log") ;;
        haproxy) cmd=(haproxy -db -f "$D/peer/haproxy.cfg") ;;
        *) die "unknown peer $peer (nginx, haproxy)" ;;
    esac
    command -v "${cmd[0]}" >/dev/null || { echo "profile: no $peer here; its row is skipped" >&2; continue; }
    out=$D/callgrind.$peer
    taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no "${cmd[@]}" \
        2>"$D/peer/$peer.log" &
    vpid=$!; pids+=($vpid)
    measure "$peer" "$vpid" "http://127.0.0.1:$P_PEER" /mde/api/alerts TERM "$out"
    echo "## callgrind, $peer: $done_requests requests, $total instructions in all, $((total / done_requests)) per request"
    echo
done

echo "## Instructions per request, side by side (callgrind; wrk -t1 -c8 -d${SECS}s; zeroed when ready)"
echo
echo "| proxy | requests | instructions per request |"
echo "|---|---:|---:|"
for row in "${summary[@]}"; do
    IFS='|' read -r name requests per <<<"$row"
    echo "| $name | $requests | $per |"
done
