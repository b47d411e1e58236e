#!/usr/bin/env bash
# Self-test of the conformance shim, with curl and openssl only (no proxy): tells a broken shim
# apart from a broken proxy. run.sh runs it first.
#
#   bash .ci/conformance/selftest.sh      # VERBOSE=1 shows each step's log, KEEP=1 keeps the temp dir
#
# Needs node + npm (runs `npm ci` when node_modules is missing or older than package-lock.json), python3, curl, openssl.
# Starts its own shims on free ports of 127.0.0.1 and stops them on exit.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
conf_init selftest

npm_ci

make_client_cert "$TMP"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/other.key" -out "$TMP/other.crt" \
    -days 2 -subj "/CN=not ce7ce700-0000-4000-8000-000000000002" 2>/dev/null
SECRET=$(openssl rand -hex 16)
start_shim shim PORT=0 TENANTS="$T1,$T2" DEVICE_INTERVAL=1 CLIENT_SECRET="$SECRET" CLIENT_CERT="$TMP/client.pem"
B=$SHIM_URL
echo "shim at $B"
tok() { echo "$B/$1/oauth2/v2.0/token"; }
at_of() { jq_py "$1" 'd["access_token"]'; }

secret_ok() {
    local code
    code=$(token_post "$(tok "$T1")" "$TMP/s1.json" -d grant_type=client_credentials -d client_id=5ec7e700-0000-4000-8000-000000000001 \
        -d client_secret="$SECRET" --data-urlencode scope="$SCOPE")
    [[ $code == 200 ]] || die "HTTP $code: $(cat "$TMP/s1.json")"
    expect_json "$TMP/s1.json" 'd["token_type"] == "Bearer" and d["expires_in"] == 3599 and "refresh_token" not in d'
    jwt_claims "$(at_of "$TMP/s1.json")" >"$TMP/s1.claims"
    jwt_header "$(at_of "$TMP/s1.json")" >"$TMP/s1.header"
    cat "$TMP/s1.header" "$TMP/s1.claims"
    expect_json "$TMP/s1.header" 'd["alg"] == "RS256" and d["typ"] == "at+jwt"'
    expect_json "$TMP/s1.claims" "d['client_id'] == '5ec7e700-0000-4000-8000-000000000001' and d['aud'] == '$AUDIENCE' and d['tid'] == '$T1' and d['iss'] == '$B/$T1/v2.0' and d['scope'] == '$SCOPE'"
}

secret_errors() {
    local code
    code=$(token_post "$(tok "$T1")" "$TMP/e.json" -d grant_type=client_credentials -d client_id=5ec7e700-0000-4000-8000-000000000001 \
        -d client_secret=wrong --data-urlencode scope="$SCOPE")
    expect_reply "$code" 401 "$TMP/e.json" 'd["error"] == "invalid_client"' "wrong secret: $code"
    code=$(token_post "$(tok "$T1")" "$TMP/e.json" -d grant_type=client_credentials -d client_id=5ec7e700-0000-4000-8000-000000000001 \
        -d client_secret="$SECRET")
    expect_reply "$code" 400 "$TMP/e.json" '"AADSTS900144" in d["error_description"]' "no scope: $code"
    code=$(token_post "$(tok "$T1")" "$TMP/e.json" -d grant_type=client_credentials -d client_id=5ec7e700-0000-4000-8000-000000000001 \
        -d client_secret="$SECRET" -d scope=openid)
    expect_reply "$code" 400 "$TMP/e.json" 'd["error"] == "invalid_scope"' "scope without /.default: $code"
    code=$(token_post "$(tok "$T3")" "$TMP/e.json" -d grant_type=client_credentials -d client_id=5ec7e700-0000-4000-8000-000000000001 \
        -d client_secret="$SECRET" --data-urlencode scope="$SCOPE")
    expect_reply "$code" 400 "$TMP/e.json" '"AADSTS90002" in d["error_description"]' "unknown tenant: $code"
    # Entra takes a form without Content-Type; the shim defaults it and counts it.
    code=$(token_post "$(tok "$T1")" "$TMP/e.json" -H 'Content-Type:' -d grant_type=client_credentials \
        -d client_id=5ec7e700-0000-4000-8000-000000000001 -d client_secret="$SECRET" --data-urlencode scope="$SCOPE")
    [[ $code == 200 ]] || die "no Content-Type: $code $(cat "$TMP/e.json")"
    counters "$B" "$TMP/c.json"
    expect_json "$TMP/c.json" 'd["missing_content_type"] == 1'
    echo "wrong secret 401, no scope 400 AADSTS900144, openid 400 invalid_scope, unknown tenant 400 AADSTS90002, no Content-Type 200"
}

