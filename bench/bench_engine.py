#!/usr/bin/env python3
"""Benchmark our engine (ee-model) against llama.cpp (llama-cpp-python).

    bench_engine.py --model M.gguf --bin build/bin/ee-model [--reps 3] [--threads 1,2]

Tests follow llama-bench: pp512 = one 512-token prompt in one batch from an
empty cache; tg128 = 128 single-token decode steps. Each is run on the given
GGUF file and on an F32 copy of it, at each thread count, for both engines,
`--reps` times; the median is reported. Every measurement runs in a child
process so its peak RSS (os.wait4) is its own. See bench/README.md.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))

N_PP, N_TG = 512, 128

# Prompt text: pp512 uses its tokens repeated up to 512 ids; tg128 uses the
# chat-formatted SHORT_PROMPT. Token content does not affect speed.
LONG_TEXT = (
    "The history of astronomy is long and rich. Ancient civilizations tracked the "
    "motions of the Sun, the Moon and the planets, built calendars around them, and "
    "tried to explain why the sky changes with the seasons. Later, telescopes revealed "
    "moons around Jupiter, phases of Venus and countless stars in the Milky Way. In "
    "the twentieth century astronomers measured the expansion of the universe, found "
    "the cosmic microwave background and began to study planets around other stars. "
)
SHORT_PROMPT = "Write a story about a lighthouse keeper."


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- machine info
def machine_info():
    model, flags = "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "model name" and model == "?":
                    model = v.strip()
                elif k == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    lines = [
        f"CPU: {model}; {os.cpu_count()} logical CPUs, {len(os.sched_getaffinity(0))} usable",
        f"AVX-512F: {'yes' if 'avx512f' in flags else 'no'}; AVX2: {'yes' if 'avx2' in flags else 'no'}; "
        f"AVX512_BF16: {'yes' if 'avx512_bf16' in flags else 'no'}",
        "env: " + ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in
                            ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")),
        f"kernel: {platform.release()}; python {platform.python_version()}",
    ]
    return lines


def other_cpu_load(seconds=1.0):
    """CPUs' worth of busy time over `seconds` while this script sleeps:
    above IDLE_CPUS another process competes for the cores and the numbers
    (2-thread ones above all) are unreliable."""
    t0, b0 = cpu_snapshot()
    time.sleep(seconds)
    t1, b1 = cpu_snapshot()
    return len(os.sched_getaffinity(0)) * (b1 - b0) / max(1, t1 - t0)


IDLE_CPUS = 0.15          # background load (in CPUs) still counted as idle


def wait_idle(limit):
    """Sample the background load until it is below IDLE_CPUS or `limit`
    seconds have passed; return the last sample."""
    t0 = time.time()
    while True:
        busy = other_cpu_load(1.0)
        if busy <= IDLE_CPUS or time.time() - t0 >= limit:
            return busy
        log(f"  waiting for an idle machine (other processes use {busy:.2f} CPUs)")


# ---------------------------------------------------------------- tokens
def bench_tokens(model):
    """512 prompt ids for pp, and a short chat prompt for tg (hf_tok oracle)."""
    from hf_tok import load_tokenizer, chat_prompt
    tok = load_tokenizer(model)
    long_ids = tok.encode(LONG_TEXT).ids
    pp = (long_ids * (N_PP // len(long_ids) + 1))[:N_PP]
    tg = tok.encode(chat_prompt(SHORT_PROMPT)).ids
    return pp, tg


# ---------------------------------------------------------------- child runs
# Peak RSS of a child: ru_maxrss survives execve and starts from the forking
# process's RSS, so a child forked straight from this (large) Python process
# would report our RSS. A minimal `python -S` wrapper forks the real command
# from a small address space, reaps it with os.wait4 and writes its ru_maxrss
# (KiB); the floor this adds is a few MB.
RSS_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{ru.ru_maxrss} {ru.ru_utime + ru.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status) & 255)
"""


