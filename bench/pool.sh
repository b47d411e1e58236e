#!/usr/bin/env bash
# The upstream pool comparison (issue 11, item 5): bench/upstream_pool.rs against nginx, with
# hyper-util's pooled client ("util") and hyper's connection handles ("conn"), over HTTP/1.1
# (plain and TLS) and HTTP/2 (TLS, chosen by ALPN as the proxy's client does).
#
#   bash bench/pool.sh      # EXAMPLE=path to skip the build; N (requests, default 100000),
#                           # CONC (concurrent tasks, default 32), ROUNDS (default 3),
#                           # CALLGRIND=0 to skip the instruction counts
#
# nginx (1 worker) on CPU 0 serves the benchmark's 2.7 KB alerts page on three listeners; the
# example runs on CPU 1 with one runtime thread. Requests/s: N requests per run, ROUNDS rounds, the
# order of the modes alternated. Instructions per request (callgrind, independent of the machine's
# load): (instructions at 3000 requests - at 1000) / 2000, so start-up and connecting cancel out.
# 127.0.0.1 only; everything it starts is stopped on exit.
set -euo pipefail
N=${N:-100000}
CONC=${CONC:-32}
ROUNDS=${ROUNDS:-3}
CALLGRIND=${CALLGRIND:-1}
BASE_PORT=${BASE_PORT:-18380}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/peers.sh
source "$REPO/bench/peers.sh"
die() { echo "pool: $*" >&2; exit 2; }
for tool in nginx openssl curl taskset; do command -v "$tool" >/dev/null || die "needs $tool"; done
if [[ -z ${EXAMPLE:-} ]]; then
    (cd "$REPO" && cargo build --release --locked --quiet --example upstream_pool) || die "cargo build failed"
    EXAMPLE=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/upstream_pool
fi
P_H1=$BASE_PORT P_TLS1=$((BASE_PORT + 1)) P_TLS2=$((BASE_PORT + 2))
D=$(mktemp -d /tmp/dtp-pool.XXXXXX)
chmod 755 "$D"
pid=
cleanup() {
    [[ -n $pid ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_tls_files "$D/tls"
printf '{"value":[%s]}' "$(printf '{"id":"da%020d","severity":"High","title":"Suspicious PowerShell command line","machineId":"1e5bc9d7e413ddd7902c2932e418702b84d0cc07"},' $(seq 20) | sed 's/,$//')" >"$D/alerts.json"
page='location = /api/alerts { if ($http_authorization = "") { return 401; } try_files /alerts.json =404; }'
tls="ssl_certificate $D/tls/server.pem; ssl_certificate_key $D/tls/server.key; ssl_session_cache shared:up:1m;"
cat >"$D/nginx.conf" <<NG
worker_processes 1; daemon off; pid $D/nginx.pid; error_log $D/error.log warn;
events { worker_connections 4096; }
http { access_log off; default_type application/json; keepalive_requests 1000000;
  server { listen 127.0.0.1:$P_H1; root $D; $page }
  server { listen 127.0.0.1:$P_TLS1 ssl; root $D; $tls $page }
  server { listen 127.0.0.1:$P_TLS2 ssl http2; root $D; $tls $page } }
NG
taskset -c 0 nginx -c "$D/nginx.conf" -p "$D" -e "$D/error.log" &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$P_H1/" && break; sleep 0.1; done
export SSL_CERT_FILE=$D/tls/ca.pem
got=$(curl -s --cacert "$D/tls/ca.pem" -o /dev/null -w "%{http_code} %{http_version}" -H "Authorization: x" "https://localhost:$P_TLS2/api/alerts" || true)
[[ $got == "200 2" ]] || die "nginx over TLS with h2: '$got'"

urls=("http://127.0.0.1:$P_H1/api/alerts" "https://127.0.0.1:$P_TLS1/api/alerts" "https://127.0.0.1:$P_TLS2/api/alerts")
labels=("HTTP/1.1" "HTTP/1.1 over TLS" "HTTP/2 over TLS (ALPN)")
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $N requests per run, $CONC tasks, 1 runtime thread"
echo
echo "| upstream | mode | requests/s per round | instructions/request |"
echo "|---|---|---|---:|"
for u in "${!urls[@]}"; do
    declare -A rps=()
    for round in $(seq "$ROUNDS"); do
        modes=(util conn)
        ((round % 2 == 0)) && modes=(conn util)
        for mode in "${modes[@]}"; do
            line=$(taskset -c 1 "$EXAMPLE" "$mode" "${urls[$u]}" "$N" "$CONC") || die "$mode ${urls[$u]} failed"
            rps[$mode]+="$(awk '{print $(NF-1)}' <<<"$line") "
        done
    done
    for mode in util conn; do
        ipr=-
        if [[ $CALLGRIND == 1 ]]; then
            total() {
                taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$D/cg.$1" "$EXAMPLE" "$mode" "${urls[$u]}" "$1" "$CONC" \
                    >/dev/null 2>&1 || die "callgrind $mode failed"
                callgrind_annotate "$D/cg.$1" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1}'
            }
            a=$(total 1000)
            b=$(total 3000)
            ipr=$(((b - a) / 2000))
        fi
        echo "| ${labels[$u]} | $mode | ${rps[$mode]% } | $ipr |"
    done
    unset rps
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
