#!/usr/bin/env bash
# Conformance of defender-token-proxy against a real, OpenID-certified authorization server that
# nobody here wrote: npm oidc-provider 9.13.3 behind entra-shim.mjs (Entra's paths, two tenants,
# a stand-in upstream that verifies the injected JWT, counters for the assertions).
#
#   bash .ci/conformance/run.sh [path-to-defender-token-proxy]
#
# Without a path: `cargo build --locked --quiet` and target/debug/defender-token-proxy (honours
# CARGO_TARGET_DIR). Runs selftest.sh first (the shim alone, with curl and openssl), then one
# PASS/FAIL line per step, then "conformance: N passed, N failed"; exits non-zero on any failure.
# VERBOSE=1 prints each step's log, KEEP=1 keeps the temp dir (configs, every process's output).
#
# Needs node + npm (npm ci of package-lock.json), python3, curl, openssl, coreutils. Everything
# binds 127.0.0.1 on free ports; every process started is stopped on exit; waits are bounded.
#
# What it expects of the proxy (its CLI and config are written out below):
#   check                        before login: exit 1, "ok" for secret/cert/partner, "FAIL" for user;
#                                after login: exit 0
#   token NAME --scope S         exit 0, stdout holds the access token (a JWT)
#   token NAME --api mde         the same for the MDE scope
#   token NAME --tenant T ...    a token of tenant T for a multi-tenant credential
#   login NAME                   stdout lines "verification_uri: URL" and "user_code: CODE";
#                                exit 0 once signed in; one file, mode 0600, in [state] dir
#   logout NAME                  exit 0, the state file gone
#   serve --listen 127.0.0.1:P   GET /-/healthy -> 200; routes forward with the token injected;
#                                SIGTERM -> exits (within 10 s)
#   /customers/{tenant}/mde      a tenant not in the credential's list -> 403, no token request
# and it never prints a refresh token, the client secret or the private key.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO=$(cd "$CONF_DIR/../.." && pwd)
conf_init conformance
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
for tool in node npm python3 curl openssl timeout; do
    command -v "$tool" >/dev/null || { echo "FAIL prerequisites: $tool not found"; exit 1; }
done

# ---------------------------------------------------------------------------------------------
echo "== shim self-test (oidc-provider + shim, no proxy)"
npm_ci
if ! bash "$CONF_DIR/selftest.sh"; then
    echo "FAIL shim self-test: the shim is broken, the proxy was not tested"
    exit 1
fi