def cpu_snapshot():
    """(total, busy) jiffies summed over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), sum(v) - v[3] - v[4]            # minus idle and iowait


def run_child(cmd):
    """Run cmd. Returns dict rc, out, err, rss (peak RSS MB of cmd alone),
    wall (s) and bg: CPUs' worth of time other processes used meanwhile
    (system busy time minus the child's own user+system time)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as ru:
        s0, t0 = cpu_snapshot(), time.perf_counter()
        rc = subprocess.run([sys.executable, "-S", "-c", RSS_WRAPPER, ru.name] + cmd,
                            stdout=out, stderr=err).returncode
        s1, wall = cpu_snapshot(), time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        fields = ru.read().split()
        rss, cpu = (int(fields[0]) / 1024.0, float(fields[1])) if fields else (float("nan"), 0.0)
        ncpu = len(os.sched_getaffinity(0))
        busy_s = (s1[1] - s0[1]) / max(1, s1[0] - s0[0]) * ncpu * wall
        return dict(rc=rc, out=out.read().decode("utf-8", "replace"),
                    err=err.read().decode("utf-8", "replace"), rss=rss, wall=wall,
                    bg=max(0.0, busy_s - cpu) / wall)


# ---------------------------------------------------------------- our engine
def ours_run(binary, model, ids, max_tokens, threads):
    cmd = [binary, "generate", "--model", model, "--tokens", ",".join(map(str, ids)),
           "--max-tokens", str(max_tokens), "--threads", str(threads), "--ignore-eos",
           "--warmup", "--json"]
    c = run_child(cmd)
    if c["rc"] != 0:
        raise RuntimeError(f"ee-model exited {c['rc']}: {c['err'].strip()[-400:]}")
    return json.loads(c["out"][c["out"].index("{"):]), c


def bench_ours(binary, model, pp_ids, tg_ids, threads, reps):
    """Each rep is a fresh process that runs one untimed warm-up forward
    (--warmup, as llama-bench and the llama.cpp half here do). pp: 512-token
    prompt, --max-tokens 1, prefill_tok_s. tg: short prompt, --max-tokens 128
    --ignore-eos, decode_tok_s."""
    pp, tg, rss_pp, rss_tg, bg = [], [], 0.0, 0.0, 0.0
    for _ in range(reps):
        r, c = ours_run(binary, model, pp_ids, 1, threads)
        t = r["timings"]
        pp.append(t.get("prefill_tok_s") or N_PP * 1000.0 / t["prefill_ms"])
        rss_pp, bg = max(rss_pp, c["rss"]), max(bg, c["bg"])
        r, c = ours_run(binary, model, tg_ids, N_TG, threads)
        if len(r["tokens"]) != N_TG:
            log(f"  warning: ours generated {len(r['tokens'])} tokens, not {N_TG} "
                f"(finish_reason={r.get('finish_reason')})")
        tg.append(r["timings"]["decode_tok_s"])
        rss_tg, bg = max(rss_tg, c["rss"]), max(bg, c["bg"])
    return dict(pp=pp, tg=tg, rss_pp=rss_pp, rss_tg=rss_tg, bg=bg)


# ---------------------------------------------------------------- llama.cpp
def llama_worker(args):
    """Child process: load the model, one warmup run, then `reps` timed runs
    of one test. Prints JSON {tok_s: [...], wall_tok_s: [...]} on stdout.

    tok_s is llama.cpp's own llama_perf_context counter (time inside
    llama_decode up to llama_synchronize, as llama-bench's timer covers, no
    Python overhead); wall_tok_s is the Python wall clock around the eval
    calls, for reference (about 1% lower for tg)."""
    import numpy as np
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "tests", "ref"))
    import llamacpp_compat
    llamacpp_compat.no_extra_buffer_types()  # AMX/repack segfault on quantized files
    import llama_cpp
    from llama_cpp import Llama
    ids = json.loads(args.ids)
    llm = Llama(args.model, n_threads=args.threads, n_threads_batch=args.threads,
                n_ctx=1024, n_batch=512, n_ubatch=512, logits_all=False,
                flash_attn=args.flash_attn, verbose=False)
    ctx = llm._ctx.ctx
    n_vocab = llm.n_vocab()

    def last_argmax():
        p = llama_cpp.llama_get_logits_ith(ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(p, shape=(n_vocab,))))

    def one(test):
        llm.reset()                              # clears the KV cache on next eval
        if test == "pp":
            llama_cpp.llama_perf_context_reset(ctx)
            t0 = time.perf_counter()
            llm.eval(ids)                        # one batch of 512 (n_batch = n_ubatch = 512)
            llama_cpp.llama_synchronize(ctx)
            dt = time.perf_counter() - t0
            perf = llama_cpp.llama_perf_context(ctx)
            return perf.n_p_eval * 1000.0 / perf.t_p_eval_ms, len(ids) / dt
        llm.eval(ids)                            # short prompt, not timed
        nxt = last_argmax()
        llama_cpp.llama_perf_context_reset(ctx)
        t0 = time.perf_counter()
        for _ in range(N_TG):                    # 128 single-token decodes, greedy
            llm.eval([nxt])
            llama_cpp.llama_synchronize(ctx)
            nxt = last_argmax()
        dt = time.perf_counter() - t0
        perf = llama_cpp.llama_perf_context(ctx)
        return perf.n_eval * 1000.0 / perf.t_eval_ms, N_TG / dt

    one(args.test)                               # warmup, like llama-bench
    res = [one(args.test) for _ in range(args.reps)]
    print(json.dumps({"tok_s": [r[0] for r in res], "wall_tok_s": [r[1] for r in res]}))


