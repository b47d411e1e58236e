# shellcheck shell=bash disable=SC2034 # the constants are for the sourcing scripts
# Shared by selftest.sh and run.sh (sourced, not run): temp dir, process cleanup, PASS/FAIL steps,
# the shim, free ports, bounded polling, JSON and JWT helpers, client assertions made with openssl.
# The sourcing script sets `set -euo pipefail` first.

CONF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONF_DIR
SCOPE=https://api.securitycenter.microsoft.com/.default
AUDIENCE=https://api.securitycenter.microsoft.com
T1=11111111-1111-1111-1111-111111111111
T2=22222222-2222-2222-2222-222222222222
T3=33333333-3333-3333-3333-333333333333 # a well-formed tenant no credential lists
LOGIN=analyst@contoso.example
PASSED=0
FAILED=0

# conf_init NAME: the temp dir ($TMP), removed on exit (KEEP=1 keeps it), and the cleanup trap.
# Every background process is registered in $TMP/pids (steps run in subshells, so a file, not an
# array) and stopped on exit.
conf_init() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/dtp-conf-$1.XXXXXX")
    export TMP
    : >"$TMP/pids"
    trap conf_cleanup EXIT
    trap 'exit 130' INT TERM
}

conf_cleanup() {
    local rc=$? pid
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$TMP/pids"
    while read -r pid; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done <"$TMP/pids"
    if [[ ${KEEP:-} == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
    exit "$rc"
}

# register PID: stop it on exit.
register() { echo "$1" >>"$TMP/pids"; }

# stop_pid PID [SECS]: SIGTERM, wait for it to go (bounded), then SIGKILL. Returns the exit status
# when it is our child, 0 otherwise.
stop_pid() {
    local pid=$1 secs=${2:-10} rc=0
    kill "$pid" 2>/dev/null || return 0
    wait_until "$secs" not_alive "$pid" || kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}
not_alive() { ! kill -0 "$1" 2>/dev/null; }
# past EPOCH: the clock is at or past EPOCH (seconds).
past() { (($(date +%s) >= $1)); }

# step NAME FUNCTION [ARGS...]: run one step in a subshell with errexit in force, its output in
# $TMP/step-N.log; print "PASS NAME" or "FAIL NAME" followed by the log's last lines.
step() {
    local name=$1 rc=0 log t0 dt
    shift
    t0=$(date +%s%N)
    log="$TMP/step-$((PASSED + FAILED + 1)).log"
    set +e
    (set -e; "$@") >"$log" 2>&1
    rc=$?
    set -e
    dt=$((($(date +%s%N) - t0) / 100000000))
    dt="$((dt / 10)).$((dt % 10))s"
    if [[ $rc == 0 ]]; then
        PASSED=$((PASSED + 1))
        echo "PASS $name ($dt)"
        if [[ ${VERBOSE:-} == 1 ]]; then sed 's/^/    /' "$log"; fi
    else
        FAILED=$((FAILED + 1))
        echo "FAIL $name (exit $rc, $dt)"
        tail -n "${FAIL_LINES:-25}" "$log" | sed 's/^/    /'
    fi
}

# summary LABEL: the closing "N passed, N failed" line; non-zero when anything failed.
summary() {
    echo "$1: $PASSED passed, $FAILED failed"
    [[ $FAILED == 0 ]]
}

# die MESSAGE: inside a step, fail it.
die() { echo "$*" >&2; exit 1; }

# wait_until SECS COMMAND...: poll COMMAND every 0.2 s until it succeeds; fail after SECS.
wait_until() {
    local secs=$1 end
    shift
    end=$((SECONDS + secs))
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

# npm_ci: install the pinned oidc-provider (package-lock.json) into $CONF_DIR/node_modules unless
# it is there already for this very lock file.
npm_ci() {
    local stamp
    stamp=$(sha256sum "$CONF_DIR/package-lock.json" | cut -d' ' -f1)
    if [[ $(cat "$CONF_DIR/node_modules/.conf-stamp" 2>/dev/null) != "$stamp" ]]; then
        (cd "$CONF_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        echo "$stamp" >"$CONF_DIR/node_modules/.conf-stamp"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# make_client_cert DIR: a throw-away self-signed client certificate: DIR/client.crt, DIR/client.key
# (PKCS#8) and DIR/client.pem holding both (the form the proxy reads).
make_client_cert() {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1/client.key.tmp" -out "$1/client.crt" \
        -days 2 -subj "/CN=ce7ce700-0000-4000-8000-000000000002 conformance" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$1/client.key.tmp" -out "$1/client.key"
    rm -f "$1/client.key.tmp"
    cat "$1/client.crt" "$1/client.key" >"$1/client.pem"
    chmod 600 "$1/client.key" "$1/client.pem"
}

# start_shim NAME [ENV=VALUE...]: start entra-shim.mjs with the environment given, wait for its
# "listening" line (bounded) and set SHIM_URL. Output in $TMP/NAME.out / NAME.err.
start_shim() {
    local name=$1 pid
    shift
    env "$@" node "$CONF_DIR/entra-shim.mjs" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    pid=$!
    register "$pid"
    if ! wait_until 20 grep -qs '^listening http://127.0.0.1:[0-9]*$' "$TMP/$name.out"; then
        cat "$TMP/$name.err" >&2
        echo "shim $name did not start" >&2
        return 1
    fi
    SHIM_URL=$(sed -n 's/^listening //p' "$TMP/$name.out")
}

# counters SHIM_URL FILE: save the shim's counters.
counters() { curl -fsS --max-time 5 "$1/_conf/counters" >"$2"; }

# jq_py FILE EXPR: evaluate a Python expression over the JSON document `d` in FILE and print it
# (no jq on a fresh Debian). Helpers in scope: n_tokens(d, **match) counts token requests whose
# fields equal the given values.
jq_py() {
    python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def n_tokens(d, **match):
    return sum(all(r.get(k) == v for k, v in match.items()) for r in d["token_requests"])
r = eval(sys.argv[2])
print(json.dumps(r) if isinstance(r, (dict, list, bool)) or r is None else r)
PY
}

# jwt_claims JWT: the payload as JSON.
jwt_claims() {
    python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.dumps(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))))' "$1"
}
jwt_header() {
    python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[0]; print(json.dumps(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))))' "$1"
}

