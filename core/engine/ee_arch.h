/* ee_arch: the model architectures the engine runs, and the GGUF tensor
 * names each one uses (llama.cpp's names, so other GGUF readers recognise
 * our files). One table, as llama.cpp's LLM_TENSOR_NAMES: a loader asks
 * for a tensor by role and layer, never spells a name.
 *
 * Each architecture's forward pass is one file (ee_llama.c, ...). */
#ifndef EE_ARCH_H
#define EE_ARCH_H

#include <stdbool.h>
#include <stddef.h>

typedef enum ee_model_kind {
    EE_KIND_DECODER, /* causal LM: ids in, next-token logits out (generate) */
    EE_KIND_ENCODER, /* bidirectional: ids in, one vector per text out (embed) */
    EE_KIND_CLASSIFIER, /* image classifier: feature map in, class scores out (classify) */
} ee_model_kind;

typedef enum ee_arch {
    EE_ARCH_LLAMA,
    EE_ARCH_BERT,
    EE_ARCH_CNN,
    EE_ARCH_COUNT
} ee_arch;

/* Tensor roles. Per-layer roles are formatted "blk.%d.<name>". */
typedef enum ee_tensor {
    EE_T_TOKEN_EMBD,     /* token_embd         [n_embd, n_vocab] */
    EE_T_TOKEN_TYPES,    /* token_types        [n_embd, n_types] */
    EE_T_POS_EMBD,       /* position_embd      [n_embd, n_ctx] */
    EE_T_TOKEN_EMBD_NORM,/* token_embd_norm    [n_embd] */
    EE_T_OUTPUT_NORM,    /* output_norm        [n_embd] */
    EE_T_OUTPUT,         /* output             [n_embd, n_vocab] */
    EE_T_ATTN_NORM,      /* blk.N.attn_norm    [n_embd] (pre-norm) */
    EE_T_ATTN_Q,         /* blk.N.attn_q       [n_embd, n_head * head_dim] */
    EE_T_ATTN_K,         /* blk.N.attn_k       [n_embd, n_head_kv * head_dim] */
    EE_T_ATTN_V,         /* blk.N.attn_v       [n_embd, n_head_kv * head_dim] */
    EE_T_ATTN_OUT,       /* blk.N.attn_output  [n_head * head_dim, n_embd] */
    EE_T_ATTN_OUT_NORM,  /* blk.N.attn_output_norm [n_embd] (post-norm) */
    EE_T_FFN_NORM,       /* blk.N.ffn_norm     [n_embd] (pre-norm) */
    EE_T_FFN_GATE,       /* blk.N.ffn_gate     [n_embd, n_ff] */
    EE_T_FFN_UP,         /* blk.N.ffn_up       [n_embd, n_ff] */
    EE_T_FFN_DOWN,       /* blk.N.ffn_down     [n_ff, n_embd] */
    EE_T_LAYER_OUT_NORM, /* blk.N.layer_output_norm [n_embd] (post-norm) */
    EE_T_CONV,           /* blk.N.conv         [k, k, c_in, c_out] (eecnn) */
    EE_T_COUNT
} ee_tensor;

typedef struct ee_arch_info {
    ee_arch arch;
    const char *name;       /* general.architecture */
    ee_model_kind kind;
    /* The roles this architecture's files hold (EE_T_COUNT ends the list);
     * each with a .weight, and a .bias where has_bias says so. */
    const ee_tensor *tensors;
    bool has_bias;
} ee_arch_info;

/* The entry for general.architecture, or NULL. */
const ee_arch_info *ee_arch_find(const char *name);
const ee_arch_info *ee_arch_get(ee_arch arch);
/* Whether the role is per layer ("blk.%d." prefix). */
bool ee_tensor_per_layer(ee_tensor t);
/* The GGUF name of a role: layer is ignored for global roles; suffix is
 * "weight" or "bias". Returns buf (always NUL-terminated). */
const char *ee_tensor_name(char *buf, size_t cap, ee_tensor t, int layer, const char *suffix);

#endif
