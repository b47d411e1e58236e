#!/usr/bin/env bash
# Benchmark: what a partner's listed tenant costs the proxy in resident memory, with its token.
#
#   bash bench/tenants-memory.sh            # debug build
#   PROFILE=release bash bench/tenants-memory.sh
#
# For N = 0 (a single-tenant /mde route only) and N = $TENANTS (default 1000) customer tenants
# listed on one partner credential, it starts the simulator (the example bench/tenants_sim.rs) and
# the proxy (`serve`) on 127.0.0.1, waits until the proxy's warm-up has a token for every tenant
# (its token_requests metric), lets it settle, and reads VmRSS from /proc/PID/status. It prints
# both figures and (RSS(N) - RSS(0)) / N in kB per tenant, the median of $ROUNDS (default 3) runs.
# Loopback only; nothing reaches Microsoft.
#
# Environment: PROFILE (debug or release), TENANTS, ROUNDS, PORT (default 18290), SETTLE (s, default
# 3: after the warm-up, before reading VmRSS), KEEP=1 to keep the working directory.
set -euo pipefail

PROFILE=${PROFILE:-debug}
TENANTS=${TENANTS:-1000}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18290}
SETTLE=${SETTLE:-3}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

die() { echo "tenants-memory: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }

flag=()
[[ $PROFILE == release ]] && flag=(--release)
[[ $PROFILE == debug || $PROFILE == release ]] || die "PROFILE is debug or release"
log "cargo build --locked ${flag[*]} --bin defender-token-proxy --example tenants_sim"
(cd "$REPO" && cargo build --locked --quiet "${flag[@]}" --bin defender-token-proxy --example tenants_sim) ||
    die "cargo build failed"
BIN=$TARGET/$PROFILE/defender-token-proxy
SIM=$TARGET/$PROFILE/examples/tenants_sim

D=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ ${KEEP:-} == 1 ]] && echo "kept $D" >&2 || rm -rf "$D"
}
trap cleanup EXIT
export BENCH_CLIENT_SECRET=demo-secret

# measure N: prints the proxy's VmRSS in kB once every one of its N+1 tokens is cached.
measure() {
    local n=$1 sim proxy deadline rss
    # The previous run's files go first: its "ready" must not be taken for this one's.
    rm -f "$D/config.toml" "$D/sim.out"
    "$SIM" "$n" "$D/config.toml" "$PORT" >"$D/sim.out" 2>"$D/sim.err" &
    sim=$!
    pids+=("$sim")
    deadline=$((SECONDS + 60))
    until grep -q ready "$D/sim.out" 2>/dev/null; do
        ((SECONDS < deadline)) || die "the simulator did not start: $(head -c 500 "$D/sim.err")"
        sleep 0.1
    done
    RUST_LOG=warn "$BIN" serve --config "$D/config.toml" >"$D/proxy.out" 2>"$D/proxy.err" &
    proxy=$!
    pids+=("$proxy")
    deadline=$((SECONDS + 120))
    until [[ $(curl -fsS "http://127.0.0.1:$PORT/-/metrics" 2>/dev/null |
        grep -c '^defender_token_proxy_token_requests_total{.*outcome="success"}') == $((n + 1)) ]]; do
        ((SECONDS < deadline)) || die "the warm-up of $n tenants did not finish: $(head -c 500 "$D/proxy.err")"
        kill -0 "$proxy" 2>/dev/null || die "the proxy exited: $(head -c 500 "$D/proxy.err")"
        sleep 0.2
    done
    sleep "$SETTLE"
    rss=$(awk '/^VmRSS:/{print $2}' "/proc/$proxy/status")
    kill "$proxy" 2>/dev/null || true
    kill -INT "$sim" 2>/dev/null || true
    wait "$proxy" "$sim" 2>/dev/null || true
    echo "$rss"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

per=()
for ((round = 1; round <= ROUNDS; round++)); do
    base=$(measure 0)
    full=$(measure "$TENANTS")
    kb=$(awk -v f="$full" -v b="$base" -v n="$TENANTS" 'BEGIN {printf "%.1f", (f - b) / n}')
    log "round $round: VmRSS $base kB with 0 tenants, $full kB with $TENANTS: $kb kB per tenant"
    per+=("$kb")
done
printf '%s build, %s listed tenants, %s rounds: median %s kB resident per tenant with its token\n' \
    "$PROFILE" "$TENANTS" "$ROUNDS" "$(printf '%s\n' "${per[@]}" | median)"
