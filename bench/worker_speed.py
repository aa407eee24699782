#!/usr/bin/env python3
"""The worker against the CLI, on a real Kafka 3.9 (loopback): the three
service goals of issue 11, measured in one run.

  decode     one job at a time through Kafka (ee-producer load
             --concurrency 1) vs `ee-model generate` client mode on the same
             encrypted file, prompt and threads: decode tok/s (worker: the
             decode_ms and tokens it reports per job; CLI: timings.decode_tok_s)
  overhead   a warm client, one job at a time, short answer: client latency
             minus the worker's prefill+decode, p50 over the jobs (the
             first job is dropped: first fetch, page faults)
  batching   generated tok/s with 8 jobs outstanding vs 1, worker --max-batch 8

for each --models entry (TYPE=ENC.gguf, encrypted with --key; a missing key
or file is made first, with `ee-model keygen` / `encrypt --type TYPE`). The client
and the worker share the machine; nothing else should run.

Usage: worker_speed.py --bin build/bin --model PLAIN.gguf --key K.eekey
       --models f32=ENC_F32.gguf[,q8_0=ENC_Q8.gguf] [--threads 2] [--reps 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = "127.0.0.1:9092"
LONG = "Write a long story about a dragon who learns to cook. Use at least 300 words."
SHORT = "What is the capital of France? Answer in one sentence."


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])}: exit {r.returncode}: {r.stderr[-1500:]}")
    return r.stdout


def records(path):
    rs = [json.loads(x) for x in open(path)]
    return [r for r in rs[1:] if r.get("status") == "ok"]


class Worker:
    def __init__(self, a, enc, max_batch, log):
        self.f = open(log, "w")
        self.p = subprocess.Popen(
            [os.path.join(a.bin, "ee-consumer"), "--bootstrap", BOOT, "--model", f"smollm2={enc}",
             "--class", "small,large", "--threads", str(a.threads), "--max-batch", str(max_batch),
             "--max-inflight", "16", "--metrics-port", "0", "--name", f"ws-b{max_batch}",
             "--kafka", "session.timeout.ms=6000"], stdout=self.f, stderr=subprocess.STDOUT)
        end = time.time() + 60
        while time.time() < end:
            if "partitions_assigned" in open(log).read():
                time.sleep(1)
                return
            time.sleep(0.2)
        sys.exit(f"worker did not get partitions: see {log}")

    def stop(self):
        self.p.terminate()
        self.p.wait(30)
        self.f.close()


def load(a, prompt, count, conc, max_tokens, rec):
    run([os.path.join(a.bin, "ee-producer"), "load", "--bootstrap", BOOT, "--model", "smollm2",
         "--key", a.key, "--plain-model", a.model, "--chat", "--prompt", prompt, "--count",
         str(count), "--concurrency", str(conc), "--max-tokens", str(max_tokens), "--reply-to",
         "ee.replies.ws", "--records", rec, "--no-progress", "--json"])
    rs = records(rec)
    if len(rs) != count:
        sys.exit(f"load: {len(rs)} of {count} jobs ok ({rec})")
    return rs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/bin"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    models = [m.split("=", 1) for m in a.models.split(",")]
    ee = os.path.join(a.bin, "ee-model")
    if not os.path.exists(a.key):  # a fresh machine: make the key and files here
        os.makedirs(os.path.dirname(os.path.abspath(a.key)), exist_ok=True)
        run([ee, "keygen", "--out", a.key])
    for name, enc in models:
        if not os.path.exists(enc):
            print(f"encrypting {a.model} -> {enc} ({name})", flush=True)
            run([ee, "encrypt", "--model", a.model, "--key", a.key, "--type", name, "--out", enc])
    tmp = tempfile.mkdtemp(prefix="ee-ws-")
    started = subprocess.run(["bash", os.path.join(ROOT, "scripts/kafka.sh"), "status"],
                             capture_output=True).returncode != 0
    if started:
        run(["bash", os.path.join(ROOT, "scripts/kafka.sh"), "up"])
    out = []
    try:
        for name, enc in models:
            res = {"type": name}
            w = Worker(a, enc, 8, os.path.join(tmp, f"worker-{name}.log"))
            try:
                load(a, SHORT, 2, 1, 8, os.path.join(tmp, "warm.jsonl"))  # warm-up
                cli, wrk = [], []
                for i in range(a.reps):  # alternate CLI and worker runs
                    o = json.loads(run([os.path.join(a.bin, "ee-model"), "generate", "--model", enc,
                                        "--key", a.key, "--plain-model", a.model, "--chat",
                                        "--prompt", LONG, "--max-tokens", "128", "--ignore-eos",
                                        "--threads", str(a.threads), "--warmup", "--json"]))
                    cli.append(o["timings"]["decode_tok_s"])
                    r = load(a, LONG, 1, 1, 128, os.path.join(tmp, f"dec{i}.jsonl"))[0]
                    wrk.append((r["completion_tokens"] - 1) / r["decode_ms"] * 1e3)
                res["cli_decode"], res["worker_decode"] = statistics.median(cli), statistics.median(wrk)
                rs = load(a, SHORT, 21, 1, 64, os.path.join(tmp, "ovh.jsonl"))[1:]
                ovh = [r["latency_ms"] - r["prefill_ms"] - r["decode_ms"] for r in rs]
                res["overhead_p50"], res["overhead_max"] = statistics.median(ovh), max(ovh)
                res["latency_p50"] = statistics.median(r["latency_ms"] for r in rs)
                res["queue_p50"] = statistics.median(r["queue_ms"] for r in rs)

                def tok_s(rs):
                    t0 = min(r["sent_ms"] for r in rs)
                    t1 = max(r["final_ms"] for r in rs)
                    return sum(r["completion_tokens"] for r in rs) / (t1 - t0) * 1e3
                res["batch1_tok_s"] = tok_s(load(a, LONG, 6, 1, 64, os.path.join(tmp, "b1.jsonl")))
                res["batch8_tok_s"] = tok_s(load(a, LONG, 24, 8, 64, os.path.join(tmp, "b8.jsonl")))
            finally:
                w.stop()
            out.append(res)
            print(f"{name}: decode CLI {res['cli_decode']:.1f} vs worker {res['worker_decode']:.1f} "
                  f"tok/s ({res['worker_decode'] / res['cli_decode']:.3f}x); overhead p50 "
                  f"{res['overhead_p50']:.1f} ms (max {res['overhead_max']:.1f}, queue p50 "
                  f"{res['queue_p50']:.1f}, latency p50 {res['latency_p50']:.1f}); batching "
                  f"{res['batch1_tok_s']:.1f} -> {res['batch8_tok_s']:.1f} tok/s "
                  f"({res['batch8_tok_s'] / res['batch1_tok_s']:.2f}x)", flush=True)
    finally:
        if started:
            subprocess.run(["bash", os.path.join(ROOT, "scripts/kafka.sh"), "down"],
                           capture_output=True)
    print()
    print("| model | CLI decode tok/s | worker decode tok/s | ratio | overhead p50 / max ms | "
          "1 job tok/s | 8 jobs tok/s | gain |")
    print("|---|---|---|---|---|---|---|---|")
    for r in out:
        print(f"| {r['type']} | {r['cli_decode']:.1f} | {r['worker_decode']:.1f} | "
              f"{r['worker_decode'] / r['cli_decode']:.3f} | {r['overhead_p50']:.1f} / "
              f"{r['overhead_max']:.1f} | {r['batch1_tok_s']:.1f} | {r['batch8_tok_s']:.1f} | "
              f"{r['batch8_tok_s'] / r['batch1_tok_s']:.2f}x |")


if __name__ == "__main__":
    main()
