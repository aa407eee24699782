#!/usr/bin/env python3
"""Sentence embeddings per second: our engine against the implementations a
user would otherwise run, on the same sentences, in the same run, with the
same number of threads.

Engines (all-MiniLM-L6-v2, f32 everywhere):
  ours      `ee-model embed --tokens-file F --batch B --threads T --json` on
            the plaintext GGUF (`make minilm`); a fresh process per
            measurement, timed by its own `ms` (the forward passes only:
            loading and tokenization excluded).
  ours-enc  the same command on the model encrypted with a fresh key
            (`ee-model keygen`, `ee-model encrypt`: f32, exact) fed the
            encrypted ids, as a worker runs it. Same computation: expect the
            same numbers.
  st        sentence-transformers on PyTorch (CPU), `SentenceTransformer(DIR)`
            on the same Hugging Face directory, `encode(sentences,
            batch_size=B)`: timed around encode, so its tokenizer (the HF
            fast tokenizer) is included.
  ort       ONNX Runtime (CPUExecutionProvider) on an ONNX export of the same
            weights: torch.onnx (TorchScript exporter, eager attention) of
            BertModel + mean pooling + L2 normalisation, then
            onnxruntime.transformers' BERT fusions (Attention,
            EmbedLayerNormalization, SkipLayerNormalization, BiasGelu: what
            optimum's O2 level gives). Timed around tokenize + run, batches
            formed as sentence-transformers forms them (longest first,
            padded to the longest of the batch).
The peers run in worker processes of this script (one per peer, kept for
the whole run, so a peer's import and warm-up are paid once and its threads
never compete with a measurement of another engine); every (set, batch)
measurement of a peer is preceded by an untimed warm-up call.

Threads: `--threads T` for ours, torch.set_num_threads(T), ONNX Runtime
intra_op_num_threads=T (inter_op 1).

Sentence sets, from tests/data/bert_sentences.json (60 sentences, 2-542
tokens, many scripts):
  mixed  the 60 cycled to --n-mixed (512) sentences
  short  the 54 of at most 128 tokens, x2 (108)
  long   the 6 longer ones (cut to 256 tokens), x2 (12)
Per set and engine: batch 1 (one sentence per call) sentences/s and the
per-sentence latency p50, and batched (--batches, default 32) sentences/s.
Latency p50: peers, the median of their per-call times over the set; ours
(one process per run reports only its total), the latency of the set's
median-length sentence, (ms(1 + k copies) - ms(1 copy)) / k with k = 200
(short) or 32 (256 tokens), which removes the process's first call: on 2
threads that call costs 5-170 ms more than the next ones, so a small k is
noise. The batch-1 and batched sentences/s of ours include that first call
(one per process and measurement); the peers' warm-up call is not timed. Every number is the median of --reps
repetitions; the engines are interleaved within each repetition (the order
rotated each time) so the drift of a shared VM hits them alike. Other
processes' CPU use during each measurement is recorded (column bg).

Agreement (the comparison is apples to apples): the 60 distinct sentences'
embeddings from each engine against sentence-transformers': max abs diff and
min cosine; the encrypted model's output decrypted by the key holder
(`ee-model embed --key --plain-model`), and its batched encrypted output
against its one-per-call encrypted output.

Usage:
  python bench/embed_speed.py --bin build/bin --model .cache/models/all-MiniLM-L6-v2.gguf
         [--hf-dir DIR] [--threads 2] [--reps 3] [--batches 32] [--sets mixed,short,long]
         [--engines ours,ours-enc,st,ort] [--n-mixed 512] [--wait-idle 5]
         [--json-out FILE] [--from-json FILE] [--write]
  --write replaces the block between the embed-speed markers in
  docs/BENCHMARKS.md.
"""
import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, ".cache", "embed-bench")
SENTENCES = os.path.join(ROOT, "tests", "data", "bert_sentences.json")
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
BEGIN, END = "<!-- embed-speed:begin -->", "<!-- embed-speed:end -->"
EXPORT_VERSION = 1          # bump when the ONNX export recipe changes
LONG_TOKENS = 128           # "long" sentences: more tokens than this
MAX_SEQ = 256               # all-MiniLM-L6-v2's max_seq_length
IDLE_CPUS = 0.25            # background load still counted as idle
ENGINES = ("ours", "ours-enc", "st", "ort")
LABEL = {"ours": "ours, f32", "ours-enc": "ours, f32 encrypted",
         "st": "sentence-transformers (PyTorch)", "ort": "ONNX Runtime (fused BERT graph)"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


# ---------------------------------------------------------------- machine
def cpu_snapshot():
    """(total, busy) jiffies over all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), sum(v) - v[3] - v[4]


def own_cpu():
    """CPU seconds of this process and its waited-for children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def busy_cpus(seconds):
    t0, b0 = cpu_snapshot()
    c0 = own_cpu()
    time.sleep(seconds)
    t1, b1 = cpu_snapshot()
    ncpu = os.cpu_count() or 1
    wall_cpu = ncpu * seconds
    busy = ncpu * (b1 - b0) / max(1, t1 - t0) * seconds - (own_cpu() - c0)
    return max(0.0, busy) / seconds if wall_cpu else 0.0


class Waiter:
    """Waits (within a total budget) for other processes to leave the CPUs."""

    def __init__(self, limit, budget):
        self.limit, self.budget, self.waited = limit, budget, 0.0

    def __call__(self):
        t0 = time.time()
        busy = busy_cpus(0.3)
        while busy > IDLE_CPUS and time.time() - t0 < self.limit and self.waited < self.budget:
            busy = busy_cpus(0.5)
            self.waited += 0.5
        return busy


def lscpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine_facts():
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / (1 << 20)
    except (OSError, ValueError, IndexError):
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {"cpu": lscpu_model(), "nproc": nproc, "avx512f": "avx512f" in flags,
            "mem_gib": round(mem, 1), "kernel": platform.release(),
            "python": platform.python_version(),
            "loadavg": open("/proc/loadavg").read().split()[:3]}


# ---------------------------------------------------------------- sentences
def build_sets(tok, n_mixed):
    """The unique sentences, their HF token ids (no truncation: ours cuts as
    sentence-transformers does) and the sets as lists of unique indices."""
    texts = json.load(open(SENTENCES))
    ids = [tok(t, add_special_tokens=True, truncation=False)["input_ids"] for t in texts]
    n = len(texts)
    short = [i for i in range(n) if len(ids[i]) <= LONG_TOKENS]
    long_ = [i for i in range(n) if len(ids[i]) > LONG_TOKENS]
    sets = {"mixed": [i % n for i in range(n_mixed)], "short": short * 2, "long": long_ * 2}
    return texts, ids, sets


def kept(n):
    return min(n, MAX_SEQ)


def median_sentence(idx, ids):
    """The set's median-length sentence (by kept tokens)."""
    order = sorted(idx, key=lambda i: kept(len(ids[i])))
    return order[len(order) // 2]


# ---------------------------------------------------------------- our engine
def ours_cmd(binary, model, path, batch, threads):
    return [binary, "embed", "--model", model, "--tokens-file", path, "--batch", str(batch),
            "--threads", str(threads), "--json"]


def run_ours(binary, model, path, batch, threads, want_emb=False):
    r = subprocess.run(ours_cmd(binary, model, path, batch, threads), capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"ee-model embed failed: {r.stderr.strip()[:400]}")
    d = json.loads(r.stdout)
    out = {"ms": d["ms"], "sps": d["sentences_per_s"], "n": d["sentences"],
           "kernels": d.get("kernels"), "blas_core": d.get("blas_core")}
    if want_emb:
        out["emb"] = d["embeddings"]
    return out


def write_ids(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(",".join(map(str, r)) + "\n")


def encrypt_setup(binary, model, work, texts_ids):
    """Fresh key, encrypted f32 model; per distinct sentence the encrypted ids,
    the encrypted embedding and the key holder's decrypted embedding."""
    key, enc = os.path.join(work, "key.eekey"), os.path.join(work, "enc-f32.gguf")
    for p in (key, enc):
        if os.path.exists(p):
            os.remove(p)
    subprocess.run([binary, "keygen", "--out", key], check=True, capture_output=True)
    t0 = time.time()
    r = subprocess.run([binary, "encrypt", "--model", model, "--key", key, "--out", enc],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"ee-model encrypt failed: {r.stderr.strip()[:400]}")
    enc_s = time.time() - t0
    enc_ids, enc_emb, dec_emb = [], [], []
    for ids in texts_ids:
        r = subprocess.run([binary, "embed", "--model", enc, "--key", key, "--plain-model", model,
                            "--tokens", ",".join(map(str, ids)), "--show-ciphertext", "--json",
                            "--threads", "1"], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"ee-model embed --key failed: {r.stderr.strip()[:400]}")
        d = json.loads(r.stdout)
        if d["tokens"] != ids or not d.get("decrypted"):
            raise RuntimeError("ee-model embed --key: unexpected tokens or no decryption")
        enc_ids.append(d["encrypted_tokens"])
        enc_emb.append(d["encrypted_embedding"])
        dec_emb.append(d["embedding"])
    return {"key": key, "model": enc, "encrypt_s": enc_s, "ids": enc_ids, "enc_emb": enc_emb,
            "dec_emb": dec_emb, "encrypt_line": r.stderr.strip()}


# ---------------------------------------------------------------- ONNX export
def export_onnx(hf_dir, out_dir):
    """torch.onnx export of BertModel + mean pooling + normalisation, then the
    onnxruntime.transformers BERT fusions. Returns the fused model's path."""
    import torch
    from sentence_transformers import SentenceTransformer
    from onnxruntime.transformers import optimizer
    import warnings
    warnings.filterwarnings("ignore")
    st = SentenceTransformer(hf_dir, device="cpu", model_kwargs={"attn_implementation": "eager"})
    bert = st[0].auto_model.eval()

    class Embed(torch.nn.Module):
        def __init__(self, b):
            super().__init__()
            self.b = b

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.b(input_ids=input_ids, attention_mask=attention_mask,
                       token_type_ids=token_type_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            p = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(p, p=2, dim=1)

    enc = st.tokenizer(["hello world", "a somewhat longer sentence for the export"],
                       padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    raw = os.path.join(out_dir, "export.onnx")
    with torch.no_grad():
        torch.onnx.export(Embed(bert).eval(), tuple(enc[k] for k in names), raw,
                          input_names=names, output_names=["sentence_embedding"],
                          dynamic_axes={k: {0: "batch", 1: "seq"} for k in names},
                          opset_version=17, dynamo=False)
    cfg = bert.config
    m = optimizer.optimize_model(raw, model_type="bert", num_heads=cfg.num_attention_heads,
                                 hidden_size=cfg.hidden_size, opt_level=0)
    stats = {k: v for k, v in m.get_fused_operator_statistics().items() if v}
    fused = os.path.join(out_dir, "all-MiniLM-L6-v2.fused.onnx")
    m.save_model_to_file(fused)
    os.remove(raw)
    return fused, stats


def ensure_onnx(hf_dir, work):
    """The fused ONNX file, exported once per weights / torch / onnxruntime."""
    import importlib.metadata as md
    key = {"v": EXPORT_VERSION, "weights": sha256(os.path.join(hf_dir, "model.safetensors")),
           "torch": md.version("torch"), "onnxruntime": md.version("onnxruntime"),
           "transformers": md.version("transformers")}
    meta_p = os.path.join(work, "onnx-meta.json")
    try:
        meta = json.load(open(meta_p))
        if meta["key"] == key and os.path.exists(meta["path"]):
            return meta
    except (OSError, ValueError, KeyError):
        pass
    log("embed: exporting all-MiniLM-L6-v2 to ONNX (once) ...")
    t0 = time.time()
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--export-onnx", work,
                        "--hf-dir", hf_dir], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"ONNX export failed: {r.stderr.strip()[-800:]}")
    path, stats = json.loads(r.stdout.strip().splitlines()[-1])
    meta = {"key": key, "path": path, "fusions": stats, "export_s": round(time.time() - t0, 1)}
    json.dump(meta, open(meta_p, "w"), indent=1)
    return meta


# ---------------------------------------------------------------- peer workers
def worker_main(kind, setup_path):
    """A peer in its own process: commands on stdin, one JSON line each on
    the original stdout (library output goes to stderr)."""
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    setup = json.load(open(setup_path))
    T, hf_dir = setup["threads"], setup["hf_dir"]
    texts = setup["texts"]
    sets = {k: [texts[i] for i in v] for k, v in setup["sets"].items()}
    import warnings
    warnings.filterwarnings("ignore")
    import numpy as np
    import importlib.metadata as md
    t0 = time.time()
    versions = {}
    if kind == "st":
        import torch
        torch.set_num_threads(T)
        from sentence_transformers import SentenceTransformer
        m = SentenceTransformer(hf_dir, device="cpu")
        tokfn = m.preprocess if hasattr(m, "preprocess") else m.tokenize
        for p in ("torch", "sentence-transformers", "transformers", "tokenizers"):
            versions[p] = md.version(p)
        versions["torch_threads"] = torch.get_num_threads()
        versions["max_seq_length"] = m.max_seq_length

        def encode(xs, b):
            return m.encode(xs, batch_size=b, show_progress_bar=False, convert_to_numpy=True)

        def tokenize(xs, b):
            order = sorted(range(len(xs)), key=lambda i: -len(xs[i]))
            for i in range(0, len(xs), b):
                tokfn([xs[j] for j in order[i:i + b]])
    else:
        import onnxruntime as ort
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(hf_dir)
        so = ort.SessionOptions()
        so.intra_op_num_threads = T
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(setup["onnx"], so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        for p in ("onnxruntime", "transformers", "tokenizers"):
            versions[p] = md.version(p)

        def tok_batch(xs):
            e = tok(xs, padding=True, truncation=True, max_length=MAX_SEQ, return_tensors="np")
            return {k: e[k].astype(np.int64) for k in names}

        def encode(xs, b):
            order = sorted(range(len(xs)), key=lambda i: -len(xs[i]))
            out = np.empty((len(xs), 384), np.float32)
            for i in range(0, len(xs), b):
                idx = order[i:i + b]
                out[idx] = sess.run(None, tok_batch([xs[j] for j in idx]))[0]
            return out

        def tokenize(xs, b):
            order = sorted(range(len(xs)), key=lambda i: -len(xs[i]))
            for i in range(0, len(xs), b):
                tok_batch([xs[j] for j in order[i:i + b]])
    encode(texts[:4], 4)
    proto.write(json.dumps({"ready": True, "load_s": time.time() - t0, "versions": versions}) + "\n")
    proto.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "quit":
            break
        res, cpu_op = {}, time.process_time()
        if op == "embed":
            res["emb"] = encode(texts, cmd["batch"]).tolist()
        elif op == "time":
            xs, b = sets[cmd["set"]], cmd["batch"]
            if b == 1:
                for x in xs[:3]:
                    encode([x], 1)                      # warm-up
                c0, w0 = time.process_time(), time.perf_counter()
                per = []
                for x in xs:
                    t = time.perf_counter()
                    encode([x], 1)
                    per.append(time.perf_counter() - t)
                wall = time.perf_counter() - w0
                res["p50_ms"] = 1000 * statistics.median(per)
            else:
                encode(xs[:b], b)                       # warm-up
                c0, w0 = time.process_time(), time.perf_counter()
                encode(xs, b)
                wall = time.perf_counter() - w0
            res["cpu"] = time.process_time() - c0
            res["ms"] = 1000 * wall
            res["sps"] = len(xs) / wall
            # tokenization alone, as the timed path does it (not timed above separately)
            t = time.perf_counter()
            if b == 1:
                for x in xs:
                    tokenize([x], 1)
            else:
                tokenize(xs, b)
            res["tok_ms"] = 1000 * (time.perf_counter() - t)
        res["cpu_op"] = time.process_time() - cpu_op
        proto.write(json.dumps(res) + "\n")
        proto.flush()


class Peer:
    def __init__(self, kind, setup_path, log_path):
        self.kind, self.log_path = kind, log_path
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", kind,
                                   "--setup", setup_path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=open(log_path, "w"), text=True)
        self.hello = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            tail = open(self.log_path).read()[-800:]
            raise RuntimeError(f"peer {self.kind} exited (rc {self.p.poll()}): {tail}")
        return json.loads(line)

    def ask(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self):
        try:
            self.p.stdin.write('{"op": "quit"}\n')
            self.p.stdin.flush()
            self.p.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()


# ---------------------------------------------------------------- agreement
def agreement(a, b):
    import numpy as np
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"n": len(a), "max_abs": float(np.abs(a - b).max()), "min_cos": float(cos.min())}


# ---------------------------------------------------------------- the run
def measure(args):
    from transformers import AutoTokenizer
    import importlib.metadata as md
    os.makedirs(WORK, exist_ok=True)
    t_start = time.time()
    engines = [e for e in args.engines.split(",") if e]
    for e in engines:
        if e not in ENGINES:
            sys.exit(f"embed: unknown engine {e} (have {', '.join(ENGINES)})")
    batches = [int(b) for b in args.batches.split(",")]
    set_names = [s for s in args.sets.split(",") if s]
    tok = AutoTokenizer.from_pretrained(args.hf_dir)
    texts, ids, all_sets = build_sets(tok, args.n_mixed)
    sets = {k: all_sets[k] for k in set_names}
    res = {"machine": machine_facts(), "threads": args.threads, "reps": args.reps,
           "batches": batches, "engines": engines, "notes": [],
           "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "sets": {k: {"n": len(v), "tokens": sum(kept(len(ids[i])) for i in v)}
                    for k, v in sets.items()}}
    work = tempfile.mkdtemp(prefix="run-", dir=WORK)
    waiter = Waiter(args.wait_idle, args.wait_budget)
    peers = {}
    try:
        # Our binary copied: other jobs on this machine may rebuild build/bin meanwhile.
        binary = os.path.join(work, "ee-model")
        shutil.copy2(os.path.join(args.bin, "ee-model"), binary)
        files = {}
        for name, idx in sets.items():
            files[("ours", name)] = os.path.join(work, f"{name}.txt")
            write_ids(files[("ours", name)], [ids[i] for i in idx])
        enc = None
        if "ours-enc" in engines:
            log("embed: keygen + encrypt + encrypted ids of the 60 sentences ...")
            enc = encrypt_setup(binary, args.model, work, ids)
            res["encrypt_s"] = round(enc["encrypt_s"], 2)
            for name, idx in sets.items():
                files[("ours-enc", name)] = os.path.join(work, f"{name}.enc.txt")
                write_ids(files[("ours-enc", name)], [enc["ids"][i] for i in idx])
        # latency files: the median-length sentence, once and 1 + k times
        lat = {}
        for name, idx in sets.items():
            i = median_sentence(idx, ids)
            # k large: the first call of a process varies by ~100 ms (2 threads)
            k = 200 if kept(len(ids[i])) <= 64 else 32
            lat[name] = {"sentence": i, "tokens": kept(len(ids[i])), "k": k}
            for e in ("ours", "ours-enc"):
                row = ids[i] if e == "ours" else (enc["ids"][i] if enc else None)
                if row is None:
                    continue
                for reps in (1, 1 + k):
                    p = os.path.join(work, f"lat-{e}-{i}-{reps}.txt")
                    write_ids(p, [row] * reps)
                    files[(e, name, "lat", reps)] = p
        res["latency_sentence"] = lat
        setup = {"threads": args.threads, "hf_dir": args.hf_dir, "texts": texts,
                 "sets": sets}
        if "ort" in engines:
            meta = ensure_onnx(args.hf_dir, WORK)
            setup["onnx"] = meta["path"]
            res["onnx"] = {"fusions": meta["fusions"], "key": meta["key"]}
        setup_path = os.path.join(work, "setup.json")
        json.dump(setup, open(setup_path, "w"))
        for e in ("st", "ort"):
            if e in engines:
                log(f"embed: starting peer {e} ...")
                peers[e] = Peer(e, setup_path, os.path.join(WORK, f"peer-{e}.log"))
                res.setdefault("versions", {}).update(peers[e].hello["versions"])
        res.setdefault("versions", {})["onnx"] = md.version("onnx") if "ort" in engines else None

        raw = {}        # "engine|set|batch" -> one dict per repetition

        def timed(e, name, b):
            """One measurement and the other processes' CPU use meanwhile."""
            bg0 = waiter()
            s0, c0, w0 = cpu_snapshot(), own_cpu(), time.perf_counter()
            if e in peers:
                r = peers[e].ask(op="time", set=name, batch=b)
                mine = r["cpu_op"]
            else:
                r = run_ours(binary, args.model if e == "ours" else enc["model"],
                             files[(e, name)], b, args.threads)
                mine = 0.0
            s1, c1, wall = cpu_snapshot(), own_cpu(), time.perf_counter() - w0
            ncpu = os.cpu_count() or 1
            busy = ncpu * (s1[1] - s0[1]) / max(1, s1[0] - s0[0]) * wall
            r["bg"] = round(max(bg0, max(0.0, busy - (c1 - c0) - mine) / wall), 2)
            return r

        order = list(engines)
        for rep in range(args.reps):
            for name in sets:
                for b in [1] + batches:
                    for e in order:
                        for attempt in range(args.retries + 1):
                            r = timed(e, name, b)
                            if r["bg"] <= IDLE_CPUS:
                                break
                            log(f"  {e} {name} b={b}: other processes used {r['bg']:.2f} CPUs; "
                                + ("again" if attempt < args.retries else "kept"))
                        r["attempts"] = attempt + 1
                        raw.setdefault(f"{e}|{name}|{b}", []).append(r)
                        log(f"rep {rep + 1} {name:5s} b={b:<3d} {e:8s} {r['sps']:8.1f} sent/s"
                            + (f"  p50 {r['p50_ms']:.1f} ms" if "p50_ms" in r else "")
                            + f"  (bg {r['bg']:.2f} CPUs)")
                    if b == 1:
                        for e in ("ours", "ours-enc"):
                            if e not in engines:
                                continue
                            L = lat[name]
                            done = [x for x in sets if x != name and lat[x]["sentence"] == L["sentence"]
                                    and len(raw.get(f"{e}|{x}|lat", [])) == rep + 1]
                            if done:
                                raw.setdefault(f"{e}|{name}|lat", []).append(raw[f"{e}|{done[0]}|lat"][rep])
                                continue
                            m = args.model if e == "ours" else enc["model"]
                            for attempt in range(args.retries + 1):
                                bg0 = waiter()
                                s0, c0 = cpu_snapshot(), own_cpu()
                                w0 = time.perf_counter()
                                t1 = run_ours(binary, m, files[(e, name, "lat", 1)], 1, args.threads)
                                tk = run_ours(binary, m, files[(e, name, "lat", 1 + L["k"])], 1,
                                              args.threads)
                                s1, c1 = cpu_snapshot(), own_cpu()
                                wall = time.perf_counter() - w0
                                busy = (os.cpu_count() or 1) * (s1[1] - s0[1]) / max(1, s1[0] - s0[0]) * wall
                                bg = round(max(bg0, max(0.0, busy - (c1 - c0)) / wall), 2)
                                if bg <= IDLE_CPUS:
                                    break
                            v = (tk["ms"] - t1["ms"]) / L["k"]
                            raw.setdefault(f"{e}|{name}|lat", []).append(
                                {"p50_ms": v, "cold_ms": t1["ms"], "bg": bg})
            order = order[1:] + order[:1]
        res["raw"] = raw
        res["kernels"] = next((r[0].get("kernels") for k, r in raw.items()
                               if k.startswith("ours|") and r[0].get("kernels")), None)
        res["blas_core"] = next((r[0].get("blas_core") for k, r in raw.items()
                                 if k.startswith("ours|") and r[0].get("blas_core")), None)

        # agreement on the 60 distinct sentences
        agr = {}
        ref = None
        if "st" in peers:
            ref = peers["st"].ask(op="embed", batch=batches[0])["emb"]
        ort_emb = peers["ort"].ask(op="embed", batch=batches[0])["emb"] if "ort" in peers else None
        plain = {}
        if "ours" in engines:
            r = run_ours(binary, args.model, write_unique(work, ids, "u"), batches[0],
                         args.threads, want_emb=True)
            plain["b"] = r["emb"]
            r = run_ours(binary, args.model, os.path.join(work, "u.txt"), 1, args.threads,
                         want_emb=True)
            plain["1"] = r["emb"]
        if ref is not None:
            if plain:
                agr[f"ours (batch {batches[0]}) vs sentence-transformers"] = agreement(plain["b"], ref)
                agr["ours (batch 1) vs sentence-transformers"] = agreement(plain["1"], ref)
            if ort_emb is not None:
                agr["ONNX Runtime vs sentence-transformers"] = agreement(ort_emb, ref)
            if enc:
                agr["ours encrypted, decrypted by the key holder (1 per call) vs "
                    "sentence-transformers"] = agreement(enc["dec_emb"], ref)
        if plain and ort_emb is not None:
            agr[f"ours (batch {batches[0]}) vs ONNX Runtime"] = agreement(plain["b"], ort_emb)
        if plain:
            agr[f"ours batch {batches[0]} vs ours batch 1"] = agreement(plain["b"], plain["1"])
        if enc:
            r = run_ours(binary, enc["model"], write_unique(work, enc["ids"], "ue"), batches[0],
                         args.threads, want_emb=True)
            agr[f"ours encrypted: batch {batches[0]} vs 1 per call (encrypted space)"] = \
                agreement(r["emb"], enc["enc_emb"])
            if plain:
                agr["ours encrypted, decrypted vs ours plaintext"] = agreement(enc["dec_emb"], plain["1"])
        res["agreement"] = agr
    finally:
        for p in peers.values():
            p.close()
        shutil.rmtree(work, ignore_errors=True)
    res["wall_s"] = round(time.time() - t_start, 1)
    res["waited_s"] = round(waiter.waited, 1)
    return res


def write_unique(work, rows, name):
    p = os.path.join(work, f"{name}.txt")
    write_ids(p, rows)
    return p


# ---------------------------------------------------------------- report
def med(xs):
    return statistics.median(xs) if xs else float("nan")


def render(res):
    raw = res["raw"]
    B = res["batches"]
    engines = res["engines"]
    T = res["threads"]

    def quiet(rs):
        """The repetitions without competing processes, if any."""
        q = [r for r in rs if r.get("bg", 0) <= IDLE_CPUS]
        return q or rs

    def cell(e, s, b, key="sps"):
        rs = quiet(raw.get(f"{e}|{s}|{b}", []))
        return med([r[key] for r in rs if key in r]) if rs else None

    def n_quiet(e, s, b):
        rs = raw.get(f"{e}|{s}|{b}", [])
        return sum(1 for r in rs if r.get("bg", 0) <= IDLE_CPUS), len(rs)

    def spread(e, s, b):
        rs = [r["sps"] for r in quiet(raw.get(f"{e}|{s}|{b}", []))]
        return (min(rs), max(rs)) if rs else (None, None)

    def fmt(v, nd=1):
        return "" if v is None or v != v else f"{v:,.{nd}f}"

    lines = []
    m = res["machine"]
    v = res.get("versions", {})
    lines.append(f"Machine: {m['cpu']}, nproc {m['nproc']}, AVX-512 {'yes' if m['avx512f'] else 'no'}, "
                 f"{m['mem_gib']} GiB; load average at start {' '.join(m['loadavg'])} (shared VM). "
                 f"Threads {T} for every engine; median of {res['reps']} repetitions.")
    vs = ", ".join(f"{k} {v[k]}" for k in ("torch", "sentence-transformers", "transformers",
                                           "tokenizers", "onnxruntime", "onnx") if v.get(k))
    if vs:
        lines.append(f"Peers: {vs}. Ours: kernels {res.get('kernels')}, OpenBLAS core "
                     f"{res.get('blas_core')}.")
    if res.get("onnx"):
        fz = ", ".join(f"{k} {n}" for k, n in res["onnx"]["fusions"].items())
        lines.append(f"ONNX graph fusions: {fz}.")
    lines.append("")
    hdr = ["set", "engine", "tokenizer timed", "batch 1 sent/s", "p50 ms/sentence"]
    for b in B:
        hdr += [f"batch {b} sent/s"]
    hdr += ["quiet runs"]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    for s, info in res["sets"].items():
        sname = f"{s} ({info['n']} sentences, {info['tokens'] / info['n']:.0f} tokens avg)"
        for e in engines:
            tokcol = "no" if e.startswith("ours") else "yes"
            p50 = cell(e, s, "lat", "p50_ms") if e.startswith("ours") else cell(e, s, 1, "p50_ms")
            row = [sname, LABEL[e], tokcol, fmt(cell(e, s, 1)), fmt(p50, 2)]
            for b in B:
                row.append(fmt(cell(e, s, b)))
            qs = [n_quiet(e, s, b) for b in [1] + B]
            row.append(f"{sum(q for q, _ in qs)}/{sum(n for _, n in qs)}")
            lines.append("| " + " | ".join(row) + " |")
            sname = ""
    lines.append("")
    # ratios
    peers = [p for p in ("st", "ort") if p in engines]
    if "ours" in engines and (peers or "ours-enc" in engines):
        hdr = ["set", "batch"] + [f"ours / {'ST' if p == 'st' else 'ORT'}" for p in peers]
        if "ours-enc" in engines:
            hdr.append("encrypted / plaintext")
        if "st" in peers:
            hdr.append("ST tokenizer share")
        lines.append("| " + " | ".join(hdr) + " |")
        lines.append("|" + "---|" * len(hdr))
        for s in res["sets"]:
            for b in [1] + B:
                o = cell("ours", s, b)
                row = [s, str(b)]
                for p in peers:
                    q = cell(p, s, b)
                    row.append(f"**{o / q:.2f}**" if o and q else "")
                if "ours-enc" in engines:
                    q = cell("ours-enc", s, b)
                    row.append(f"{q / o:.3f}" if o and q else "")
                if "st" in peers:
                    tk, ms = cell("st", s, b, "tok_ms"), cell("st", s, b, "ms")
                    row.append(f"{100 * tk / ms:.0f}%" if tk and ms else "")
                lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    # spread
    sp = []
    for s in res["sets"]:
        for e in engines:
            for b in [1] + B:
                lo, hi = spread(e, s, b)
                if lo:
                    sp.append((hi / lo - 1, e, s, b))
    if sp:
        w = max(sp)
        lines.append(f"Cells are medians of the quiet repetitions (other processes below {IDLE_CPUS} "
                     f"CPUs; all of them where none was quiet). "
                     f"Spread between those repetitions (max/min - 1): median {100 * med([x[0] for x in sp]):.0f}%, "
                     f"worst {100 * w[0]:.0f}% ({LABEL[w[1]]}, {w[2]}, batch {w[3]}).")
        lines.append("")
    if res.get("agreement"):
        lines.append("| embeddings of the 60 distinct sentences | max abs diff | min cosine |")
        lines.append("|---|---|---|")
        for k, a in res["agreement"].items():
            d = 1.0 - a["min_cos"]
            cos = "1.0" if d <= 0 else f"1 - {d:.1e}"
            lines.append(f"| {k} | {a['max_abs']:.2e} | {cos} |")
        lines.append("")
    extra = []
    if res.get("encrypt_s") is not None:
        extra.append(f"encryption of the model with a fresh key {res['encrypt_s']} s")
    extra.append(f"whole run {res['wall_s']} s")
    if res.get("waited_s"):
        extra.append(f"of which {res['waited_s']} s waiting for idle CPUs")
    text = "; ".join(extra)
    lines.append(text[:1].upper() + text[1:] + ".")
    for n in res.get("notes", []):
        lines.append(f"Note: {n}")
    return "\n".join(lines)


def write_doc(text, stamp):
    s = open(DOC).read()
    if BEGIN not in s or END not in s:
        sys.exit(f"embed: {DOC} has no {BEGIN} ... {END} markers")
    a, b = s.index(BEGIN) + len(BEGIN), s.index(END)
    s = s[:a] + f"\n{stamp}\n\n{text}\n" + s[b:]
    with open(DOC + ".tmp", "w") as f:
        f.write(s)
    os.replace(DOC + ".tmp", DOC)


def main():
    # SIGTERM: unwind (the finally blocks remove the run's files and peers).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--model", default=os.path.join(ROOT, ".cache", "models", "all-MiniLM-L6-v2.gguf"))
    ap.add_argument("--hf-dir", default=os.path.join(ROOT, ".cache", "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batches", default="32", help="batched sizes besides 1 (comma list)")
    ap.add_argument("--sets", default="mixed,short,long")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--n-mixed", type=int, default=512)
    ap.add_argument("--wait-idle", type=float, default=5.0, metavar="S",
                    help="before each measurement wait up to S s for idle CPUs")
    ap.add_argument("--wait-budget", type=float, default=20.0, metavar="S",
                    help="total waiting allowed per run")
    ap.add_argument("--retries", type=int, default=1,
                    help="rerun a measurement during which other processes used the CPUs")
    ap.add_argument("--json-out", default=os.path.join(WORK, "last.json"))
    ap.add_argument("--from-json", help="re-render a saved result")
    ap.add_argument("--write", action="store_true", help="table into docs/BENCHMARKS.md")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--setup", help=argparse.SUPPRESS)
    ap.add_argument("--export-onnx", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args.worker, args.setup)
    if args.export_onnx:
        path, stats = export_onnx(args.hf_dir, args.export_onnx)
        print(json.dumps([path, stats]))
        return
    if args.from_json:
        res = json.load(open(args.from_json))
    else:
        for p in (args.model, args.hf_dir, os.path.join(args.bin, "ee-model")):
            if not os.path.exists(p):
                sys.exit(f"embed: {p} is missing (make minilm, make)")
        res = measure(args)
        res["command"] = " ".join(["bench/embed_speed.py"] + sys.argv[1:])
        if args.json_out:
            os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
            with open(args.json_out, "w") as f:
                json.dump(res, f, indent=1)
    text = render(res)
    print(text)
    if args.write:
        words, cmd = res.get("command", "bench/embed_speed.py").split(), []
        while words:                       # where the JSON went is no part of the method
            w = words.pop(0)
            if w == "--json-out":
                words = words[1:]
            elif w != "--write" and not w.startswith("--json-out="):
                cmd.append(w)
        cmd = " ".join(cmd)
        stamp = f"Run of {res['started']} (`.cache/venv/bin/python {cmd}`):"
        write_doc(text, stamp)
        log(f"embed: wrote {DOC}")


if __name__ == "__main__":
    main()
