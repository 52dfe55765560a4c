"""Turn one run's results.csv (and rpc.csv) into results.md and its charts.

usage: /usr/bin/python3 report.py results/<date>

Every figure is the median over the repetitions whose status is ok, with the
min-max range beside it when there was more than one. Ratios divide medians.
chart.png shows the echo suite, sweep.png the fixed-rate sweep (latency and
CPU per request against offered load, one line per server); the Kitex and
Hertz tables come from rpc.csv, written by rpc/run.sh.
"""
import csv
import os
import statistics
import sys

SERVERS = ["c", "ours", "ours-base", "ours-inline", "ours-uring", "cloudwego", "gnet", "nbio", "gonet", "gain"]
LABEL = {
    "c": "C epoll (floor)",
    "ours": "ours",
    "ours-base": "ours at --baseline",
    "ours-inline": "ours-inline",
    "ours-uring": "ours on io_uring",
    "cloudwego": "cloudwego/netpoll",
    "gnet": "gnet/v2",
    "nbio": "nbio",
    "gonet": "Go net",
    "gain": "gain (io_uring)",
}
CLOSED = ["closed-100x64", "closed-1000x64", "closed-1000x1024"]
CLOSED_LABEL = {"closed-100x64": "64 B × 100", "closed-1000x64": "64 B × 1,000",
                "closed-1000x1024": "1 KiB × 1,000"}
STREAM = "stream-10x64KiB"
IDLE = ["idle-10000", "idle-19000"]
LAT = "latency-1000x64"
SWEEP = "sweep-1000x64"


NOISY_COUNT = {}


def load(path):
    rows = list(csv.DictReader(open(path)))
    data = {}
    status = {}
    for r in rows:
        # Sweep rows share one workload name; each rate is a workload of its own.
        if r["workload"] == SWEEP:
            r["workload"] = f"{SWEEP}@{r.get('rate') or 0}"
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
    md.append(f"# Benchmark results\n")
    md.append("```\n" + env + "\n```\n")
    echo = any(not w.startswith(SWEEP) for w in workloads)
    if echo:
        md += echo_tables(data, status, failures, servers, workloads)
    sweep_rates = sorted({int(w.split("@")[1]) for w in workloads if w.startswith(SWEEP + "@")})
    dropped = []
    dpath = os.path.join(outdir, "sweep-dropped.csv")
    if os.path.exists(dpath):
        dropped = [line.strip().split(",") for line in open(dpath) if line.strip()]
    if sweep_rates or dropped:
        md += sweep_tables(data, status, servers, sweep_rates, dropped)
        md += sweep_targets(data, servers, sweep_rates)
        if sweep_rates:
            sweep_chart(data, servers, sweep_rates, os.path.join(outdir, "sweep.png"))
            md.append("![sweep](sweep.png)\n")
    rpath = os.path.join(outdir, "rpc.csv")
    if os.path.exists(rpath):
        md += rpc_tables(rpath, outdir)
    if echo:
        md += noise(data, servers)
        md.append("![chart](chart.png)\n")
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write("\n".join(md))
    if echo:
        chart(data, servers, workloads, os.path.join(outdir, "chart.png"))


def echo_tables(data, status, failures, servers, workloads):
    md = []
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
    return md


def sweep_tables(data, status, servers, rates, dropped):
    """One table per offered rate: every server at the same total load."""
    md = ["## Fixed-rate sweep: 64 B × 1,000 connections, open loop\n",
          "Every server at the same total offered rate; latency counted from when each request fell "
          "due. µs/req is server CPU per request. Rates above 90% of the slowest server's closed-loop "
          "peak in this run are dropped, so that every server can carry each rate.\n"]
    for d in dropped:
        md.append(f"- {int(d[1]):,} req/s dropped: above 90% of the slowest server's peak "
                  f"({LABEL.get(d[2], d[2])}, {int(d[3]):,} req/s).")
    if dropped:
        md.append("")
    for r in rates:
        w = f"{SWEEP}@{r}"
        md.append(f"### {r:,} req/s offered\n")
        md.append("| server | achieved req/s | p50 µs | p99 µs | p99.9 µs | CPU µs/req | server util |")
        md.append("|---|---|---|---|---|---|---|")
        for s in servers:
            if (s, w) not in status:
                continue
            md.append(f"| {LABEL[s]} | {cell(data, status, s, w, 'rps')} | {cell(data, status, s, w, 'p50_us', 0)} "
                      f"| {cell(data, status, s, w, 'p99_us', 0)} | {cell(data, status, s, w, 'p999_us', 0)} "
                      f"| {cell(data, status, s, w, 'cpu_us_per_req')} | {cell(data, status, s, w, 'server_util')} |")
        md.append("")
    return md