def bench_llama(model, pp_ids, tg_ids, threads, reps, flash_attn):
    out = {"bg": 0.0}
    for test, ids in (("pp", pp_ids), ("tg", tg_ids)):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--model", model,
               "--test", test, "--threads", str(threads), "--reps", str(reps),
               "--ids", json.dumps(ids)] + (["--flash-attn"] if flash_attn else [])
        c = run_child(cmd)
        if c["rc"] != 0:
            raise RuntimeError(f"llama.cpp worker exited {c['rc']}: {c['err'].strip()[-600:]}")
        r = json.loads(c["out"].strip().splitlines()[-1])
        out[test], out[test + "_wall"] = r["tok_s"], r["wall_tok_s"]
        out["rss_" + test], out["bg"] = c["rss"], max(out["bg"], c["bg"])
    return out


def python_baseline_rss():
    """Peak RSS of a child that only imports numpy and llama_cpp: the part of
    the llama.cpp numbers that is the Python interpreter, not llama.cpp."""
    c = run_child([sys.executable, "-c", "import numpy, llama_cpp"])
    return c["rss"] if c["rc"] == 0 else float("nan")


# ---------------------------------------------------------------- f32 copy
def ensure_f32(model, binary, writer):
    """F32 copy of `model` under .cache/bench/, rebuilt when older than its
    inputs. writer: 'ours' (ee-model convert), 'gguf' (the gguf package, via
    tests/ref/llama_np.py), or 'auto' (ours if it works, else gguf).
    Returns (path or None, writer used)."""
    d = os.path.join(ROOT, ".cache", "bench")
    os.makedirs(d, exist_ok=True)
    stem = os.path.splitext(os.path.basename(model))[0]
    for w in (("ours", "gguf") if writer == "auto" else (writer,)):
        dst = os.path.join(d, f"{stem}.f32-{w}.gguf")
        inputs = [model] + ([binary] if w == "ours" else [])
        if w == "ours" and not os.path.exists(binary):
            log(f"ee-model not built, cannot convert with it")
            continue
        if os.path.exists(dst) and os.path.getmtime(dst) > max(map(os.path.getmtime, inputs)):
            return dst, w
        t0 = time.time()
        if w == "ours":
            c = run_child([binary, "convert", "--model", model, "--type", "f32", "--out", dst])
            if c["rc"] != 0 or not os.path.exists(dst):
                log(f"ee-model convert failed (rc={c['rc']}): {c['err'].strip()[-300:]}")
                continue
        else:
            from llama_np import write_f32_copy
            write_f32_copy(model, dst)
        log(f"f32 copy written by {w} in {time.time() - t0:.1f}s: {dst}")
        return dst, w
    return None, writer


def file_type_name(path):
    from gguf import GGUFReader
    r = GGUFReader(path)
    types = {}
    for t in r.tensors:
        if len(t.shape) >= 2:
            types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    return "+".join(k for k, _ in sorted(types.items(), key=lambda kv: -kv[1]))


