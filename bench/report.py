"""Turn one run's results.csv into results.md and chart.png.

usage: /usr/bin/python3 report.py results/<date>

Every figure is the median over the repetitions whose status is ok, with the
min-max range beside it when there was more than one. Ratios divide medians.
"""
import csv
import os
import statistics
import sys

SERVERS = ["c", "ours", "ours-base", "ours-inline", "cloudwego", "gnet", "nbio", "gonet"]
LABEL = {
    "c": "C epoll (floor)",
    "ours": "ours",
    "ours-base": "ours at --baseline",
    "ours-inline": "ours-inline",
    "cloudwego": "cloudwego/netpoll",
    "gnet": "gnet/v2",
    "nbio": "nbio",
    "gonet": "Go net",
}
CLOSED = ["closed-100x64", "closed-1000x64", "closed-1000x1024"]
CLOSED_LABEL = {"closed-100x64": "64 B × 100", "closed-1000x64": "64 B × 1,000",
                "closed-1000x1024": "1 KiB × 1,000"}
STREAM = "stream-10x64KiB"
IDLE = ["idle-10000", "idle-19000"]
LAT = "latency-1000x64"


NOISY_COUNT = {}


def load(path):
    rows = list(csv.DictReader(open(path)))
    data = {}
    status = {}
    for r in rows:
        key = (r["server"], r["workload"])
        if r["status"] == "noisy":
            NOISY_COUNT[r["server"]] = NOISY_COUNT.get(r["server"], 0) + 1
            continue
        status.setdefault(key, []).append(r["status"])
        if r["status"] != "ok":
            continue
        data.setdefault(key, []).append(r)
    return data, status


def values(data, server, workload, col):
    out = []
    for r in data.get((server, workload), []):
        v = r.get(col, "")
        if v not in ("", None):
            out.append(float(v))
    return out


def med(data, server, workload, col):
    v = values(data, server, workload, col)
    return statistics.median(v) if v else None


def fmt_num(x, digits=None):
    if x is None:
        return "—"
    if digits is None:
        digits = 0 if abs(x) >= 100 else (1 if abs(x) >= 10 else 2)
    return f"{x:,.{digits}f}"


def cell(data, status, server, workload, col, digits=None):
    v = values(data, server, workload, col)
    if not v:
        st = status.get((server, workload))
        if st:
            return " / ".join(sorted(set(st)))
        return "—"
    m = statistics.median(v)
    s = fmt_num(m, digits)
    if len(v) > 1:
        s += f" ({fmt_num(min(v), digits)}–{fmt_num(max(v), digits)})"
    if noisy(data, server, workload):
        s += " †"
    return s


NOISE = 0.35


def noisy(data, server, workload):
    """True when another process used more than NOISE CPU in a kept window."""
    return any(r.get("other_util") and float(r["other_util"]) > NOISE
               for r in data.get((server, workload), []))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}×"


