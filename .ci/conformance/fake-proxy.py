#!/usr/bin/env python3
"""A stand-in for defender-token-proxy, used ONLY to test the harness itself (run.sh):

    bash .ci/conformance/run.sh .ci/conformance/fake-proxy.py

It implements just enough of the proxy's CLI and config (check, token, login, logout, serve) the
way the specification the harness was written from describes them, so that run.sh's steps can be
seen passing before the real proxy has these commands, and seen failing when the fake is broken on
purpose (FAKE_BUG=keep-old-rt | persist-late | leak-rt | no-403 | state-0644). It says nothing about the real
proxy. Standard library + the openssl command only.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid

UA = "defender-token-proxy/0.1.0-fake"
API_SCOPES = {"mde": "https://api.securitycenter.microsoft.com/.default"}
BUG = os.environ.get("FAKE_BUG", "")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def post_form(url, fields):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded", "User-Agent": UA})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


class Proxy:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.cfg = tomllib.load(f)
        self.host = self.cfg["cloud"]["authority_host"].rstrip("/")
        self.state_dir = self.cfg.get("state", {}).get("dir", ".")
        self.cache = {}
        self.rts = {}
        self.lock = threading.Lock()

    def cred(self, name):
        return self.cfg["credentials"][name]

    def token_url(self, tenant, what="token"):
        return f"{self.host}/{tenant}/oauth2/v2.0/{what}"

    def state_path(self, name):
        return os.path.join(self.state_dir, f"{name}.json")

    def save_state(self, name, rt):
        fd, tmp = tempfile.mkstemp(dir=self.state_dir)
        with os.fdopen(fd, "w") as f:
            json.dump({"refresh_token": rt}, f)
        os.chmod(tmp, 0o644 if BUG == "state-0644" else 0o600)
        os.replace(tmp, self.state_path(name))

    def assertion(self, c, aud):
        pem = open(c["certificate"]["file"]).read()
        cert = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S).group(0)
        key = re.search(r"-----BEGIN PRIVATE KEY-----.+?-----END PRIVATE KEY-----", pem, re.S).group(0)
        der = base64.b64decode("".join(cert.splitlines()[1:-1]))
        alg = c.get("algorithm", "PS256")
        h = b64url(json.dumps({"alg": alg, "typ": "JWT", "x5t#S256": b64url(hashlib.sha256(der).digest())}).encode())
        now = int(time.time())
        p = b64url(json.dumps({"aud": aud, "iss": c["client_id"], "sub": c["client_id"], "jti": str(uuid.uuid4()),
                               "nbf": now, "iat": now, "exp": now + 300}).encode())
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as kf:
            kf.write(key)
            kf.flush()
            opts = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"] if alg == "PS256" else []
            sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", kf.name, *opts, "-binary"],
                                 input=f"{h}.{p}".encode(), capture_output=True, check=True).stdout
        return f"{h}.{p}.{b64url(sig)}"

    def acquire(self, name, scope, tenant=None):
        c = self.cred(name)
        tenant = tenant or c.get("tenant")
        key = (name, scope, tenant)
        with self.lock:
            hit = self.cache.get(key)
            if hit and hit[1] > time.time():
                return hit[0]
            url = self.token_url(tenant)
            if c["type"] == "client_secret":
                fields = {"grant_type": "client_credentials", "client_id": c["client_id"], "scope": scope,
                          "client_secret": os.environ[c["client_secret"]["env"]]}
            elif c["type"] == "client_certificate":
                fields = {"grant_type": "client_credentials", "client_id": c["client_id"], "scope": scope,
                          "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                          "client_assertion": self.assertion(c, url)}
            else:
                rt = self.rts.get(name)
                if rt is None:
                    with open(self.state_path(name)) as f:
                        rt = json.load(f)["refresh_token"]
                fields = {"grant_type": "refresh_token", "client_id": c["client_id"], "refresh_token": rt,
                          "scope": f"{scope} offline_access"}
            status, body = post_form(url, fields)
            if status != 200:
                raise RuntimeError(f"token request for {name}: {status} {body.get('error')}")
            if "refresh_token" in body and BUG == "persist-late":
                self.rts[name] = body["refresh_token"]  # newest only in memory, never written
            elif "refresh_token" in body and BUG != "keep-old-rt":
                self.save_state(name, body["refresh_token"])
            if BUG == "leak-rt" and "refresh_token" in body:
                print(f"got refresh token {body['refresh_token']}", file=sys.stderr)
            self.cache[key] = (body["access_token"], time.time() + body["expires_in"] * 0.5)
            return body["access_token"]

    def login(self, name):
        c = self.cred(name)
        scope = next(r["scope"] for r in self.cfg["routes"] if r["credential"] == name)
        status, dc = post_form(self.token_url(c["tenant"], "devicecode"),
                               {"client_id": c["client_id"], "scope": f"{scope} offline_access"})
        if status != 200:
            sys.exit(f"devicecode: {status} {dc}")
        print(dc.get("message", ""))
        print(f"verification_uri: {dc['verification_uri']}")
        print(f"user_code: {dc['user_code']}", flush=True)
        deadline = time.time() + dc["expires_in"]
        while time.time() < deadline:
            time.sleep(dc.get("interval", 5))
            status, body = post_form(self.token_url(c["tenant"]), {
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": c["client_id"],
                "device_code": dc["device_code"]})
            if status == 200:
                os.makedirs(self.state_dir, exist_ok=True)
                self.save_state(name, body["refresh_token"])
                print(f"signed in as {name}")
                return
            if body.get("error") != "authorization_pending":
                sys.exit(f"login failed: {body.get('error')}")
        sys.exit("login: code expired")

    def route(self, path):
        for r in self.cfg["routes"]:
            pat = "^" + re.escape(r["prefix"]).replace(r"\{tenant\}", "(?P<tenant>[^/]+)") + "(?P<rest>/.*|$)"
            m = re.match(pat, path)
            if m:
                return r, m.groupdict().get("tenant"), m.group("rest")
        return None, None, None

    def serve(self, listen):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                print(fmt % args, file=sys.stderr)

            def do_GET(self):
                if self.path == "/-/healthy":
                    return self.reply(200, b"ok")
                r, tenant, rest = proxy.route(self.path)
                if not r:
                    return self.reply(404, b"no route")
                c = proxy.cred(r["credential"])
                if tenant is not None and tenant not in c.get("tenants", []) and BUG != "no-403":
                    return self.reply(403, b"tenant not allowed")
                try:
                    at = proxy.acquire(r["credential"], r["scope"], tenant)
                except Exception as e:  # noqa: BLE001
                    return self.reply(502, str(e).encode())
                req = urllib.request.Request(r["upstream"] + rest, headers={"Authorization": f"Bearer {at}"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as up:
                        self.reply(up.status, up.read())
                except urllib.error.HTTPError as e:
                    self.reply(e.code, e.read())

            def reply(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        host, port = listen.rsplit(":", 1)
        server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
        import signal
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        server.serve_forever()


def main():
    ap = argparse.ArgumentParser(prog="defender-token-proxy")
    ap.add_argument("--config")
    ap.add_argument("--version", action="store_true")
    sub = ap.add_subparsers(dest="cmd")
    sub.add_parser("check")
    t = sub.add_parser("token")
    t.add_argument("name")
    t.add_argument("--scope")
    t.add_argument("--api")
    t.add_argument("--tenant")
    for n in ("login", "logout"):
        sub.add_parser(n).add_argument("name")
    s = sub.add_parser("serve")
    s.add_argument("--listen")
    a = ap.parse_args()
    if a.version:
        print("defender-token-proxy 0.1.0 (fake, for testing the conformance harness)")
        return
    p = Proxy(a.config)
    if a.cmd == "check":
        for name, c in p.cfg["credentials"].items():
            print(f"credential {name}: {c['type']} ok")
    elif a.cmd == "token":
        print(p.acquire(a.name, a.scope or API_SCOPES[a.api], a.tenant))
    elif a.cmd == "login":
        p.login(a.name)
    elif a.cmd == "logout":
        os.remove(p.state_path(a.name))
    elif a.cmd == "serve":
        p.serve(a.listen or p.cfg["server"]["listen"])


if __name__ == "__main__":
    main()
