# Shared by bench/run.sh and bench/profile.sh (sourced, not run).

# write_proxy_config FILE AUTHORITY LISTEN_PORT UPSTREAM_PORT [SCHEME]: our proxy's config for the
# benchmark: the demo simulator's Entra ID as authority (its client secret comes from
# BENCH_CLIENT_SECRET) and one route, /mde, to the upstream nginx (SCHEME://127.0.0.1:PORT, http by
# default).
write_proxy_config() {
    cat >"$1" <<TOML
[server]
listen = "127.0.0.1:$3"

[cloud]
authority_host = "$2"

[credentials.bench]
type = "client_secret"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = { env = "BENCH_CLIENT_SECRET" }

[[routes]]
prefix = "/mde"
api = "mde"
credential = "bench"
upstream = "${5:-http}://127.0.0.1:$4"
TOML
}
