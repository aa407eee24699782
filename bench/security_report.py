#!/usr/bin/env python3
"""Measured threat table for EE on SmolLM2 (make security-report).

For each adversary class, what it recovers and at what cost, measured in one
run on this machine. The attacks on weights are the product's own audit
(`ee-model audit`, C); this script drives it and runs the two statistical
attacks that need no weights:

1. worker with the encrypted model and the public weights: `ee-model audit`
   on the f32 and f16 encrypted files;
2. worker with a private fine-tune of a public base: the same audit against
   public weights perturbed by Gaussian noise of eps x each tensor's std
   (`--perturb`; the noise sits on the attacker's side, which for this
   attack is the same as on the private side);
3. traffic-only observer (broker operator, log reader; no weights): the chat
   template as known plaintext, then frequency analysis of the encrypted ids
   of N requests (unigram ranks, then bigram hill climbing) against token
   statistics of held-out text;
4. worker with private weights and no public relative: the encrypted model
   as a language-model oracle in cipher space (samples drawn from it) adds
   cipher-space statistics to the traffic attack.

Corpus: Debian's `fortunes` package (pinned by SHA-256 of the text): one
fortune per prompt, split by a hash of the text into a victim pool (prompts
sent through the service) and a held-out reference (the attacker's
statistics). Prints a Markdown table; --write puts it into docs/SECURITY.md
between the security-report markers; --json-out keeps every number.
"""
import argparse
import collections
import glob
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORTUNES = "/usr/share/games/fortunes"
FORTUNES_SHA256 = None  # filled below from the pinned value file
PIN = os.path.join(ROOT, "bench", "security_corpus.sha256")
BEGIN, END = "<!-- security-report:begin -->", "<!-- security-report:end -->"


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"security-report: command failed ({r.returncode}): {' '.join(cmd[:6])} ...\n"
                 f"{r.stderr[-1500:]}")
    return r


# ---- corpus ------------------------------------------------------------------------

def load_corpus():
    files = sorted(f for f in glob.glob(os.path.join(FORTUNES, "*"))
                   if os.path.isfile(f) and not f.endswith((".dat", ".u8"))
                   and "ascii-art" not in f and not os.path.islink(f))
    if not files:
        sys.exit(f"security-report: no fortunes under {FORTUNES} (Debian package 'fortunes'; "
                 "scripts/install-deps.sh installs it)")
    h = hashlib.sha256()
    texts = []
    for f in files:
        raw = open(f, "rb").read()
        h.update(os.path.basename(f).encode() + b"\0" + raw)
        for chunk in raw.decode("utf-8", "replace").split("\n%\n"):
            t = " ".join(chunk.replace("%", " ").split())
            if 20 <= len(t) <= 600:
                texts.append(t)
    digest = h.hexdigest()
    want = open(PIN).read().split()[0] if os.path.exists(PIN) else None
    if want and want != digest:
        sys.exit(f"security-report: corpus checksum {digest} != pinned {want} ({PIN}); the "
                 "fortunes package changed: check it and update the pin")
    victim, reference = [], []
    for t in texts:
        (reference if hashlib.sha256(t.encode()).digest()[0] < 64 else victim).append(t)
    return victim, reference, digest, len(files)