def main(outdir):
    data, status = load(os.path.join(outdir, "results.csv"))
    present = {s for (s, _) in status}
    failures = {}
    fpath = os.path.join(outdir, "failures.csv")
    if os.path.exists(fpath):
        for line in open(fpath):
            s, why = line.strip().split(",", 1)
            failures[s] = why
            present.add(s)
    servers = [s for s in SERVERS if s in present]
    env = open(os.path.join(outdir, "env.txt")).read().strip()
    workloads = {w for (_, w) in status}

    md = []
    md.append(f"# Echo benchmark results\n")
    md.append("```\n" + env + "\n```\n")
    md.append("Server pinned to CPU 0 with GOMAXPROCS=1, load generator (bench/c/loadgen.c) "
              "pinned to CPU 1. Median over repetitions, (min–max) when more than one. "
              "µs/req is server CPU time (utime+stime) per request over the measured window. "
              f"† marks a figure from a window in which other processes on the machine used more than "
              f"{NOISE} CPU (see Run conditions): its req/s and latency understate the server.\n")

    head = ["server"]
    for w in CLOSED:
        if w in workloads:
            head += [f"{CLOSED_LABEL[w]} req/s", f"{CLOSED_LABEL[w]} µs/req"]
    if STREAM in workloads:
        head += ["64 KiB × 10 stream MB/s", "stream µs/64 KiB"]
    for w in IDLE:
        if w in workloads:
            head += [f"idle {int(w.split('-')[1]):,} B/conn"]
    if LAT in workloads:
        head += ["p50 / p99 / p99.9 µs at 50% peak (64 B × 1,000)"]
    head += ["allocs/req (64 B × 1,000)"]
    md.append("## Results\n")
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * len(head))
    for s in servers:
        if s in failures:
            md.append(f"| {LABEL[s]} | " + " | ".join([failures[s]] * (len(head) - 1)) + " |")
            continue
        row = [LABEL[s]]
        for w in CLOSED:
            if w in workloads:
                row += [cell(data, status, s, w, "rps"), cell(data, status, s, w, "cpu_us_per_req")]
        if STREAM in workloads:
            row += [cell(data, status, s, STREAM, "mbps", 0), cell(data, status, s, STREAM, "cpu_us_per_req")]
        for w in IDLE:
            if w in workloads:
                row += [cell(data, status, s, w, "bytes_per_conn", 0)]
        if LAT in workloads:
            p = [med(data, s, LAT, c) for c in ("p50_us", "p99_us", "p999_us")]
            row += [" / ".join(fmt_num(x, 0) for x in p) + (" †" if noisy(data, s, LAT) else "")
                    if p[0] is not None else cell(data, status, s, LAT, "p50_us")]
        mpr = med(data, s, "closed-1000x64", "mallocs_per_req")
        row += ["n/a (C)" if s == "c" else fmt_num(mpr, 3)]
        md.append("| " + " | ".join(row) + " |")
    md.append("")

    # Ratios: medians divided, against the reference library and the C floor.
    md.append("## Ratios (median ÷ median): vs cloudwego/netpoll · vs C epoll\n")
    rhead = ["server"]
    metrics = []
    for w in CLOSED:
        if w in workloads:
            metrics += [(w, "rps", f"{CLOSED_LABEL[w]} req/s"), (w, "cpu_us_per_req", f"{CLOSED_LABEL[w]} µs/req")]
    if STREAM in workloads:
        metrics += [(STREAM, "mbps", "stream MB/s")]
    if LAT in workloads:
        metrics += [(LAT, "p99_us", "p99 latency")]
    rhead += [m[2] for m in metrics]
    md.append("| " + " | ".join(rhead) + " |")
    md.append("|" + "---|" * len(rhead))
    for s in servers:
        if s in failures:
            continue
        row = [LABEL[s]]
        for w, col, _ in metrics:
            v = med(data, s, w, col)
            row.append(f"{fmt_ratio(ratio(v, med(data, 'cloudwego', w, col)))} · "
                       f"{fmt_ratio(ratio(v, med(data, 'c', w, col)))}")
        md.append("| " + " | ".join(row) + " |")
    md.append("")

    md += targets(data, status, failures, workloads)
    md += noise(data, servers)
    md.append("![chart](chart.png)\n")
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write("\n".join(md))
    chart(data, servers, workloads, os.path.join(outdir, "chart.png"))


def targets(data, status, failures, workloads):
    """The issue #5 targets, checked for each of our two configurations."""
    out = ["## Issue #5 targets\n"]
    # The peers are the Go servers; the C server is the floor, not a peer.
    peers = ["cloudwego", "gnet", "nbio", "gonet"]
    for s in ("ours", "ours-inline"):
        if s in failures:
            out.append(f"- **{s}**: {failures[s]} — no figures.\n")
            continue
        if not any(k[0] == s for k in status):
            continue
        out.append(f"### {s}\n")
        out.append("| target | measured | goal | verdict |")
        out.append("|---|---|---|---|")

        def line(name, value, goal, ok):
            verdict = "—" if ok is None else ("met" if ok else "**MISSED**")
            out.append(f"| {name} | {value} | {goal} | {verdict} |")

        for w in CLOSED:
            if w not in workloads:
                continue
            ours = med(data, s, w, "cpu_us_per_req")
            cw = med(data, "cloudwego", w, "cpu_us_per_req")
            best = [x for x in (med(data, "gnet", w, "cpu_us_per_req"), med(data, "nbio", w, "cpu_us_per_req")) if x]
            c = med(data, "c", w, "cpu_us_per_req")
            r = ratio(ours, cw)
            line(f"CPU/req {CLOSED_LABEL[w]} vs cloudwego", fmt_ratio(r), "≤ 0.80×", None if r is None else r <= 0.8)
            if best and ours:
                line(f"CPU/req {CLOSED_LABEL[w]} vs best of gnet, nbio",
                     f"{fmt_num(ours)} vs {fmt_num(min(best))} µs", "≤ best", ours <= min(best))
            r = ratio(ours, c)
            line(f"CPU/req {CLOSED_LABEL[w]} vs C", fmt_ratio(r), "≤ 1.15×", None if r is None else r <= 1.15)
        for w in CLOSED[1:]:
            if w not in workloads:
                continue
            r = ratio(med(data, s, w, "rps"), med(data, "cloudwego", w, "rps"))
            line(f"req/s {CLOSED_LABEL[w]} vs cloudwego", fmt_ratio(r), "≥ 1.25×", None if r is None else r >= 1.25)
        if STREAM in workloads:
            r = ratio(med(data, s, STREAM, "mbps"), med(data, "c", STREAM, "mbps"))
            line("64 KiB stream MB/s vs C", fmt_ratio(r), "≥ 0.90×", None if r is None else r >= 0.9)
        if "idle-10000" in workloads:
            b = med(data, s, "idle-10000", "bytes_per_conn")
            line("RSS per idle conn at 10,000", fmt_num(b, 0) + " B", "≤ 1,024 B", None if b is None else b <= 1024)
        if LAT in workloads:
            ours = med(data, s, LAT, "p99_us")
            pv = {p: med(data, p, LAT, "p99_us") for p in peers}
            pv = {p: v for p, v in pv.items() if v is not None}
            if ours is not None and pv:
                best_p = min(pv, key=pv.get)
                c = med(data, "c", LAT, "p99_us")
                line("p99 at 50% load vs every peer", f"{fmt_num(ours, 0)} µs (best peer {LABEL[best_p]} "
                     f"{fmt_num(pv[best_p], 0)} µs; C {fmt_num(c, 0)} µs)", "≤ every peer", ours <= pv[best_p])
        m = med(data, s, "closed-1000x64", "mallocs_per_req")
        line("allocations per request (64 B × 1,000)", fmt_num(m, 4), "0", None if m is None else m < 0.01)
        out.append("")
    return out


