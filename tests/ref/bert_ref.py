"""Independent numpy reference for BERT sentence embeddings
(sentence-transformers semantics: all-MiniLM-L6-v2 and kin).

Test oracle only; shares no code with the C engine. Weights come straight
from model.safetensors, parsed here with numpy (8-byte little-endian header
length, JSON header, raw little-endian data), or from a GGUF through the PyPI
`gguf` package (GGUFReader; llama.cpp's BERT tensor names). Text is tokenized
by the `tokenizers` package from tokenizer.json with its configured
truncation and padding turned off; a sentence longer than max_seq_length is
then cut as sentence-transformers cuts it (the tokenizer's own truncation:
[CLS] + the first max_seq_length - 2 word pieces + [SEP]), which is checked
against `tokenizers`' truncation.

Math, in float64:
    x = LayerNorm(word[ids] + position[0..n-1] + token_type[0])
    per layer:  a = softmax(q k^T / sqrt(head_dim)) v   per head, no mask
                x = LayerNorm(x + a Wo^T + bo)
                x = LayerNorm(x + gelu(x Wup^T + bup) Wdown^T + bdown)   gelu: erf form
    e = mean of x over the sentence's tokens (or [CLS] / last, per pooling)
    e = e / max(|e|, 1e-12)   when the model normalises

Usage:
    bert_ref.py --model DIR|FILE.gguf (--sentences-json F | --ids-json F)
                [--out OUT.json] [--max-seq N] [--print-ids]
Output JSON: {"max_seq_length", "normalize", "pooling", "n_embd",
  "items": [{"text"?, "ids" (full), "ids_used", "embedding", "pooled"}]}
(`pooled`: before normalisation). --print-ids prints each sentence's ids,
comma-separated, one line per sentence (for ee-model embed --tokens-file).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

# ---- weights ------------------------------------------------------------------


def read_safetensors(path):
    """name -> float64 array, parsed by hand."""
    with open(path, "rb") as f:
        buf = f.read()
    (hn,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + hn])
    data = memoryview(buf)[8 + hn:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2")
        elif dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            continue  # e.g. I64 position_ids: not a weight
        out[name] = a.astype(np.float64).reshape(info["shape"])
    return out


HF = {  # GGUF (llama.cpp) name -> Hugging Face name
    "token_embd": "embeddings.word_embeddings",
    "position_embd": "embeddings.position_embeddings",
    "token_types": "embeddings.token_type_embeddings",
    "token_embd_norm": "embeddings.LayerNorm",
}
HF_BLK = {
    "attn_q": "attention.self.query",
    "attn_k": "attention.self.key",
    "attn_v": "attention.self.value",
    "attn_output": "attention.output.dense",
    "attn_output_norm": "attention.output.LayerNorm",
    "ffn_up": "intermediate.dense",
    "ffn_down": "output.dense",
    "layer_output_norm": "output.LayerNorm",
}


class Model:
    """Weights by llama.cpp name ("blk.0.attn_q.weight"), rows = outputs."""

    def __init__(self, path, max_seq=None):
        if path.endswith(".gguf"):
            self._from_gguf(path)
        else:
            self._from_hf(path)
        if max_seq is not None:
            self.max_seq = max_seq
        self.n_embd = self.w["token_embd.weight"].shape[1]

    def _from_hf(self, d):
        cfg = json.load(open(os.path.join(d, "config.json")))
        st = read_safetensors(os.path.join(d, "model.safetensors"))
        st = {k[5:] if k.startswith("bert.") else k: v for k, v in st.items()}
        self.w = {}
        for g, h in HF.items():
            for suf in ("weight", "bias"):
                if h + "." + suf in st:
                    self.w[g + "." + suf] = st[h + "." + suf]
        self.n_layer = cfg["num_hidden_layers"]
        for l in range(self.n_layer):
            for g, h in HF_BLK.items():
                for suf in ("weight", "bias"):
                    self.w["blk.%d.%s.%s" % (l, g, suf)] = st["encoder.layer.%d.%s.%s" % (l, h, suf)]
        self.n_head = cfg["num_attention_heads"]
        self.eps = cfg["layer_norm_eps"]
        self.max_seq = cfg["max_position_embeddings"]
        sb = os.path.join(d, "sentence_bert_config.json")
        if os.path.exists(sb):
            self.max_seq = json.load(open(sb)).get("max_seq_length", self.max_seq)
        self.normalize, self.pooling = False, "mean"
        mp = os.path.join(d, "modules.json")
        if os.path.exists(mp):
            for m in json.load(open(mp)):
                if m["type"].endswith(".Normalize"):
                    self.normalize = True
                if m["type"].endswith(".Pooling"):
                    pc = json.load(open(os.path.join(d, m["path"], "config.json")))
                    self.pooling = ("mean" if pc.get("pooling_mode_mean_tokens") else
                                    "cls" if pc.get("pooling_mode_cls_token") else "last")
        tj = json.load(open(os.path.join(d, "tokenizer.json")))
        vocab = tj["model"]["vocab"]
        self.sep_id = vocab.get("[SEP]", -1)
        self.tokenizer_path = os.path.join(d, "tokenizer.json")

    def _from_gguf(self, path):
        from gguf import GGUFReader
        from gguf.quants import dequantize
        r = GGUFReader(path)

        def meta(key, default=None):
            f = r.fields.get(key)
            return default if f is None else f.contents()

        self.w = {}
        for t in r.tensors:
            shape = tuple(int(n) for n in reversed(t.shape))
            a = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float64)
            self.w[t.name] = a.reshape(shape)
        self.n_layer = int(meta("bert.block_count"))
        self.n_head = int(meta("bert.attention.head_count"))
        self.eps = float(meta("bert.attention.layer_norm_epsilon"))
        self.max_seq = int(meta("eeinfer.max_seq_length", meta("bert.context_length")))
        self.normalize = bool(meta("eeinfer.normalize", True))
        self.pooling = {1: "mean", 2: "cls", 3: "last"}[int(meta("bert.pooling_type", 1))]
        self.sep_id = int(meta("tokenizer.ggml.seperator_token_id", -1))
        self.tokenizer_path = None

    # ---- forward ----------------------------------------------------------------

    def cut(self, ids):
        """sentence-transformers' truncation of a tokenized sentence."""
        if len(ids) <= self.max_seq:
            return list(ids)
        if ids[-1] == self.sep_id:
            return list(ids[:self.max_seq - 1]) + [ids[-1]]
        return list(ids[:self.max_seq])

    def layernorm(self, x, name):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def linear(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def forward(self, ids):
        """Pooled (not normalised) and final embedding of one sentence."""
        w, n = self.w, len(ids)
        x = w["token_embd.weight"][ids] + w["position_embd.weight"][:n]
        if "token_types.weight" in w:
            x = x + w["token_types.weight"][0]
        x = self.layernorm(x, "token_embd_norm")
        H = self.n_head
        hd = self.n_embd // H
        for l in range(self.n_layer):
            p = "blk.%d." % l
            q = self.linear(x, p + "attn_q").reshape(n, H, hd).transpose(1, 0, 2)
            k = self.linear(x, p + "attn_k").reshape(n, H, hd).transpose(1, 0, 2)
            v = self.linear(x, p + "attn_v").reshape(n, H, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(n, self.n_embd)
            x = self.layernorm(x + self.linear(a, p + "attn_output"), p + "attn_output_norm")
            h = self.linear(x, p + "ffn_up")
            h = 0.5 * h * (1.0 + ERF(h / math.sqrt(2.0)))
            x = self.layernorm(x + self.linear(h, p + "ffn_down"), p + "layer_output_norm")
        if self.pooling == "mean":
            e = x.mean(0)
        elif self.pooling == "cls":
            e = x[0]
        else:
            e = x[-1]
        out = e / max(np.linalg.norm(e), 1e-12) if self.normalize else e
        return e, out


_ERF = np.frompyfunc(math.erf, 1, 1)


def ERF(a):
    """erf elementwise, exactly (math.erf), as float64."""
    return _ERF(a).astype(np.float64)


def tokenize_all(model, texts):
    from tokenizers import Tokenizer
    if model.tokenizer_path is None:
        sys.exit("bert_ref.py: --sentences-json needs a model directory with tokenizer.json")
    tok = Tokenizer.from_file(model.tokenizer_path)
    tok.no_truncation()
    tok.no_padding()
    full = [e.ids for e in tok.encode_batch(texts)]
    # Cross-check our cut against the tokenizer's own truncation (what
    # sentence-transformers calls with max_length = max_seq_length).
    tok.enable_truncation(max_length=model.max_seq)
    cut = [e.ids for e in tok.encode_batch(texts)]
    for t, f, c in zip(texts, full, cut):
        if model.cut(f) != c:
            sys.exit("bert_ref.py: truncation mismatch for %r" % t[:60])
    return full


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--sentences-json")
    ap.add_argument("--ids-json")
    ap.add_argument("--out")
    ap.add_argument("--max-seq", type=int)
    ap.add_argument("--print-ids", action="store_true")
    a = ap.parse_args()
    if (a.sentences_json is None) == (a.ids_json is None):
        sys.exit("bert_ref.py: give one of --sentences-json and --ids-json")
    m = Model(a.model, a.max_seq)
    texts = None
    if a.sentences_json:
        texts = json.load(open(a.sentences_json, encoding="utf-8"))
        ids = tokenize_all(m, texts)
    else:
        ids = json.load(open(a.ids_json))
    if a.print_ids:
        for i in ids:
            print(",".join(str(t) for t in i))
        if not a.out:
            return
    items = []
    for k, full in enumerate(ids):
        used = m.cut(full)
        pooled, emb = m.forward(used)
        it = {"ids": full, "ids_used": used, "embedding": emb.tolist(), "pooled": pooled.tolist()}
        if texts is not None:
            it["text"] = texts[k]
        items.append(it)
    res = {"max_seq_length": m.max_seq, "normalize": m.normalize, "pooling": m.pooling,
           "n_embd": m.n_embd, "items": items}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f)
    else:
        json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
