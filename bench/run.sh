#!/usr/bin/env bash
# Benchmark: defender-token-proxy side by side with nginx, HAProxy and Caddy (issue 6).
#
#   bash bench/run.sh
#
# On a Debian 12 machine (root, apt reachable) it installs what is missing (wrk, nginx, haproxy,
# caddy, curl, python3), builds the release binary (cargo build --release --locked, honouring
# CARGO_TARGET_DIR), and then, on 127.0.0.1 only:
#   - upstream: nginx, 1 worker, pinned to CPU 0 together with the load generator, serving a
#     ~2.5 KB JSON alerts page at /api/alerts (401 without an Authorization header) and a sparse
#     1 GiB file at /big.bin;
#   - peers: nginx, HAProxy and Caddy, each injecting a fixed `Authorization: Bearer ...`, forwarding
#     /mde/* to the upstream with keep-alive, one worker/thread, pinned to CPU 1;
#   - ours: `defender-token-proxy serve` with TOKIO_WORKER_THREADS=1 pinned to CPU 1, route /mde ->
#     the upstream, its token from the in-repo Entra simulator (`defender-token-proxy demo`, used
#     only for its simulated Entra ID), so the token cache-hit path is what is measured;
#   - TLS rows ("-tls", TLS_ROW=1): the same page from a second upstream server over TLS (a CA and
#     certificate made with openssl for this run), each proxy on a listener of its own verifying it
#     and keeping its TLS connections; ours trusts the CA through SSL_CERT_FILE;
#   - HTTP/2 rows ("-h2", H2_ROW=1): h2load with prior knowledge (h2c) against each proxy's h2c
#     listener, $CONNS connections with one stream each (as wrk's $CONNS connections);
#   - wrk -t1 -c$CONNS -d${DUR}s --latency (h2load -t1 -c$CONNS -m1 -D$DUR for the h2 rows) against
#     each proxy in turn, $ROUNDS rounds, the order rotated each round; then, for ours: start -> /-/ready, idle RSS, RSS growth while streaming
#     1 GiB, and token requests after 1,000 concurrent requests against a fresh process.
# It prints the machine, one Markdown table (medians over rounds, ratios to nginx) and PASS/MISS
# per target. A MISS is a result: the exit status is non-zero only when the set-up is broken.
#
# Environment: DUR (s, default 10), ROUNDS (default 3), CONNS (default 32), BASE_PORT (default
# 18180; it uses BASE_PORT..BASE_PORT+14), TLS_ROW=0 / H2_ROW=0 to skip the TLS / HTTP/2 rows, COLD_N (default 1000), STREAM_MIB (default 1024),
# ALT_BINS="label=path ..." to add a row "ours-label" per other build of ours (same config, same
# rounds; e.g. to compare allocators), QUIET_ROW=0 to skip the extra "ours-quiet" row (our proxy with RUST_LOG=warn, i.e. without its
# per-request log line), BIN=path to use an already built binary (skips the build), KEEP=1 to keep
# the working directory, NO_INSTALL=1 to never call apt-get.
set -euo pipefail