echo "== defender-token-proxy"
if [[ $# -ge 1 ]]; then
    BIN=$(realpath "$1")
else
    (cd "$REPO" && cargo build --locked --quiet)
    target=${CARGO_TARGET_DIR:-target}
    [[ $target == /* ]] || target=$REPO/$target
    BIN=$target/debug/defender-token-proxy
fi
[[ -x $BIN ]] || { echo "FAIL no proxy binary at $BIN"; exit 1; }
echo "binary: $BIN ($("$BIN" --version 2>&1 | head -n1))"

# ---------------------------------------------------------------------------------------------
# Keys, secret, two shims: A (default token lifetime) for client credentials and partner, B
# (AT_TTL=5, interval 1) for the device-code user, whose tokens then expire during the test.
make_client_cert "$TMP"
CONF_CLIENT_SECRET=$(openssl rand -hex 24)
export CONF_CLIENT_SECRET
export RUST_LOG=${RUST_LOG:-info,defender_token_proxy=debug}
mkdir -p "$TMP/out"
mkdir -m 700 "$TMP/state" "$TMP/state-a"
start_shim shim-a PORT=0 TENANTS="$T1,$T2" CLIENT_SECRET="$CONF_CLIENT_SECRET" CLIENT_CERT="$TMP/client.crt"
A=$SHIM_URL
start_shim shim-b PORT=0 TENANTS="$T1,$T2" AT_TTL=5 DEVICE_INTERVAL=1 \
    CLIENT_SECRET="$CONF_CLIENT_SECRET" CLIENT_CERT="$TMP/client.crt"
B=$SHIM_URL
echo "shim A $A, shim B $B (AT_TTL=5), temp $TMP"

# write_config FILE AUTHORITY STATE_DIR ALGORITHM: the proxy's config.
write_config() {
    local file=$1 authority=$2 state=$3 alg=$4 upstream
    upstream="$authority/upstream"
    cat >"$file" <<TOML
[server]
listen = "127.0.0.1:$(free_port)"

[cloud]
authority_host = "$authority"

[state]
dir = "$state"

[credentials.secret]
type = "client_secret"
tenant = "$T1"
client_id = "5ec7e700-0000-4000-8000-000000000001"
client_secret = { env = "CONF_CLIENT_SECRET" }

[credentials.cert]
type = "client_certificate"
tenant = "$T1"
client_id = "ce7ce700-0000-4000-8000-000000000002"
certificate = { file = "$TMP/client.pem" }
algorithm = "$alg"

[credentials.user]
type = "device_code"
tenant = "$T1"
client_id = "9ab11c00-0000-4000-8000-000000000003"

[credentials.partner]
type = "client_secret"
tenants = ["$T1", "$T2"]
client_id = "5ec7e700-0000-4000-8000-000000000001"
client_secret = { env = "CONF_CLIENT_SECRET" }

[[routes]]
prefix = "/mde"
upstream = "$upstream"
scope = "$SCOPE"
credential = "secret"

[[routes]]
prefix = "/cert"
upstream = "$upstream"
scope = "$SCOPE"
credential = "cert"

[[routes]]
prefix = "/user"
upstream = "$upstream"
scope = "$SCOPE"
credential = "user"

[[routes]]
prefix = "/customers/{tenant}/mde"
upstream = "$upstream"
scope = "$SCOPE"
credential = "partner"
TOML
}
CA=$TMP/config-a.toml    # shim A, certificate credential with RS256
CA_PS=$TMP/config-a-ps256.toml # the same with PS256
CB=$TMP/config-b.toml    # shim B, the device-code user's state in $TMP/state
write_config "$CA" "$A" "$TMP/state-a" RS256
write_config "$CA_PS" "$A" "$TMP/state-a" PS256
write_config "$CB" "$B" "$TMP/state" RS256

# proxy NAME ARGS...: run the proxy (bounded), output in $TMP/out/NAME.{out,err}; its exit status.
proxy() {
    local name=$1
    shift
    timeout 60 "$BIN" "$@" >"$TMP/out/$name.out" 2>"$TMP/out/$name.err"
}
show() { echo "--- $1 stdout"; cat "$TMP/out/$1.out"; echo "--- $1 stderr"; tail -n 30 "$TMP/out/$1.err"; }

# the first JWT on a file's lines
jwt_in() { grep -oE 'eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+' "$1" | head -n1; }

# start_proxy NAME CONFIG: serve on a free port; sets PROXY_PID and PROXY (its base URL) once
# /-/healthy answers 200.
start_proxy() {
    local name=$1 port
    port=$(free_port)
    "$BIN" --config "$2" serve --listen "127.0.0.1:$port" >"$TMP/out/$name.out" 2>"$TMP/out/$name.err" &
    PROXY_PID=$!
    register "$PROXY_PID"
    PROXY=http://127.0.0.1:$port
    if ! wait_until 30 proxy_healthy "$name"; then
        show "$name"
        die "proxy $name: /-/healthy did not answer 200 within 30 s"
    fi
}
proxy_healthy() {
    kill -0 "$PROXY_PID" 2>/dev/null || { show "$1"; die "proxy $1 exited before it was healthy"; }
    [[ $(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "$PROXY/-/healthy" 2>/dev/null) == 200 ]]
}
stop_proxy() {
    local rc=0
    stop_pid "$PROXY_PID" 10 || rc=$?
    not_alive "$PROXY_PID" || die "proxy did not stop within 10 s of SIGTERM"
    echo "proxy stopped (exit $rc)"
}

# get PATH OUT [curl args]: GET through the proxy; the body in OUT, the status printed.
get() {
    local path=$1 out=$2
    shift 2
    curl -sS --max-time 20 -o "$out" -w '%{http_code}' "$@" "$PROXY$path"
}

# token_count SHIM [MATCH...]: the number of token requests at SHIM with the given fields
# (python keyword arguments, e.g. client_id="5ec7e700-0000-4000-8000-000000000001").
token_count() {
    counters "$1" "$TMP/cnt.json"
    jq_py "$TMP/cnt.json" "n_tokens(d${2:+, $2})"
}

# ---------------------------------------------------------------------------------------------
step_a_check() {
    local rc=0
    proxy check --config "$CA" check || rc=$?
    show check
    # Nobody has signed in yet: check reports the user credential as failing (with the hint to run
    # login) and exits 1; every application credential and partner tenant must be ok.
    [[ $rc == 1 ]] || die "check exited $rc before login (expected 1: the user has not signed in)"
    local out=$TMP/out/check.out
    for name in secret cert partner; do
        grep -qE "^ok +$name " "$out" || die "check does not report credential $name as ok"
    done
    [[ $(grep -cE '^ok +partner ' "$out") == 2 ]] || die "check does not report both partner tenants"
    grep -qE '^FAIL +user ' "$out" || die "check does not report the user credential as failing"
    grep -q 'login' "$out" || die "check does not say to run login"
    if grep -qE '^FAIL +(secret|cert|partner) ' "$out"; then die "an application credential failed"; fi
}

# After login, check gets a user token too and exits 0.
step_d_check() {
    local rc=0
    proxy check-b --config "$CB" check || rc=$?
    show check-b
    [[ $rc == 0 ]] || die "check exited $rc after login"
    grep -qE '^ok +user ' "$TMP/out/check-b.out" || die "check does not report the user credential as ok"
}

# token_check NAME CONFIG CLIENT TENANT ARGS...: `token ARGS` prints a JWT for CLIENT in TENANT.
token_check() {
    local name=$1 config=$2 client=$3 tenant=$4 at shim=$A rc=0
    shift 4
    proxy "$name" --config "$config" token "$@" || rc=$?
    [[ $rc == 0 ]] || { show "$name"; die "token $* exited $rc"; }
    at=$(jwt_in "$TMP/out/$name.out")
    [[ -n $at ]] || { show "$name"; die "token $*: no JWT on stdout"; }
    jwt_claims "$at" >"$TMP/$name.claims"
    cat "$TMP/$name.claims"
    expect_json "$TMP/$name.claims" "d['client_id'] == '$client' and d['aud'] == '$AUDIENCE' and d['tid'] == '$tenant' and d['iss'] == '$shim/$tenant/v2.0'"
}

step_a_token() { token_check token-secret "$CA" 5ec7e700-0000-4000-8000-000000000001 "$T1" secret --scope "$SCOPE"; }
step_a_api() { token_check token-api "$CA" 5ec7e700-0000-4000-8000-000000000001 "$T1" secret --api mde; }

# step_b ALG CONFIG: a token for ce7ce700-0000-4000-8000-000000000002, and the shim saw an assertion signed with ALG.
step_b() {
    local before after
    counters "$A" "$TMP/b0.json"
    before=$(jq_py "$TMP/b0.json" "sum(n for k, n in d['client_assertions'].items() if k.startswith('$1 '))")
    token_check "token-cert-$1" "$2" ce7ce700-0000-4000-8000-000000000002 "$T1" cert --scope "$SCOPE"
    counters "$A" "$TMP/b1.json"
    after=$(jq_py "$TMP/b1.json" "sum(n for k, n in d['client_assertions'].items() if k.startswith('$1 '))")
    jq_py "$TMP/b1.json" 'd["client_assertions"]'
    ((after > before)) || die "the shim saw no $1 client assertion"
}

step_c() {
    local code n0 n1
    start_proxy serve-c "$CA"
    code=$(get /mde/whoami "$TMP/c1.json")
    expect_reply "$code" 200 "$TMP/c1.json" "d['client_id'] == '5ec7e700-0000-4000-8000-000000000001' and d['tid'] == '$T1' and d['aud'] == '$AUDIENCE' and d['path'] == '/upstream/whoami'" "/mde/whoami"
    cat "$TMP/c1.json"; echo
    # query string kept; the caller's own Authorization replaced by the proxy's token
    n0=$(token_count "$A" 'client_id="5ec7e700-0000-4000-8000-000000000001", tenant="'"$T1"'", status=200')
    code=$(get "/mde/api/machines?\$top=1" "$TMP/c2.json" -H 'Authorization: Bearer not-a-token')
    expect_reply "$code" 200 "$TMP/c2.json" "d['client_id'] == '5ec7e700-0000-4000-8000-000000000001' and d['path'] == '/upstream/api/machines?\$top=1'" "/mde/api/machines?\$top=1 with a client Authorization"
    n1=$(token_count "$A" 'client_id="5ec7e700-0000-4000-8000-000000000001", tenant="'"$T1"'", status=200')
    [[ $n1 == "$n0" ]] || die "a second request within the token's lifetime asked for a new token ($n0 -> $n1)"
    code=$(get /cert/whoami "$TMP/c3.json")
    expect_reply "$code" 200 "$TMP/c3.json" "d['client_id'] == 'ce7ce700-0000-4000-8000-000000000002' and d['tid'] == '$T1' and d['aud'] == '$AUDIENCE'" "/cert/whoami"
    cat "$TMP/c3.json"; echo
    stop_proxy
}

# the newest refresh token the shim issued to 9ab11c00-0000-4000-8000-000000000003, or nothing
newest_rt() {
    counters "$1" "$TMP/rt.json"
    jq_py "$TMP/rt.json" '([r["value"] for r in d["refresh_tokens"] if r["client_id"] == "9ab11c00-0000-4000-8000-000000000003"] or [""])[-1]'
}
state_file() {
    local files
    mapfile -t files < <(find "$TMP/state" -type f)
    [[ ${#files[@]} == 1 ]] || die "expected one file in [state] dir, found ${#files[@]}: ${files[*]}"
    echo "${files[0]}"
}
state_has_newest_rt() { grep -qF -- "$(newest_rt "$B")" "$(state_file)"; }

login_ready() {
    grep -qE '^[[:space:]]*user_code:[[:space:]]*[^[:space:]]+' "$TMP/out/login.out" && return 0
    kill -0 "$1" 2>/dev/null || { show login; die "login exited without a 'user_code: ' line"; }
    return 1
}

step_d_login() {
    local pid code rc=0 verif
    timeout 60 "$BIN" --config "$CB" login user >"$TMP/out/login.out" 2>"$TMP/out/login.err" &
    pid=$!
    register "$pid"
    wait_until 20 login_ready "$pid" || { show login; die "no 'user_code: ' line on stdout within 20 s"; }
    show login
    code=$(sed -nE 's/^[[:space:]]*user_code:[[:space:]]*([^[:space:]]+).*/\1/p' "$TMP/out/login.out" | head -n1)
    verif=$(sed -nE 's/^[[:space:]]*verification_uri:[[:space:]]*([^[:space:]]+).*/\1/p' "$TMP/out/login.out" | head -n1)
    [[ $verif == "$B/$T1/oauth2/deviceauth" ]] || die "verification_uri line: '$verif' (expected $B/$T1/oauth2/deviceauth)"
    python3 "$CONF_DIR/approve-device.py" "$B" "$T1" "$code" "$LOGIN"
    wait_until 30 not_alive "$pid" || die "login still running 30 s after approval"
    wait "$pid" || rc=$?
    show login
    [[ $rc == 0 ]] || die "login exited $rc"
    counters "$B" "$TMP/d0.json"
    expect_json "$TMP/d0.json" 'n_tokens(d, client_id="9ab11c00-0000-4000-8000-000000000003", grant_type="urn:ietf:params:oauth:grant-type:device_code", status=200) == 1'
    # the device authorization asked for the route scope and offline_access
    expect_json "$TMP/d0.json" "d['device_authorizations'].get('$T1 9ab11c00-0000-4000-8000-000000000003') == 1"
    # polls no faster than the interval (1 s)
    jq_py "$TMP/d0.json" '[r["t"] for r in d["token_requests"] if r["grant_type"].endswith("device_code")]' >"$TMP/polls.json"
    expect_json "$TMP/polls.json" 'all(b - a >= 900 for a, b in zip(d, d[1:]))'
    local f
    f=$(state_file)
    [[ $(stat -c %a "$f") == 600 ]] || die "state file $f has mode $(stat -c %a "$f"), expected 600"
    state_has_newest_rt || die "state file does not hold the refresh token the shim issued"
    echo "state file $f, mode 600, holds the issued refresh token"
}

step_d_rotation() {
    local code exp0 exp1 end rt_before rt_after
    start_proxy serve-d1 "$CB"
    code=$(get /user/whoami "$TMP/d1.json")
    expect_reply "$code" 200 "$TMP/d1.json" "d['sub'] == '$LOGIN' and d['client_id'] == '9ab11c00-0000-4000-8000-000000000003' and d['tid'] == '$T1' and d['aud'] == '$AUDIENCE'" "/user/whoami"
    cat "$TMP/d1.json"; echo
    exp0=$(jq_py "$TMP/d1.json" 'd["exp"]')
    rt_before=$(token_count "$B" 'grant_type="refresh_token", client_id="9ab11c00-0000-4000-8000-000000000003", status=200')
    # Keep calling (every request must succeed) until the first token has expired and the proxy
    # has refreshed with its refresh token (AT_TTL=5).
    end=$((SECONDS + 30))
    while :; do
        code=$(get /user/whoami "$TMP/d2.json")
        expect_reply "$code" 200 "$TMP/d2.json" "d['sub'] == '$LOGIN'" "/user/whoami around the token's expiry"
        rt_after=$(token_count "$B" 'grant_type="refresh_token", client_id="9ab11c00-0000-4000-8000-000000000003", status=200')
        if past "$exp0" && ((rt_after > rt_before)) && (($(jq_py "$TMP/d2.json" 'd["exp"]') > exp0)); then break; fi
        ((SECONDS < end)) || die "no refresh within 30 s (refresh grants $rt_before -> $rt_after)"
        sleep 0.5
    done
    exp1=$(jq_py "$TMP/d2.json" 'd["exp"]')
    echo "token exp $exp0 -> $exp1 after $((rt_after - rt_before)) refresh(es)"
    wait_until 10 state_has_newest_rt || die "state file does not hold the newest (rotated) refresh token"
    stop_proxy
    # Let every access token the proxy had expire, so that after the restart only the stored
    # refresh token can get one.
    counters "$B" "$TMP/d3c.json"
    wait_until 10 past "$(jq_py "$TMP/d3c.json" 'max([r["t"] // 1000 + r["expires_in"] + 1 for r in d["token_requests"] if r["client_id"] == "9ab11c00-0000-4000-8000-000000000003" and r.get("expires_in")] + [0])')" \
        || die "the access tokens did not expire within 10 s"
    rt_before=$(token_count "$B" 'grant_type="refresh_token", client_id="9ab11c00-0000-4000-8000-000000000003", status=200')
    start_proxy serve-d2 "$CB"
    code=$(get /user/whoami "$TMP/d3.json")
    expect_reply "$code" 200 "$TMP/d3.json" "d['sub'] == '$LOGIN' and d['client_id'] == '9ab11c00-0000-4000-8000-000000000003'" "/user/whoami after a restart"
    rt_after=$(token_count "$B" 'grant_type="refresh_token", client_id="9ab11c00-0000-4000-8000-000000000003", status=200')
    ((rt_after > rt_before)) || die "after the restart no refresh_token grant was made"
    counters "$B" "$TMP/d4.json"
    expect_json "$TMP/d4.json" 'd["refresh_token_reuse"] == 0'
    expect_json "$TMP/d4.json" 'n_tokens(d, client_id="9ab11c00-0000-4000-8000-000000000003", error="invalid_grant") == 0'
    wait_until 10 state_has_newest_rt || die "state file does not hold the newest refresh token after the restart"
    stop_proxy
    echo "refresh-token reuse seen by oidc-provider: 0"
}

step_e() {
    local code n0 n1
    start_proxy serve-e "$CA"
    for t in "$T1" "$T2"; do
        code=$(get "/customers/$t/mde/whoami" "$TMP/e.json")
        expect_reply "$code" 200 "$TMP/e.json" "d['tid'] == '$t' and d['iss'] == '$A/$t/v2.0' and d['client_id'] == '5ec7e700-0000-4000-8000-000000000001' and d['path'] == '/upstream/whoami'" "/customers/$t/mde/whoami"
        cat "$TMP/e.json"; echo
    done
    n0=$(token_count "$A")
    code=$(get "/customers/$T3/mde/whoami" "$TMP/e3.out")
    [[ $code == 403 ]] || die "/customers/$T3/mde/whoami (tenant not in the list): HTTP $code, expected 403: $(head -c 300 "$TMP/e3.out")"
    n1=$(token_count "$A")
    [[ $n1 == "$n0" ]] || die "the 403 came after $((n1 - n0)) token request(s)"
    [[ $(token_count "$A" "tenant='$T3'") == 0 ]] || die "a token was asked for tenant $T3"
    stop_proxy
    echo "T1, T2 -> their own tokens; $T3 -> 403 without a token request"
}
step_e_cli() { token_check token-partner "$CA" 5ec7e700-0000-4000-8000-000000000001 "$T2" partner --tenant "$T2" --scope "$SCOPE"; }

step_f() {
    local n rc=0
    proxy logout --config "$CB" logout user || rc=$?
    show logout
    [[ $rc == 0 ]] || die "logout exited $rc"
    n=$(find "$TMP/state" -type f | wc -l)
    [[ $n == 0 ]] || die "$n file(s) left in [state] dir: $(find "$TMP/state" -type f)"
}

# Nothing secret in anything the proxy printed; the token requests looked like the proxy's.
step_hygiene() {
    local f secrets=() s
    counters "$A" "$TMP/ha.json"
    counters "$B" "$TMP/hb.json"
    mapfile -t secrets < <(jq_py "$TMP/hb.json" '"\n".join(r["value"] for r in d["refresh_tokens"])')
    secrets+=("$CONF_CLIENT_SECRET" "$(sed -n 2p "$TMP/client.key")")
    echo "checking $(find "$TMP/out" -type f | wc -l) output files for ${#secrets[@]} secrets"
    for f in "$TMP"/out/*; do
        for s in "${secrets[@]}"; do
            [[ -z $s ]] || ! grep -qF -- "$s" "$f" || die "$(basename "$f") contains a secret (${s:0:6}...)"
        done
    done
    for c in "$TMP/ha.json" "$TMP/hb.json"; do
        jq_py "$c" 'd["user_agents"]'
        expect_json "$c" 'len(d["user_agents"]) > 0' || die "the proxy made no token request at this shim"
        expect_json "$c" 'all(k.startswith("defender-token-proxy/") for k in d["user_agents"])'
        expect_json "$c" 'd["missing_content_type"] == 0'
    done
}

step "a. check before login: every app credential and partner tenant ok, the user told to log in" step_a_check
step "a. token secret --scope: JWT of the secret client for the MDE audience" step_a_token
step "a. token secret --api mde: the same audience" step_a_api
step "b. token cert (private_key_jwt, RS256)" step_b RS256 "$CA"
step "b. token cert (private_key_jwt, PS256)" step_b PS256 "$CA_PS"
step "c. serve: /mde and /cert reach the upstream with the secret and certificate clients' tokens" step_c
step "d. login user (device code): approved, exit 0, state file 0600 with the refresh token" step_d_login
step "d. check after login: every credential ok, exit 0" step_d_check
step "d. serve /user: token expiry -> refresh with rotation; restart -> newest refresh token works" step_d_rotation
step "e. partner: /customers/{T1,T2}/mde get their tenant's token, another tenant 403" step_e
step "e. token partner --tenant T2: a token of tenant 2" step_e_cli
step "f. logout user: exit 0, state file gone" step_f
step "no secret in any proxy output; user-agent and Content-Type of the token requests" step_hygiene
summary conformance