def sweep_targets(data, servers, rates):
    """Issue #19's targets at every fixed rate up to 75% of the slowest peer's peak."""
    peers = [s for s in servers if s not in ("c", "ours", "ours-base", "ours-inline", "ours-uring")]
    peaks = {p: med(data, p, "closed-1000x64", "rps") for p in peers}
    peaks = {p: v for p, v in peaks.items() if v}
    if not peaks:
        return []
    slowest = min(peaks, key=peaks.get)
    limit = 0.75 * peaks[slowest]
    out = [f"### Issue #19 targets at fixed rates\n",
           f"At each rate up to 75% of the slowest peer's closed-loop peak ({LABEL[slowest]}, "
           f"{peaks[slowest]:,.0f} req/s, so up to {limit:,.0f} req/s): p99 and p99.9 at most the best of "
           f"cloudwego/netpoll and Go net; CPU µs/req at most cloudwego's and gnet's.\n",
           "| server | rate | p99 µs (best of cloudwego, Go net) | p99.9 µs (best) | CPU µs/req (cloudwego · gnet) | verdict |",
           "|---|---|---|---|---|---|"]
    for s in ("ours", "ours-inline"):
        if s not in servers:
            continue
        for r in rates:
            if r > limit:
                continue
            w = f"{SWEEP}@{r}"
            o = {col: med(data, s, w, col) for col in ("p99_us", "p999_us", "cpu_us_per_req")}
            best = {col: min([v for v in (med(data, "cloudwego", w, col), med(data, "gonet", w, col)) if v is not None],
                             default=None) for col in ("p99_us", "p999_us")}
            cw, gn = med(data, "cloudwego", w, "cpu_us_per_req"), med(data, "gnet", w, "cpu_us_per_req")
            checks = [o["p99_us"] is not None and best["p99_us"] is not None and o["p99_us"] <= best["p99_us"],
                      o["p999_us"] is not None and best["p999_us"] is not None and o["p999_us"] <= best["p999_us"],
                      o["cpu_us_per_req"] is not None and all(o["cpu_us_per_req"] <= x for x in (cw, gn) if x)]
            if o["p99_us"] is None:
                verdict = "—"
            else:
                verdict = "met" if all(checks) else "**MISSED**"
            out.append(f"| {LABEL[s]} | {r:,} | {fmt_num(o['p99_us'], 0)} ({fmt_num(best['p99_us'], 0)}) "
                       f"| {fmt_num(o['p999_us'], 0)} ({fmt_num(best['p999_us'], 0)}) "
                       f"| {fmt_num(o['cpu_us_per_req'])} ({fmt_num(cw)} · {fmt_num(gn)}) | {verdict} |")
    out.append("")
    return out


def sweep_chart(data, servers, rates, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("p50 latency, µs", "p50_us"), ("p99 latency, µs", "p99_us"),
              ("p99.9 latency, µs", "p999_us"), ("server CPU µs per request", "cpu_us_per_req")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, col) in zip(axes, panels):
        for s in servers:
            xs, ys = [], []
            for r in rates:
                v = med(data, s, f"{SWEEP}@{r}", col)
                if v is not None:
                    xs.append(r / 1000)
                    ys.append(v)
            if xs:
                # A server keeps its colour from run to run.
                ax.plot(xs, ys, marker="o", label=LABEL[s], color=colors[SERVERS.index(s) % len(colors)])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("offered load, thousand req/s (64 B × 1,000 conns)", fontsize=8)
        if col != "cpu_us_per_req":
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=max(len(labels), 1), fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=90)


