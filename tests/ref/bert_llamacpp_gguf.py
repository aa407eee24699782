"""A BERT GGUF written the way llama.cpp's convert_hf_to_gguf.py writes one
(class BertModel), without torch or transformers, for tests.

Test oracle only. Follows the converter step by step with the PyPI `gguf`
package's own pieces (gguf-py is the library the converter uses):
  - metadata: general.type, general.name, general.size_label (gguf's
    size_label), TextModel.set_gguf_parameters (block_count, context_length,
    embedding_length, feed_forward_length, head_count, layer_norm_epsilon,
    file_type), BertModel: causal_attention = false, pooling type from
    modules.json / 1_Pooling; general.quantization_version
  - vocabulary: get_vocab_base (tokens by id; added tokens CONTROL when
    special, else USER_DEFINED; others NORMAL; holes [PAD{i}] UNUSED), the
    pre-tokenizer hash of get_vocab_base_pre, BertModel.set_vocab's
    phantom-space tokens, token_type_count, gguf.SpecialVocab
  - tensors: BertModel.filter_tensors (strip "bert.", gamma/beta; drop
    position_ids, pooler, cls.*), names from gguf.get_tensor_name_map,
    ModelBase.prepare_tensors' storage types (1-D, norms, biases,
    position_embd, token_types: F32; other weights the file type).
Descriptive metadata the converter reads from the model card (license,
tags, ...) is left out.

  bert_llamacpp_gguf.py --from DIR --out X.gguf [--outtype f32|f16]
                        [--compare OURS.gguf]
--compare: every key/value and every tensor (name, shape, type) of X must
be in OURS as well (the keys of OURS outside X are listed); exit 1 if not.
"""
import argparse
import json
import os
import struct
import sys
from hashlib import sha256

import numpy as np

import gguf

CHKTXT = '\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български \'\'\'\'\'\'```````""""......!!!!!!?????? I\'ve been \'told he\'s there, \'RE you sure? \'M not sure I\'ll make it, \'D you like some tea? We\'Ve a\'lL'
KNOWN_PRE = {"0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f": "bert-bge"}


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (hn,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + hn])
    data = memoryview(buf)[8 + hn:]
    dt = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}
    out = {}
    for name, info in header.items():  # file order, as the converter iterates
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        if info["dtype"] == "BF16":
            a = (np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(data[b:e], dtype=dt[info["dtype"]])
        out[name] = a.reshape(info["shape"])
    return out


def vocab(d, cfg):
    from tokenizers import Tokenizer
    tj = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    n = cfg["vocab_size"]
    rev = {i: t for t, i in tok.get_vocab(with_added_tokens=True).items()}
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(n):
        if i not in rev:
            tokens.append("[PAD%d]" % i)
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(rev[i])
            types.append(gguf.TokenType.CONTROL if added[i]["special"] else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(rev[i])
            types.append(gguf.TokenType.NORMAL)
    tok.no_truncation()
    tok.no_padding()
    chkhsh = sha256(str(tok.encode(CHKTXT).ids).encode()).hexdigest()
    if chkhsh not in KNOWN_PRE:
        sys.exit("unknown pre-tokenizer hash %s (the converter would refuse)" % chkhsh)
    return tokens, types, KNOWN_PRE[chkhsh]


def phantom(tok, toktype):  # BertModel.set_vocab
    if toktype == gguf.TokenType.CONTROL:
        return tok
    if tok.startswith("##"):
        return tok[2:]
    return "\u2581" + tok


def convert(d, out, outtype):
    cfg = json.load(open(os.path.join(d, "config.json")))
    n_layer = cfg["num_hidden_layers"]
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16}[outtype]
    w = gguf.GGUFWriter(out, "bert")
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    n_params = 0
    for name, data in read_safetensors(os.path.join(d, "model.safetensors")).items():
        if name.startswith("bert."):
            name = name[5:]
        if name.endswith(".gamma"):
            name = name[:-6] + ".weight"
        if name.endswith(".beta"):
            name = name[:-5] + ".bias"
        if name in ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias") \
                or name.startswith("cls.predictions") or name.startswith("cls.seq_relationship"):
            continue
        new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            sys.exit("Can not map tensor %r" % name)
        data = data.astype(np.float32)
        f32 = (data.ndim <= 1 or new.endswith("_norm.weight") or not new.endswith(".weight")
               or new in ("position_embd.weight", "token_types.weight"))
        qt = gguf.GGMLQuantizationType.F32 if f32 or ftype == gguf.LlamaFileType.ALL_F32 \
            else gguf.GGMLQuantizationType.F16
        w.add_tensor(new, gguf.quants.quantize(data, qt), raw_dtype=qt)
        n_params += data.size
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(os.path.basename(os.path.normpath(d)))
    w.add_size_label(gguf.size_label(n_params, 0, 0, 0))
    w.add_block_count(n_layer)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    w.add_file_type(ftype)
    w.add_causal_attention(False)
    mp = os.path.join(d, "modules.json")
    if os.path.exists(mp):
        for m in json.load(open(mp)):
            if m["type"] == "sentence_transformers.models.Pooling":
                pc = json.load(open(os.path.join(d, m["path"], "config.json")))
                w.add_pooling_type(gguf.PoolingType.MEAN if pc["pooling_mode_mean_tokens"] else
                                   gguf.PoolingType.CLS if pc["pooling_mode_cls_token"] else
                                   gguf.PoolingType.LAST)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    tokens, types, pre = vocab(d, cfg)
    w.add_token_type_count(cfg.get("type_vocab_size", 1))
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre(pre)
    w.add_token_list(list(map(phantom, tokens, types)))
    w.add_token_types(types)
    gguf.SpecialVocab(d, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def compare(theirs, ours):
    a, b = gguf.GGUFReader(theirs), gguf.GGUFReader(ours)
    bad = []
    for k, f in a.fields.items():
        if k.startswith("GGUF."):
            continue
        g = b.fields.get(k)
        if g is None:
            bad.append("key %s missing" % k)
        elif f.types != g.types:
            bad.append("key %s: type %s vs ours %s" % (k, f.types, g.types))
        elif f.contents() != g.contents():
            bad.append("key %s: %r vs ours %r" % (k, str(f.contents())[:80], str(g.contents())[:80]))
    ta = {t.name: (list(t.shape), t.tensor_type.name) for t in a.tensors}
    tb = {t.name: (list(t.shape), t.tensor_type.name) for t in b.tensors}
    for n, v in ta.items():
        if tb.get(n) != v:
            bad.append("tensor %s: %s vs ours %s" % (n, v, tb.get(n)))
    for n in tb:
        if n not in ta:
            bad.append("tensor %s only in ours" % n)
    extra = sorted(k for k in b.fields if k not in a.fields and not k.startswith("GGUF."))
    print("keys only in ours: %s" % ", ".join(extra))
    for x in bad:
        print("MISMATCH " + x)
    return not bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--outtype", default="f16", choices=("f32", "f16"))
    ap.add_argument("--compare")
    a = ap.parse_args()
    convert(a.src, a.out, a.outtype)
    if a.compare and not compare(a.out, a.compare):
        sys.exit(1)


if __name__ == "__main__":
    main()
