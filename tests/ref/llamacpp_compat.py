"""Workarounds for the llama-cpp-python build the tests and benchmarks use.

no_extra_buffer_types(): llama.cpp's CPU backend repacks quantized weights
into "extra buffer types" (AMX tiles, interleaved AVX-512 layouts). On this
project's VMs, which advertise AMX (amx_tile/amx_int8 in /proc/cpuinfo),
llama_decode segfaults on any Q4_0/Q4_1/Q8_0 file with them on, including
the published SmolLM2 Q4_1 file; f32 files are unaffected. Turning them off
(llama_model_params.use_extra_bufts = false, llama.cpp's --no-repack) runs
the ordinary ggml kernels. Call before constructing a Llama.
"""


def no_extra_buffer_types():
    import llama_cpp.llama_cpp as L
    if getattr(L, "_ee_no_repack", False):
        return
    orig = L.llama_model_default_params

    def params():
        p = orig()
        p.use_extra_bufts = False
        return p

    L.llama_model_default_params = params
    L._ee_no_repack = True


def all_logits(llm, ids):
    """Logits of every position of ids (one sequence from an empty cache),
    [len(ids)][n_vocab], through a batch with every output flag set (the
    binding's logits_all=True path crashes in this version)."""
    import numpy as np
    import llama_cpp as lc
    n, V = len(ids), llm.n_vocab()
    mem = lc.llama_get_memory(llm.ctx)
    lc.llama_memory_clear(mem, True)
    b = lc.llama_batch_init(n, 0, 1)
    try:
        for i, t in enumerate(ids):
            b.token[i] = t
            b.pos[i] = i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1
        b.n_tokens = n
        rc = lc.llama_decode(llm.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        return np.stack([np.ctypeslib.as_array(lc.llama_get_logits_ith(llm.ctx, i), shape=(V,))
                         .astype(np.float64) for i in range(n)])
    finally:
        lc.llama_batch_free(b)