RPC_LIBS = ["cloudwego", "ours"]
RPC_LABEL = {"cloudwego": "cloudwego/netpoll", "ours": "ours"}
# Kitex's transports in table order; "stream" is thrift streaming over gRPC.
TRANSPORTS = ["default", "mux", "stream"]


def rpc_targets(by, m):
    """Issue #19's framework targets: ours ÷ cloudwego/netpoll, medians."""
    out = []

    def line(name, a, b, goal, ok):
        r = ratio(a, b)
        verdict = "—" if r is None else ("met" if ok(r) else "**MISSED**")
        out.append(f"| {name} | {fmt_ratio(r)} | {goal} | {verdict} |")

    keys = {k[:4] for k in by}
    for tr in ("default", "mux", "stream"):
        closed = sorted(int(k[2]) for k in keys if k[0] == "kitex" and k[1] == tr and not k[3])
        fixed = sorted(int(k[3]) for k in keys if k[0] == "kitex" and k[1] == tr and k[3])
        if not closed and not fixed:
            continue
        if not out:
            out += ["### Issue #19 targets for the frameworks (ours ÷ cloudwego/netpoll)\n",
                    "| target | ratio | goal | verdict |", "|---|---|---|---|"]
        k = lambda n, rate="", lib="ours", b="kitex": (b, tr, str(n), str(rate), lib)
        if 1 in closed:
            line(f"Kitex {tr}: calls/s, one sequential caller", m(k(1), "rps"), m(k(1, lib="cloudwego"), "rps"),
                 "≥ 1.00×", lambda r: r >= 1.0)
        if closed and max(closed) > 1:
            n = max(closed)
            line(f"Kitex {tr}: calls/s at saturation ({n:,} callers)", m(k(n), "rps"),
                 m(k(n, lib="cloudwego"), "rps"), "≥ 1.15×", lambda r: r >= 1.15)
        for n in closed:
            if n > 1:
                line(f"Kitex {tr}: server CPU per call, {n:,} callers", m(k(n), "cpu_us_per_req"),
                     m(k(n, lib="cloudwego"), "cpu_us_per_req"), "≤ 0.90×", lambda r: r <= 0.9)
        for rate in fixed:
            n = next(k_[2] for k_ in keys if k_[0] == "kitex" and k_[1] == tr and k_[3] == str(rate))
            line(f"Kitex {tr}: p99 at {rate:,}/s", m(k(n, rate), "p99_us"), m(k(n, rate, "cloudwego"), "p99_us"),
                 "≤ 1.00×", lambda r: r <= 1.0)
            line(f"Kitex {tr}: server CPU per call at {rate:,}/s", m(k(n, rate), "cpu_us_per_req"),
                 m(k(n, rate, "cloudwego"), "cpu_us_per_req"), "≤ 0.90×", lambda r: r <= 0.9)
    for b, label in (("hertz-get", "Hertz GET"), ("hertz-post", "Hertz POST 4 KiB")):
        closed = sorted(int(k[2]) for k in keys if k[0] == b and not k[3])
        fixed = sorted((int(k[3]), k[2]) for k in keys if k[0] == b and k[3])
        if not closed and not fixed:
            continue
        if not out:
            out += ["### Issue #19 targets for the frameworks (ours ÷ cloudwego/netpoll)\n",
                    "| target | ratio | goal | verdict |", "|---|---|---|---|"]
        k = lambda n, rate="", lib="ours": (b, "http", str(n), str(rate), lib)
        for n in closed:
            line(f"{label}: req/s, {n:,} connections (wrk)", m(k(n), "rps"), m(k(n, lib="cloudwego"), "rps"),
                 "≥ 1.15×", lambda r: r >= 1.15)
            line(f"{label}: server CPU per request, {n:,} connections", m(k(n), "cpu_us_per_req"),
                 m(k(n, lib="cloudwego"), "cpu_us_per_req"), "≤ 0.90×", lambda r: r <= 0.9)
        for rate, n in fixed:
            line(f"{label}: p99 at {rate:,}/s", m(k(n, rate), "p99_us"), m(k(n, rate, "cloudwego"), "p99_us"),
                 "≤ 1.00×", lambda r: r <= 1.0)
            line(f"{label}: server CPU per request at {rate:,}/s", m(k(n, rate), "cpu_us_per_req"),
                 m(k(n, rate, "cloudwego"), "cpu_us_per_req"), "≤ 0.90×", lambda r: r <= 0.9)
    # Hertz's client: the issue asks that no scenario fall below 0.95×.
    for b, label in (("hertz-client-get", "Hertz client GET"), ("hertz-client-post", "Hertz client POST 4 KiB")):
        k = lambda n, rate="", lib="ours": (b, "http", str(n), str(rate), lib)
        for n in sorted(int(k_[2]) for k_ in keys if k_[0] == b and not k_[3]):
            if not out:
                out += ["### Issue #19 targets for the frameworks (ours ÷ cloudwego/netpoll)\n",
                        "| target | ratio | goal | verdict |", "|---|---|---|---|"]
            line(f"{label}: req/s, {n:,} connections", m(k(n), "rps"), m(k(n, lib="cloudwego"), "rps"),
                 "≥ 0.95×", lambda r: r >= 0.95)
    if out:
        out.append("")
    return out