# expect_json FILE EXPR: fail (showing the document) unless the Python expression over `d` is true.
expect_json() {
    if [[ $(jq_py "$1" "bool($2)") != true ]]; then
        echo "expected $2 in $1:" >&2
        head -c 2000 "$1" >&2
        echo >&2
        return 1
    fi
}

# expect_reply CODE WANT FILE EXPR MESSAGE: fail with MESSAGE unless the HTTP status CODE is WANT
# and the Python expression EXPR holds for the JSON body in FILE.
expect_reply() {
    [[ $1 == "$2" ]] || die "$5: HTTP $1 (expected $2): $(head -c 600 "$3")"
    expect_json "$3" "$4" || die "$5"
}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# make_assertion CLIENT_ID AUD KEY CERT ALG THUMB [KID]: an Entra client assertion signed with
# openssl. ALG RS256 or PS256; THUMB x5t (SHA-1) or x5t#S256 (SHA-256) names the header member.
make_assertion() {
    local client=$1 aud=$2 key=$3 cert=$4 alg=$5 thumb=$6 tp h p now jti
    local -a sigopt=()
    case $thumb in
        x5t) tp=$(openssl x509 -in "$cert" -outform DER | openssl dgst -sha1 -binary | b64url) ;;
        x5t#S256) tp=$(openssl x509 -in "$cert" -outform DER | openssl dgst -sha256 -binary | b64url) ;;
        none) tp= ;;
        *) return 2 ;;
    esac
    [[ $alg == PS256 ]] && sigopt=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest)
    now=$(date +%s)
    jti=$(openssl rand -hex 16)
    if [[ $thumb == none ]]; then
        h=$(printf '{"alg":"%s","typ":"JWT"}' "$alg" | b64url)
    else
        h=$(printf '{"alg":"%s","typ":"JWT","%s":"%s"}' "$alg" "$thumb" "$tp" | b64url)
    fi
    p=$(printf '{"aud":"%s","iss":"%s","sub":"%s","jti":"%s","nbf":%d,"iat":%d,"exp":%d}' \
        "$aud" "$client" "$client" "$jti" "$now" "$now" $((now + 300)) | b64url)
    printf '%s.%s.%s' "$h" "$p" \
        "$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign "$key" "${sigopt[@]}" -binary | b64url)"
}

# token_post URL OUT [curl args...]: POST a form to a token endpoint; the body in OUT, the status printed.
token_post() {
    local url=$1 out=$2
    shift 2
    curl -sS --max-time 10 -o "$out" -w '%{http_code}' "$url" "$@"
}
