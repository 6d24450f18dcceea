#!/usr/bin/env python3
"""report.py: the tables of bench/compare/run.sh from mica-bench's JSON.

Reads OUT/json/<system>-<workload>-<round>.json (and the bt-* files of the
Bigtable part), takes per workload and system the median over rounds of
throughput and of the p99 over all operations, and prints markdown: the
YCSB tables with Mica's ratios against etcd, PostgreSQL and the
transport's echo ceiling (OUT/json/echo-MODE-ROUND.txt) and the goals, and the Bigtable
per-server table. Called by run.sh; usable alone on a kept results
directory.
"""
import argparse
import json
import os
import re
import statistics
import sys

# Goals of the comparison (issue 15), of the 1-server Mica's throughput:
# over etcd's, over PostgreSQL's, and as a share of the transport's echo
# ceiling at the same concurrency and payload.
GOALS_ETCD = {"a": 3.0}
GOALS_PG = {"a": 1.5, "b": 1.5, "c": 1.5, "e": 1.5}
GOALS_ECHO = {"b": 0.9, "c": 0.9}

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

NAMES = {"mica1": "Mica 1 server", "mica3": "Mica 3 servers", "etcd": "etcd 3.4",
         "pg": "PostgreSQL 15"}
ECHO_WARMUP_S = 0.5  # mica-rpc-bench's warm-up before each measured mode


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


def echo_rounds(jdir, runs):
    """Per round: (best echo rate, its mode, server CPU us per echo)."""
    out = []
    for r in range(1, runs + 1):
        best = None
        for mode in ("threads", "async"):
            p = os.path.join(jdir, "echo-%s-%d.txt" % (mode, r))
            if not os.path.exists(p):
                continue
            with open(p) as f:
                text = f.read()
            m = re.search(r"rate=([0-9.]+)/s", text)
            sec = re.search(r"seconds=([0-9.]+)", text)
            if not m:
                continue
            rate = float(m.group(1))
            cpu = None
            cp = os.path.join(jdir, "echo-%s-%d.cpu" % (mode, r))
            if os.path.exists(cp) and sec and rate > 0:
                with open(cp) as f:
                    ticks, hz = f.read().split()
                # The CPU covers the warm-up too: count its echoes at the
                # measured rate.
                calls = rate * (float(sec.group(1)) + ECHO_WARMUP_S)
                cpu = int(ticks) / int(hz) * 1e6 / calls
            if best is None or rate > best[0]:
                best = (rate, mode, cpu)
        if best:
            out.append(best)
    return out