def hertz_client_tables(by, bad, m, c, r_, dropped_lines):
    """Hertz's own client built on each library, against one server."""
    keys = {k[:4] for k in list(by) + list(bad) if k[0].startswith("hertz-client-")}
    if not keys:
        return []
    md = ["### Hertz's client (hertzcaller) on both libraries, against one server\n",
          "The same server for both (hertzserver on the first library built, cloudwego/netpoll); "
          "the client's library differs. Client µs/req is the client process's CPU per request.\n",
          "| request | connections | offered /s | req/s cloudwego | req/s ours | ratio | client µs/req cloudwego "
          "| client µs/req ours | ratio | p99 µs cloudwego | p99 µs ours | server µs/req cloudwego / ours |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    md += dropped_lines("hertz client")
    what = {"hertz-client-get": "GET / (13 B)", "hertz-client-post": "POST /echo 4 KiB"}
    for b, tr, n, rate in sorted(keys, key=lambda t: (t[0], t[3] != "", int(t[3] or 0), int(t[2]))):
        k = {lib: (b, tr, n, rate, lib) for lib in RPC_LIBS}
        md.append(f"| {what.get(b, b)} | {int(n):,} | {f'{int(rate):,}' if rate else 'closed loop'} "
                  f"| {c(k['cloudwego'], 'rps')} | {c(k['ours'], 'rps')} "
                  f"| {r_(m(k['ours'], 'rps'), m(k['cloudwego'], 'rps'))} "
                  f"| {c(k['cloudwego'], 'gen_us_per_req')} | {c(k['ours'], 'gen_us_per_req')} "
                  f"| {r_(m(k['ours'], 'gen_us_per_req'), m(k['cloudwego'], 'gen_us_per_req'))} "
                  f"| {c(k['cloudwego'], 'p99_us', 0)} | {c(k['ours'], 'p99_us', 0)} "
                  f"| {c(k['cloudwego'], 'cpu_us_per_req')} / {c(k['ours'], 'cpu_us_per_req')} |")
    md.append("")
    return md


def rpc_tables(path, outdir):
    """Kitex and Hertz, each on both libraries: ours ÷ cloudwego/netpoll per scenario."""
    rows = [r for r in csv.DictReader(open(path))]
    by = {}
    bad = {}
    for r in rows:
        key = (r["bench"], r["transport"], r["conns"], r["rate"], r["lib"])
        if r["status"] == "ok":
            by.setdefault(key, []).append(r)
        else:
            bad.setdefault(key, []).append(r["status"])

    def m(key, col):
        v = [float(r[col]) for r in by.get(key, []) if r.get(col)]
        return statistics.median(v) if v else None

    def c(key, col, digits=None):
        v = [float(r[col]) for r in by.get(key, []) if r.get(col)]
        if not v:
            return " / ".join(sorted(set(bad.get(key, [])))) or "—"
        out = fmt_num(statistics.median(v), digits)
        if len(v) > 1:
            out += f" ({fmt_num(min(v), digits)}–{fmt_num(max(v), digits)})"
        return out

    def r_(a, b):
        return fmt_ratio(ratio(a, b))

    md = ["## Kitex and Hertz on both libraries\n"]
    envp = os.path.join(outdir, "rpc-env.txt")
    if os.path.exists(envp):
        md.append("```\n" + open(envp).read().strip() + "\n```\n")
    md.append("The same framework source built twice: on cloudwego/netpoll v0.7.2, and with this library "
              "in its place (replace to a renamed copy). Server: GOMAXPROCS=1 on CPU 0; client "
              "(kitexclient, GOMAXPROCS=1, or wrk -t1) on CPU 1, so at saturation the client may set the "
              "pace (gen util near 1.0). Every reply checked byte for byte; a run with any error is "
              "shown by its status instead of figures. Ratio = ours ÷ cloudwego.\n")
    closed = sorted({(k[1], k[2]) for k in list(by) + list(bad) if k[0] == "kitex" and not k[3]},
                    key=lambda t: (TRANSPORTS.index(t[0]) if t[0] in TRANSPORTS else 9, int(t[1])))
    if closed:
        md.append("### Kitex thrift echo, 1 KiB, closed loop (calls/s at saturation)\n")
        md.append("Transports: default (a pooled connection per caller), mux (Kitex's mux transport), stream "
                  "(thrift streaming over gRPC: one bidirectional stream per caller, a call is one message "
                  "and its echo).\n")
        md.append("| transport | callers | calls/s cloudwego | calls/s ours | ratio | server µs/call cloudwego "
                  "| server µs/call ours | ratio | p99 µs cloudwego | p99 µs ours | gen util cloudwego / ours |")
        md.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for tr, n in closed:
            k = {lib: ("kitex", tr, n, "", lib) for lib in RPC_LIBS}
            md.append(f"| {tr} | {int(n):,} | {c(k['cloudwego'], 'rps')} | {c(k['ours'], 'rps')} "
                      f"| {r_(m(k['ours'], 'rps'), m(k['cloudwego'], 'rps'))} "
                      f"| {c(k['cloudwego'], 'cpu_us_per_req')} | {c(k['ours'], 'cpu_us_per_req')} "
                      f"| {r_(m(k['ours'], 'cpu_us_per_req'), m(k['cloudwego'], 'cpu_us_per_req'))} "
                      f"| {c(k['cloudwego'], 'p99_us', 0)} | {c(k['ours'], 'p99_us', 0)} "
                      f"| {c(k['cloudwego'], 'gen_util')} / {c(k['ours'], 'gen_util')} |")
        md.append("")
    fixed = sorted({(k[1], k[2], k[3]) for k in list(by) + list(bad) if k[0] == "kitex" and k[3]},
                   key=lambda t: (TRANSPORTS.index(t[0]) if t[0] in TRANSPORTS else 9, int(t[2])))
    dpath = os.path.join(outdir, "rpc-dropped.csv")
    # Each line: rep,name,rate,cap (the name may hold commas from older runs).
    dropped = sorted({(" ".join(f[1:-2]), f[-2], f[-1]) for f in
                      (line.strip().split(",") for line in open(dpath) if line.strip())}) \
        if os.path.exists(dpath) else []

    def dropped_lines(prefix):
        out = [f"- {name}: {int(rate):,}/s dropped, above 90% of the slower library's closed-loop "
               f"peak ({int(cap):,}/s)." for name, rate, cap in dropped if name.startswith(prefix)]
        return out + [""] if out else []

    def fixed_table(bench, unit):
        md.append(f"| transport | {unit} | offered /s | p50 / p99 / p99.9 µs cloudwego "
                  "| p50 / p99 / p99.9 µs ours | p99 ratio | server µs/req cloudwego | server µs/req ours "
                  "| ratio |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        for b, tr, n, rate in sorted({k[:4] for k in list(by) + list(bad) if k[0] == bench and k[3]},
                                     key=lambda t: (TRANSPORTS.index(t[1]) if t[1] in TRANSPORTS else 9, int(t[2]), int(t[3]))):
            k = {lib: (b, tr, n, rate, lib) for lib in RPC_LIBS}
            lat = {lib: " / ".join(fmt_num(m(k[lib], col), 0) for col in ("p50_us", "p99_us", "p999_us"))
                   if m(k[lib], "p99_us") is not None else c(k[lib], "p99_us") for lib in RPC_LIBS}
            md.append(f"| {tr} | {int(n):,} | {int(rate):,} | {lat['cloudwego']} | {lat['ours']} "
                      f"| {r_(m(k['ours'], 'p99_us'), m(k['cloudwego'], 'p99_us'))} "
                      f"| {c(k['cloudwego'], 'cpu_us_per_req')} | {c(k['ours'], 'cpu_us_per_req')} "
                      f"| {r_(m(k['ours'], 'cpu_us_per_req'), m(k['cloudwego'], 'cpu_us_per_req'))} |")
        md.append("")

    if fixed or any(d[0].startswith("kitex") for d in dropped):
        md.append("### Kitex thrift echo, 1 KiB, fixed rates (open loop)\n")
        md += dropped_lines("kitex")
        fixed_table("kitex", "callers")
    wrk_benches = ("hertz-get", "hertz-post")
    hfixed = {k[:4] for k in list(by) + list(bad) if k[0] in wrk_benches and k[3]}
    hz = sorted({(k[0], k[2]) for k in list(by) + list(bad) if k[0] in wrk_benches and not k[3]},
                key=lambda t: (t[0], int(t[1])))
    if hz:
        md.append("### Hertz, driven by wrk (closed loop, one wrk thread)\n")
        md.append("| request | connections | req/s cloudwego | req/s ours | ratio | server µs/req cloudwego "
                  "| server µs/req ours | ratio | p99 µs cloudwego | p99 µs ours | wrk util cloudwego / ours |")
        md.append("|---|---|---|---|---|---|---|---|---|---|---|")
        what = {"hertz-get": "GET / (13 B)", "hertz-post": "POST /echo 4 KiB"}
        for b, n in hz:
            k = {lib: (b, "http", n, "", lib) for lib in RPC_LIBS}
            md.append(f"| {what.get(b, b)} | {int(n):,} | {c(k['cloudwego'], 'rps')} | {c(k['ours'], 'rps')} "
                      f"| {r_(m(k['ours'], 'rps'), m(k['cloudwego'], 'rps'))} "
                      f"| {c(k['cloudwego'], 'cpu_us_per_req')} | {c(k['ours'], 'cpu_us_per_req')} "
                      f"| {r_(m(k['ours'], 'cpu_us_per_req'), m(k['cloudwego'], 'cpu_us_per_req'))} "
                      f"| {c(k['cloudwego'], 'p99_us', 0)} | {c(k['ours'], 'p99_us', 0)} "
                      f"| {c(k['cloudwego'], 'gen_util')} / {c(k['ours'], 'gen_util')} |")
        md.append("")
    if hfixed or any(d[0].startswith("hertz") and not d[0].startswith("hertz client") for d in dropped):
        md.append("### Hertz at fixed rates (open loop, hertzclient, one request at a time per connection)\n")
        md += [d for d in dropped_lines("hertz") if "hertz client" not in d]
        for b in ("hertz-get", "hertz-post"):
            if any(k[0] == b for k in hfixed):
                md.append(f"{'GET / (13 B)' if b == 'hertz-get' else 'POST /echo 4 KiB'}:\n")
                fixed_table(b, "connections")
    md += hertz_client_tables(by, bad, m, c, r_, dropped_lines)
    md += rpc_targets(by, m)
    other = [float(r["other_util"]) for r in rows if r.get("other_util")]
    if other:
        md.append(f"Other load during the RPC windows (CPU used by neither server nor client): median "
                  f"{statistics.median(other):.2f}, max {max(other):.2f}.\n")
    return md


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
