#!/usr/bin/env python3
"""Quantized encrypted models against plaintext ones of the same type:
quality (llama.cpp's --kl-divergence method) and decode/prefill speed.

Reference: the plaintext model in f32 (the published SmolLM2 Q4_1 file
dequantized: the only f32 values there are). Every other file is quantized
from those values:
  plain-T/ref     `ee-model convert --type T` (ggml's reference rounding,
                  what llama.cpp's quantize does without an imatrix)
  plain-T/search  the same with --quantizer search (the least-error rounding
                  encrypt uses by default), so the quantizer is equal
  enc-T           `ee-model encrypt --type T` (default: search rounding, MLP
                  scales dropped), and the ablations --quantizer ref and
                  --keep-ffn-scales
Each is scored by `ee-model perplexity --ref plain-f32` on the same chunks of
a held-out text from a package: lee_background.cor from the PyPI wheel
gensim==4.4.0 (360 KB of news prose; wheel and file pinned by sha256).
Encrypted files are scored from the key holder's side (--key: ids encrypted,
logit columns read back through the key).

Independent check: llama.cpp (llama-cpp-python, F32 KV cache) scores the
plaintext files on the very same token chunks, and its KLD is printed beside
ours. Note the grid effect: plaintext Q4_1 requantized from Q4_1 values is the
published file itself (KLD 0), so no other file can beat it on this
reference; see docs/BENCHMARKS.md.

Speed: `ee-model generate --json` decode/prefill tok/s, plaintext and
encrypted files of each type alternated, median of --reps.

Usage:
  python bench/quality.py --model PLAIN_Q4_1.gguf --bin build/bin
         [--chunks 8] [--types q8_0,q4_0,q4_1] [--reps 3] [--no-llamacpp]
         [--json-out FILE] [--write]   (--write: table into docs/BENCHMARKS.md)
"""
import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, ".cache", "quality")
DL = os.path.join(ROOT, ".cache", "dl")
GENSIM_WHEEL = "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
GENSIM_SHA = "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8"
CORPUS_MEMBER = "gensim/test/test_data/lee_background.cor"
CORPUS_SHA = "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb"
BEGIN, END = "<!-- quality-report:begin -->", "<!-- quality-report:end -->"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def corpus():
    """The held-out text, fetched once from PyPI and checked."""
    out = os.path.join(WORK, "lee_background.txt")
    if os.path.exists(out) and sha256(out) == CORPUS_SHA:
        return out
    os.makedirs(DL, exist_ok=True)
    wheel = os.path.join(DL, GENSIM_WHEEL)
    if not os.path.exists(wheel):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--disable-pip-version-check", "gensim==4.4.0", "-d", DL], check=True)
    if sha256(wheel) != GENSIM_SHA:
        sys.exit(f"quality: {wheel} has sha256 {sha256(wheel)}, expected {GENSIM_SHA}")
    with zipfile.ZipFile(wheel) as z:
        data = z.read(CORPUS_MEMBER)
    if hashlib.sha256(data).hexdigest() != CORPUS_SHA:
        sys.exit(f"quality: {CORPUS_MEMBER} in the wheel does not match its pinned sha256")
    with open(out + ".tmp", "wb") as f:
        f.write(data)
    os.replace(out + ".tmp", out)
    return out


