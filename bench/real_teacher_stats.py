#!/usr/bin/env python3
"""Statistics for bench/real_teacher_bench.sh DESIGN=ab (stdlib only).

Reads the runs file the script writes (one JSON object per client run) and, for every run, the
llama-server log of its server: the server logs each task's launch and release on a slot, so
the share of the slots' time spent on requests ("slot occupancy") is measured by the server
itself, whatever the client reports. The log also counts the decode steps that reused the
previous step's compute graph ("graphs reused"): a slotted server whose slots run out of step
rebuilds it more often (see ConnectionRamp). Prints two Markdown tables:

- fresh: each run is the first client of its own freshly started server. Per client the mean
  req/s with its 95 % confidence interval; the ratio of the means with a bootstrap 95 % interval.
- warm: both clients take turns on one warmed server (ABBA order, so that a steady drift of the
  server's speed cancels). Per adjacent pair the ratio retort/plain; their geometric mean with a
  95 % t interval.

usage: real_teacher_stats.py RUNS_JSONL
"""
import json
import math
import random
import re
import statistics
import sys

T975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23,
        11: 2.20, 12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 16: 2.12, 18: 2.10, 20: 2.09, 25: 2.06, 30: 2.04}


def t975(df):
    """Two-sided 95 % quantile of Student's t with df degrees of freedom (table, rounded down)."""
    if df <= 0:
        return float("nan")
    if df > 30:
        return 1.96
    return T975[max(k for k in T975 if k <= df)]


def ts_ms(line):
    m = re.match(r"(\d+)\.(\d+)\.(\d+)\.(\d+) ", line)
    return int(m[1]) * 60000 + int(m[2]) * 1000 + int(m[3]) + int(m[4]) / 1000 if m else None


_tasks_cache = {}


def server_tasks(log):
    """[(launch_ms, release_ms, graphs_reused)] in launch order, from a llama-server log;
    graphs_reused is the server's running count when the task ended (None when not logged)."""
    if log in _tasks_cache:
        return _tasks_cache[log]
    launch, release, reused, order = {}, {}, {}, []
    with open(log, errors="replace") as f:
        for line in f:
            m = re.search(r"\| task (\d+) \|", line)
            if not m:
                continue
            t = ts_ms(line)
            if t is None:
                continue
            task = int(m[1])
            if "launch_slot_" in line:
                launch[task] = t
                order.append(task)
            elif "release:" in line:
                release[task] = t
            elif "graphs reused" in line:
                g = re.search(r"graphs reused =\s*(\d+)", line)
                if g:
                    reused[task] = int(g[1])
    out = [(launch[k], release[k], reused.get(k)) for k in order if k in release]
    _tasks_cache[log] = out
    return out


def occupancy(run, slots):
    """Share of the slots' time busy with this run's tasks (its `tasks` tasks from `task_offset`)."""
    tasks = server_tasks(run["server_log"])[run["task_offset"]:run["task_offset"] + run["tasks"]]
    if len(tasks) < run["tasks"] or not tasks:
        return float("nan")
    span = max(r for _, r, _ in tasks) - min(l for l, _, _ in tasks)
    return sum(r - l for l, r, _ in tasks) / (slots * span) if span > 0 else float("nan")


def graph_reuse(run, slots, max_tokens=16):
    """Decode steps during this run that reused the compute graph, as a share of the steps its
    tasks need at the least (tasks x max_tokens / slots: every answer here is max_tokens long)."""
    all_tasks = server_tasks(run["server_log"])
    lo, hi = run["task_offset"], run["task_offset"] + run["tasks"]
    before = [g for _, _, g in all_tasks[:lo] if g is not None]
    during = [g for _, _, g in all_tasks[lo:hi] if g is not None]
    if len(all_tasks) < hi or not during:
        return float("nan")
    return (max(during) - max(before, default=0)) / (run["tasks"] * max_tokens / slots)


def mean_ci(xs):
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, t975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))


def bootstrap_ratio(a, b, reps=4000):
    """95 % bootstrap interval of mean(b) / mean(a)."""
    rng = random.Random(11)
    rs = sorted(statistics.fmean(rng.choices(b, k=len(b))) / statistics.fmean(rng.choices(a, k=len(a)))
                for _ in range(reps))
    return rs[int(reps * 0.025)], rs[int(reps * 0.975)]


def fmt_ci(m, h, digits=1):
    return f"{m:.{digits}f} ± {h:.{digits}f}" if not math.isnan(h) else f"{m:.{digits}f}"


