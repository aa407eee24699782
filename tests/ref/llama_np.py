"""Independent numpy float32 reference forward pass for Llama GGUF files.

Test oracle only. Weights are read and dequantized by the PyPI `gguf` package
(GGUFReader + gguf.quants.dequantize); the math follows docs NOTES section 3:

    x  = rmsnorm(h) * attn_norm
    q, k, v = Wq x, Wk x, Wv x ; rope(q, k)         (adjacent pairs, GGUF layout)
    h += Wo softmax(q k^T / sqrt(head_dim) + causal) v   (GQA: q head i -> kv head i // group)
    x  = rmsnorm(h) * ffn_norm
    h += Wdown (silu(Wgate x) * Wup x)
    logits = Wout (rmsnorm(h) * output_norm)       (Wout = token_embd if output.weight absent)

All hyperparameters come from the file's metadata (with shape-derived
fallbacks), so tiny synthetic models written by the C tests work as well.
An incremental KV cache makes greedy decoding cheap.
"""
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def _meta(reader, key, default=None):
    """Scalar metadata value (int/float/bool/str) or `default` if missing."""
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def _tensor_f32(t):
    """Dequantize a ReaderTensor to float32 with numpy shape reversed(ne):
    a linear weight with ne=[in, out] becomes a row-major [out][in] array."""
    shape = tuple(int(n) for n in reversed(t.shape))
    w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
    return np.ascontiguousarray(w.reshape(shape))