def noise(data, servers):
    """The machine is shared: show how busy the rest of it was."""
    out = ["## Run conditions\n",
           "gen_util is the load generator's own CPU use (near 1.0 means it, not the server, set the pace); "
           "other_util is CPU used by neither server nor generator during the window (other processes on "
           "this 2-CPU machine; above ~0.2 the throughput figures of that run are suspect, CPU/req less so).\n",
           "| server | server util | gen util | other util (max) | windows re-run as noisy |",
           "|---|---|---|---|---|"]
    for s in servers:
        rows = [r for (srv, _), rs in data.items() if srv == s for r in rs if r["server_util"]]
        if not rows:
            continue
        su = statistics.median(float(r["server_util"]) for r in rows)
        gu = statistics.median(float(r["gen_util"]) for r in rows)
        ou = [float(r["other_util"]) for r in rows]
        out.append(f"| {LABEL[s]} | {su:.2f} | {gu:.2f} | {statistics.median(ou):.2f} ({max(ou):.2f}) "
                   f"| {NOISY_COUNT.get(s, 0)} |")
    out.append("")
    return out


def chart(data, servers, workloads, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = [s for s in servers if any(k[0] == s for k in data)]
    panels = [("req/s (closed loop)", [(w, "rps") for w in CLOSED if w in workloads]),
              ("server CPU µs per request", [(w, "cpu_us_per_req") for w in CLOSED if w in workloads]),
              ("64 KiB × 10 stream, MB/s", [(STREAM, "mbps")] if STREAM in workloads else []),
              ("RSS bytes per idle connection", [(w, "bytes_per_conn") for w in IDLE if w in workloads]),
              ("latency at 50% peak, µs (64 B × 1,000)",
               [(LAT, c) for c in ("p50_us", "p99_us", "p999_us")] if LAT in workloads else [])]
    panels = [p for p in panels if p[1]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5))
    if len(panels) == 1:
        axes = [axes]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, series) in zip(axes, panels):
        n = len(servers)
        width = 0.8 / n
        for i, s in enumerate(servers):
            xs, ys, lo, hi = [], [], [], []
            for j, (w, col) in enumerate(series):
                v = values(data, s, w, col)
                if not v:
                    continue
                m = statistics.median(v)
                xs.append(j + i * width - 0.4 + width / 2)
                ys.append(m)
                lo.append(m - min(v))
                hi.append(max(v) - m)
            ax.bar(xs, ys, width, yerr=[lo, hi], label=LABEL[s], color=colors[i % len(colors)], capsize=2)
        ax.set_xticks(range(len(series)))
        names = [CLOSED_LABEL.get(w, col.replace("_us", "").replace("p999", "p99.9")) if w != STREAM
                 else "64 KiB" for w, col in series]
        if series and series[0][0] in IDLE:
            names = [w.replace("idle-", "") + " conns" for w, _ in series]
        ax.set_xticklabels(names, fontsize=8)
        ax.set_title(title, fontsize=10)
        if "latency" in title:
            ax.set_yscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1])
