#!/usr/bin/env python3
"""Reference token ids for the tokenizer's model-tier test.

Run as: ref_tokenizer.py --model M.gguf --out-dir D   (by make-refs.sh)

Writes D/tok_ref.jsonl using the HF `tokenizers` package configured from the
GGUF (tests/ref/hf_tok.py), one JSON object per line:
  {"kind": "meta", "n_lines": N, "n_vocab": V, "tokenizers": "x.y.z"}
  {"kind": "line", "i": i, "text": s,
   "ids": [...],          # s with no special-token parsing
   "special_ids": [...],  # s with special-token parsing
   "decoded": "...",      # HF decode of ids
   "chat_text": "...",    # hf_tok.chat_prompt(s)
   "chat_ids": [...],     # chat_text with special-token parsing
   "chat_decoded": "...", "chat_decoded_skip": "..."}  # with/without specials
  {"kind": "vocab", "decoded": [...], "decoded_skip": [...]}
      # HF decode([id]) for every id, with and without special tokens
      # (lossy: bytes that are not UTF-8 on their own become U+FFFD)
for every line of tests/data/tok_corpus.txt (one JSON string per line).
Skips the work when the output is newer than the corpus, the model and the
scripts.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
CORPUS = os.path.join(HERE, "..", "data", "tok_corpus.txt")


def up_to_date(out, inputs):
    if not os.path.exists(out):
        return False
    t = os.path.getmtime(out)
    return all(os.path.getmtime(p) < t for p in inputs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    out = os.path.join(a.out_dir, "tok_ref.jsonl")
    inputs = [CORPUS, a.model, os.path.abspath(__file__), os.path.join(HERE, "hf_tok.py")]
    if up_to_date(out, inputs):
        print("tok_ref: %s is up to date" % out)
        return

    import tokenizers
    import hf_tok

    tok = hf_tok.load_tokenizer(a.model)
    with open(CORPUS, encoding="utf-8") as f:
        lines = [json.loads(l) for l in f if l.strip()]
    chats = [hf_tok.chat_prompt(s) for s in lines]

    tok.encode_special_tokens = True  # special-token strings as plain text
    plain = [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
    tok.encode_special_tokens = False
    special = [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
    chat = [e.ids for e in tok.encode_batch(chats, add_special_tokens=False)]
    decoded = tok.decode_batch(plain, skip_special_tokens=False)
    chat_dec = tok.decode_batch(chat, skip_special_tokens=False)
    chat_dec_skip = tok.decode_batch(chat, skip_special_tokens=True)
    n_vocab = tok.get_vocab_size(with_added_tokens=True)
    single = [[i] for i in range(n_vocab)]
    vocab_dec = tok.decode_batch(single, skip_special_tokens=False)
    vocab_dec_skip = tok.decode_batch(single, skip_special_tokens=True)

    os.makedirs(a.out_dir, exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(json.dumps({"kind": "meta", "n_lines": len(lines), "n_vocab": n_vocab,
                            "tokenizers": tokenizers.__version__}) + "\n")
        for i, s in enumerate(lines):
            f.write(json.dumps({
                "kind": "line", "i": i, "text": s, "ids": plain[i], "special_ids": special[i],
                "decoded": decoded[i], "chat_text": chats[i], "chat_ids": chat[i],
                "chat_decoded": chat_dec[i], "chat_decoded_skip": chat_dec_skip[i],
            }) + "\n")
        f.write(json.dumps({"kind": "vocab", "decoded": vocab_dec,
                            "decoded_skip": vocab_dec_skip}) + "\n")
    os.replace(tmp, out)
    print("tok_ref: wrote %s (%d lines)" % (out, len(lines)))


if __name__ == "__main__":
    main()