class LlamaConfig:
    def __init__(self, reader, tensors):
        arch = _meta(reader, "general.architecture", "llama")
        p = arch + "."
        emb = tensors["token_embd.weight"]            # [n_vocab][n_embd]
        self.arch = arch
        self.n_vocab, self.n_embd = emb.shape
        self.n_layer = int(_meta(reader, p + "block_count"))
        self.n_head = int(_meta(reader, p + "attention.head_count"))
        self.n_head_kv = int(_meta(reader, p + "attention.head_count_kv", self.n_head))
        # head_dim: attention.key_length if given, else n_embd / n_head.
        self.head_dim = int(_meta(reader, p + "attention.key_length",
                                  self.n_embd // self.n_head))
        self.n_ff = int(_meta(reader, p + "feed_forward_length",
                              tensors["blk.0.ffn_gate.weight"].shape[0]))
        self.rope_base = float(_meta(reader, p + "rope.freq_base", 10000.0))
        self.n_rot = int(_meta(reader, p + "rope.dimension_count", self.head_dim))
        self.eps = float(_meta(reader, p + "attention.layer_norm_rms_epsilon", 1e-5))
        self.n_ctx_train = int(_meta(reader, p + "context_length", 0))
        self.tied = "output.weight" not in tensors
        # Consistency checks against tensor shapes.
        assert self.n_head % self.n_head_kv == 0, "n_head must be a multiple of n_head_kv"
        assert tensors["blk.0.attn_q.weight"].shape == (self.n_head * self.head_dim, self.n_embd)
        assert tensors["blk.0.attn_k.weight"].shape == (self.n_head_kv * self.head_dim, self.n_embd)
        assert tensors["blk.0.ffn_gate.weight"].shape == (self.n_ff, self.n_embd)
        assert self.n_rot % 2 == 0 and self.n_rot <= self.head_dim

    def __repr__(self):
        return ("LlamaConfig(" + ", ".join(f"{k}={v}" for k, v in vars(self).items()) + ")")


def rmsnorm(x, w, eps):
    """x / sqrt(mean(x^2) + eps) * w, row-wise."""
    ms = np.mean(x * x, axis=-1, keepdims=True, dtype=np.float32)
    return (x / np.sqrt(ms + np.float32(eps))) * w


def silu(x):
    return x / (np.float32(1.0) + np.exp(-x))


class Llama:
    """Dequantized weights + forward pass with a KV cache.

    Usage: m = Llama(path); logits = m.forward(ids)  # [len(ids)][n_vocab]
    Subsequent forward() calls continue at position m.n_past; m.reset() clears.
    """

    def __init__(self, path):
        reader = GGUFReader(path)
        self.t = {t.name: _tensor_f32(t) for t in reader.tensors}
        self.cfg = c = LlamaConfig(reader, self.t)
        self.layers = []
        for i in range(c.n_layer):
            g = lambda n: self.t[f"blk.{i}.{n}.weight"]
            self.layers.append(dict(
                attn_norm=g("attn_norm"), wq=g("attn_q"), wk=g("attn_k"), wv=g("attn_v"),
                wo=g("attn_output"), ffn_norm=g("ffn_norm"), w_gate=g("ffn_gate"),
                w_up=g("ffn_up"), w_down=g("ffn_down")))
        self.tok_embd = self.t["token_embd.weight"]
        self.out_norm = self.t["output_norm.weight"]
        self.w_out = self.tok_embd if c.tied else self.t["output.weight"]
        # RoPE inverse frequencies for adjacent pairs (2i, 2i+1), i < n_rot/2:
        # angle = pos * base^(-2i/n_rot). Computed in float64, applied in float32.
        i = np.arange(c.n_rot // 2, dtype=np.float64)
        self.inv_freq = c.rope_base ** (-2.0 * i / c.n_rot)
        self.reset()

    def reset(self):
        """Clear the KV cache."""
        c = self.cfg
        self.n_past = 0
        self.cap = 0
        self.k_cache = [np.zeros((c.n_head_kv, 0, c.head_dim), np.float32) for _ in range(c.n_layer)]
        self.v_cache = [np.zeros((c.n_head_kv, 0, c.head_dim), np.float32) for _ in range(c.n_layer)]

    def _grow(self, need):
        """Make room for `need` cached positions (amortized doubling)."""
        if need <= self.cap:
            return
        c = self.cfg
        cap = max(need, 2 * self.cap, 64)
        for L in range(c.n_layer):
            for cache in (self.k_cache, self.v_cache):
                new = np.zeros((c.n_head_kv, cap, c.head_dim), np.float32)
                new[:, :self.n_past] = cache[L][:, :self.n_past]
                cache[L] = new
        self.cap = cap

    def _rope(self, x, pos):
        """Rotate adjacent pairs of the first n_rot dims. x: [heads][T][head_dim]."""
        n_rot = self.cfg.n_rot
        ang = np.outer(pos.astype(np.float64), self.inv_freq)       # [T][n_rot/2]
        cos = np.cos(ang).astype(np.float32)
        sin = np.sin(ang).astype(np.float32)
        x = x.copy()
        x0 = x[..., 0:n_rot:2].copy()
        x1 = x[..., 1:n_rot:2].copy()
        x[..., 0:n_rot:2] = x0 * cos - x1 * sin
        x[..., 1:n_rot:2] = x0 * sin + x1 * cos
        return x

    def forward(self, ids, all_logits=True):
        """Run tokens `ids` at positions n_past..n_past+T-1, append to the KV
        cache, and return float32 logits [T][n_vocab] (or [1][n_vocab] for
        the last position only when all_logits is False)."""
        c = self.cfg
        ids = np.asarray(ids, dtype=np.int64)
        T = len(ids)
        assert T > 0 and ids.min() >= 0 and ids.max() < c.n_vocab, "token id out of range"
        p0 = self.n_past
        S = p0 + T                                   # keys visible to the last query
        self._grow(S)
        pos = np.arange(p0, S)
        group = c.n_head // c.n_head_kv
        hd = c.head_dim
        scale = np.float32(1.0 / np.sqrt(hd))
        # causal mask: query t (absolute p0+t) sees keys 0..p0+t
        mask = np.where(np.arange(S)[None, :] <= pos[:, None], 0.0, -np.inf).astype(np.float32)

        h = self.tok_embd[ids].astype(np.float32)    # [T][n_embd]
        for L, w in enumerate(self.layers):
            x = rmsnorm(h, w["attn_norm"], c.eps)
            q = (x @ w["wq"].T).reshape(T, c.n_head, hd).transpose(1, 0, 2)     # [H][T][hd]
            k = (x @ w["wk"].T).reshape(T, c.n_head_kv, hd).transpose(1, 0, 2)  # [Hkv][T][hd]
            v = (x @ w["wv"].T).reshape(T, c.n_head_kv, hd).transpose(1, 0, 2)
            q = self._rope(q, pos)
            k = self._rope(k, pos)
            self.k_cache[L][:, p0:S] = k
            self.v_cache[L][:, p0:S] = v
            K = self.k_cache[L][:, :S]               # [Hkv][S][hd]
            V = self.v_cache[L][:, :S]
            # GQA: query heads g*group .. g*group+group-1 share kv head g.
            qg = q.reshape(c.n_head_kv, group * T, hd)
            att = (qg @ K.transpose(0, 2, 1)) * scale                   # [Hkv][group*T][S]
            att = att.reshape(c.n_head_kv, group, T, S) + mask
            att = att - att.max(axis=-1, keepdims=True)
            att = np.exp(att)
            att /= att.sum(axis=-1, keepdims=True)
            o = att.reshape(c.n_head_kv, group * T, S) @ V             # [Hkv][group*T][hd]
            o = o.reshape(c.n_head, T, hd).transpose(1, 0, 2).reshape(T, c.n_head * hd)
            h = h + o @ w["wo"].T
            x = rmsnorm(h, w["ffn_norm"], c.eps)
            f = silu(x @ w["w_gate"].T) * (x @ w["w_up"].T)
            h = h + f @ w["w_down"].T
        self.n_past = S
        if not all_logits:
            h = h[-1:]
        return np.ascontiguousarray(rmsnorm(h, self.out_norm, c.eps) @ self.w_out.T,
                                    dtype=np.float32)

    def greedy(self, prompt_ids, n_new):
        """Greedy decoding of exactly n_new tokens (no stop on EOS) from a
        fresh cache. Returns (ids, margins, runner_up): margins[i] = top1 -
        top2 logit before choosing ids[i], runner_up[i] = the top2 id.
        Ties break to the lowest id."""
        self.reset()
        logits = self.forward(prompt_ids, all_logits=False)[-1]
        ids, margins, runner_up = [], [], []
        for step in range(n_new):
            a = int(np.argmax(logits))              # first maximum = lowest id
            rest = logits.copy()
            rest[a] = -np.inf
            b = int(np.argmax(rest))
            ids.append(a)
            margins.append(float(logits[a] - logits[b]))
            runner_up.append(b)
            if step + 1 < n_new:
                logits = self.forward([a], all_logits=False)[-1]
        return ids, margins, runner_up


def write_f32_copy(src, dst):
    """Write `dst`: a copy of GGUF `src` with every tensor dequantized to F32
    (same metadata, general.file_type set to 0 = ALL_F32). Used by the
    benchmark and the llama.cpp self-check, so that both engines can run the
    exact weights this reference uses. Written with gguf.GGUFWriter."""
    import os
    from gguf import GGUFWriter, GGUFValueType
    reader = GGUFReader(src)
    arch = _meta(reader, "general.architecture", "llama")
    tmp = dst + ".tmp"
    w = GGUFWriter(tmp, arch)                      # writes general.architecture itself
    for f in reader.fields.values():
        if f.name == "general.architecture" or f.name.startswith("GGUF."):
            continue
        vtype = f.types[0]
        sub = f.types[-1] if vtype == GGUFValueType.ARRAY else None
        val = 0 if f.name == "general.file_type" else f.contents()
        w.add_key_value(f.name, val, vtype, sub_type=sub)
    for t in reader.tensors:
        w.add_tensor(t.name, _tensor_f32(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, dst)