class Bench:
    def __init__(self, args):
        self.args = args
        self.ee = os.path.join(args.bin, "ee-model")
        self.key = os.path.join(WORK, "key.eekey")

    def run(self, *a, capture=True):
        p = subprocess.run([self.ee, *a], capture_output=capture, text=True)
        if p.returncode != 0:
            sys.exit(f"quality: ee-model {' '.join(a[:3])} failed: {p.stderr.strip()}")
        return p.stdout

    def path(self, name):
        return os.path.join(WORK, name + ".gguf")

    def make(self, name, *cmd):
        """Build a file once per run (files are rebuilt every run: a stale
        one from an older binary would measure the wrong thing)."""
        out = self.path(name)
        if name in self.made:
            return out
        if (self.args.reuse_files and os.path.exists(out)
                and os.path.getmtime(out) >= os.path.getmtime(self.ee)):
            self.made.add(name)
            return out
        t0 = time.time()
        self.run(*cmd, "--out", out)
        log(f"  built {name} ({os.path.getsize(out) / 1e6:.1f} MB, {time.time() - t0:.0f} s)")
        self.made.add(name)
        return out

    def files(self, types):
        self.made = set()
        m = self.args.model
        if not os.path.exists(self.key):
            self.run("keygen", "--out", self.key)
        rows = []
        self.ref = self.make("plain-f32", "convert", "--model", m, "--type", "f32")
        rows.append(dict(name="enc-f32", type="f32", enc=True, variant="exact",
                         path=self.make("enc-f32", "encrypt", "--model", m, "--key", self.key,
                                        "--type", "f32")))
        for t in types:
            rows.append(dict(name=f"plain-{t}", type=t, enc=False, variant="ref",
                             path=self.make(f"plain-{t}", "convert", "--model", m, "--type", t)))
            rows.append(dict(name=f"plain-{t}-search", type=t, enc=False, variant="search",
                             path=self.make(f"plain-{t}-search", "convert", "--model", m,
                                            "--type", t, "--quantizer", "search")))
            rows.append(dict(name=f"enc-{t}", type=t, enc=True, variant="default",
                             path=self.make(f"enc-{t}", "encrypt", "--model", m, "--key",
                                            self.key, "--type", t)))
            rows.append(dict(name=f"enc-{t}-ref", type=t, enc=True, variant="ref rounding",
                             path=self.make(f"enc-{t}-ref", "encrypt", "--model", m, "--key",
                                            self.key, "--type", t, "--quantizer", "ref")))
            rows.append(dict(name=f"enc-{t}-scales", type=t, enc=True, variant="MLP scales kept",
                             path=self.make(f"enc-{t}-scales", "encrypt", "--model", m, "--key",
                                            self.key, "--type", t, "--keep-ffn-scales")))
        return rows

    def score(self, row, text, tokens_out=None):
        a = ["perplexity", "--model", row["path"], "--ref", self.ref, "--text-file", text,
             "--chunks", str(self.args.chunks), "--threads", str(self.args.threads), "--json"]
        if row["enc"]:
            a += ["--key", self.key, "--plain-model", self.args.model]
        if tokens_out:
            a += ["--tokens-out", tokens_out]
        return json.loads(self.run(*a))

    def speed(self, path, prompt_ids):
        out = self.run("generate", "--model", path, "--tokens", prompt_ids, "--max-tokens", "128",
                       "--ignore-eos", "--threads", str(self.args.threads), "--warmup", "--json")
        t = json.loads(out)["timings"]
        return t["prefill_tok_s"], t["decode_tok_s"]


