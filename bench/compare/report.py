#!/usr/bin/env python3
"""report.py: the tables of bench/compare/run.sh from mica-bench's JSON.

Reads OUT/json/<system>-<workload>-<round>.json (and the bt-* files of the
Bigtable part), takes per workload and system the median over rounds of
throughput and of the p99 over all operations, and prints markdown: the
YCSB table with Mica/etcd ratios against the goals, and the Bigtable
per-server table. Called by run.sh; usable alone on a kept results
directory.
"""
import argparse
import json
import os
import statistics
import sys

# Goals of the comparison (issue 8): Mica throughput over etcd's.
GOALS = {"a": 3.0, "c": 5.0, "e": 10.0}

# Bigtable, OSDI 2006, Figure 6: 1000-byte values read/written per second
# per tablet server, for 1 tablet server.
BIGTABLE = [
    ("random reads", 1212, "randread", "read", "ops"),
    ("random reads (mem)", 10811, "randread", "read", "ops"),
    ("random writes", 8850, "randwrite", "update", "ops"),
    ("sequential reads", 4425, "seqread", "read", "ops"),
    ("sequential writes", 8547, "seqwrite", "insert", "ops"),
    ("scans", 15385, "scan", "scan", "rows"),
]

NAMES = {"mica1": "Mica 1 server", "mica3": "Mica 3 servers", "etcd": "etcd 3.4"}


def load(path):
    with open(path) as f:
        return json.load(f)


def runs_of(jdir, prefix, runs):
    out = []
    for r in range(1, runs + 1):
        p = os.path.join(jdir, "%s-%d.json" % (prefix, r))
        if os.path.exists(p):
            d = load(p)
            d["cpu_us_per_op"] = cpu_us_per_op(jdir, prefix, r, d)
            out.append(d)
    return out


def cpu_us_per_op(jdir, prefix, r, report):
    """Server CPU time per operation of one run, from run.sh's .cpu file."""
    p = os.path.join(jdir, "%s-%d.cpu" % (prefix, r))
    if not os.path.exists(p) or not report["ops_counted"]:
        return None
    with open(p) as f:
        ticks, hz = f.read().split()
    return int(ticks) / int(hz) * 1e6 / report["ops_counted"]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_ops(xs):
    if not xs:
        return "-"
    if len(xs) == 1:
        return "%.0f" % xs[0]
    return "%.0f (%.0f-%.0f)" % (med(xs), min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", required=True)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--workloads", default="a,b,c,e")
    ap.add_argument("--systems", default="mica1,etcd,mica3")
    ap.add_argument("--bigtable", default="1")
    ap.add_argument("--command", default="")
    ap.add_argument("--setup", default="")
    a = ap.parse_args()
    systems = a.systems.split(",")
    wls = a.workloads.split(",")

    print("# Mica vs etcd: YCSB, medians of %d run(s)" % a.runs)
    print()
    if a.command:
        print("Command: `%s`  " % a.command)
    if a.setup:
        print("Setup: %s" % a.setup)
    print()
    head = ["workload"]
    for s in systems:
        head.append("%s ops/s" % NAMES[s])
    etcd = "etcd" in systems
    micas = [s for s in systems if s != "etcd"]
    if etcd:
        for s in micas:
            head.append("%s / etcd" % NAMES[s])
    for s in systems:
        head.append("p99 ms %s" % NAMES[s])
    for s in systems:
        head.append("server CPU us/op %s" % NAMES[s])
    if etcd:
        head.append("etcd / Mica 1 server CPU per op")
        head.append("goal")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for w in wls:
        tput, p99, cpu = {}, {}, {}
        for s in systems:
            rs = runs_of(a.json, "%s-%s" % (s, w), a.runs)
            tput[s] = [r["throughput_ops_s"] for r in rs]
            p99[s] = [r["all"]["p99_us"] / 1000.0 for r in rs]
            cpu[s] = [r["cpu_us_per_op"] for r in rs if r["cpu_us_per_op"] is not None]
            errs = sum(r["errors"] for r in rs)
            if errs:
                print("warning: %d errors in %s %s" % (errs, s, w), file=sys.stderr)
        row = ["%s" % w.upper()]
        for s in systems:
            row.append(fmt_ops(tput[s]))
        if etcd:
            for s in micas:
                row.append("%.2fx" % (med(tput[s]) / med(tput["etcd"])))
        for s in systems:
            row.append("%.2f" % med(p99[s]) if p99[s] else "-")
        for s in systems:
            row.append("%.1f" % med(cpu[s]) if cpu[s] else "-")
        if etcd:
            # A run shorter than a few clock ticks may measure no CPU.
            both = cpu.get("mica1") and cpu.get("etcd") and med(cpu["mica1"]) > 0
            row.append("%.2fx" % (med(cpu["etcd"]) / med(cpu["mica1"])) if both else "-")
            ratio = med(tput["mica1"]) / med(tput["etcd"]) if "mica1" in tput else 0
            lower = med(p99["mica1"]) < med(p99["etcd"])
            g = GOALS.get(w)
            if g:
                row.append("%s %.0fx, p99 %s" % ("met" if ratio >= g else "MISSED", g,
                                                  "lower" if lower else "NOT lower"))
            else:
                row.append("p99 %s" % ("lower" if lower else "NOT lower"))
        print("| " + " | ".join(row) + " |")
    print()
    print("ops/s: median (min-max) over rounds; p99 over all operations of a run, "
          "median over rounds. Ratios are of medians. Server CPU: user+system time of "
          "the system's server processes (Mica: master and tablet servers) during the "
          "run, per operation.")

    if a.bigtable != "1" or "mica1" not in systems:
        return
    print()
    print("# Bigtable per-server figures (OSDI 2006, Figure 6, 1 tablet server) "
          "vs 1-server Mica")
    print()
    print("| experiment | Bigtable values/s | Mica values/s | Mica / Bigtable | Mica p99 ms |")
    print("|---|---|---|---|---|")
    for name, figure, wl, op, unit in BIGTABLE:
        rs = runs_of(a.json, "mica1-bt-%s" % wl, a.runs)
        vals, p99s = [], []
        for r in rs:
            o = r["operations"].get(op)
            if not o:
                continue
            vals.append(o["rows_s"] if unit == "rows" else o["ops_s"])
            p99s.append(o["p99_us"] / 1000.0)
        if not vals:
            continue
        print("| %s | %d | %s | %.2fx | %.2f |" % (name, figure, fmt_ops(vals),
                                                   med(vals) / figure, med(p99s)))
    print()
    print("Bigtable's 'random reads' read from GFS on disk; Mica's data set here "
          "fits in memory, so both random-read rows show the same Mica run.")


if __name__ == "__main__":
    main()
