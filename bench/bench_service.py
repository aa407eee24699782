#!/usr/bin/env python3
"""End-to-end service benchmark on a real Kafka 3.9 (loopback), printed as
measured numbers (docs/BENCHMARKS.md records them with this command):

  1. one prompt, local: `ee-model generate` client mode on the encrypted
     model (encrypt ids, run blind, decrypt) - inference time and process wall;
  2. the same prompt through Kafka: ee-producer submit --wait against one
     ee-consumer - client latency (produce to final reply) and the worker's
     queue / prefill / decode times;
  3. throughput under load: ee-producer load with C jobs outstanding, worker
     max_batch 1 (one job at a time) vs 4 (continuous batching); then an
     open loop (--rate at 75% of the batch-4 throughput, --stream) against the
     batch-4 worker. Each run's per-job records and plots (ee-producer load
     --report) go to .cache/bench/service-<UTC time>/<run>/ (index.md there).

Nothing else should run on the machine meanwhile (2 cores).
Usage: bench_service.py --bin build/bin --model PLAIN.gguf [--reps 10]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = "127.0.0.1:9092"
PROMPT = "What is the capital of France? Answer in one sentence."
LOAD_PROMPTS = [
    "Name three primary colors.",
    "Write a haiku about the sea.",
    "Give me one tip for learning to cook.",
    "What is the capital of France? Answer in one sentence.",
    "Explain what a CPU cache is in two sentences.",
    "List four animals that live in the ocean.",
]


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr[-2000:]}")
    return r.stdout


def med(v):
    return statistics.median(v) if v else float("nan")


def start_worker(a, enc, max_batch, log):
    f = open(log, "w")
    p = subprocess.Popen([os.path.join(a.bin, "ee-consumer"), "--bootstrap", BOOT,
                          "--model", f"smollm2={enc}", "--class", "small,large",
                          "--threads", str(a.threads), "--max-batch", str(max_batch),
                          "--max-inflight", str(max(8, 2 * max_batch)),
                          "--metrics-port", "0", "--name", f"bench-b{max_batch}",
                          "--kafka", "session.timeout.ms=6000"], stdout=f, stderr=subprocess.STDOUT)
    end = time.time() + 60
    while time.time() < end:
        with open(log) as fh:
            if '"event":"partitions_assigned"' in fh.read():
                return p, f
        if p.poll() is not None:
            sys.exit(f"worker exited: {open(log).read()[-2000:]}")
        time.sleep(0.1)
    sys.exit("worker got no partitions in 60 s")


def stop_worker(p, f):
    p.terminate()
    p.wait(60)
    f.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/bin"))
    ap.add_argument("--model", default=os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--load-count", type=int, default=24)
    ap.add_argument("--load-concurrency", type=int, default=8)
    ap.add_argument("--load-stream", action="store_true",
                    help="throughput runs stream replies (time to first token; a record per token)")
    ap.add_argument("--report-dir", default=os.path.join(
        ROOT, ".cache/bench", time.strftime("service-%Y%m%dT%H%M%SZ", time.gmtime())),
        help="where the throughput runs' records and plots go")
    a = ap.parse_args()
    cache = os.path.join(ROOT, ".cache/bench-service")
    os.makedirs(cache, exist_ok=True)
    key = os.path.join(cache, "bench.eekey")
    enc = os.path.join(cache, "bench.enc.gguf")
    ee_model = os.path.join(a.bin, "ee-model")
    if not os.path.exists(key):
        run([ee_model, "keygen", "--out", key])
    if not os.path.exists(enc):
        run([ee_model, "encrypt", "--model", a.model, "--key", key, "--out", enc])
    started = False
    if subprocess.run(["bash", os.path.join(ROOT, "scripts/kafka.sh"), "status"],
                      capture_output=True).returncode != 0:
        run(["bash", os.path.join(ROOT, "scripts/kafka.sh"), "up"])
        started = True
    try:
        print(f"# service benchmark: {a.reps} reps, max_tokens {a.max_tokens}, worker threads "
              f"{a.threads}, Kafka 3.9 on loopback (1 node)")
        # 1. local (nothing else running)
        inf, wall = [], []
        out_tokens = None
        for _ in range(a.reps):
            t0 = time.time()
            o = json.loads(run([ee_model, "generate", "--model", enc, "--key", key,
                                "--plain-model", a.model, "--chat", "--prompt", PROMPT,
                                "--max-tokens", str(a.max_tokens), "--threads", str(a.threads),
                                "--warmup", "--json"]))
            wall.append((time.time() - t0) * 1e3)
            inf.append(o["timings"]["prefill_ms"] + o["timings"]["decode_ms"])
            out_tokens = len(o["tokens"])
        print(f"local   (ee-model generate, client mode): inference {med(inf):.1f} ms "
              f"(prefill+decode, {out_tokens} tokens), process wall {med(wall):.0f} ms "
              f"(incl. model load)")
        # 2. through Kafka, one job at a time
        prod = os.path.join(a.bin, "ee-producer")
        p, f = start_worker(a, enc, 4, os.path.join(cache, "worker-latency.log"))
        try:
            # an idle worker (assigned, no jobs): CPU over 5 s and resident memory
            time.sleep(1)
            tick = os.sysconf("SC_CLK_TCK")

            def cpu_ticks():
                with open(f"/proc/{p.pid}/stat") as fh:
                    st = fh.read().rsplit(")", 1)[1].split()
                return int(st[11]) + int(st[12])  # utime + stime
            c0 = cpu_ticks()
            time.sleep(5)
            idle = (cpu_ticks() - c0) / tick / 5 * 100
            with open(f"/proc/{p.pid}/status") as fh:
                rss = [ln for ln in fh if ln.startswith("VmRSS")][0].split()[1]
            print(f"worker  idle: {idle:.1f}% of one core over 5 s; RSS {int(rss) / 1024:.0f} MiB "
                  f"(the f32 encrypted model is mapped and faulted in)")
            lat, q, pf, dc, walls = [], [], [], [], []
            for i in range(a.reps + 1):
                t0 = time.time()
                out = run([prod, "submit", "--bootstrap", BOOT, "--model", "smollm2", "--key", key,
                           "--plain-model", a.model, "--chat", "--prompt", PROMPT,
                           "--max-tokens", str(a.max_tokens), "--reply-to", "ee.replies.bench",
                           "--wait", "--json", "--timeout-ms", "60000"])
                w = (time.time() - t0) * 1e3
                res = [json.loads(x) for x in out.splitlines() if '"status"' in x][-1]
                if res["status"] != "ok":
                    sys.exit(f"job failed: {res}")
                if i == 0:
                    continue  # first job pays the worker's first-fetch and page faults
                walls.append(w)
                lat.append(res["latency_ms"])
                q.append(res["timings"]["queue_ms"])
                pf.append(res["timings"]["prefill_ms"])
                dc.append(res["timings"]["decode_ms"])
            inf_k = med(pf) + med(dc)
            print(f"kafka   (ee-producer submit --wait):     client latency {med(lat):.1f} ms "
                  f"(min {min(lat):.1f}, max {max(lat):.1f}); worker queue {med(q):.1f} ms, "
                  f"inference {inf_k:.1f} ms; process wall {med(walls):.0f} ms")
            print(f"overhead of the service vs local inference: {med(lat) - med(inf):+.1f} ms "
                  f"per job ({med(lat) / med(inf):.2f}x) - a fresh client process per job pays "
                  f"its Kafka connection and idempotent-producer id in the queue time")
            # the same prompt from one warm client, one job at a time
            r = subprocess.run([prod, "load", "--bootstrap", BOOT, "--model", "smollm2",
                                "--key", key, "--plain-model", a.model, "--chat", "--prompt",
                                PROMPT, "--count", str(a.reps), "--concurrency", "1",
                                "--max-tokens", str(a.max_tokens), "--reply-to",
                                "ee.replies.bench", "--json"], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"load failed: {r.stderr[-2000:]}")
            o = json.loads(r.stdout.strip().splitlines()[-1])
            wm = o["worker_mean_ms"]
            print(f"kafka   (one warm client, 1 job at a time): client latency p50 "
                  f"{o['latency_ms']['p50']:.1f} ms (max {o['latency_ms']['max']:.1f}); worker "
                  f"mean queue {wm['queue']:.1f} ms, inference {wm['prefill'] + wm['decode']:.1f} ms;"
                  f" overhead vs local inference {o['latency_ms']['p50'] - med(inf):+.1f} ms")
        finally:
            stop_worker(p, f)
        # 3. throughput: batch 1 vs 4
        pf_path = os.path.join(cache, "prompts.txt")
        with open(pf_path, "w") as fh:
            fh.write("\n".join(LOAD_PROMPTS) + "\n")
        os.makedirs(a.report_dir, exist_ok=True)
        reports = []

        def load(name, extra):
            """One ee-producer load run with its report in REPORT_DIR/name."""
            rdir = os.path.join(a.report_dir, name)
            r = subprocess.run([prod, "load", "--bootstrap", BOOT, "--model", "smollm2",
                                "--key", key, "--plain-model", a.model, "--chat",
                                "--prompts-file", pf_path, "--concurrency", str(a.load_concurrency),
                                "--max-tokens", str(a.max_tokens), "--reply-to", "ee.replies.bench",
                                "--json", "--report", rdir] + extra,
                               capture_output=True, text=True,
                               env={**os.environ, "EE_PYTHON": sys.executable})
            # 2 (error replies) and 3 (timeouts) are results: the summary counts them
            if r.returncode not in (0, 2, 3):
                sys.exit(f"load failed (exit {r.returncode}; records in {rdir}): "
                         f"{r.stdout[-1000:]} {r.stderr[-2000:]}")
            reports.append(os.path.join(rdir, "index.md"))
            o = json.loads(r.stdout.strip().splitlines()[-1])
            if r.returncode:
                print(f"WARNING {name}: not every job ended ok: {o['jobs']}")
            return o

        for mb in (1, 4):
            p, f = start_worker(a, enc, mb, os.path.join(cache, f"worker-b{mb}.log"))
            try:
                o = load(f"max_batch-{mb}", ["--count", str(a.load_count)] +
                         (["--stream"] if a.load_stream else []))
                print(f"load    max_batch {mb}: {json.dumps(o, sort_keys=True)}")
                if mb == 4:
                    # open loop at 75% of what the closed loop reached, streamed: latency
                    # from the intended send (no coordinated omission) and first token
                    rate = max(0.05, round(0.75 * o["throughput_jobs_s"], 2))
                    n_open = max(8, min(2 * a.load_count, int(rate * 30)))  # about 30 s
                    o = load("max_batch-4-open", ["--count", str(n_open), "--rate", str(rate),
                                                  "--stream"])
                    print(f"load    max_batch 4, open loop at {rate} jobs/s (75% of the closed "
                          f"loop's), streamed: {json.dumps(o, sort_keys=True)}")
            finally:
                stop_worker(p, f)
        for rp in reports:
            print(f"report  {os.path.relpath(rp, ROOT)} (latency.png, latency_cdf.png, "
                  f"throughput.png, workers.png, records.jsonl beside it)")
    finally:
        if started:
            run(["bash", os.path.join(ROOT, "scripts/kafka.sh"), "down"])


if __name__ == "__main__":
    main()