secret_second_tenant() {
    local code
    code=$(token_post "$(tok "$T2")" "$TMP/s2.json" -d grant_type=client_credentials -d client_id=5ec7e700-0000-4000-8000-000000000001 \
        -d client_secret="$SECRET" --data-urlencode scope="$SCOPE")
    [[ $code == 200 ]] || die "HTTP $code: $(cat "$TMP/s2.json")"
    jwt_claims "$(at_of "$TMP/s2.json")" >"$TMP/s2.claims"
    expect_json "$TMP/s2.claims" "d['tid'] == '$T2' and d['iss'] == '$B/$T2/v2.0' and d['aud'] == '$AUDIENCE'"
    # and its signing key is not T1's
    [[ $(jwt_header "$(at_of "$TMP/s2.json")") != $(cat "$TMP/s1.header") ]] || die "same kid for both tenants"
}

# cert_with ALG THUMB [AUD]: client_credentials with an assertion; prints the HTTP status.
cert_with() {
    local a
    a=$(make_assertion ce7ce700-0000-4000-8000-000000000002 "${3:-$(tok "$T1")}" "${4:-$TMP/client.key}" "$TMP/client.crt" "$1" "$2")
    echo "$a" >"$TMP/last-assertion"
    token_post "$(tok "$T1")" "$TMP/c-$1.json" -d grant_type=client_credentials -d client_id=ce7ce700-0000-4000-8000-000000000002 \
        -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
        -d client_assertion="$a" --data-urlencode scope="$SCOPE"
}

cert_alg() {
    local code
    code=$(cert_with "$1" "$2")
    [[ $code == 200 ]] || die "$1/$2: HTTP $code $(cat "$TMP/c-$1.json")"
    jwt_claims "$(at_of "$TMP/c-$1.json")" >"$TMP/c-$1.claims"
    expect_json "$TMP/c-$1.claims" "d['client_id'] == 'ce7ce700-0000-4000-8000-000000000002' and d['aud'] == '$AUDIENCE' and d['tid'] == '$T1'"
    counters "$B" "$TMP/c.json"
    expect_json "$TMP/c.json" "d['client_assertions'].get('$1 $2', 0) >= 1"
}

cert_negative() {
    local code a
    code=$(cert_with RS256 x5t)
    [[ $code == 200 ]] || die "baseline: $code"
    a=$(cat "$TMP/last-assertion")
    code=$(token_post "$(tok "$T1")" "$TMP/n.json" -d grant_type=client_credentials -d client_id=ce7ce700-0000-4000-8000-000000000002 \
        -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
        -d client_assertion="$a" --data-urlencode scope="$SCOPE")
    [[ $code == 401 ]] || die "replayed assertion (same jti): $code"
    code=$(cert_with RS256 x5t "$(tok "$T2")")
    [[ $code == 401 ]] || die "aud of the other tenant: $code"
    code=$(cert_with RS256 x5t "$B/$T1/v2.0")
    [[ $code == 401 ]] || die "aud = issuer (oidc-provider would take it, Entra not): $code"
    code=$(cert_with RS256 x5t "" "$TMP/other.key")
    [[ $code == 401 ]] || die "signed by another key: $code"
    code=$(cert_with RS256 none)
    [[ $code == 401 ]] || die "no x5t / x5t#S256 header: $code"
    code=$(cert_with ES256 x5t)
    [[ $code == 401 ]] || die "alg not matching the key: $code"
    echo "replay 401, other tenant's aud 401, issuer aud 401, other key 401, no thumbprint 401, ES256 401"
}