def main():
    runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    slots = runs[0].get("slots", 4) if runs else 4
    for r in runs:
        r["occupancy"] = occupancy(r, slots)
        r["graph_reuse"] = graph_reuse(r, slots)
    concs = sorted({r["c"] for r in runs})

    fresh = [r for r in runs if r["part"] == "fresh"]
    if fresh:
        print("First client of a fresh server (every run on its own new server; mean ± 95 % CI):\n")
        print("| concurrency | runs each | plain req/s | retort req/s (whole process) | retort req/s (request window) | "
              "retort/plain (process) [95 % CI] | retort/plain (window) | slot occupancy plain / retort | "
              "graph reuse plain / retort | max latency plain / retort (worst run) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for c in concs:
            p = [r for r in fresh if r["c"] == c and r["client"] == "plain"]
            q = [r for r in fresh if r["c"] == c and r["client"] == "retort"]
            if not p or not q:
                continue
            pr, qr, qw = [r["rps"] for r in p], [r["rps"] for r in q], [r["rps_window"] for r in q]
            lo, hi = bootstrap_ratio(pr, qr)
            po, qo = [r["occupancy"] for r in p], [r["occupancy"] for r in q]
            print(f"| {c} | {len(p)} / {len(q)} | {fmt_ci(*mean_ci(pr))} | {fmt_ci(*mean_ci(qr))} | {fmt_ci(*mean_ci(qw))} | "
                  f"**{statistics.fmean(qr) / statistics.fmean(pr):.3f}** [{lo:.3f}, {hi:.3f}] | "
                  f"{statistics.fmean(qw) / statistics.fmean(pr):.3f} | "
                  f"{statistics.fmean(po):.3f} / {statistics.fmean(qo):.3f} | "
                  f"{statistics.fmean(r['graph_reuse'] for r in p):.2f} / {statistics.fmean(r['graph_reuse'] for r in q):.2f} | "
                  f"{max(r['max_ms'] for r in p):,.0f} / {max(r['max_ms'] for r in q):,.0f} ms |")
        print()

    warm = [r for r in runs if r["part"] == "warm"]
    if warm:
        print("Taking turns on one warmed server (ABBA order; ratio per adjacent pair, geometric mean ± 95 % CI):\n")
        print("| concurrency | pairs | plain req/s (mean) | retort req/s (mean, process) | retort/plain (process) [95 % CI] | "
              "retort/plain (window) [95 % CI] | pairs retort ahead | slot occupancy plain / retort | "
              "graph reuse plain / retort | max latency plain / retort (worst run) | p50 latency plain / retort |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for c in concs:
            rs = sorted((r for r in warm if r["c"] == c), key=lambda r: r["seq"])
            pairs = {}
            for r in rs:
                pairs.setdefault(r["pair"], {})[r["client"]] = r
            pairs = [v for v in pairs.values() if "plain" in v and "retort" in v]
            if not pairs:
                continue

            def gm(key):  # geometric mean of retort[key] / plain rps over the pairs, with its 95 % CI
                m, h = mean_ci([math.log(v["retort"][key] / v["plain"]["rps"]) for v in pairs])
                h = 0.0 if math.isnan(h) else h
                return math.exp(m), math.exp(m - h), math.exp(m + h)

            g, glo, ghi = gm("rps")
            w, wlo, whi = gm("rps_window")
            ahead = sum(1 for v in pairs if v["retort"]["rps"] >= v["plain"]["rps"])
            occ_p = statistics.fmean(v["plain"]["occupancy"] for v in pairs)
            occ_r = statistics.fmean(v["retort"]["occupancy"] for v in pairs)
            print(f"| {c} | {len(pairs)} | {statistics.fmean(v['plain']['rps'] for v in pairs):.1f} | "
                  f"{statistics.fmean(v['retort']['rps'] for v in pairs):.1f} | **{g:.3f}** [{glo:.3f}, {ghi:.3f}] | "
                  f"{w:.3f} [{wlo:.3f}, {whi:.3f}] | {ahead} of {len(pairs)} | {occ_p:.3f} / {occ_r:.3f} | "
                  f"{statistics.fmean(v['plain']['graph_reuse'] for v in pairs):.2f} / "
                  f"{statistics.fmean(v['retort']['graph_reuse'] for v in pairs):.2f} | "
                  f"{max(v['plain']['max_ms'] for v in pairs):,.0f} / {max(v['retort']['max_ms'] for v in pairs):,.0f} ms | "
                  f"{statistics.fmean(v['plain']['p50_ms'] for v in pairs):.0f} / "
                  f"{statistics.fmean(v['retort']['p50_ms'] for v in pairs):.0f} ms |")
        print()


if __name__ == "__main__":
    main()
