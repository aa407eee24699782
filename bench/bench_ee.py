#!/usr/bin/env python3
"""Equivariant-encryption overhead in our engine (make bench-ee).

Same run, same engine, same precision: a plaintext f32 copy of the model
(`ee-model convert --type f32`) against the encrypted f32 model
(`ee-model encrypt --type f32`), pp512 and tg128 at 1 and 2 threads, each a
fresh `ee-model generate --json --warmup` process, the two files alternated
rep by rep so drift on this shared VM hits both alike. Prints the ratio
encrypted/plaintext of the time per token (goal <= 1.01), the one-time
encryption time, and the client-side cost (bench-ee-client)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd[:4])} ...\n{r.stderr[-800:]}")
    return r


def gen(binary, model, ids, max_tokens, threads):
    r = run([binary, "generate", "--model", model, "--tokens", ",".join(map(str, ids)),
             "--max-tokens", str(max_tokens), "--threads", str(threads), "--ignore-eos",
             "--warmup", "--json"])
    return json.loads(r.stdout)["timings"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    ee = os.path.join(args.bin, "ee-model")
    with tempfile.TemporaryDirectory(prefix="bench-ee-") as d:
        key, enc, plain = (os.path.join(d, n) for n in ("k.eekey", "enc.gguf", "plain_f32.gguf"))
        run([ee, "keygen", "--out", key])
        t0 = time.time()
        r = run([ee, "encrypt", "--model", args.model, "--key", key, "--out", enc, "--type", "f32"])
        enc_s = time.time() - t0
        print(f"one-time encryption (f32, wall incl. load): {enc_s:.1f} s")
        print("  " + r.stderr.strip())
        run([ee, "convert", "--model", args.model, "--type", "f32", "--out", plain])
        pp_ids = [(i * 7919) % 49152 for i in range(512)]
        tg_ids = [(i * 104729) % 49152 for i in range(38)]
        print(f"\n== our engine, plaintext f32 vs encrypted f32, median of {args.reps} "
              f"(alternating runs)")
        print(f"{'threads':>7} {'pp512 plain':>12} {'pp512 enc':>10} {'ratio t':>8} "
              f"{'tg128 plain':>12} {'tg128 enc':>10} {'ratio t':>8}")
        for t in (int(x) for x in args.threads.split(",")):
            pp = {"plain": [], "enc": []}
            tg = {"plain": [], "enc": []}
            for _ in range(args.reps):
                for name, path in (("plain", plain), ("enc", enc)):
                    pp[name].append(gen(ee, path, pp_ids, 1, t)["prefill_tok_s"])
                    tg[name].append(gen(ee, path, tg_ids, 128, t)["decode_tok_s"])
            m = {k: statistics.median(v) for k, v in pp.items()}
            n = {k: statistics.median(v) for k, v in tg.items()}
            # ratio of time per token: encrypted / plaintext (1.00 = no overhead)
            print(f"{t:>7} {m['plain']:>12.1f} {m['enc']:>10.1f} {m['plain'] / m['enc']:>8.3f} "
                  f"{n['plain']:>12.1f} {n['enc']:>10.1f} {n['plain'] / n['enc']:>8.3f}")
        print()
        client = os.path.join(args.bin, "bench-ee-client")
        print(run([client, key, args.model]).stdout, end="")


if __name__ == "__main__":
    main()
