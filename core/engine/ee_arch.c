#include "ee_arch.h"

#include <stdio.h>
#include <string.h>

/* GGUF names by role (llama.cpp src/llama-arch.cpp, LLM_TENSOR_NAMES). */
static const struct {
    const char *name;
    bool per_layer;
} TENSORS[EE_T_COUNT] = {
    [EE_T_TOKEN_EMBD] = {"token_embd", false},
    [EE_T_TOKEN_TYPES] = {"token_types", false},
    [EE_T_POS_EMBD] = {"position_embd", false},
    [EE_T_TOKEN_EMBD_NORM] = {"token_embd_norm", false},
    [EE_T_OUTPUT_NORM] = {"output_norm", false},
    [EE_T_OUTPUT] = {"output", false},
    [EE_T_ATTN_NORM] = {"attn_norm", true},
    [EE_T_ATTN_Q] = {"attn_q", true},
    [EE_T_ATTN_K] = {"attn_k", true},
    [EE_T_ATTN_V] = {"attn_v", true},
    [EE_T_ATTN_OUT] = {"attn_output", true},
    [EE_T_ATTN_OUT_NORM] = {"attn_output_norm", true},
    [EE_T_FFN_NORM] = {"ffn_norm", true},
    [EE_T_FFN_GATE] = {"ffn_gate", true},
    [EE_T_FFN_UP] = {"ffn_up", true},
    [EE_T_FFN_DOWN] = {"ffn_down", true},
    [EE_T_LAYER_OUT_NORM] = {"layer_output_norm", true},
    [EE_T_CONV] = {"conv", true},
};

static const ee_tensor LLAMA_TENSORS[] = {
    EE_T_TOKEN_EMBD, EE_T_OUTPUT_NORM, EE_T_OUTPUT, /* output: absent when tied */
    EE_T_ATTN_NORM,  EE_T_ATTN_Q,      EE_T_ATTN_K, EE_T_ATTN_V, EE_T_ATTN_OUT,
    EE_T_FFN_NORM,   EE_T_FFN_GATE,    EE_T_FFN_UP, EE_T_FFN_DOWN, EE_T_COUNT,
};

static const ee_tensor BERT_TENSORS[] = {
    EE_T_TOKEN_EMBD, EE_T_TOKEN_TYPES,  EE_T_POS_EMBD, EE_T_TOKEN_EMBD_NORM,
    EE_T_ATTN_Q,     EE_T_ATTN_K,       EE_T_ATTN_V,   EE_T_ATTN_OUT,
    EE_T_ATTN_OUT_NORM, EE_T_FFN_UP,    EE_T_FFN_DOWN, EE_T_LAYER_OUT_NORM,
    EE_T_COUNT,
};

/* Ours (docs/VISION.md): no llama.cpp architecture runs a CNN classifier. */
static const ee_tensor CNN_TENSORS[] = {EE_T_CONV, EE_T_OUTPUT, EE_T_COUNT};

static const ee_arch_info ARCHS[EE_ARCH_COUNT] = {
    [EE_ARCH_LLAMA] = {EE_ARCH_LLAMA, "llama", EE_KIND_DECODER, LLAMA_TENSORS, false},
    [EE_ARCH_BERT] = {EE_ARCH_BERT, "bert", EE_KIND_ENCODER, BERT_TENSORS, true},
    [EE_ARCH_CNN] = {EE_ARCH_CNN, "eecnn", EE_KIND_CLASSIFIER, CNN_TENSORS, true},
};

const ee_arch_info *ee_arch_find(const char *name) {
    for (int i = 0; name && i < EE_ARCH_COUNT; i++)
        if (strcmp(ARCHS[i].name, name) == 0) return &ARCHS[i];
    return NULL;
}

const ee_arch_info *ee_arch_get(ee_arch arch) {
    return (int)arch >= 0 && arch < EE_ARCH_COUNT ? &ARCHS[arch] : NULL;
}

bool ee_tensor_per_layer(ee_tensor t) { return (int)t >= 0 && t < EE_T_COUNT && TENSORS[t].per_layer; }

const char *ee_tensor_name(char *buf, size_t cap, ee_tensor t, int layer, const char *suffix) {
    if ((int)t < 0 || t >= EE_T_COUNT) {
        snprintf(buf, cap, "(tensor role %d)", (int)t);
    } else if (TENSORS[t].per_layer) {
        snprintf(buf, cap, "blk.%d.%s.%s", layer, TENSORS[t].name, suffix);
    } else {
        snprintf(buf, cap, "%s.%s", TENSORS[t].name, suffix);
    }
    return buf;
}