def tokenize(ee, model, lines, d, name, chat=False, key=None):
    path = os.path.join(d, name + ".txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    cmd = [ee, "tokenize", "--model", model, "--prompts-file", path]
    if chat:
        cmd.append("--chat")
    if key:
        cmd += ["--key", key]
    out = run(cmd).stdout.rstrip("\n").split("\n")
    assert len(out) == len(lines), (len(out), len(lines))
    return [[int(x) for x in l.split(",")] if l else [] for l in out]


# ---- class 3/4: statistical attacks on traffic -----------------------------------------

def template_parts(ee, model, d):
    """Plaintext ids of the chat template around a prompt, from public info
    (the model's template): prefix and suffix."""
    mark = "zqxj"
    full = tokenize(ee, model, [mark], d, "tmpl", chat=True)[0]
    bare = tokenize(ee, model, [mark], d, "tmplbare")[0]
    for i in range(len(full) - len(bare) + 1):
        if full[i:i + len(bare)] == bare:
            return full[:i], full[i + len(bare):]
    sys.exit("security-report: could not locate the prompt inside the chat template")


def known_plaintext(cipher_reqs, prefix, suffix):
    """Cipher -> plain from the template positions every request shares."""
    m = {}
    for req in cipher_reqs:
        for c, p in zip(req[:len(prefix)], prefix):
            m[c] = p
        if suffix:
            for c, p in zip(req[-len(suffix):], suffix):
                m[c] = p
    return m


def content(req, prefix, suffix):
    return req[len(prefix):len(req) - len(suffix)]


def unigram_attack(cipher_seqs, ref_counts, known):
    """Rank matching of cipher-id frequencies to reference frequencies, after
    the known-plaintext pairs."""
    cc = collections.Counter(c for s in cipher_seqs for c in s)
    m = dict(known)
    used = set(m.values())
    plain_rank = [p for p, _ in ref_counts.most_common() if p not in used]
    it = iter(plain_rank)
    for c, _ in cc.most_common():
        if c in m:
            continue
        p = next(it, None)
        if p is None:
            break
        m[c] = p
    return m


def bigram_refine(cipher_seqs, ref_seqs, m, known, top=300, passes=3):
    """Hill climbing on the bigram log-likelihood: swap the plaintext images
    of two frequent cipher ids when that makes the cipher bigrams more
    likely under the reference bigram model (classical substitution-cipher
    solving; Nuhn et al. 2013 use beam search instead)."""
    cc = collections.Counter(c for s in cipher_seqs for c in s)
    cids = [c for c, _ in cc.most_common() if c not in known][:top]
    K = len(cids)
    if K < 3:
        return m
    idx = {c: i for i, c in enumerate(cids)}
    C = np.zeros((K, K))
    for s in cipher_seqs:
        for a, b in zip(s, s[1:]):
            ia, ib = idx.get(a), idx.get(b)
            if ia is not None and ib is not None:
                C[ia, ib] += 1
    cand = [m[c] for c in cids]  # the images permuted among themselves
    pidx = {p: i for i, p in enumerate(cand)}
    R = np.full((K, K), 0.1)  # add-0.1 smoothing
    for s in ref_seqs:
        for a, b in zip(s, s[1:]):
            ia, ib = pidx.get(a), pidx.get(b)
            if ia is not None and ib is not None:
                R[ia, ib] += 1
    # Joint bigram probabilities: a conditional model would reward mapping a
    # frequent cipher id onto a rare token (whose smoothed row is flat).
    L = np.log(R / R.sum())
    perm = np.arange(K)  # cipher i -> candidate perm[i]

    def part(pm, ij):  # every term of rows i, j and columns i, j, once
        rows = (C[ij, :] * L[pm[ij]][:, pm]).sum()
        cols = (C[:, ij] * L[pm][:, pm[ij]]).sum()
        cross = (C[np.ix_(ij, ij)] * L[np.ix_(pm[ij], pm[ij])]).sum()
        return rows + cols - cross

    for _ in range(passes):
        improved = 0
        for i in range(K):
            for j in range(i + 1, K):
                if C[i].sum() + C[:, i].sum() + C[j].sum() + C[:, j].sum() == 0:
                    continue
                ij = np.array([i, j])
                old = part(perm, ij)
                perm[i], perm[j] = perm[j], perm[i]
                if part(perm, ij) > old + 1e-9:
                    improved += 1
                else:
                    perm[i], perm[j] = perm[j], perm[i]
        if not improved:
            break
    out = dict(m)
    for c, i in idx.items():
        out[c] = cand[perm[i]]
    return out


def score(m, cipher_seqs, plain_seqs):
    tot = ok = 0
    for cs, ps in zip(cipher_seqs, plain_seqs):
        for c, p in zip(cs, ps):
            tot += 1
            ok += m.get(c) == p
    return ok / max(tot, 1), tot


# ---- report ------------------------------------------------------------------------

def audit(ee, enc, model, key, extra=()):
    r = run([ee, "audit", "--model", enc, "--public", model, "--key", key, "--json",
             "--threads", "2", *extra])
    return json.loads(r.stdout)


def class1_quantized(ee, args, res, key, d, secret):
    """Class 1 on block-quantized encrypted files: rounding acts like noise
    on the weights the worker holds, so it must not pass for a defence."""
    ids = tokenize(ee, args.model, [secret], d, "secretq", chat=True, key=key)[0]
    res["class1_quantized"] = {"date": time.strftime("%Y-%m-%d")}
    for t in [x for x in args.quantized.split(",") if x]:
        enc = os.path.join(d, f"enc-{t}.gguf")
        run([ee, "encrypt", "--model", args.model, "--key", key, "--out", enc, "--type", t])
        a = audit(ee, enc, args.model, key, ["--tokens", ",".join(map(str, ids))])
        a["secret_prompt_recovered"] = secret in a.get("text", "")
        res["class1_quantized"][t] = a
        print(f"class 1 ({t}): vocab {a['vocab_recovered']:.4f} (correct "
              f"{a['vocab_correct']:.4f}) in {a['seconds']:.1f} s", file=sys.stderr)
        os.unlink(enc)


def class1_encoder(ee, args, res, key, d):
    """Class 1 (and the fine-tune curve) on the encoder, ee-bert-v1: its
    residual stream can only be permuted, so public weights expose it."""
    enc = os.path.join(d, "enc-minilm.gguf")
    run([ee, "encrypt", "--model", args.encoder, "--key", key, "--out", enc])
    secret = "my secret diagnosis is type 2 diabetes"
    q = json.loads(run([ee, "embed", "--model", enc, "--key", key, "--plain-model", args.encoder,
                        "--text", secret, "--show-ciphertext", "--json"]).stdout)
    ce = {"date": time.strftime("%Y-%m-%d"), "secret": secret, "runs": []}
    for eps in [0.0] + [float(x) for x in args.encoder_eps.split(",") if x]:
        extra = ["--tokens", ",".join(map(str, q["encrypted_tokens"]))]
        if eps > 0:
            extra += ["--perturb", str(eps), "--seed", "1"]
        a = audit(ee, enc, args.encoder, key, extra)
        a["secret_recovered"] = secret in a.get("text", "")
        ce["runs"].append(a)
        print(f"class 1e (eps {eps:g}): residual perm {a.get('residual_perm_correct', -1):.4f} correct, "
              f"vocab {a['vocab_recovered']:.4f} (correct {a['vocab_correct']:.4f}), secret "
              f"{'decrypted' if a['secret_recovered'] else 'not decrypted'} in {a['seconds']:.1f} s",
              file=sys.stderr)
    res["class1_encoder"] = ce
    os.unlink(enc)


def class5_cnn(ee, args, res, key, d):
    """Class 5: the digits CNN (ee-cnn-v1). The client sends the encrypted
    feature map of its stem; what a worker reconstructs of the secret image
    from it, with and without the public weights (ee-model audit on the
    360 test images), and, as the control, with the weights of another
    training run of the same shape."""
    enc = os.path.join(d, "enc-cnn.gguf")
    run([ee, "encrypt", "--model", args.cnn, "--key", key, "--out", enc])
    base = ["--model", enc, "--key", key, "--test-set", args.cnn_test, "--json"]
    a = json.loads(run([ee, "audit", *base, "--public", args.cnn]).stdout)
    other = os.path.join(d, "cnn-other.gguf")
    run([sys.executable, os.path.join(ROOT, "tools", "train_cnn.py"), "--seed", "14",
         "--out-model", other, "--out-test", os.path.join(d, "cnn-other-test.gguf")])
    o = json.loads(run([ee, "audit", *base, "--public", other, "--plain-model", args.cnn]).stdout)
    res["class5_cnn"] = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "audit": a,
                         "other_weights": o["attack_b"]}
    best = a["attack_a"][a["attack_a"]["best"]]
    print(f"class 5 (cnn): B max err {a['attack_b']['max_abs_err']:.2g}, readable "
          f"{a['attack_b']['accuracy']:.3f}; A ({a['attack_a']['best']}) readable {best['accuracy']:.3f}, "
          f"corr {best['corr_median']:.3f}; other weights: perm0 {o['attack_b']['perm0_correct']:.2f}",
          file=sys.stderr)
    os.unlink(enc)


