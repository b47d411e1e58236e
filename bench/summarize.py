#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into the Markdown table and the target verdicts.

  summarize.py RESULTS.tsv READY.json COLD.json STREAM.json [H2.tsv]

RESULTS.tsv: one line per wrk run: proxy, round, requests/s, p50 ms, p99 ms, RSS kB, non-2xx,
socket errors. A "-tls" row's ratios are to nginx-tls. The JSON files are bench/probe.py's
output. H2.tsv: one line per h2load run: proxy, round, requests/s, and h2load's min, mean, sd and
max time for request (ms; h2load prints no percentiles), RSS kB, non-2xx, failed requests; its
ratios are to nginx-h2. Prints Markdown on stdout.
"""

import json
import statistics
import sys

PEERS = ["nginx", "haproxy", "caddy"]
OURS = "ours"


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    rows = {}
    order = []
    for line in open(sys.argv[1]):
        f = line.rstrip("\n").split("\t")
        name = f[0]
        if name not in rows:
            rows[name] = []
            order.append(name)
        rows[name].append({"rps": float(f[2]), "p50": float(f[3]), "p99": float(f[4]),
                           "rss": int(f[5]), "non2xx": int(f[6]), "errors": int(f[7])})
    ready = json.load(open(sys.argv[2]))
    cold = json.load(open(sys.argv[3]))
    stream = json.load(open(sys.argv[4]))

    m = {n: {k: med([r[k] for r in rs]) for k in ("rps", "p50", "p99", "rss")} for n, rs in rows.items()}
    rounds = max(len(rs) for rs in rows.values())
    print(f"Median of {rounds} rounds; ratio = value / nginx's value, nginx-tls's for a -tls row (for "
          "requests/s higher is better, for latency and RSS lower is better).\n")
    print("| proxy | requests/s | × nginx | p50 (ms) | × nginx | p99 (ms) | × nginx | RSS after run (kB) | × nginx | rounds: requests/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in order:
        v = m[n]
        base = m.get("nginx-tls" if n.endswith("-tls") else "nginx", m["nginx"])
        per_round = ", ".join(f"{r['rps']:.0f}" for r in rows[n])
        print(f"| {n} | {v['rps']:.0f} | {v['rps'] / base['rps']:.2f} | {v['p50']:.3f} | {v['p50'] / base['p50']:.2f} "
              f"| {v['p99']:.3f} | {v['p99'] / base['p99']:.2f} | {v['rss']:.0f} | {v['rss'] / base['rss']:.2f} | {per_round} |")
    bad = [(n, r) for n, rs in rows.items() for r in rs if r["non2xx"] or r["errors"]]
    for n, r in bad:
        print(f"\nWARNING: {n}: {r['non2xx']} non-2xx responses, {r['errors']} socket errors in one run")

    if len(sys.argv) > 5:
        h2_table(sys.argv[5])

    cold_ok = cold["statuses"].get("200", 0)
    tok = cold["token_requests"]
    print("\n| our proxy | value |")
    print("|---|---|")
    print(f"| start → `/-/ready` 200 (median of {len(ready['ready_ms'])}) | {ready['ready_ms_median']:.1f} ms "
          f"(runs: {', '.join(f'{x:.1f}' for x in ready['ready_ms'])}) |")
    print(f"| idle RSS, 1 s after ready (median) | {ready['idle_rss_kb_median']:.0f} kB "
          f"(runs: {', '.join(str(x) for x in ready['idle_rss_kb'])}) |")
    print(f"| RSS growth streaming {stream['bytes'] / 2**30:.2f} GiB (status {stream['status']}, "
          f"{stream['seconds']:.1f} s) | {stream['growth_kb']} kB (before {stream['rss_before_kb']} kB, "
          f"max {stream['rss_max_kb']} kB, {stream['samples']} samples) |")
    print(f"| token requests after {cold['n']} concurrent cold requests | success={tok.get('success', 0)}, "
          f"all outcomes={sum(tok.values())} ({cold_ok}/{cold['n']} answered 200 in {cold['seconds']:.2f} s; "
          f"listening {cold['listening_ms']:.1f} ms after start) |")

    peers = [p for p in PEERS if p in m]
    best_rps = max(peers, key=lambda p: m[p]["rps"])
    best_p99 = min(peers, key=lambda p: m[p]["p99"])
    o = m[OURS]
    checks = [
        (f"requests/s ≥ fastest peer's ({best_rps} {m[best_rps]['rps']:.0f})", f"{o['rps']:.0f}",
         o["rps"] >= m[best_rps]["rps"]),
        (f"p99 ≤ best peer's ({best_p99} {m[best_p99]['p99']:.3f} ms)", f"{o['p99']:.3f} ms",
         o["p99"] <= m[best_p99]["p99"]),
        ("idle RSS ≤ 10 MiB (10240 kB)", f"{ready['idle_rss_kb_median']:.0f} kB", ready["idle_rss_kb_median"] <= 10240),
        ("ready within 50 ms of start", f"{ready['ready_ms_median']:.1f} ms", ready["ready_ms_median"] <= 50),
        ("streaming growth ≤ 16 MiB (16384 kB)", f"{stream['growth_kb']} kB",
         stream["growth_kb"] <= 16384 and stream["status"] == 200 and stream["bytes"] == stream["expected_bytes"]),
        (f"exactly 1 token request for {cold['n']} cold requests", f"{sum(tok.values())} (success {tok.get('success', 0)})",
         tok.get("success", 0) == 1 and sum(tok.values()) == 1 and cold_ok == cold["n"]),
    ]
    print("\n| target | measured | verdict |")
    print("|---|---|---|")
    for what, value, ok in checks:
        print(f"| {what} | {value} | {'PASS' if ok else 'MISS'} |")


def h2_table(path):
    rows, order = {}, []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if f[0] not in rows:
            rows[f[0]] = []
            order.append(f[0])
        rows[f[0]].append({"rps": float(f[2]), "min": float(f[3]), "mean": float(f[4]), "sd": float(f[5]),
                           "max": float(f[6]), "rss": int(f[7]), "non2xx": int(f[8]), "failed": int(f[9])})
    if not rows:
        return
    m = {n: {k: med([r[k] for r in rs]) for k in ("rps", "min", "mean", "sd", "max", "rss")} for n, rs in rows.items()}
    base = m.get("nginx-h2", next(iter(m.values())))
    print("\nHTTP/2 from the client (h2load, prior knowledge; HTTP/1.1 to the upstream). h2load reports the "
          "min, mean, standard deviation and max of the time for request, not percentiles; medians over rounds, "
          "ratios to nginx-h2.\n")
    print("| proxy | requests/s | × nginx-h2 | mean (ms) | × nginx-h2 | sd (ms) | min (ms) | max (ms) | RSS after run (kB) | rounds: requests/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in order:
        v = m[n]
        per_round = ", ".join(f"{r['rps']:.0f}" for r in rows[n])
        print(f"| {n} | {v['rps']:.0f} | {v['rps'] / base['rps']:.2f} | {v['mean']:.3f} | {v['mean'] / base['mean']:.2f} "
              f"| {v['sd']:.3f} | {v['min']:.3f} | {v['max']:.3f} | {v['rss']:.0f} | {per_round} |")
    for n, rs in rows.items():
        for r in rs:
            if r["non2xx"] or r["failed"]:
                print(f"\nWARNING: {n}: {r['non2xx']} non-2xx responses, {r['failed']} failed requests in one run")


if __name__ == "__main__":
    main()