def llamacpp_kld(ref_path, test_path, tokens_json, threads):
    """KLD of test vs ref by llama.cpp on the same chunks (plaintext files)."""
    import numpy as np
    sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
    import llamacpp_compat
    llamacpp_compat.no_extra_buffer_types()
    import llama_cpp
    from llama_cpp import Llama

    chunks = json.load(open(tokens_json))
    ctx = chunks["ctx"]

    def logits(path):
        llm = Llama(path, n_ctx=ctx, n_batch=ctx, n_ubatch=ctx, verbose=False,
                    n_threads=threads, n_threads_batch=threads,
                    type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
        out = [llamacpp_compat.all_logits(llm, ids) for ids in chunks["chunks"]]
        llm.close()
        return out

    def log_softmax(x):
        m = x.max(axis=1, keepdims=True)
        return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))

    if ref_path not in _REF_CACHE:
        _REF_CACHE.clear()
        _REF_CACHE[ref_path] = [log_softmax(a[ctx // 2:ctx - 1]) for a in logits(ref_path)]
    lr, lt = _REF_CACHE[ref_path], logits(test_path)
    klds, same = [], 0
    first = ctx // 2
    for pa, b in zip(lr, lt):
        pb = log_softmax(b[first:ctx - 1])
        klds.extend((np.exp(pa) * (pa - pb)).sum(axis=1))
        same += int((pa.argmax(axis=1) == pb.argmax(axis=1)).sum())
    return float(np.mean(klds)), same / len(klds)


_REF_CACHE = {}


def table(res):
    lines = ["| file | type | rounding / variant | size MB | PPL | KLD mean ± se | KLD 99% | same top | llama.cpp KLD |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        q = r["quality"]
        lc = r.get("llamacpp_kld")
        lines.append(
            f"| {'encrypted' if r['enc'] else 'plaintext'} | {r['type']} | {r['variant']} | "
            f"{r['mb']:.1f} | {q['ppl']:.3f} | {q['kld_mean']:.5f} ± {q['kld_stderr']:.5f} | "
            f"{q['kld_p99']:.4f} | {100 * q['same_top']:.2f}% | "
            f"{'' if lc is None else f'{lc:.5f}'} |")
    lines.append("")
    lines.append(f"Reference: plaintext f32, PPL {res['ppl_ref']:.3f}; {res['scored']} scored "
                 f"tokens ({res['chunks']} chunks of {res['ctx']}).")
    if res.get("speed"):
        lines += ["", "| type | plaintext prefill / decode tok/s | encrypted prefill / decode tok/s | decode ratio | prefill ratio |",
                  "|---|---|---|---|---|"]
        for s in res["speed"]:
            lines.append(f"| {s['type']} | {s['plain'][0]:.0f} / {s['plain'][1]:.1f} | "
                         f"{s['enc'][0]:.0f} / {s['enc'][1]:.1f} | {s['enc'][1] / s['plain'][1]:.3f} | "
                         f"{s['enc'][0] / s['plain'][0]:.3f} |")
    return "\n".join(lines)


def write_doc(text, stamp):
    doc = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    s = open(doc).read()
    if BEGIN not in s or END not in s:
        sys.exit(f"quality: {doc} has no {BEGIN} ... {END} markers")
    a, b = s.index(BEGIN) + len(BEGIN), s.index(END)
    s = s[:a] + f"\n{stamp}\n\n{text}\n" + s[b:]
    with open(doc + ".tmp", "w") as f:
        f.write(s)
    os.replace(doc + ".tmp", doc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--types", default="q8_0,q4_0,q4_1")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-llamacpp", action="store_true")
    ap.add_argument("--json-out")
    ap.add_argument("--from-json", help="re-render a saved result")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--reuse-files", action="store_true",
                    help="keep files of an earlier run that are newer than ee-model")
    ap.add_argument("--reuse-scores", action="store_true",
                    help="take the files and scores of the last run (.cache/quality/scores.json)"
                         " and run only the llama.cpp check and the speed runs")
    args = ap.parse_args()
    if args.from_json:
        res = json.load(open(args.from_json))
    else:
        os.makedirs(WORK, exist_ok=True)
        b = Bench(args)
        text = corpus()
        types = [t for t in args.types.split(",") if t]
        scores = os.path.join(WORK, "scores.json")
        tok_json = os.path.join(WORK, "chunks.json")
        if args.reuse_scores:
            res = json.load(open(scores))
            b.ref = b.path("plain-f32")
            for r in res["rows"]:
                r["path"] = b.path(r["name"])
        else:
            log("building files")
            rows = b.files(types)
            res = {"rows": [], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
            for r in rows:
                q = b.score(r, text, tok_json if not res["rows"] else None)
                r["quality"] = q
                r["mb"] = os.path.getsize(r["path"]) / 1e6
                res.update(ppl_ref=q["ppl_ref"], scored=q["scored"], chunks=q["chunks"],
                           ctx=q["ctx"])
                log(f"  {r['name']:18s} ppl {q['ppl']:.3f} kld {q['kld_mean']:.5f} "
                    f"same {q['same_top']:.3f}")
                res["rows"].append(r)
            with open(scores + ".tmp", "w") as f:  # a checkpoint: the slow part is done
                json.dump(res, f, indent=1)
            os.replace(scores + ".tmp", scores)
        if not args.no_llamacpp:
            for r in res["rows"]:
                if not r["enc"]:
                    k, s = llamacpp_kld(b.ref, r["path"], tok_json, args.threads)
                    r["llamacpp_kld"], r["llamacpp_same_top"] = k, s
                    log(f"  llama.cpp {r['name']:18s} kld {k:.5f} same {s:.3f}")
        prompt = ",".join(str(i) for i in range(1, 65))
        res["speed"] = []
        for t in (types if args.reps > 0 else []):
            plain, enc = b.path(f"plain-{t}"), b.path(f"enc-{t}")
            ps, es = [], []
            # The encrypted side runs on encrypted ids; any ids do for speed.
            for _ in range(args.reps):
                ps.append(b.speed(plain, prompt))
                es.append(b.speed(enc, prompt))
            med = lambda v, i: statistics.median(x[i] for x in v)
            res["speed"].append(dict(type=t, plain=[med(ps, 0), med(ps, 1)],
                                     enc=[med(es, 0), med(es, 1)]))
            log(f"  speed {t}: plain {res['speed'][-1]['plain']} enc {res['speed'][-1]['enc']}")
        for r in res["rows"]:
            r.pop("path", None)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(res, f, indent=1)
    out = table(res)
    print(out)
    if args.write:
        write_doc(out, f"Run of {res['date']} (`make bench-quality`; 64-token prompt, 128 "
                       f"generated, {args.threads} threads, median of {args.reps}):")


if __name__ == "__main__":
    main()
