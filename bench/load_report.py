#!/usr/bin/env python3
"""Plots of one `ee-producer load` run, from its records (JSON Lines, the
--records file) and its summary.json. `ee-producer load --report DIR` runs
this itself; by hand:

  .cache/venv/bin/python bench/load_report.py --records DIR/records.jsonl \
      [--summary DIR/summary.json] --out DIR

Writes into --out: latency.png (per-job latency against send time),
latency_cdf.png (latency distribution), throughput.png (jobs/s and tok/s
per 1 s bucket), workers.png (jobs per worker) and index.md. Needs
matplotlib (tests/ref/requirements.txt; `make venv`).
"""
import argparse
import json
import math
import os
import sys

DPI = 100


def read_records(path):
    """The run line and the job lines; a torn last line (crash) is skipped."""
    run, jobs = None, []
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                o = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"load_report: {path}:{n}: not JSON: {e}")
            if o.get("record") == "run":
                run = o
            elif o.get("record") == "job":
                jobs.append(o)
    if run is None:
        sys.exit(f"load_report: {path}: no run record (first line); is it an "
                 f"`ee-producer load --records` file?")
    return run, jobs


def percentile(sorted_v, q):
    """Nearest rank, as ee-producer computes it."""
    if not sorted_v:
        return None
    rank = max(1, min(len(sorted_v), math.ceil(q * len(sorted_v))))
    return sorted_v[rank - 1]


