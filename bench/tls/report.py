#!/usr/bin/env python3
"""Medians of bench/tls/run.sh's rounds: throughput, latency and the
cluster's CPU per operation, plaintext against TLS + token, as a Markdown
table (docs/benchmarks.md, "TLS and tokens").

usage: report.py OUT_DIR ROUNDS WORKLOAD...
       report.py --perf OUT_DIR   (the tablet server's time per operation by
                                   shared object, from run.sh --perf)"""
import json
import statistics
import sys


def load(out, name, w, r):
    with open(f"{out}/{name}-{w}-{r}.json") as f:
        j = json.load(f)
    with open(f"{out}/{name}-{w}-{r}.cpu") as f:
        ticks, hz, client = (int(x) for x in f.read().split())
    ops = j["ops_counted"]
    if j["errors"]:
        sys.exit(f"{name} {w} round {r}: {j['errors']} errors")
    return {
        "ops_s": j["throughput_ops_s"],
        "p50": j["all"]["p50_us"],
        "p99": j["all"]["p99_us"],
        "cpu_us": ticks / hz * 1e6 / ops if ops else 0.0,
        "client_us": client / hz * 1e6 / ops if ops else 0.0,
    }


def perf_dso(path):
    """(event name, event count, {dso: percent}) of a perf report --sort dso."""
    event, count, share = "", 0, {}
    with open(path) as f:
        for line in f:
            if line.startswith("# Samples:"):
                event = line.split("of event")[-1].strip().strip("'")
            elif line.startswith("# Event count"):
                count = int(line.split(":")[-1])
            elif line.strip() and not line.startswith("#"):
                pct, dso = line.split(None, 1)
                share[dso.strip()] = float(pct.rstrip("%"))
    return event, count, share


def perf_main(out):
    rows, per = {}, {}
    for name in ("plain", "tls"):
        event, count, share = perf_dso(f"{out}/perf-{name}.dso")
        with open(f"{out}/perf-{name}.json") as f:
            ops = json.load(f)["ops_counted"]
        per[name] = (event, count / ops if ops else 0.0)
        for dso, pct in share.items():
            rows.setdefault(dso, {})[name] = pct / 100 * count / ops if ops else 0.0
    unit = "ns" if "clock" in per["tls"][0] else per["tls"][0]
    print(f"| shared object | plain {unit}/op | TLS {unit}/op | TLS - plain |")
    print("|---|---|---|---|")
    order = sorted(rows, key=lambda d: -(rows[d].get("tls", 0) - rows[d].get("plain", 0)))
    for dso in order:
        p, t = rows[dso].get("plain", 0.0), rows[dso].get("tls", 0.0)
        if max(p, t) < 0.005 * per["tls"][1]:
            continue
        print(f"| {dso} | {p:,.0f} | {t:,.0f} | {t - p:+,.0f} |")
    print(f"| **all** | {per['plain'][1]:,.0f} | {per['tls'][1]:,.0f} | "
          f"{per['tls'][1] - per['plain'][1]:+,.0f} |")


def main():
    if sys.argv[1] == "--perf":
        perf_main(sys.argv[2])
        return
    out, rounds, workloads = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    names = {"randread": "Get (randread)", "randwrite": "durable Put (randwrite)",
             "c": "YCSB C"}
    print("| workload | plain ops/s | TLS+token ops/s | TLS/plain (median of rounds) "
          "| plain p50 / p99 us | TLS p50 / p99 us | server CPU us/op plain; TLS "
          "| client CPU us/op plain; TLS | rounds ops/s (plain; TLS) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w in workloads:
        med = {}
        raw = {}
        for name in ("plain", "tls"):
            runs = [load(out, name, w, r) for r in range(1, rounds + 1)]
            med[name + "_runs"] = runs
            raw[name] = ", ".join(f"{x['ops_s']:,.0f}" for x in runs)
            med[name] = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
        p, t = med["plain"], med["tls"]
        # Each round's TLS run directly follows its plain run: the ratio
        # within a round is less exposed to the machine's drifting load.
        pair = statistics.median(b["ops_s"] / a["ops_s"]
                                 for a, b in zip(med["plain_runs"], med["tls_runs"]))
        print(f"| {names.get(w, w)} | {p['ops_s']:,.0f} | {t['ops_s']:,.0f} | "
              f"{t['ops_s'] / p['ops_s']:.2f} ({pair:.2f}) | {p['p50']:.0f} / {p['p99']:.0f} | "
              f"{t['p50']:.0f} / {t['p99']:.0f} | {p['cpu_us']:.1f}; {t['cpu_us']:.1f} | "
              f"{p['client_us']:.1f}; {t['client_us']:.1f} | "
              f"{raw['plain']}; {raw['tls']} |")


main()