def run_config(args, eng, path, ftype, T, pp_ids, tg_ids, notes):
    """Run one configuration (engine, file, threads), waiting for an idle
    machine first and rerunning up to --retries times when other processes
    used the CPUs meanwhile. Returns the result dict or None on failure."""
    for attempt in range(args.retries + 1):
        busy = wait_idle(args.wait_idle)
        log(f"running {eng} {ftype} threads={T} (background load {busy:.2f} CPUs) ...")
        try:
            if eng == "ours":
                r = bench_ours(args.bin, path, pp_ids, tg_ids, T, args.reps)
            else:
                r = bench_llama(path, pp_ids, tg_ids, T, args.reps, args.flash_attn)
        except Exception as e:                   # report and keep going
            notes.append(f"{eng} {ftype} t={T} failed: {e}")
            return None
        r["bg"] = max(r["bg"], busy)
        if r["bg"] <= IDLE_CPUS:
            return r
        log(f"  other processes used up to {r['bg']:.2f} CPUs meanwhile")
    notes.append(f"{eng} {ftype} t={T}: other processes used up to {r['bg']:.2f} CPUs "
                 f"before/during the runs (after {args.retries} retries); numbers unreliable")
    return r


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "ee-model"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--no-f32", action="store_true", help="skip the F32 copy")
    ap.add_argument("--f32-writer", choices=("auto", "ours", "gguf"), default="auto")
    ap.add_argument("--engines", default="ours,llama.cpp")
    ap.add_argument("--flash-attn", action="store_true", help="llama.cpp: enable flash attention")
    ap.add_argument("--json-out", help="also write all raw numbers here")
    ap.add_argument("--wait-idle", type=float, default=120, metavar="S",
                    help="before each configuration wait up to S seconds for other "
                         "processes to leave the CPUs idle (default 120)")
    ap.add_argument("--retries", type=int, default=2,
                    help="rerun a configuration disturbed by other processes (default 2)")
    # internal: llama.cpp worker child
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--test", help=argparse.SUPPRESS)
    ap.add_argument("--ids", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        return llama_worker(args)

    engines = [e.strip() for e in args.engines.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    notes = []
    if "ours" in engines and not os.path.exists(args.bin):
        notes.append(f"our engine skipped: {args.bin} does not exist")
        engines.remove("ours")
    if "llama.cpp" in engines:
        try:
            import llama_cpp
            llama_version = llama_cpp.__version__
            llama_sys = llama_cpp.llama_print_system_info().decode().strip()
        except ImportError:
            notes.append("llama.cpp skipped: llama_cpp is not importable in this Python")
            engines.remove("llama.cpp")

    files = [(args.model, file_type_name(args.model))]
    if not args.no_f32:
        f32, how = ensure_f32(args.model, args.bin, args.f32_writer)
        if f32:
            files.append((f32, "F32"))
            notes.append(f"F32 copy: {os.path.relpath(f32, ROOT)} (written by "
                         f"{'ee-model convert' if how == 'ours' else 'the gguf Python package'})")
        else:
            notes.append(f"F32 runs skipped: no F32 copy (--f32-writer {args.f32_writer})")

    pp_ids, tg_ids = bench_tokens(args.model)
    results = []
    t_start = time.time()
    for path, ftype in files:
        for T in threads:
            for eng in engines:
                r = run_config(args, eng, path, ftype, T, pp_ids, tg_ids, notes)
                if r is not None:
                    results.append(dict(engine=eng, file=ftype, threads=T, **r))

    # ---- report
    print("== machine")
    for line in machine_info():
        print("  " + line)
    if "llama.cpp" in engines:
        print(f"  llama-cpp-python {llama_version}: {llama_sys}")
        print(f"  python+numpy+llama_cpp import alone: peak RSS {python_baseline_rss():.0f} MB "
              "(included in the llama.cpp RSS column)")
    print(f"== pp{N_PP} / tg{N_TG}, median of {args.reps} runs "
          f"(tg prompt {len(tg_ids)} tokens; llama.cpp flash_attn={'on' if args.flash_attn else 'off'})")
    hdr = (f"{'engine':10s} {'file':10s} {'thr':>3s} {'pp512 tok/s':>12s} {'tg128 tok/s':>12s} "
           f"{'pp ours/lc':>10s} {'tg ours/lc':>10s} {'RSS pp MB':>10s} {'RSS tg MB':>10s}")
    print(hdr)
    print("-" * len(hdr))
    med = statistics.median
    by_key = {(r["engine"], r["file"], r["threads"]): r for r in results}
    for r in results:
        ref = by_key.get(("llama.cpp", r["file"], r["threads"]))
        pp, tg = med(r["pp"]), med(r["tg"])
        if r["engine"] == "ours" and ref:
            rp, rt = f"{pp / med(ref['pp']):.2f}", f"{tg / med(ref['tg']):.2f}"
        else:
            rp = rt = "-"
        print(f"{r['engine']:10s} {r['file']:10s} {r['threads']:3d} {pp:12.1f} {tg:12.1f} "
              f"{rp:>10s} {rt:>10s} {r['rss_pp']:10.0f} {r['rss_tg']:10.0f}")
    for r in results:
        if r["engine"] == "llama.cpp":
            print(f"  llama.cpp {r['file']} t={r['threads']}: Python wall clock "
                  f"pp {med(r['pp_wall']):.1f} tg {med(r['tg_wall']):.1f} tok/s "
                  f"(table: llama_perf_context counters)")
    for n in notes:
        print("note: " + n)
    print(f"(bench took {time.time() - t_start:.0f}s)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"machine": machine_info(), "results": results, "notes": notes}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
