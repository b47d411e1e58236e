# The upstream's and the peers' configurations for bench/run.sh (sourced, not run). Every function
# reads the ports and paths bench/run.sh set: D (working directory), TOKEN, P_UP, P_UP_TLS,
# P_NGINX, P_NGINX_TLS, P_NGINX_H2, P_HAPROXY, P_HAPROXY_TLS, P_HAPROXY_H2, P_CADDY, P_CADDY_TLS.
# The TLS listeners and blocks are always written; bench/run.sh only measures them with TLS_ROW=1.

# make_tls_files DIR: a throwaway CA (ca.pem) and a server certificate it signs (server.pem,
# server.key) for localhost and 127.0.0.1, the TLS upstream's. Nothing trusts the CA but the
# processes this benchmark points at it.
make_tls_files() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=dtp-bench CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
        'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:localhost,IP:127.0.0.1' >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
}

# upstream_locations PAGE: an upstream server's locations: files from $D/up, each behind a 401
# without Authorization, and /api/alerts answered with PAGE.
upstream_locations() {
    echo "root $D/up;
    location / {
      if (\$http_authorization = \"\") { return 401; }
      try_files \$uri =404;
    }
    location = /api/alerts {
      if (\$http_authorization = \"\") { return 401; }
      try_files /$1 =404;
    }"
}

# write_upstream_config FILE: the upstream nginx: the alerts page and the big file, 401 without an
# Authorization header, over plain HTTP on P_UP and over TLS (HTTP/1.1 only, like the plain one) on
# P_UP_TLS; each serves its own page, whose @odata.context names that server (bench/run.sh writes
# both).
write_upstream_config() {
    local plain tls
    plain=$(upstream_locations alerts.json)
    tls=$(upstream_locations alerts-tls.json)
    cat >"$1" <<NG
worker_processes 1;
daemon off;
pid $D/up/nginx.pid;
error_log $D/up/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$P_UP;
    $plain
  }
  server {
    listen 127.0.0.1:$P_UP_TLS ssl;
    ssl_certificate $D/tls/server.pem;
    ssl_certificate_key $D/tls/server.key;
    ssl_session_cache shared:up:1m;
    $tls
  }
}
NG
}

# write_peer_configs: nginx ($D/ngx/nginx.conf), HAProxy ($D/haproxy.cfg) and Caddy
# ($D/caddy/Caddyfile). Each forwards /mde/* with the fixed token: to the plain upstream from its
# plain listener and from its HTTP/2 cleartext (h2c, prior knowledge) listener, and to the TLS
# upstream from its "-tls" listener, verifying the certificate against the benchmark's CA
# (name: localhost) and keeping the TLS connections open for reuse.
write_peer_configs() {
    cat >"$D/ngx/nginx.conf" <<NG
worker_processes 1;
daemon off;
pid $D/ngx/nginx.pid;
error_log $D/ngx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream up { server 127.0.0.1:$P_UP; keepalive 64; keepalive_requests 1000000; }
  upstream up_tls { server 127.0.0.1:$P_UP_TLS; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$P_NGINX;
    listen 127.0.0.1:$P_NGINX_H2 http2;
    location /mde/ {
      proxy_pass http://up/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer $TOKEN";
    }
  }
  server {
    listen 127.0.0.1:$P_NGINX_TLS;
    location /mde/ {
      proxy_pass https://up_tls/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer $TOKEN";
      proxy_ssl_trusted_certificate $D/tls/ca.pem;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }
}
NG
    cat >"$D/haproxy.cfg" <<HA
global
  nbthread 1
  maxconn 8192
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend f
  bind 127.0.0.1:$P_HAPROXY
  bind 127.0.0.1:$P_HAPROXY_H2 proto h2
  default_backend b
frontend f_tls
  bind 127.0.0.1:$P_HAPROXY_TLS
  default_backend b_tls
backend b
  http-request set-header Authorization "Bearer $TOKEN"
  http-request replace-path /mde(/.*) \1
  server s1 127.0.0.1:$P_UP
backend b_tls
  http-request set-header Authorization "Bearer $TOKEN"
  http-request replace-path /mde(/.*) \1
  server s1 127.0.0.1:$P_UP_TLS ssl verify required ca-file $D/tls/ca.pem sni str(localhost) verifyhost localhost
HA
    # Caddy 2.6: `protocols` in the global `servers` option (h2c answers prior-knowledge clients on
    # the same listener as HTTP/1.1); `tls_trusted_ca_certs` and `tls_server_name` in the HTTP
    # transport (https://caddyserver.com/docs/caddyfile/directives/reverse_proxy#the-http-transport).
    cat >"$D/caddy/Caddyfile" <<CA
{
  admin off
  auto_https off
  servers {
    protocols h1 h2c
  }
}
http://127.0.0.1:$P_CADDY {
  handle_path /mde/* {
    reverse_proxy 127.0.0.1:$P_UP {
      header_up Authorization "Bearer $TOKEN"
    }
  }
}
http://127.0.0.1:$P_CADDY_TLS {
  handle_path /mde/* {
    reverse_proxy https://127.0.0.1:$P_UP_TLS {
      header_up Authorization "Bearer $TOKEN"
      transport http {
        tls_trusted_ca_certs $D/tls/ca.pem
        tls_server_name localhost
      }
    }
  }
}
CA
}
