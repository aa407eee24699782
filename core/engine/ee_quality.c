#include "ee_quality.h"

#include "ee_buf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ee_quality_init(ee_quality *q) { memset(q, 0, sizeof *q); }

void ee_quality_free(ee_quality *q) {
    free(q->kld);
    memset(q, 0, sizeof *q);
}

/* max and ln(sum exp(x - max)) in double: log p_i = x_i - max - lse. */
static int log_norm(const float *x, const uint32_t *map, int n, double *mx, double *lse,
                    int *arg) {
    double m = -INFINITY;
    int a = 0;
    for (int i = 0; i < n; i++) {
        double v = x[map ? map[i] : (uint32_t)i];
        if (!isfinite(v)) return -1;
        if (v > m) {
            m = v;
            a = i;
        }
    }
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp((double)x[map ? map[i] : (uint32_t)i] - m);
    *mx = m;
    *lse = log(s);
    *arg = a;
    return 0;
}

int ee_quality_add(ee_quality *q, const float *ref, const float *test, const uint32_t *map,
                   int n_vocab, int32_t target, ee_err *err) {
    if (target < 0 || target >= n_vocab)
        return ee_err_set(err, "target token %d is out of range [0, %d)", target, n_vocab);
    double mr, lr, mt, lt;
    int ar, at;
    if (log_norm(ref, NULL, n_vocab, &mr, &lr, &ar))
        return ee_err_set(err, "the reference logits are not finite");
    if (log_norm(test, map, n_vocab, &mt, &lt, &at))
        return ee_err_set(err, "the model's logits are not finite");
    if (ee_array_reserve(&q->kld, &q->cap, (size_t)q->n + 1, sizeof *q->kld, err)) return -1;
    double kld = 0.0;
    for (int i = 0; i < n_vocab; i++) {
        double lpr = ref[i] - mr - lr;
        double lpt = test[map ? map[i] : (uint32_t)i] - mt - lt;
        kld += exp(lpr) * (lpr - lpt);
    }
    if (kld < 0.0) kld = 0.0; /* rounding when the two are equal */
    double nll_ref = -(ref[target] - mr - lr);
    double nll = -(test[map ? map[target] : (uint32_t)target] - mt - lt);
    q->kld[q->n++] = (float)kld;
    q->same_top += ar == at;
    q->sum_kld += kld;
    q->sum_kld2 += kld * kld;
    q->sum_nll_ref += nll_ref;
    q->sum_nll += nll;
    q->sum_dp += exp(-nll) - exp(-nll_ref);
    return 0;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void ee_quality_summarize(const ee_quality *q, ee_quality_summary *o) {
    memset(o, 0, sizeof *o);
    if (q->n == 0) return;
    const double n = (double)q->n;
    o->n = q->n;
    o->kld_mean = q->sum_kld / n;
    double var = q->n > 1 ? (q->sum_kld2 / n - o->kld_mean * o->kld_mean) * n / (n - 1) : 0.0;
    o->kld_stderr = var > 0 ? sqrt(var / n) : 0.0;
    o->same_top = q->same_top / n;
    o->ppl_ref = exp(q->sum_nll_ref / n);
    o->ppl = exp(q->sum_nll / n);
    o->ln_ppl_ratio = (q->sum_nll - q->sum_nll_ref) / n;
    o->delta_p = q->sum_dp / n;
    float *s = malloc((size_t)q->n * sizeof *s);
    if (!s) return; /* percentiles stay 0; the means are still right */
    memcpy(s, q->kld, (size_t)q->n * sizeof *s);
    qsort(s, (size_t)q->n, sizeof *s, cmp_float);
    o->kld_median = s[q->n / 2];
    o->kld_p99 = s[(int64_t)(0.99 * (n - 1))];
    o->kld_max = s[q->n - 1];
    free(s);
}