def print_loadavg(path):
    """The machine's 1-minute load average during the load and the rounds."""
    if not os.path.exists(path):
        return
    marks, samples = {}, []
    with open(path) as f:
        for line in f:
            p = line.split(None, 4)
            if len(p) < 5:
                continue
            t, l1, label = int(p[0]), float(p[1]), p[4].strip()
            samples.append((t, l1))
            marks.setdefault(label, t)
    parts = []
    for name, lo, hi in (("load", "load-start", "load-end"),
                         ("rounds", "rounds-start", "rounds-end")):
        if lo not in marks:
            continue
        xs = [l for t, l in samples if marks[lo] <= t <= marks.get(hi, 1 << 62)]
        if xs:
            parts.append("%s %.1f (%.1f-%.1f; %d min)" % (
                name, med(xs), min(xs), max(xs),
                (marks.get(hi, samples[-1][0]) - marks[lo] + 30) // 60))
    if parts:
        print("Machine load average (1 min; median, min-max, over samples every "
              "10 s and at each phase's start and end): %s." % "; ".join(parts))
        print()


def print_load(jdir, systems):
    """The one load of each system: rate, time, server CPU per insert."""
    rows = []
    for s in systems:
        p = os.path.join(jdir, "%s-load.json" % s)
        if not os.path.exists(p):
            continue
        d = load(p)
        cpu = None
        cp = os.path.join(jdir, "%s-load.cpu" % s)
        if os.path.exists(cp) and d["ops_counted"]:
            with open(cp) as f:
                ticks, hz = f.read().split()
            cpu = int(ticks) / int(hz) * 1e6 / d["ops_counted"]
        rate = d["throughput_ops_s"]
        rows.append("| %s | %d | %.0f | %.0f | %.2f | %s |" % (
            NAMES[s], d["ops_counted"], rate, d["ops_counted"] / rate if rate else 0,
            d["all"]["p99_us"] / 1000.0, "%.1f" % cpu if cpu is not None else "-"))
    if rows:
        print("| load (once per system) | records | inserts/s | seconds | p99 ms | "
              "server CPU us/insert |")
        print("|---|---|---|---|---|---|")
        print("\n".join(rows))
        print()


def ratio(a, b):
    if not a or not b or med(b) <= 0:
        return None
    return med(a) / med(b)


def fmt_ratio(x):
    return "%.2fx" % x if x is not None else "-"


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
    ap.add_argument("--echo", default="1")
    ap.add_argument("--command", default="")
    ap.add_argument("--setup", default="")
    ap.add_argument("--loadavg", default="",
                    help="run.sh's loadavg.log: 'EPOCH L1 L5 L15 LABEL' lines")
    a = ap.parse_args()
    systems = a.systems.split(",")
    wls = a.workloads.split(",")

    peers = [p for p in ("etcd", "pg") if p in systems]
    print("# Mica vs %s: YCSB, medians of %d run(s)" %
          (" and ".join(NAMES[p] for p in peers) or "itself", a.runs))
    print()
    if a.command:
        print("Command: `%s`  " % a.command)
    if a.setup:
        print("Setup: %s" % a.setup)
    print()
    if a.loadavg:
        print_loadavg(a.loadavg)
    print_load(a.json, systems)
    echo = echo_rounds(a.json, a.runs) if a.echo == "1" else []
    echo_rate = [e[0] for e in echo]
    echo_cpu = [e[2] for e in echo if e[2] is not None]
    micas = [s for s in systems if s.startswith("mica")]

    head = ["workload"] + ["%s ops/s" % NAMES[s] for s in systems]
    if echo:
        head.append("echo ceiling/s")
    for m in micas:
        for p in peers:
            head.append("%s / %s" % (NAMES[m], NAMES[p]))
        if echo:
            head.append("%s / echo" % NAMES[m])
    head.append("goals (Mica 1 server)")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    rows2 = []
    for w in wls:
        tput, p50, p99, cpu, errors = {}, {}, {}, {}, {}
        for s in systems:
            rs = runs_of(a.json, "%s-%s" % (s, w), a.runs)
            tput[s] = [r["throughput_ops_s"] for r in rs]
            p50[s] = [r["all"]["p50_us"] / 1000.0 for r in rs]
            p99[s] = [r["all"]["p99_us"] / 1000.0 for r in rs]
            cpu[s] = [r["cpu_us_per_op"] for r in rs if r["cpu_us_per_op"] is not None]
            errs = sum(r["errors"] for r in rs)
            counted = sum(r["ops_counted"] for r in rs)
            errors[s] = (errs, counted)
            if errs:
                print("warning: %d errors in %s %s" % (errs, s, w), file=sys.stderr)
            # A system whose runs mostly failed (etcd's capped E at 1M
            # records) has no rate to compare: no ratio against it.
            if counted and errs * 2 > counted:
                tput[s] = []
        row = [w.upper()] + [fmt_ops(tput[s]) if tput[s] or not errors[s][0] else
                             "failed: %d of %d ops" % errors[s] for s in systems]
        if echo:
            row.append(fmt_ops(echo_rate))
        for m in micas:
            for p in peers:
                row.append(fmt_ratio(ratio(tput[m], tput[p])))
            if echo:
                row.append(fmt_ratio(ratio(tput[m], echo_rate)))
        goals = []
        for name, table, other in (("etcd", GOALS_ETCD, tput.get("etcd")),
                                   ("PostgreSQL", GOALS_PG, tput.get("pg")),
                                   ("echo", GOALS_ECHO, echo_rate)):
            g = table.get(w)
            x = ratio(tput.get("mica1"), other) if other else None
            if g and x is not None:
                goals.append("%s %.1fx %s" % (name, g, "met" if x >= g else "MISSED"))
        row.append(", ".join(goals) or "-")
        print("| " + " | ".join(row) + " |")
        rows2.append([w.upper()] + ["%.2f" % med(p50[s]) if p50[s] else "-" for s in systems] +
                     ["%.2f" % med(p99[s]) if p99[s] else "-" for s in systems] +
                     ["%.1f" % med(cpu[s]) if cpu[s] else "-" for s in systems])
    print()
    head = (["workload"] + ["p50 ms %s" % NAMES[s] for s in systems] +
            ["p99 ms %s" % NAMES[s] for s in systems] +
            ["server CPU us/op %s" % NAMES[s] for s in systems])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows2:
        print("| " + " | ".join(row) + " |")
    print()
    if echo:
        modes = sorted(set(e[1] for e in echo))
        print("Echo ceiling: mica-rpc-bench against its own server process, the same "
              "number of calls in flight as client threads and a payload of one record, "
              "best of its blocking-threads and async client modes per round (best: %s); "
              "echo server CPU %s us per echo." %
              (", ".join(modes), "%.1f" % med(echo_cpu) if echo_cpu else "-"))
        print()
    print("ops/s: median (min-max) over rounds; p50 and p99 over all operations of a "
          "run, median over rounds. Ratios are of medians. Server CPU: user+system time of "
          "the system's server processes (Mica: the tablet servers; etcd: its one "
          "process; PostgreSQL: the postmaster and every backend it forked, with its "
          "WAL writer and checkpointer) during the run, per operation.")
    print()

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