def merge_one(ee, args, base, measure):
    """Measure one class (measure(ee, args, res, key, d)) under a fresh key,
    merged into the earlier run's JSON `base`; write --json-out, render."""
    res = json.load(open(base))
    with tempfile.TemporaryDirectory(prefix="ee-secrep-") as d:
        key = os.path.join(d, "k.eekey")
        run([ee, "keygen", "--out", key])
        measure(ee, args, res, key, d)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            json.dump(res, f, indent=1)
    finish(res, args)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--eps", default="0.01,0.02,0.05,0.1,0.2,0.5,1.0")
    ap.add_argument("--requests", default="100,1000,10000")
    ap.add_argument("--samples", type=int, default=24, help="class 4: sequences drawn")
    ap.add_argument("--write", action="store_true", help="update docs/SECURITY.md")
    ap.add_argument("--json-out")
    ap.add_argument("--from-json", help="render the table of an earlier --json-out, measuring nothing")
    ap.add_argument("--quantized", default="q8_0,q4_0,q4_1",
                    help="class 1 is also measured on encrypted files of these block types")
    ap.add_argument("--quantized-into", metavar="BASE_JSON",
                    help="measure only class 1 on the --quantized types and merge it into an "
                         "earlier --json-out (the other rows keep their measured date)")
    ap.add_argument("--encoder", default=os.path.join(ROOT, ".cache", "models", "all-MiniLM-L6-v2.gguf"),
                    help="the encoder class 1e is measured on (make minilm)")
    ap.add_argument("--encoder-eps", default="0.1,0.5,1.0")
    ap.add_argument("--encoder-into", metavar="BASE_JSON",
                    help="measure only class 1e (the encoder) and merge it into an earlier --json-out")
    ap.add_argument("--cnn", default=os.path.join(ROOT, ".cache", "models", "eecnn-digits.gguf"),
                    help="the digits CNN class 5 is measured on (make cnn)")
    ap.add_argument("--cnn-test", default=os.path.join(ROOT, ".cache", "models", "eecnn-digits-test.gguf"))
    ap.add_argument("--cnn-into", metavar="BASE_JSON",
                    help="measure only class 5 (the CNN) and merge it into an earlier --json-out")
    args = ap.parse_args()
    ee = os.path.join(args.bin, "ee-model")
    for base, measure in ((args.cnn_into, class5_cnn), (args.encoder_into, class1_encoder)):
        if base:  # measure one class, merge it into an earlier run, render
            merge_one(ee, args, base, measure)
            return
    if not args.model and not args.from_json:
        sys.exit("security-report: --model PLAIN.gguf is required")
    if args.from_json:  # re-render a measured run (no measuring)
        res = json.load(open(args.from_json))
        finish(res, args)
        return
    if args.quantized_into:
        res = json.load(open(args.quantized_into))
        victim, _, _, _ = load_corpus()
        with tempfile.TemporaryDirectory(prefix="ee-secrep-") as d:
            key = os.path.join(d, "k.eekey")
            run([ee, "keygen", "--out", key])
            class1_quantized(ee, args, res, key, d, victim[7])
        if args.json_out:
            os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
            with open(args.json_out, "w") as f:
                json.dump(res, f, indent=1)
        finish(res, args)
        return
    res = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    victim, reference, digest, nfiles = load_corpus()
    res["corpus"] = {"sha256": digest, "files": nfiles, "victim": len(victim),
                     "reference": len(reference)}
    print(f"corpus: Debian fortunes, {nfiles} files, sha256 {digest[:16]}..., "
          f"{len(victim)} victim prompts, {len(reference)} held-out reference texts",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="ee-secrep-") as d:
        key = os.path.join(d, "k.eekey")
        run([ee, "keygen", "--out", key])
        encs = {}
        for t in ("f32", "f16"):
            encs[t] = os.path.join(d, f"enc-{t}.gguf")
            run([ee, "encrypt", "--model", args.model, "--key", key, "--out", encs[t],
                 "--type", t])
        # class 1
        secret = victim[7]
        ids = tokenize(ee, args.model, [secret], d, "secret", chat=True, key=key)[0]
        res["class1"] = {}
        for t in ("f32", "f16"):
            a = audit(ee, encs[t], args.model, key, ["--tokens", ",".join(map(str, ids))])
            res["class1"][t] = a
            print(f"class 1 ({t}): vocab {a['vocab_recovered']:.4f} (correct "
                  f"{a['vocab_correct']:.4f}) in {a['seconds']:.1f} s", file=sys.stderr)
        res["class1"]["secret_prompt_recovered"] = secret in res["class1"]["f32"].get("text", "")
        class1_quantized(ee, args, res, key, d, secret)
        if os.path.exists(args.encoder):
            class1_encoder(ee, args, res, key, d)
        if os.path.exists(args.cnn):
            class5_cnn(ee, args, res, key, d)
        # class 2
        res["class2"] = []
        for e in (float(x) for x in args.eps.split(",")):
            a = audit(ee, encs["f32"], args.model, key, ["--perturb", str(e), "--seed", "1"])
            res["class2"].append(a)
            print(f"class 2 eps {e}: vocab {a['vocab_recovered']:.4f} (correct "
                  f"{a['vocab_correct']:.4f}) rot residual {a['rotation_residual']:.3f} "
                  f"in {a['seconds']:.1f} s", file=sys.stderr)
        # class 3
        Ns = [int(x) for x in args.requests.split(",")]
        nmax = max(Ns)
        if nmax > len(victim):
            sys.exit(f"security-report: {nmax} requests asked, corpus has {len(victim)}")
        t0 = time.time()
        plain_req = tokenize(ee, args.model, victim[:nmax], d, "victim", chat=True)
        cipher_req = tokenize(ee, args.model, victim[:nmax], d, "victimenc", chat=True, key=key)
        ref_seqs = tokenize(ee, args.model, reference, d, "reference")
        ref_counts = collections.Counter(p for s in ref_seqs for p in s)
        prefix, suffix = template_parts(ee, args.model, d)
        res["class3"] = []
        for n in Ns:
            cr, pr = cipher_req[:n], plain_req[:n]
            known = known_plaintext(cr, prefix, suffix)
            cc = [content(r, prefix, suffix) for r in cr]
            pc = [content(r, prefix, suffix) for r in pr]
            m1 = unigram_attack(cc, ref_counts, known)
            m2 = bigram_refine(cc, ref_seqs, m1, known)
            all1, tot_all = score(m1, cr, pr)
            c1, tot_c = score(m1, cc, pc)
            c2, _ = score(m2, cc, pc)
            all2, _ = score(m2, cr, pr)
            row = {"requests": n, "tokens": tot_all, "content_tokens": tot_c,
                   "template_ids_known": len(known), "all_unigram": all1, "content_unigram": c1,
                   "content_bigram": c2, "all_bigram": all2}
            res["class3"].append(row)
            print(f"class 3 N={n}: content {c1:.3f} -> {c2:.3f} (bigram), all {all2:.3f}",
                  file=sys.stderr)
        res["class3_seconds"] = time.time() - t0
        # class 4: the encrypted model as a cipher-space LM oracle
        t0 = time.time()
        stop = json.loads(run([ee, "info", "--model", encs["f32"], "--json"]).stdout)
        starts = stop.get("stop_ids") or []
        samples = []
        for s in range(args.samples):
            st = starts[s % len(starts)] if starts else 0
            g = json.loads(run([ee, "generate", "--model", encs["f32"], "--tokens", str(st),
                                "--max-tokens", "200", "--temperature", "1.0", "--seed", str(s + 1),
                                "--ignore-eos", "--threads", "2", "--json"]).stdout)
            samples.append(g["tokens"])
        n = 1000
        cr, pr = cipher_req[:n], plain_req[:n]
        known = known_plaintext(cr, prefix, suffix)
        cc = [content(r, prefix, suffix) for r in cr]
        pc = [content(r, prefix, suffix) for r in pr]
        oracle_only = unigram_attack(samples, ref_counts, {})
        both = unigram_attack(cc + samples, ref_counts, known)
        both2 = bigram_refine(cc + samples, ref_seqs, both, known)
        res["class4"] = {"samples": len(samples), "sample_tokens": sum(map(len, samples)),
                         "requests": n,
                         "oracle_only": score(oracle_only, cc, pc)[0],
                         "oracle_plus_traffic": score(both, cc, pc)[0],
                         "oracle_plus_traffic_bigram": score(both2, cc, pc)[0],
                         "seconds": time.time() - t0}
        print(f"class 4: oracle only {res['class4']['oracle_only']:.3f}, with traffic "
              f"{res['class4']['oracle_plus_traffic_bigram']:.3f}", file=sys.stderr)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            json.dump(res, f, indent=1)
    finish(res, args)


