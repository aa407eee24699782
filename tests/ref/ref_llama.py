#!/usr/bin/env python3
"""Reference outputs for the Llama forward pass (test oracle).

Modes:
  ref_llama.py --model M.gguf --out-dir D
      Model tier (run by tests/ref/make-refs.sh). Writes
        D/llama_logits.json + D/llama_logits.bin  float32 LE [3][32][n_vocab]:
            full logits at positions 0..31 of 3 prompts
        D/llama_greedy.json  5 chat prompts x 64 greedy tokens (EOS ignored),
            with the top1-top2 logit margin and runner-up id per step
      Skips the work when the outputs are newer than the model and the scripts.
  ref_llama.py --model M.gguf --tokens 1,2,3 --dump-logits out.bin
      All-position logits float32 LE [T][n_vocab] for arbitrary ids (for C unit
      tests on synthetic models). Prints {"n_tokens": T, "n_vocab": V} on stdout.
  ref_llama.py --model M.gguf --check-llamacpp
      Self-check of this reference against llama-cpp-python (not part of the
      test suite; needs llama_cpp importable).
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_np import Llama, write_f32_copy  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = [os.path.join(HERE, f) for f in ("ref_llama.py", "llama_np.py", "hf_tok.py")]
N_POS = 32          # logits positions per prompt
N_GEN = 64          # greedy tokens per prompt

# Logits prompts: plain prose, chat-formatted, and code/digits/punctuation.
# Each must tokenize to >= N_POS tokens (checked at run time).
LOGIT_PROMPTS = [
    ("text", "The history of astronomy is long and rich. Ancient civilizations tracked "
             "the motions of the Sun, the Moon and the planets, built calendars around "
             "them, and tried to explain why the sky changes with the seasons."),
    ("chat", "Can you explain how a refrigerator keeps food cold?"),
    ("code", "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
             "    return a\n\nprint([fibonacci(i) for i in range(12)])  # 0, 1, 1, 2, 3, 5, 8\n"),
]

# Greedy prompts: all chat-formatted, varied tasks.
GREEDY_PROMPTS = [
    "What is the capital of France?",
    "Write a short poem about the ocean.",
    "List three tips for learning a new programming language.",
    "If I have 3 apples and buy 5 more, how many apples do I have?",
    "Translate 'Good morning, how are you?' into French and Spanish.",
]


def log(msg):
    print(f"[ref_llama] {msg}", file=sys.stderr, flush=True)


def tokenizer_for(model):
    from hf_tok import load_tokenizer, chat_prompt
    return load_tokenizer(model), chat_prompt


def write_atomic(path, data, mode="w"):
    tmp = path + ".tmp"
    with open(tmp, mode) as f:
        f.write(data)
    os.replace(tmp, path)


def up_to_date(outputs, inputs):
    if not all(os.path.exists(p) for p in outputs):
        return False
    return min(os.path.getmtime(p) for p in outputs) > max(os.path.getmtime(p) for p in inputs)


def logit_prompt_ids(tok, chat_prompt):
    out = []
    for name, text in LOGIT_PROMPTS:
        full = chat_prompt(text) if name == "chat" else text
        ids = tok.encode(full).ids
        if len(ids) < N_POS:
            raise SystemExit(f"logits prompt {name!r} has only {len(ids)} tokens (< {N_POS})")
        out.append((name, full, ids[:N_POS]))
    return out


def greedy_prompt_ids(tok, chat_prompt):
    return [(u, tok.encode(chat_prompt(u)).ids) for u in GREEDY_PROMPTS]


def model_tier(args):
    outs = [os.path.join(args.out_dir, f) for f in
            ("llama_logits.json", "llama_logits.bin", "llama_greedy.json")]
    if up_to_date(outs, [args.model] + SCRIPTS):
        log("outputs up to date, skipping")
        return
    os.makedirs(args.out_dir, exist_ok=True)
    t0 = time.time()
    m = Llama(args.model)
    tok, chat_prompt = tokenizer_for(args.model)
    log(f"loaded {args.model} in {time.time() - t0:.1f}s: {m.cfg}")
    c = m.cfg
    cfg = {k: v for k, v in vars(c).items()}

    # -- logits at the first N_POS positions of 3 prompts
    t1 = time.time()
    prompts = logit_prompt_ids(tok, chat_prompt)
    blocks = []
    for name, text, ids in prompts:
        m.reset()
        blocks.append(m.forward(ids))
    arr = np.stack(blocks).astype("<f4")                   # [3][N_POS][n_vocab]
    write_atomic(outs[1], arr.tobytes(), "wb")
    meta = {
        "reference": "tests/ref/llama_np.py numpy float32 forward pass",
        "model": os.path.basename(args.model),
        "config": cfg,
        "n_vocab": c.n_vocab,
        "n_prompts": len(prompts),
        "positions": N_POS,
        "dtype": "float32",
        "byte_order": "little",
        "shape": list(arr.shape),
        "layout": "logits[prompt][position][vocab], row-major",
        "prompts": [{"name": n, "text": t, "tokens": [int(i) for i in ids],
                     "argmax": [int(a) for a in b.argmax(axis=1)]}
                    for (n, t, ids), b in zip(prompts, blocks)],
    }
    write_atomic(outs[0], json.dumps(meta, indent=1) + "\n")
    log(f"logits: {arr.shape} in {time.time() - t1:.1f}s")

    # -- greedy generation, exactly N_GEN tokens, EOS ignored
    t2 = time.time()
    runs = []
    for user, ids in greedy_prompt_ids(tok, chat_prompt):
        gen, margins, runner_up = m.greedy(ids, N_GEN)
        runs.append({"user": user, "prompt_tokens": [int(i) for i in ids],
                     "tokens": gen, "margins": margins, "runner_up": runner_up,
                     "text": tok.decode(gen, skip_special_tokens=False)})
    greedy = {
        "reference": "tests/ref/llama_np.py numpy float32 forward pass",
        "model": os.path.basename(args.model),
        "n_new": N_GEN,
        "ignore_eos": True,
        "note": "margins[i] = top1 - top2 logit before choosing tokens[i]; "
                "runner_up[i] = the top2 id; ties break to the lowest id",
        "runs": runs,
    }
    write_atomic(outs[2], json.dumps(greedy, indent=1) + "\n")
    log(f"greedy: {len(runs)} x {N_GEN} tokens in {time.time() - t2:.1f}s")
    log(f"total {time.time() - t0:.1f}s")


def dump_logits(args):
    ids = [int(x) for x in args.tokens.split(",") if x.strip() != ""]
    m = Llama(args.model)
    logits = m.forward(ids).astype("<f4")
    write_atomic(args.dump_logits, logits.tobytes(), "wb")
    print(json.dumps({"n_tokens": len(ids), "n_vocab": m.cfg.n_vocab}))


def check_llamacpp(args):
    """Compare this reference against llama.cpp (llama-cpp-python).

    1) the given file as llama.cpp runs it by default (f16 KV cache; quantized
       weights are multiplied against Q8_1-quantized activations): close, not exact.
    2) an F32 copy of the file (the same dequantized weights this reference
       uses) with an F32 KV cache: should agree to float32 rounding.
    """
    from llama_cpp import Llama as LC
    tok, chat_prompt = tokenizer_for(args.model)
    m = Llama(args.model)
    prompts = logit_prompt_ids(tok, chat_prompt)
    refs = []
    for _, _, ids in prompts:
        m.reset()
        refs.append(m.forward(ids))

    greedy_refs = [(user, ids) + m.greedy(ids, N_GEN)[:2]
                   for user, ids in greedy_prompt_ids(tok, chat_prompt)]

    def compare(path, label, **kw):
        lc = LC(path, n_ctx=512, n_batch=512, logits_all=True, verbose=False, **kw)
        print(f"== {label}")
        for (name, _, ids), ref in zip(prompts, refs):
            lc.reset()
            lc.eval(ids)
            got = np.array(lc.scores[:len(ids)], dtype=np.float32)
            d = np.abs(ref - got)
            cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
            agree = (ref.argmax(1) == got.argmax(1)).mean()
            print(f"  {name:5s} max|d|={d.max():.4g} mean|d|={d.mean():.4g} "
                  f"(logit std {ref.std():.3g}) min cos={cos.min():.6f} argmax agree={agree:.3f}")
        # greedy agreement: tokens matching before the first divergence
        print(f"  greedy ({N_GEN} tokens, EOS ignored): common prefix / reference margin at the split")
        for user, ids, ref_gen, margins in greedy_refs:
            lc.reset()
            lc.eval(ids)
            got = []
            for _ in range(N_GEN):
                nxt = int(np.argmax(lc.scores[lc.n_tokens - 1]))
                got.append(nxt)
                lc.eval([nxt])
            k = next((i for i, (a, b) in enumerate(zip(ref_gen, got)) if a != b), N_GEN)
            why = f", margin {margins[k]:.3f}" if k < N_GEN else ""
            print(f"    {k:2d}/{N_GEN}{why}  ({user[:40]})")

    compare(args.model, f"{os.path.basename(args.model)}, llama.cpp defaults (f16 KV cache)")
    with tempfile.TemporaryDirectory() as td:
        f32 = os.path.join(td, "f32.gguf")
        write_f32_copy(args.model, f32)
        compare(f32, "F32 copy of the same weights, llama.cpp with F32 KV cache",
                type_k=0, type_v=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out-dir")
    ap.add_argument("--tokens", help="comma-separated token ids (with --dump-logits)")
    ap.add_argument("--dump-logits", help="output file for --tokens mode")
    ap.add_argument("--check-llamacpp", action="store_true")
    args = ap.parse_args()
    if args.check_llamacpp:
        check_llamacpp(args)
    elif args.tokens is not None or args.dump_logits:
        if not (args.tokens and args.dump_logits):
            ap.error("--tokens and --dump-logits go together")
        dump_logits(args)
    elif args.out_dir:
        model_tier(args)
    else:
        ap.error("need --out-dir, --tokens/--dump-logits or --check-llamacpp")


if __name__ == "__main__":
    main()
