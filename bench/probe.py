#!/usr/bin/env python3
"""Measurements of defender-token-proxy that need finer timing than a shell loop gives.

Used by bench/run.sh; every subcommand starts its own fresh proxy process with the command after
`--` (which must listen on 127.0.0.1:PORT), measures, stops it (SIGTERM, then SIGKILL after 5 s)
and prints one JSON object. Only 127.0.0.1 is ever contacted, and every wait is bounded.

  probe.py ready  --port P [--repeat 5] -- CMD...   start -> /-/ready 200 (ms), and idle RSS (kB)
  probe.py cold   --port P [--n 1000] --path /mde/... -- CMD...
                                                    N concurrent requests against a fresh process,
                                                    then the token requests counted in /-/metrics
  probe.py stream --port P --path /mde/big.bin --size BYTES -- CMD...
                                                    RSS every 100 ms while curl downloads BYTES
"""

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

HOST = "127.0.0.1"


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def http_get(port, path, timeout=1.0):
    """A minimal HTTP/1.1 GET on a new connection: (status, body) or None if it cannot connect."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
    except OSError:
        return None
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        return None
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return int(m.group(1)), body


def dechunk(body):
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(out)


def start(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_port_free(port, deadline_s=5.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                pass
        except OSError:
            return
        time.sleep(0.01)
    raise SystemExit(f"port {port} is still in use")


def poll_ready(proc, port, t0, limit_s=10.0, every_s=0.001):
    """Polls /-/ready every `every_s` until 200; returns ms since t0."""
    while time.perf_counter() - t0 < limit_s:
        if proc.poll() is not None:
            raise SystemExit(f"the proxy exited with {proc.returncode} before it was ready")
        r = http_get(port, "/-/ready", timeout=0.5)
        if r and r[0] == 200:
            return (time.perf_counter() - t0) * 1000.0
        time.sleep(every_s)
    raise SystemExit(f"/-/ready did not answer 200 within {limit_s} s")


def cmd_ready(a, cmd):
    ready, idle = [], []
    for _ in range(a.repeat):
        wait_port_free(a.port)
        t0 = time.perf_counter()
        proc = start(cmd)
        try:
            ready.append(poll_ready(proc, a.port, t0))
            time.sleep(a.settle)
            idle.append(rss_kb(proc.pid))
        finally:
            stop(proc)
    print(json.dumps({"ready_ms": ready, "ready_ms_median": statistics.median(ready),
                      "idle_rss_kb": idle, "idle_rss_kb_median": statistics.median(idle)}))


async def one_request(port, path, barrier, results):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
    except (OSError, asyncio.TimeoutError) as e:
        results.append(f"connect: {type(e).__name__}")
        return
    try:
        # Every connection is open before any request is sent, so that they arrive together.
        await barrier.wait()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        m = re.match(rb"HTTP/1\.[01] (\d{3})", line)
        results.append(int(m.group(1)) if m else f"bad: {line[:40]!r}")
        await asyncio.wait_for(reader.read(), 30)
    except (OSError, asyncio.TimeoutError) as e:
        results.append(f"error: {type(e).__name__}")
    finally:
        writer.close()


class Barrier:
    def __init__(self, n):
        self.n, self.count, self.event = n, 0, asyncio.Event()

    async def wait(self):
        self.count += 1
        if self.count >= self.n:
            self.event.set()
        await asyncio.wait_for(self.event.wait(), 20)


async def fire(port, path, n):
    results = []
    barrier = Barrier(n)
    await asyncio.gather(*(one_request(port, path, barrier, results) for _ in range(n)))
    return results


def token_requests(metrics_text):
    counts = {}
    for line in metrics_text.splitlines():
        if line.startswith("defender_token_proxy_token_requests_total{"):
            m = re.search(r'outcome="([^"]+)"\}\s+(\d+)', line)
            if m:
                counts[m.group(1)] = counts.get(m.group(1), 0) + int(m.group(2))
    return counts


def cmd_cold(a, cmd):
    wait_port_free(a.port)
    t0 = time.perf_counter()
    proc = start(cmd)
    try:
        # Wait only for the listener to accept a TCP connection (no HTTP request), then fire.
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the proxy exited with {proc.returncode}")
            if time.perf_counter() - t0 > 10:
                raise SystemExit("the proxy did not listen within 10 s")
            try:
                with socket.create_connection((HOST, a.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.001)
        listening_ms = (time.perf_counter() - t0) * 1000.0
        t1 = time.perf_counter()
        results = asyncio.run(fire(a.port, a.path, a.n))
        took = time.perf_counter() - t1
        statuses = {}
        for r in results:
            statuses[str(r)] = statuses.get(str(r), 0) + 1
        m = http_get(a.port, "/-/metrics", timeout=5)
        if not m or m[0] != 200:
            raise SystemExit(f"/-/metrics answered {m and m[0]}")
        counts = token_requests(m[1].decode())
    finally:
        stop(proc)
    print(json.dumps({"n": a.n, "listening_ms": listening_ms, "seconds": took,
                      "statuses": statuses, "token_requests": counts}))


def cmd_stream(a, cmd):
    wait_port_free(a.port)
    t0 = time.perf_counter()
    proc = start(cmd)
    try:
        poll_ready(proc, a.port, t0)
        time.sleep(a.settle)
        before = rss_kb(proc.pid)
        samples = []
        curl = subprocess.Popen(["taskset", "-c", "0", "curl", "-s", "-o", "/dev/null", "--max-time", str(a.max_time),
                                 "-w", "%{http_code} %{size_download} %{time_total}",
                                 f"http://{HOST}:{a.port}{a.path}"], stdout=subprocess.PIPE, text=True)
        while curl.poll() is None:
            samples.append(rss_kb(proc.pid))
            time.sleep(0.1)
        out = curl.stdout.read().split()
        after = rss_kb(proc.pid)
    finally:
        stop(proc)
    code, size, secs = int(out[0]), int(out[1]), float(out[2])
    peak = max([s for s in samples if s is not None] + [after or 0])
    print(json.dumps({"status": code, "bytes": size, "expected_bytes": a.size, "seconds": secs,
                      "rss_before_kb": before, "rss_max_kb": peak, "rss_after_kb": after,
                      "growth_kb": peak - before, "samples": len(samples)}))


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        raise SystemExit(__doc__)
    split = argv.index("--")
    cmd = argv[split + 1:]
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    for name in ("ready", "cold", "stream"):
        s = sub.add_parser(name)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--settle", type=float, default=1.0, help="seconds idle before reading RSS")
        if name == "ready":
            s.add_argument("--repeat", type=int, default=5)
        if name == "cold":
            s.add_argument("--n", type=int, default=1000)
            s.add_argument("--path", required=True)
        if name == "stream":
            s.add_argument("--path", required=True)
            s.add_argument("--size", type=int, required=True)
            s.add_argument("--max-time", type=int, default=180)
    a = p.parse_args(argv[:split])
    {"ready": cmd_ready, "cold": cmd_cold, "stream": cmd_stream}[a.what](a, cmd)


if __name__ == "__main__":
    main()
