/* ee_audit: the weight-alignment attack on an encrypted model, run by the
 * model owner before deploying (ee-model audit; docs/SECURITY.md).
 *
 * Adversary: a worker holding the encrypted GGUF and a candidate public
 * model (the public base, or the same weights). No key, no traffic. The
 * attack uses only invariants of the ee-llama transform set:
 *   1. residual rotation Q: layer-0 ffn_gate rows (norm gain folded) are
 *      permuted and rotated, so their Gram rows, sorted, are invariant;
 *      a linear assignment on those matches the rows, orthogonal
 *      Procrustes (LAPACK SVD) gives Q;
 *   2. refinement over every layer: with Q undone, each layer's MLP
 *      channels are matched by the cosines of their gate, up and down
 *      vectors together (one assignment per layer), and Procrustes is
 *      solved again on all matched vectors; repeated until the confident
 *      matches stop growing. When the layer-0 start fails (noise), a start
 *      from per-channel invariants of many layers (norms and cosines that
 *      the rotation, permutation and scales keep) is tried instead;
 *   3. vocabulary: each encrypted embedding + LM-head row, un-rotated, is
 *      matched to its nearest public row (random-projection candidates,
 *      exact re-ranking);
 *   4. per-head maps: each encrypted q/k/v head block, un-rotated, is
 *      matched to a public head by the least-squares residual of the map
 *      between them (2x2 per RoPE pair for q/k, hd x hd for v).
 * A match counts as recovered only when it is unambiguous (its cost is
 * well below the runner-up's), so the fractions are what the attacker
 * knows it has, not a guess checked against the key. */
#ifndef EE_AUDIT_H
#define EE_AUDIT_H

#include "ee_error.h"
#include "ee_gguf.h"

#include <stdint.h>

typedef struct ee_audit_opts {
    /* Simulated private fine-tune: Gaussian noise of perturb x (std of the
     * tensor) added to every public weight the attack reads (0: none). */
    double perturb;
    uint64_t seed;   /* noise and projection seed */
    int rounds;      /* at most this many refinement rounds (0: 6); they stop when the
                      * confident matches stop growing */
} ee_audit_opts;

typedef struct ee_audit_result {
    int n_vocab, n_layer, n_embd, n_ff, n_head, n_head_kv;
    /* vocabulary */
    int32_t *vocab_map;        /* [n_vocab] encrypted id -> public id (best match) */
    uint8_t *vocab_sure;       /* [n_vocab] 1 if that match is unambiguous */
    double vocab_recovered;    /* fraction of encrypted ids matched unambiguously */
    /* residual permutation (encoders: the stream can only be permuted) */
    int32_t *resid_map;        /* [n_embd] encrypted coordinate -> public coordinate, or NULL */
    double resid_perm_recovered; /* fraction of coordinates matched unambiguously */
    /* residual rotation (Llama) */
    double rot_residual0;      /* ||X R - Y|| / ||Y|| on layer-0 gate rows, after stage 1 */
    double rot_residual;       /* the same over all matched MLP vectors, final */
    const char *rot_start;     /* which start the rotation came from (static string) */
    int rounds;                /* refinement rounds run */
    /* MLP channel permutations and scales */
    double mlp_perm_recovered; /* fraction of channels (all layers) matched unambiguously */
    double mlp_scale_spread;   /* median |c_up/c_down - 1| of the recovered scales */
    int mlp_layers_full;       /* layers whose whole permutation is unambiguous */
    /* per-head maps (fractions of heads over all layers) */
    double heads_q, heads_k, heads_v;
    double head_residual;      /* median relative residual of the recovered maps */
    /* cost */
    double seconds, seconds_rotation, seconds_vocab, seconds_heads;
} ee_audit_result;

/* enc: an encrypted Llama or BERT GGUF (dispatched on the architecture;
 * BERT: ee_audit_bert.c); pub: a plaintext model of the same shape.
 * Fails with a message naming the problem for a plaintext enc, an
 * encrypted pub, another architecture, or mismatched shapes. */
int ee_audit_run(const ee_gguf *enc, const ee_gguf *pub, const ee_audit_opts *opts,
                 ee_audit_result *res, ee_err *err);
void ee_audit_result_free(ee_audit_result *res);
/* The encoder attack (ee_audit_run calls it for general.architecture bert). */
int ee_audit_bert_run(const ee_gguf *enc, const ee_gguf *pub, const ee_audit_opts *opts,
                      ee_audit_result *res, ee_err *err);

#endif
