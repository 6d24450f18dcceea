#!/usr/bin/env python3
"""bench/s3/report.py OUT HZ: the summary of a bench/s3/run.sh run.

Reads OUT/steps.txt (one line per measured step: ROUND STEP CLUSTER JSON
CPU-TICKS LOADAVG [EXTRA]) and OUT/s3req.txt (the s3 cluster's S3 counters
before and after each step), prints medians over the rounds and the s3/posix
ratios of the same run."""
import json
import statistics
import sys
from collections import defaultdict

out, hz = sys.argv[1], int(sys.argv[2])
med = statistics.median
KINDS = ["GET", "HEAD", "PUT", "COPY", "LIST", "POST", "DELETE"]

# label -> kind -> (requests, seconds), summed over the processes
snap = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
for line in open(f"{out}/s3req.txt"):
    label, _proc, kind, n, secs = line.split()
    snap[label][kind][0] += float(n)
    snap[label][kind][1] += float(secs)


def delta(r, step):
    a, b = snap.get(f"{r}-{step}-0"), snap.get(f"{r}-{step}-1")
    if a is None or b is None:
        return None
    return {k: (b[k][0] - a[k][0], b[k][1] - a[k][1]) for k in KINDS}


steps = []
for line in open(f"{out}/steps.txt"):
    f = line.split()
    steps.append({"r": int(f[0]), "step": f[1], "name": f[2], "file": f[3],
                  "ticks": int(f[4]), "load": float(f[5]),
                  "extra": f[6] if len(f) > 6 else None})
loads = [s["load"] for s in steps]
print(f"load average (1 min) at the steps: {min(loads):.1f} to {max(loads):.1f}, "
      f"median {med(loads):.1f}")


def js(s):
    return json.load(open(s["file"]))


def pick(step, name):
    return [s for s in steps if s["step"] == step and s["name"] == name]


def reqs_line(ds, per, unit):
    """Median over rounds of requests per `per` units, by kind."""
    tot = [sum(d[k][0] for k in KINDS) / u * per for d, u in ds]
    parts = []
    for k in KINDS:
        v = med([d[k][0] / u * per for d, u in ds])
        if v > 0:
            parts.append(f"{k} {v:.1f}")
    secs = med([sum(d[k][1] for k in KINDS) / u * per for d, u in ds])
    return (f"{med(tot):.1f} requests per {per:,} {unit} ({', '.join(parts) or 'none'}); "
            f"{secs * 1000:.0f} ms in S3 requests per {per:,} {unit}")


def s3reqs(step, unit, per=1000, count=lambda j: j["ops_counted"]):
    ds = []
    for s in pick(step, "s3"):
        d = delta(s["r"], step)
        if d is not None:
            ds.append((d, max(1, count(js(s)))))
    return reqs_line(ds, per, unit) if ds else "no counters"


p, s = pick("write", "posix"), pick("write", "s3")
if p and s:
    print("\nWrites: load of fresh records into a new one-tablet table (16 threads)")
    pv = [js(x)["throughput_ops_s"] for x in p]
    sv = [js(x)["throughput_ops_s"] for x in s]
    print(f"  posix {med(pv):,.0f} ops/s ({', '.join(f'{v:,.0f}' for v in pv)}); "
          f"s3 {med(sv):,.0f} ops/s ({', '.join(f'{v:,.0f}' for v in sv)}); "
          f"s3/posix by round {', '.join(f'{b / a:.2f}' for a, b in zip(pv, sv))}, "
          f"median {med([b / a for a, b in zip(pv, sv)]):.2f}")
    print(f"  s3: {s3reqs('write', 'writes')}")

for w in ("c", "a"):
    if not pick(w, "posix"):
        continue
    print(f"\nYCSB {w.upper()}: ops/s by round, tablet server CPU per op, latency")
    res = {}
    for name in ("posix", "s3"):
        v = []
        for x in pick(w, name):
            j = js(x)
            v.append((j["throughput_ops_s"], x["ticks"] / hz * 1e6 / max(1, j["ops_counted"]),
                      j["all"].get("p50_us", 0), j["all"].get("p99_us", 0)))
        res[name] = v
        print(f"  {name}: {', '.join(f'{a[0]:,.0f}' for a in v)}; median {med(a[0] for a in v):,.0f} "
              f"ops/s, CPU {med(a[1] for a in v):.1f} us/op, p50 {med(a[2] for a in v):,.0f} us, "
              f"p99 {med(a[3] for a in v):,.0f} us")
    rat = [b[0] / a[0] for a, b in zip(res["posix"], res["s3"])]
    cpu = [b[1] / a[1] for a, b in zip(res["posix"], res["s3"])]
    print(f"  s3/posix ops/s by round {', '.join(f'{x:.2f}' for x in rat)}, median {med(rat):.2f}; "
          f"CPU/op ratio median {med(cpu):.2f}")
    print(f"  s3: {s3reqs(w, 'operations')}")

print(f"\nFirst reads after a move (YCSB C, 8 threads), new owner never held the tablet")
for name, tag, what in (("posix", "move", "posix, cold block cache"),
                        ("s3", "move", "s3 B, empty disk cache"),
                        ("s3", "warm", "s3 B again, chunks on disk"),
                        ("s3", "move-nocache", "s3 C, no disk cache")):
    v = pick(tag, name)
    if not v:
        continue
    j = [js(x) for x in v]
    mv = [int(x["extra"]) for x in v if x["extra"] and x["extra"] != "0"]
    print(f"  {what}: {med(a['throughput_ops_s'] for a in j):,.0f} ops/s "
          f"({', '.join(format(a['throughput_ops_s'], ',.0f') for a in j)}), "
          f"p50 {med(a['all'].get('p50_us', 0) for a in j):,.0f} us, "
          f"p99 {med(a['all'].get('p99_us', 0) for a in j):,.0f} us, "
          f"max {med(a['all'].get('max_us', 0) for a in j):,.0f} us"
          + (f"; move call {med(mv):.0f} ms" if mv else ""))
    if name == "s3":
        print(f"    {s3reqs(tag, 'reads')}")

if not any(x["step"].startswith("split") for x in steps):
    sys.exit(0)
print("\nmica split")
sp = {}
for name in ("posix", "s3", "s3base"):
    v = [int(x["extra"]) / 1000 for x in steps if x["step"].startswith("split") and x["name"] == name]
    if not v:
        continue
    sp[name] = v
    print(f"  {name}: median {med(v):.0f} ms, min {min(v):.0f}, max {max(v):.0f} over {len(v)} splits")
print(f"  s3/posix ratio of medians {med(sp['s3']) / med(sp['posix']):.2f}")
if "s3base" in sp:
    print(f"  s3base/posix ratio of medians {med(sp['s3base']) / med(sp['posix']):.2f}; "
          f"s3/s3base {med(sp['s3']) / med(sp['s3base']):.2f}")
ds = []
for x in steps:
    if x["step"].startswith("split") and x["name"] == "s3":
        d = delta(x["r"], x["step"])
        if d is not None:
            ds.append((d, 1))
print(f"  s3: {reqs_line(ds, 1, 'split')} (from the call to its return; "
      "background compactions of the daughters included when they started)")