upstream_checks() {
    local at code
    at=$(at_of "$TMP/s1.json")
    code=$(curl -sS -o "$TMP/u.json" -w '%{http_code}' -H "Authorization: Bearer $at" "$B/upstream/api/machines?\$top=1")
    [[ $code == 200 ]] || die "valid token: $code $(cat "$TMP/u.json")"
    expect_json "$TMP/u.json" "d['client_id'] == '5ec7e700-0000-4000-8000-000000000001' and d['tid'] == '$T1' and d['aud'] == '$AUDIENCE' and d['path'] == '/upstream/api/machines?\$top=1' and d['iss'] == '$B/$T1/v2.0' and d['sub'] == '5ec7e700-0000-4000-8000-000000000001'"
    code=$(curl -sS -o /dev/null -w '%{http_code}' "$B/upstream/whoami")
    [[ $code == 401 ]] || die "no token: $code"
    local sig=${at##*.}
    [[ ${sig:0:1} == A ]] && sig=B${sig:1} || sig=A${sig:1}
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${at%.*}.$sig" "$B/upstream/whoami")
    [[ $code == 401 ]] || die "bad signature: $code"
    # T2's payload under T1's header and signature
    local t2
    t2=$(at_of "$TMP/s2.json")
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${at%%.*}.$(cut -d. -f2 <<<"$t2").${at##*.}" "$B/upstream/whoami")
    [[ $code == 401 ]] || die "spliced token: $code"
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Basic eDp5" "$B/upstream/whoami")
    [[ $code == 401 ]] || die "Basic: $code"
    echo "valid 200 with claims; none, bad signature, spliced, Basic: 401"
}

device_flow() {
    local code dc uc
    code=$(token_post "$B/$T1/oauth2/v2.0/devicecode" "$TMP/dc.json" -d client_id=9ab11c00-0000-4000-8000-000000000003 \
        --data-urlencode "scope=$SCOPE offline_access")
    [[ $code == 200 ]] || die "devicecode: $code $(cat "$TMP/dc.json")"
    cat "$TMP/dc.json"; echo
    expect_json "$TMP/dc.json" 'd["interval"] == 1 and "message" in d and "verification_uri_complete" not in d and d["expires_in"] > 0'
    expect_json "$TMP/dc.json" "d['verification_uri'] == '$B/$T1/oauth2/deviceauth'"
    dc=$(jq_py "$TMP/dc.json" 'd["device_code"]')
    uc=$(jq_py "$TMP/dc.json" 'd["user_code"]')
    code=$(token_post "$(tok "$T1")" "$TMP/dt.json" -d grant_type=urn:ietf:params:oauth:grant-type:device_code \
        -d client_id=9ab11c00-0000-4000-8000-000000000003 -d device_code="$dc")
    expect_reply "$code" 400 "$TMP/dt.json" 'd["error"] == "authorization_pending"' "before approval: $code"
    python3 "$CONF_DIR/approve-device.py" "$B" "$T1" "$uc" "$LOGIN"
    code=$(token_post "$(tok "$T1")" "$TMP/dt.json" -d grant_type=urn:ietf:params:oauth:grant-type:device_code \
        -d client_id=9ab11c00-0000-4000-8000-000000000003 -d device_code="$dc")
    [[ $code == 200 ]] || die "after approval: $code $(cat "$TMP/dt.json")"
    expect_json "$TMP/dt.json" '"refresh_token" in d and d["expires_in"] == 3599'
    jwt_claims "$(at_of "$TMP/dt.json")" >"$TMP/dt.claims"
    cat "$TMP/dt.claims"
    expect_json "$TMP/dt.claims" "d['sub'] == '$LOGIN' and d['client_id'] == '9ab11c00-0000-4000-8000-000000000003' and d['aud'] == '$AUDIENCE' and d['tid'] == '$T1'"
    jq_py "$TMP/dt.json" 'd["refresh_token"]' >"$TMP/rt0"
}

# A device code redeemed a second time revokes the grant (lib/helpers/grant_source.js): a client
# that polls once more after its success loses the refresh token it just got.
device_twice() {
    local code dc uc
    token_post "$B/$T2/oauth2/v2.0/devicecode" "$TMP/dc2.json" -d client_id=9ab11c00-0000-4000-8000-000000000003 \
        --data-urlencode "scope=$SCOPE offline_access" >/dev/null
    dc=$(jq_py "$TMP/dc2.json" 'd["device_code"]')
    uc=$(jq_py "$TMP/dc2.json" 'd["user_code"]')
    python3 "$CONF_DIR/approve-device.py" "$B" "$T2" "$uc" "$LOGIN"
    code=$(token_post "$(tok "$T2")" "$TMP/dt2.json" -d grant_type=urn:ietf:params:oauth:grant-type:device_code \
        -d client_id=9ab11c00-0000-4000-8000-000000000003 -d device_code="$dc")
    [[ $code == 200 ]] || die "first redemption: $code $(cat "$TMP/dt2.json")"
    expect_json <(jwt_claims "$(at_of "$TMP/dt2.json")") "d['tid'] == '$T2' and d['sub'] == '$LOGIN'"
    code=$(token_post "$(tok "$T2")" "$TMP/x.json" -d grant_type=urn:ietf:params:oauth:grant-type:device_code \
        -d client_id=9ab11c00-0000-4000-8000-000000000003 -d device_code="$dc")
    expect_reply "$code" 400 "$TMP/x.json" 'd["error"] == "invalid_grant"' "second redemption: $code"
    code=$(token_post "$(tok "$T2")" "$TMP/x.json" -d grant_type=refresh_token -d client_id=9ab11c00-0000-4000-8000-000000000003 \
        -d refresh_token="$(jq_py "$TMP/dt2.json" 'd["refresh_token"]')")
    [[ $code == 400 ]] || die "RT after the second redemption: $code $(cat "$TMP/x.json")"
    echo "second redemption 400 invalid_grant; the refresh token of the first is dead"
}

refresh_rotation() {
    local code rt0 rt1
    rt0=$(cat "$TMP/rt0")
    code=$(token_post "$(tok "$T1")" "$TMP/r1.json" -d grant_type=refresh_token -d client_id=9ab11c00-0000-4000-8000-000000000003 \
        -d refresh_token="$rt0" --data-urlencode "scope=$SCOPE offline_access")
    [[ $code == 200 ]] || die "refresh: $code $(cat "$TMP/r1.json")"
    rt1=$(jq_py "$TMP/r1.json" 'd["refresh_token"]')
    [[ $rt1 != "$rt0" ]] || die "refresh token not rotated"
    code=$(curl -sS -o "$TMP/u.json" -w '%{http_code}' -H "Authorization: Bearer $(at_of "$TMP/r1.json")" "$B/upstream/whoami")
    expect_reply "$code" 200 "$TMP/u.json" "d['sub'] == '$LOGIN'" "refreshed token at upstream: $code"
    # the refresh token is the tenant's own: at the other tenant it is unknown
    code=$(token_post "$(tok "$T2")" "$TMP/x.json" -d grant_type=refresh_token -d client_id=9ab11c00-0000-4000-8000-000000000003 \
        -d refresh_token="$rt1" --data-urlencode "scope=$SCOPE offline_access")
    expect_reply "$code" 400 "$TMP/x.json" 'd["error"] == "invalid_grant"' "RT at other tenant: $code"
    # a refresh without scope works as well (keeps the granted scope)
    code=$(token_post "$(tok "$T1")" "$TMP/r2.json" -d grant_type=refresh_token -d client_id=9ab11c00-0000-4000-8000-000000000003 \
        -d refresh_token="$rt1")
    [[ $code == 200 ]] || die "refresh without scope: $code $(cat "$TMP/r2.json")"
    expect_json "$TMP/r2.json" "d['scope'] == '$SCOPE'"
    echo "$rt1" >"$TMP/rt1"
    jq_py "$TMP/r2.json" 'd["refresh_token"]' >"$TMP/rt2"
    echo "rotated twice; RT at the other tenant: invalid_grant"
}

reuse_detection() {
    local code
    counters "$B" "$TMP/c.json"
    expect_json "$TMP/c.json" 'd["refresh_token_reuse"] == 0'
    code=$(token_post "$(tok "$T1")" "$TMP/x.json" -d grant_type=refresh_token -d client_id=9ab11c00-0000-4000-8000-000000000003 \
        -d refresh_token="$(cat "$TMP/rt1")")
    expect_reply "$code" 400 "$TMP/x.json" 'd["error"] == "invalid_grant"' "reused RT: $code"
    code=$(token_post "$(tok "$T1")" "$TMP/x.json" -d grant_type=refresh_token -d client_id=9ab11c00-0000-4000-8000-000000000003 \
        -d refresh_token="$(cat "$TMP/rt2")")
    expect_reply "$code" 400 "$TMP/x.json" 'd["error"] == "invalid_grant"' "newest RT still works after a reuse: $code"
    counters "$B" "$TMP/c.json"
    expect_json "$TMP/c.json" 'd["refresh_token_reuse"] == 1 and d["grants_revoked"] >= 1'
    expect_json "$TMP/c.json" 'n_tokens(d, grant_type="refresh_token", error_detail="refresh token already used") == 1'
    echo "old RT -> invalid_grant (reuse counted), newest RT -> invalid_grant (grant revoked)"
}

short_ttl() {
    local code at exp
    start_shim shortttl PORT=0 TENANTS="$T1" AT_TTL=4 CLIENT_SECRET="$SECRET"
    code=$(token_post "$SHIM_URL/$T1/oauth2/v2.0/token" "$TMP/t.json" -d grant_type=client_credentials \
        -d client_id=5ec7e700-0000-4000-8000-000000000001 -d client_secret="$SECRET" --data-urlencode scope="$SCOPE")
    expect_reply "$code" 200 "$TMP/t.json" 'd["expires_in"] == 4' "AT_TTL=4: $code $(cat "$TMP/t.json")"
    at=$(at_of "$TMP/t.json")
    exp=$(jq_py <(jwt_claims "$at") 'd["exp"]')
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $at" "$SHIM_URL/upstream/x")
    [[ $code == 200 ]] || die "fresh token: $code"
    wait_until 8 past "$exp"
    code=$(curl -sS -o "$TMP/u.json" -w '%{http_code}' -H "Authorization: Bearer $at" "$SHIM_URL/upstream/x")
    [[ $code == 401 ]] || die "expired token: $code"
    cat "$TMP/u.json"
}

step "shim: client_credentials + client_secret_post -> RS256 JWT, aud/tid/iss/client_id" secret_ok
step "shim: Entra errors (wrong secret, no scope, no /.default, unknown tenant); form without Content-Type" secret_errors
step "shim: second tenant issues its own iss/tid with its own key" secret_second_tenant
step "shim: private_key_jwt RS256 + x5t" cert_alg RS256 x5t
step "shim: private_key_jwt PS256 + x5t#S256" cert_alg PS256 'x5t#S256'
step "shim: private_key_jwt rejects replay, wrong aud, other key, missing thumbprint, wrong alg" cert_negative
step "shim: upstream verifies the bearer JWT (200 claims / 401)" upstream_checks
step "shim: device code (interval, message, pending, scripted approval, RT)" device_flow
step "shim: device code redeemed twice revokes the grant (tenant 2)" device_twice
step "shim: refresh_token grant rotates the refresh token" refresh_rotation
step "shim: reusing a rotated-out refresh token revokes the grant" reuse_detection
step "shim: AT_TTL=4 -> expires_in 4; upstream refuses the expired token" short_ttl
summary selftest