DUR=${DUR:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
BASE_PORT=${BASE_PORT:-18180}
COLD_N=${COLD_N:-1000}
STREAM_MIB=${STREAM_MIB:-1024}
QUIET_ROW=${QUIET_ROW:-1}
TLS_ROW=${TLS_ROW:-1}
H2_ROW=${H2_ROW:-1}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
source "$REPO/bench/common.sh"
# shellcheck source=bench/peers.sh
source "$REPO/bench/peers.sh"
BENCH=$REPO/bench

P_UP=$BASE_PORT
P_NGINX=$((BASE_PORT + 1))
P_HAPROXY=$((BASE_PORT + 2))
P_CADDY=$((BASE_PORT + 3))
P_OURS=$((BASE_PORT + 4))
P_SIM=$((BASE_PORT + 5))     # the demo's own proxy listener (unused; the demo needs one)
P_PROBE=$((BASE_PORT + 6))   # fresh proxy processes of the probes
P_QUIET=$((BASE_PORT + 7))
P_UP_TLS=$((BASE_PORT + 8))
P_NGINX_TLS=$((BASE_PORT + 9))
P_HAPROXY_TLS=$((BASE_PORT + 10))
P_CADDY_TLS=$((BASE_PORT + 11))
P_OURS_TLS=$((BASE_PORT + 12))
P_NGINX_H2=$((BASE_PORT + 13))
P_HAPROXY_H2=$((BASE_PORT + 14))
TOKEN='eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJiZW5jaCJ9.c3RhdGlj'

die() { echo "bench: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Install what is missing (Debian package names).
missing=()
for pair in wrk:wrk h2load:nghttp2-client openssl:openssl nginx:nginx-light haproxy:haproxy caddy:caddy curl:curl python3:python3 taskset:util-linux ss:iproute2; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
    [[ ${NO_INSTALL:-} == 1 ]] && die "missing: ${missing[*]} (NO_INSTALL=1)"
    [[ $(id -u) == 0 ]] || die "missing: ${missing[*]}; run as root to install them with apt-get"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's packages may start their own services on install; ours use other ports and configs.
(($(nproc) >= 2)) || die "needs at least 2 CPUs (proxies on CPU 1, upstream and wrk on CPU 0)"

# ---------------------------------------------------------------------------------------------
# Build.
if [[ -z ${BIN:-} ]]; then
    log "cargo build --release --locked"
    (cd "$REPO" && cargo build --release --locked --quiet) || die "cargo build failed"
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/defender-token-proxy
fi
[[ -x $BIN ]] || die "no binary at $BIN"

# ---------------------------------------------------------------------------------------------
# Working directory, processes, clean-up.
D=$(mktemp -d /tmp/dtp-bench.XXXXXX)
chmod 755 "$D"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    if [[ ${KEEP:-} == 1 ]]; then echo "kept $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) > COLD_N + 200)) || die "ulimit -n is $(ulimit -n); the cold test needs more than $((COLD_N + 200))"

for port in $(seq "$BASE_PORT" "$P_HAPROXY_H2"); do
    ss -Hltn "sport = :$port" | grep -q . && die "port $port is in use (set BASE_PORT)"
done

# ---------------------------------------------------------------------------------------------
# Machine.
echo "## Machine"
echo
echo '```'
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc:   $(nproc)"
echo "cpu:     $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
echo "kernel:  $(uname -srm)"
echo "nginx:   $(nginx -v 2>&1 | sed 's/^nginx version: //')"
echo "haproxy: $(haproxy -v 2>&1 | head -1)"
echo "caddy:   $(caddy version 2>&1 | head -1)"
echo "wrk:     $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
echo "h2load:  $(h2load --version 2>&1 | head -1)"
echo "openssl: $(openssl version)"
echo "rustc:   $(rustc -V 2>/dev/null || echo unknown)"
echo "ours:    $BIN ($("$BIN" --version 2>/dev/null || echo '?'))"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min load average before the run)"
echo '```'
echo

# ---------------------------------------------------------------------------------------------
# Upstream: nginx on CPU 0.
mkdir -p "$D/up" "$D/ngx" "$D/caddy"
# The page's @odata.context names the upstream it comes from, as a Defender page names its host
# (https://learn.microsoft.com/en-us/defender-endpoint/api/get-alerts): our proxy rewrites it, as
# it would Microsoft's. One page per upstream server, plain and TLS.
python3 - "$D/up/alerts.json" "http://127.0.0.1:$P_UP" "$D/up/alerts-tls.json" "https://127.0.0.1:$P_UP_TLS" <<'PY'
import json, sys
alerts = [{"id": f"da{i:020d}", "incidentId": 1000 + i, "investigationId": 2000 + i,
           "severity": "High", "status": "New", "classification": None, "determination": None,
           "title": "Suspicious PowerShell command line", "category": "Execution",
           "detectionSource": "WindowsDefenderAtp", "threatFamilyName": None,
           "machineId": "1e5bc9d7e413ddd7902c2932e418702b84d0cc07",
           "alertCreationTime": "2026-11-20T10:00:00Z"} for i in range(7)]
for path, base in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    body = {"@odata.context": base + "/api/$metadata#Alerts", "value": alerts}
    json.dump(body, open(path, "w"), separators=(",", ":"))
PY
truncate -s "$((STREAM_MIB * 1024 * 1024))" "$D/up/big.bin"
make_tls_files "$D/tls"
write_upstream_config "$D/up/nginx.conf"
# Peers: nginx, HAProxy, Caddy on CPU 1, one worker/thread each.
write_peer_configs

log "starting upstream and peers"
taskset -c 0 nginx -c "$D/up/nginx.conf" -p "$D/up" -e "$D/up/error.log" &
pids+=($!); PID_UP=$!
taskset -c 1 nginx -c "$D/ngx/nginx.conf" -p "$D/ngx" -e "$D/ngx/error.log" &
pids+=($!); PID_NGINX=$!
taskset -c 1 haproxy -f "$D/haproxy.cfg" -q &
pids+=($!); PID_HAPROXY=$!
HOME=$D/caddy XDG_DATA_HOME=$D/caddy XDG_CONFIG_HOME=$D/caddy GOMAXPROCS=1 \
    taskset -c 1 caddy run --adapter caddyfile --config "$D/caddy/Caddyfile" >"$D/caddy.log" 2>&1 &
pids+=($!); PID_CADDY=$!

# The Entra simulator: the demo command, on CPU 0 (it is only asked for tokens).
taskset -c 0 "$BIN" demo --listen "127.0.0.1:$P_SIM" >"$D/sim.out" 2>"$D/sim.err" &
pids+=($!)
AUTHORITY=
for _ in $(seq 100); do
    AUTHORITY=$(awk '/^  simulated Entra ID /{print $4; exit}' "$D/sim.out")
    [[ -n $AUTHORITY ]] && break
    sleep 0.1
done
[[ $AUTHORITY == http://127.0.0.1:* ]] || die "the simulator did not start: $(head -c 500 "$D/sim.err")"

write_proxy_config "$D/ours.toml" "$AUTHORITY" "$P_OURS" "$P_UP"
sed "s/127.0.0.1:$P_OURS\"/127.0.0.1:$P_PROBE\"/" "$D/ours.toml" >"$D/probe.toml"
export BENCH_CLIENT_SECRET=demo-secret
OURS_CMD=(env TOKIO_WORKER_THREADS=1 taskset -c 1 "$BIN" serve --config)

"${OURS_CMD[@]}" "$D/ours.toml" 2>"$D/ours.log" &
pids+=($!); PID_OURS=$!

# One row per (proxy, path): its name, port, process (for RSS) and load generator.
names=(nginx haproxy caddy ours)
ports=("$P_NGINX" "$P_HAPROXY" "$P_CADDY" "$P_OURS")
procs=("$PID_NGINX" "$PID_HAPROXY" "$PID_CADDY" "$PID_OURS")
tools=(wrk wrk wrk wrk)
if [[ $QUIET_ROW == 1 ]]; then
    sed "s/127.0.0.1:$P_OURS\"/127.0.0.1:$P_QUIET\"/" "$D/ours.toml" >"$D/quiet.toml"
    RUST_LOG=warn "${OURS_CMD[@]}" "$D/quiet.toml" 2>"$D/quiet.log" &
    pids+=($!)
    names+=(ours-quiet); ports+=("$P_QUIET"); procs+=($!); tools+=(wrk)
fi
k=0
for alt in ${ALT_BINS:-}; do
    port=$((BASE_PORT + 15 + k)); k=$((k + 1))
    ss -Hltn "sport = :$port" | grep -q . && die "port $port is in use (set BASE_PORT)"
    [[ -x ${alt#*=} ]] || die "ALT_BINS: no binary at ${alt#*=}"
    sed "s/127.0.0.1:$P_OURS\"/127.0.0.1:$port\"/" "$D/ours.toml" >"$D/alt$k.toml"
    env TOKIO_WORKER_THREADS=1 taskset -c 1 "${alt#*=}" serve --config "$D/alt$k.toml" 2>"$D/alt$k.log" &
    pids+=($!)
    names+=("ours-${alt%%=*}"); ports+=("$port"); procs+=($!); tools+=(wrk)
done
if [[ $TLS_ROW == 1 ]]; then
    # Ours trusts the system's store, which rustls-native-certs reads from SSL_CERT_FILE when set.
    write_proxy_config "$D/ours-tls.toml" "$AUTHORITY" "$P_OURS_TLS" "$P_UP_TLS" https
    SSL_CERT_FILE=$D/tls/ca.pem "${OURS_CMD[@]}" "$D/ours-tls.toml" 2>"$D/ours-tls.log" &
    pids+=($!)
    names+=(nginx-tls haproxy-tls caddy-tls ours-tls)
    ports+=("$P_NGINX_TLS" "$P_HAPROXY_TLS" "$P_CADDY_TLS" "$P_OURS_TLS")
    procs+=("$PID_NGINX" "$PID_HAPROXY" "$PID_CADDY" $!)
    tools+=(wrk wrk wrk wrk)
fi
if [[ $H2_ROW == 1 ]]; then
    # nginx and HAProxy speak h2c on a listener of its own; Caddy and ours on their main one.
    names+=(nginx-h2 haproxy-h2 caddy-h2 ours-h2)
    ports+=("$P_NGINX_H2" "$P_HAPROXY_H2" "$P_CADDY" "$P_OURS")
    procs+=("$PID_NGINX" "$PID_HAPROXY" "$PID_CADDY" "$PID_OURS")
    tools+=(h2load h2load h2load h2load)
fi

# ---------------------------------------------------------------------------------------------
# Every server answers as expected before any load.
wait_http() { # port path want
    local code
    for _ in $(seq 200); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1$2" || true)
        [[ $code == "$3" ]] && return 0
        sleep 0.05
    done
    return 1
}
wait_http "$P_UP" /api/alerts 401 || die "upstream: no 401 without Authorization"
code=$(curl -s -o "$D/direct.json" -w '%{http_code}' -H 'Authorization: Bearer x' "http://127.0.0.1:$P_UP/api/alerts")
[[ $code == 200 ]] || die "upstream answered $code with Authorization"
BODY_BYTES=$(stat -c %s "$D/direct.json")
if [[ $TLS_ROW == 1 ]]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D/tls/ca.pem" "https://localhost:$P_UP_TLS/api/alerts")
    [[ $code == 401 ]] || die "TLS upstream: $code, not 401, without Authorization"
    cmp -s "$D/up/alerts-tls.json" <(curl -s --cacert "$D/tls/ca.pem" -H 'Authorization: Bearer x' \
        "https://localhost:$P_UP_TLS/api/alerts") || die "the TLS upstream returned a different body"
fi
for i in "${!names[@]}"; do
    url="http://127.0.0.1:${ports[$i]}/mde/api/alerts"
    if [[ ${tools[$i]} == h2load ]]; then
        # h2load speaks HTTP/2 with prior knowledge: so must the check, and it must get HTTP/2.
        got=$(curl -s --http2-prior-knowledge -o "$D/check.body" -w '%{http_code} %{http_version}' "$url" || true)
        [[ $got == "200 2" ]] || die "${names[$i]}: '$got' (want '200 2') over h2c on $url"
    else
        wait_http "${ports[$i]}" /mde/api/alerts 200 || {
            curl -s "$url" | head -c 300 >&2
            die "${names[$i]} does not answer 200 on /mde/api/alerts"
        }
        curl -s -o "$D/check.body" "$url"
    fi
    # The peers pass the page as it is; ours rewrites its @odata.context to its own URL for the route.
    page=$D/up/alerts.json from=http://127.0.0.1:$P_UP
    [[ ${names[$i]} == *-tls ]] && page=$D/up/alerts-tls.json from=https://127.0.0.1:$P_UP_TLS
    if [[ ${names[$i]} == ours* ]]; then
        sed "s|\"$from/|\"http://127.0.0.1:${ports[$i]}/mde/|" "$page" >"$D/expected.json"
    else
        cp "$page" "$D/expected.json"
    fi
    cmp -s "$D/expected.json" "$D/check.body" || die "${names[$i]} returned a different body"
done
log "all proxies answer 200 with the upstream's $BODY_BYTES-byte page, ours with its @odata.context rewritten (${#names[@]} rows)"

# ---------------------------------------------------------------------------------------------
# Throughput and latency: wrk or h2load on CPU 0, rounds, order rotated each round.
to_ms() { # wrk or h2load latency such as 812.00us, 1.23ms, 1.01s
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.4f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.4f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.4f", v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.4f", v * 1000 }
        else { print "nan" } }'
}
tree_rss_kb() { # RSS of a process and its children (nginx: master + worker)
    local total=0 p r
    for p in "$1" $(pgrep -P "$1" || true); do
        r=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + ${r:-0}))
    done
    echo "$total"
}
: >"$D/results.tsv"
: >"$D/h2.tsv"
n=${#names[@]}
log "wrk -t1 -c$CONNS -d${DUR}s --latency; h2load -t1 -c$CONNS -m1 -D$DUR for -h2 rows; $ROUNDS rounds"
printf '%-11s %5s %10s %9s %9s %8s\n' proxy round 'req/s' 'p50 ms' 'p99 ms' 'rss kB' >&2
for round in $(seq "$ROUNDS"); do
    for k in $(seq 0 $((n - 1))); do
        i=$(((k + round - 1) % n))
        url="http://127.0.0.1:${ports[$i]}/mde/api/alerts"
        if [[ ${tools[$i]} == h2load ]]; then
            out=$(taskset -c 0 timeout $((DUR + 30)) h2load -t1 -c"$CONNS" -m1 -D"$DUR" "$url") \
                || die "h2load failed against ${names[$i]}"
            rps=$(awk '/^finished in/{print $4}' <<<"$out")
            read -r tmin tmax tmean tsd < <(awk '/^time for request:/{print $4, $5, $6, $7}' <<<"$out")
            failed=$(awk '/^requests:/{print $10 + $12 + $14}' <<<"$out")
            non2xx=$(awk '/^status codes:/{print $5 + $7 + $9}' <<<"$out")
            rss=$(tree_rss_kb "${procs[$i]}")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${names[$i]}" "$round" "$rps" \
                "$(to_ms "$tmin")" "$(to_ms "$tmean")" "$(to_ms "$tsd")" "$(to_ms "$tmax")" "$rss" \
                "${non2xx:-0}" "${failed:-0}" >>"$D/h2.tsv"
            printf '%-11s %5s %10s %9s %9s %8s %s\n' "${names[$i]}" "$round" "$rps" "mean" "$(to_ms "$tmean")" \
                "$rss" "(max $(to_ms "$tmax") ms) non2xx=${non2xx:-0} failed=${failed:-0}" >&2
            continue
        fi
        out=$(taskset -c 0 timeout $((DUR + 30)) wrk -t1 -c"$CONNS" -d"${DUR}s" --timeout 5s --latency "$url") \
            || die "wrk failed against ${names[$i]}"
        rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
        p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
        p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
        non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF}' <<<"$out")
        errors=$(awk '/Socket errors:/{gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
        rss=$(tree_rss_kb "${procs[$i]}")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${names[$i]}" "$round" "$rps" "$p50" "$p99" "$rss" \
            "${non2xx:-0}" "${errors:-0}" >>"$D/results.tsv"
        printf '%-11s %5s %10s %9s %9s %8s %s\n' "${names[$i]}" "$round" "$rps" "$p50" "$p99" "$rss" \
            "${non2xx:+non2xx=$non2xx}${errors:+ socket_errors=$errors}" >&2
    done
done
# The long-running instance of ours is done; the probes below start fresh ones.

# ---------------------------------------------------------------------------------------------
# Ours only: readiness and idle RSS, cold concurrency, streaming; each on a fresh process.
log "start -> /-/ready (5 fresh processes), idle RSS"
taskset -c 0 python3 "$BENCH/probe.py" ready --port "$P_PROBE" --repeat 5 -- \
    "${OURS_CMD[@]}" "$D/probe.toml" >"$D/ready.json" || die "readiness probe failed"
log "$COLD_N concurrent requests against a fresh process"
taskset -c 0 python3 "$BENCH/probe.py" cold --port "$P_PROBE" --n "$COLD_N" --path /mde/api/alerts -- \
    "${OURS_CMD[@]}" "$D/probe.toml" >"$D/cold.json" || die "cold probe failed"
log "streaming $STREAM_MIB MiB through a fresh process"
taskset -c 0 python3 "$BENCH/probe.py" stream --port "$P_PROBE" --path /mde/big.bin \
    --size "$((STREAM_MIB * 1024 * 1024))" -- \
    "${OURS_CMD[@]}" "$D/probe.toml" >"$D/stream.json" || die "stream probe failed"

echo "## Results"
echo
echo "Upstream body: $BODY_BYTES bytes of JSON; wrk -t1 -c$CONNS -d${DUR}s; $ROUNDS rounds."
echo "RSS for nginx is master + worker. 'ours-quiet' is our proxy with RUST_LOG=warn (no per-request log line)."
[[ $TLS_ROW == 1 ]] && echo "'-tls' rows: the upstream over TLS (HTTP/1.1, certificate verified, connections kept); ratios to nginx-tls."
[[ $H2_ROW == 1 ]] && echo "'-h2' rows: h2load -t1 -c$CONNS -m1 -D$DUR, HTTP/2 with prior knowledge from the client, HTTP/1.1 to the upstream."
echo
python3 "$BENCH/summarize.py" "$D/results.tsv" "$D/ready.json" "$D/cold.json" "$D/stream.json" "$D/h2.tsv"
for alt in ${ALT_BINS:-}; do
    alt_cmd=(env TOKIO_WORKER_THREADS=1 taskset -c 1 "${alt#*=}" serve --config)
    taskset -c 0 python3 "$BENCH/probe.py" ready --port "$P_PROBE" --repeat 5 -- \
        "${alt_cmd[@]}" "$D/probe.toml" >"$D/ready-alt.json" || die "readiness probe of ${alt%%=*} failed"
    python3 - "$D/ready-alt.json" "${alt%%=*}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
runs = ", ".join(str(x) for x in r["idle_rss_kb"])
print(f"\nours-{sys.argv[2]}: start -> /-/ready {r['ready_ms_median']:.1f} ms, idle RSS {r['idle_rss_kb_median']:.0f} kB (runs: {runs})")
PY
done
echo
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