def buckets(times_ms, weights, width_ms=1000.0):
    """Sums of weights per [k*width, (k+1)*width) bucket of time, from 0 to
    the last time; returns (bucket starts in s, sums)."""
    if not times_ms:
        return [], []
    n = int(max(times_ms) // width_ms) + 1
    sums = [0.0] * n
    for t, w in zip(times_ms, weights):
        sums[int(t // width_ms)] += w
    return [k * width_ms / 1000.0 for k in range(n)], sums


def summarize(run, jobs):
    ok = [j for j in jobs if j["status"] == "ok"]
    lat = sorted(j["latency_ms"] for j in ok if j["latency_ms"] is not None)
    return {"jobs": {"total": run["count"], "ok": len(ok), "not_ok": len(jobs) - len(ok)},
            "latency_ms": {f"p{int(q * 100)}": percentile(lat, q) for q in (0.5, 0.9, 0.99)},
            "latency_from": run["latency_from"]}


def plot_latency(plt, run, jobs, path):
    open_loop = run["loop"] == "open"
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ok = [j for j in jobs if j["status"] == "ok" and j["latency_ms"] is not None]
    bad = [j for j in jobs if j["status"] != "ok" and j["sent_ms"] is not None]
    ax.scatter([j["intended_ms"] / 1e3 for j in ok], [j["latency_ms"] for j in ok], s=14,
               label="latency from intended send" if open_loop else "latency (send to final reply)")
    if open_loop:
        ax.scatter([j["sent_ms"] / 1e3 for j in ok], [j["service_ms"] for j in ok], s=10,
                   marker="^", alpha=0.7, label="service time from actual send")
    ft = [j for j in ok if j["first_token_ms"] is not None]
    if ft:
        ax.scatter([j["sent_ms"] / 1e3 for j in ft], [j["first_token_ms"] - j["sent_ms"] for j in ft],
                   s=10, marker="s", alpha=0.7, label="first token from actual send")
    if bad:
        ax.scatter([j["sent_ms"] / 1e3 for j in bad],
                   [(j["final_ms"] or j["sent_ms"]) - j["sent_ms"] for j in bad], s=30,
                   marker="x", color="red", label="not ok (" + ", ".join(
                       sorted({j["status"] for j in bad})) + ")")
    ax.set_xlabel("send time (s since the run start" + (", intended" if open_loop else "") + ")")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.set_title("Per-job latency over the run")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_cdf(plt, run, jobs, path):
    open_loop = run["loop"] == "open"
    ok = [j for j in jobs if j["status"] == "ok"]
    series = [("latency from intended send" if open_loop else "latency (send to final reply)",
               sorted(j["latency_ms"] for j in ok if j["latency_ms"] is not None))]
    if open_loop:
        series.append(("service time from actual send",
                       sorted(j["service_ms"] for j in ok if j["service_ms"] is not None)))
    ft = sorted(j["first_token_ms"] - j["sent_ms"] for j in ok if j["first_token_ms"] is not None)
    if ft:
        series.append(("first token from actual send", ft))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for label, v in series:
        if not v:
            continue
        y = [100.0 * (i + 1) / len(v) for i in range(len(v))]
        p50, p99 = percentile(v, 0.5), percentile(v, 0.99)
        ax.step(v, y, where="post", label=f"{label}: p50 {p50:.0f}, p99 {p99:.0f} ms")
    for q in (50, 90, 99):
        ax.axhline(q, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("ms")
    ax.set_ylabel("% of ok jobs at or below")
    ax.set_ylim(0, 101)
    ax.set_xlim(left=0)
    ax.set_title(f"Latency distribution ({len(ok)} ok jobs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_throughput(plt, run, jobs, path):
    ok = [j for j in jobs if j["status"] == "ok" and j["final_ms"] is not None]
    t = [j["final_ms"] for j in ok]
    xs, jobs_s = buckets(t, [1] * len(t))
    _, tok_s = buckets(t, [j["completion_tokens"] or 0 for j in ok])
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.bar(xs, jobs_s, width=0.9, align="edge", color="tab:blue", alpha=0.6,
           label="jobs/s (finished in the second)")
    ax.set_xlabel("s since the run start (1 s buckets, by final reply)")
    ax.set_ylabel("jobs/s", color="tab:blue")
    ax2 = ax.twinx()
    ax2.step([x + 0.5 for x in xs], tok_s, where="mid", color="tab:orange",
             label="generated tokens/s")
    ax2.set_ylabel("generated tokens/s", color="tab:orange")
    ax2.set_ylim(bottom=0)
    ax.set_title("Throughput over the run")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_workers(plt, jobs, path):
    names = sorted({j["worker"] or "(none)" for j in jobs})
    okc = [sum(1 for j in jobs if (j["worker"] or "(none)") == n and j["status"] == "ok")
           for n in names]
    badc = [sum(1 for j in jobs if (j["worker"] or "(none)") == n and j["status"] != "ok")
            for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(names, okc, color="tab:green", label="ok")
    if any(badc):
        ax.bar(names, badc, bottom=okc, color="tab:red", label="not ok")
    for i, (a, b) in enumerate(zip(okc, badc)):
        ax.text(i, a + b, str(a + b), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("jobs")
    ax.set_title("Jobs per worker (\"(none)\": no reply)")
    ax.set_ylim(0, max(a + b for a, b in zip(okc, badc)) * 1.15 + 0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.1f}{unit}"


def write_index(out, records, run, jobs, summary):
    s = summary
    lat = s.get("latency_ms") or {}
    open_loop = run["loop"] == "open"
    lines = [f"# Load test {run['run']}", "",
             f"{run['count']} jobs, {run['loop']} loop "
             f"(concurrency {run['concurrency'] or 'unlimited'}, rate "
             f"{str(run['rate']) + ' jobs/s' if run['rate'] else 'unlimited'}), max_tokens "
             f"{run['max_tokens']}, {run['prompts']} prompt(s)"
             f"{', streamed' if run['stream'] else ''}; started at epoch ms "
             f"{run['start_epoch_ms']}.", "",
             "| | |", "|---|---|",
             f"| jobs | {json.dumps(s.get('jobs'))} |"]
    if "throughput_jobs_s" in s:
        lines.append(f"| throughput | {s['throughput_jobs_s']:.2f} jobs/s, {s['tokens_s']:.1f} "
                     f"generated tokens/s over {s['wall_ms'] / 1e3:.1f} s |")
    lines.append(f"| latency ms ({'from the intended send' if open_loop else 'send to final reply'})"
                 f" | p50 {fmt(lat.get('p50'))}, p90 {fmt(lat.get('p90'))}, "
                 f"p99 {fmt(lat.get('p99'))} |")
    for key, label in (("service_ms", "service ms (from the actual send)"),
                       ("first_token_ms", "first token ms (from the actual send)")):
        d = s.get(key)
        if d and (open_loop or key != "service_ms"):
            lines.append(f"| {label} | p50 {fmt(d.get('p50'))}, p90 {fmt(d.get('p90'))}, "
                         f"p99 {fmt(d.get('p99'))} |")
    if "worker_mean_ms" in s:
        w = s["worker_mean_ms"]
        lines.append(f"| worker mean ms | queue {w['queue']:.1f}, prefill {w['prefill']:.1f}, "
                     f"decode {w['decode']:.1f} |")
    lines += ["",
              "Open loop latency is measured from each job's intended send time "
              "(start + i/rate), as wrk2 does, so a stall that delays sends is counted "
              "(no coordinated omission); the service time is from the actual send."
              if open_loop else
              "Closed loop: latency is from the actual send (produce call) to the final reply.",
              "", "![latency over time](latency.png)", "",
              "![latency distribution](latency_cdf.png)", "",
              "![throughput](throughput.png)", "", "![jobs per worker](workers.png)", "",
              f"Data: `{os.path.relpath(records, out)}` (one line per job), `summary.json`.", ""]
    with open(os.path.join(out, "index.md"), "w") as fh:
        fh.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", required=True)
    ap.add_argument("--summary", help="summary.json of the run (default: computed from records)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit(f"load_report: matplotlib is not installed for {sys.executable} "
                 f"(make venv installs it from tests/ref/requirements.txt)")
    run, jobs = read_records(a.records)
    summary = summarize(run, jobs)
    if a.summary:
        with open(a.summary) as fh:
            summary = json.load(fh)
    os.makedirs(a.out, exist_ok=True)
    plot_latency(plt, run, jobs, os.path.join(a.out, "latency.png"))
    plot_cdf(plt, run, jobs, os.path.join(a.out, "latency_cdf.png"))
    plot_throughput(plt, run, jobs, os.path.join(a.out, "throughput.png"))
    plot_workers(plt, jobs, os.path.join(a.out, "workers.png"))
    write_index(a.out, a.records, run, jobs, summary)
    print(f"load report: {os.path.join(a.out, 'index.md')} (plots latency.png, latency_cdf.png, "
          f"throughput.png, workers.png)")


if __name__ == "__main__":
    main()