def machine():
    name = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} vCPU"


def finish(res, args):
    table = render(res, args)
    print(table)
    if args.write:
        p = os.path.join(ROOT, "docs", "SECURITY.md")
        doc = open(p).read()
        if BEGIN not in doc or END not in doc:
            sys.exit(f"security-report: {p} has no {BEGIN} ... {END} block")
        a, b = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        with open(p + ".tmp", "w") as f:
            f.write(doc[:a] + "\n" + table + "\n" + doc[b:])
        os.replace(p + ".tmp", p)
        print(f"security-report: wrote {p}", file=sys.stderr)


def pct(x):
    return f"{100 * x:.2f}%" if x >= 0.99 or 0 < x < 0.001 else f"{100 * x:.1f}%"


def render(res, args):
    c1 = res["class1"]
    f32, f16 = c1["f32"], c1["f16"]
    L = []
    L.append(f"Measured {res['date']} on {res['machine']} (2 threads) by `make security-report` "
             f"(bench/security_report.py; corpus: Debian `fortunes`, sha256 "
             f"`{res['corpus']['sha256'][:16]}...`, {res['corpus']['victim']} victim prompts, "
             f"{res['corpus']['reference']} held-out reference texts). Scheme ee-llama-v2, "
             f"SmolLM2-135M-Instruct.")
    L.append("")
    L.append("| adversary | holds | attack | recovers | cost | defence |")
    L.append("|---|---|---|---|---|---|")
    L.append(f"| 1. worker with the public weights | encrypted GGUF + public SmolLM2 | `ee-model audit`: "
             f"sorted-Gram assignment + Procrustes, refined over all layers; nearest public row per "
             f"token | f32: **{pct(f32['vocab_recovered'])}** of the vocabulary ({pct(f32['vocab_correct'])} "
             f"correct), rotation residual {f32['rotation_residual']:.1g}, MLP permutations "
             f"{pct(f32['mlp_perm_recovered'])}, heads q/k/v {pct(f32['heads_q_recovered'])}/"
             f"{pct(f32['heads_k_recovered'])}/{pct(f32['heads_v_recovered'])}; f16: "
             f"{pct(f16['vocab_recovered'])}; a secret prompt decrypted "
             f"{'word for word' if c1['secret_prompt_recovered'] else 'NOT'} | "
             f"{f32['seconds']:.0f} s (f32), {f16['seconds']:.0f} s (f16), no key, no traffic | "
             f"none: EE does not protect against this class; use a model that is not public, "
             f"or TEEs/MPC |")
    cq = res.get("class1_quantized")
    if cq:
        qs = [t for t in cq if t != "date"]
        got = "; ".join(f"{t}: **{pct(cq[t]['vocab_recovered'])}** ({pct(cq[t]['vocab_correct'])} "
                        f"correct), secret prompt {'decrypted' if cq[t]['secret_prompt_recovered'] else 'NOT decrypted'}"
                        for t in qs)
        cost = ", ".join(f"{cq[t]['seconds']:.0f} s ({t})" for t in qs)
        L.append(f"| 1q. the same, quantized encrypted files (measured {cq['date']}) | encrypted "
                 f"{'/'.join(qs)} GGUF (`encrypt --type`) + public SmolLM2 | the same audit, "
                 f"unchanged: rounding is noise on the weights it aligns | {got} | {cost} | "
                 f"none: quantizing is not a defence |")
    ce = res.get("class1_encoder")
    if ce:
        r0 = ce["runs"][0]
        noisy = "; ".join(f"eps {a['perturb']:g}: permutation {pct(a.get('residual_perm_correct', 0))} correct, "
                          f"vocabulary {pct(a['vocab_correct'])} correct, query "
                          f"{'decrypted' if a['secret_recovered'] else 'not decrypted'}"
                          for a in ce["runs"][1:])
        L.append(f"| 1e. the same, the encoder (measured {ce['date']}) | encrypted all-MiniLM-L6-v2 "
                 f"(ee-bert-v1) + public MiniLM | `ee-model audit`: each residual coordinate's "
                 f"fingerprint (position/type columns, every gain and bias on the stream) + linear "
                 f"assignment; nearest public row per token, MLP row and head Gram | residual "
                 f"permutation **{pct(r0.get('residual_perm_correct', 0))}** correct, vocabulary "
                 f"**{pct(r0['vocab_recovered'])}** ({pct(r0['vocab_correct'])} correct), MLP "
                 f"{pct(r0['mlp_perm_recovered'])}, heads q/k/v {pct(r0['heads_q_recovered'])}/"
                 f"{pct(r0['heads_k_recovered'])}/{pct(r0['heads_v_recovered'])}; a secret query "
                 f"{'decrypted' if r0['secret_recovered'] else 'NOT decrypted'} word for word, and every "
                 f"embedding is the plaintext one permuted; perturbed: {noisy} | "
                 f"{r0['seconds']:.0f} s, no key, no traffic | none: post-LN leaves only a "
                 f"permutation of the stream (docs/EE.md); encrypted embeddings and queries are "
                 f"readable by a worker with the public weights |")
    c2 = res["class2"]
    curve = ", ".join(f"eps {a['perturb']:g}: {pct(a['vocab_recovered'])}" for a in c2)
    boundary = next((a for a in c2 if a["vocab_recovered"] < 0.5), None)
    last_ok = [a for a in c2 if a["vocab_recovered"] >= 0.9]
    L.append(f"| 2. worker with a private fine-tune of a public base | encrypted fine-tune + public "
             f"base | the same audit; fine-tune simulated as Gaussian noise of eps x std on every "
             f"weight | {curve} | {c2[0]['seconds']:.0f}-{max(a['seconds'] for a in c2):.0f} s each | "
             + (f"none up to eps {last_ok[-1]['perturb']:g} ({pct(last_ok[-1]['vocab_recovered'])}"
                f" recovered); recovery falls below half at eps {boundary['perturb']:g}. Whether a "
                f"real fine-tune is that far from its base is measured by running the audit "
                f"against the base" if boundary is not None and last_ok else
                f"none measured: even eps {c2[-1]['perturb']:g} is recovered")
             + " |")
    c3 = res["class3"]
    s3 = ", ".join(f"N={r['requests']}: {pct(r['content_unigram'])} / {pct(r['content_bigram'])}"
                   for r in c3)
    L.append(f"| 3. traffic-only observer (broker, disk, log reader) | encrypted ids of N requests, "
             f"no weights | chat template as known plaintext ({c3[-1]['template_ids_known']} ids), "
             f"then frequency analysis (unigram ranks + bigram hill climbing vs held-out text) | "
             f"prompt tokens (unigram / + bigram): {s3}; with the template tokens: {pct(c3[-1]['all_bigram'])} at "
             f"N={c3[-1]['requests']} | {res['class3_seconds']:.0f} s for all N | sealed and signed "
             f"jobs (`require_sealed`, `require_signed`; docs/PROTOCOL.md): the broker's log "
             f"segments then hold no ids (tests/integration/sealed.sh) |")
    c4 = res["class4"]
    L.append(f"| 4. worker with private weights, no public relative | encrypted model + traffic | "
             f"the model as a cipher-space LM oracle ({c4['samples']} samples, "
             f"{c4['sample_tokens']} tokens) + {c4['requests']} requests, frequency analysis | "
             f"oracle alone: {pct(c4['oracle_only'])}; with traffic: "
             f"{pct(c4['oracle_plus_traffic'])} / {pct(c4['oracle_plus_traffic_bigram'])} "
             f"(unigram / + bigram) of prompt tokens | {c4['seconds']:.0f} s | "
             f"what EE is for; a stronger decipherment (LM-guided, Kambhatla et al. 2018) may do "
             f"better |")
    c5 = res.get("class5_cnn")
    if c5:
        a, o = c5["audit"], c5["other_weights"]
        A, B = a["attack_a"], a["attack_b"]
        one, many = A[A["best_one_map"]], A[A["best"]]
        n = a["count"]
        L.append(f"| 5. image classifier (digits CNN, ee-cnn-v1; measured {c5['date']}): worker with "
                 f"the public weights | encrypted file without the stem + public plaintext model + "
                 f"the encrypted feature maps of {n} test images | `ee-model audit` (eecnn): stem "
                 f"permutation from the 3x3 kernel directions of block 1 (linear assignment), scales "
                 f"from a log least-squares fit, each image by least squares over the active map "
                 f"entries | permutations {pct(B['perm0_correct'])}/{pct(B['perm1_correct'])} correct; "
                 f"**every image reconstructed**, max abs pixel error {B['max_abs_err']:.1g}; the "
                 f"plaintext model reads {pct(B['accuracy'])} of the reconstructions "
                 f"({pct(a['accuracy_true_images'])} of the true images). Control, another training "
                 f"run's weights as \"public\": {pct(o['perm0_correct'])} of the permutation, "
                 f"{pct(o['accuracy'])} read | {B['seconds']:.1f} s for {n} images, no key | none: "
                 f"EE does not hide the image from this class |")
        L.append(f"| 5b. the same model, a worker without the weights (private weights), or anyone "
                 f"who reads the requests | the encrypted feature maps only (no weights) | blind "
                 f"deconvolution: each channel is s relu(w * x + b) for an unknown 3x3 filter; "
                 f"filters and image fitted together by alternating least squares, from one map, "
                 f"or from many maps sharing the filters (simple channel statistics for comparison) "
                 f"| from {many['maps']} maps: the plaintext model reads **{pct(many['accuracy'])}** "
                 f"of the pictures, median correlation {many['corr_median']:.2f}; from one map: "
                 f"{pct(one['accuracy'])}, {one['corr_median']:.2f}; channel mean: "
                 f"{pct(A['channel_mean']['accuracy'])}, {A['channel_mean']['corr_median']:.2f} "
                 f"(chance {pct(a['accuracy_majority'])}) | {many['seconds']:.1f} s ({many['maps']} "
                 f"maps), {one['seconds']:.1f} s (one map each) | none for the image: the feature map "
                 f"keeps where the ink is; sealed jobs keep it from the broker and other tenants, "
                 f"not from the worker (docs/VISION.md) |")
    return "\n".join(L)


if __name__ == "__main__":
    main()
