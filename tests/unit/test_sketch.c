/*
 * test_sketch.c — KLL quantile sketch and Space-Saving heavy hitters: accuracy against exact
 * answers on realistic distributions, merges, encodings (round trip, corruption), bounded memory,
 * determinism.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sketch.h"

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) {
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
} /* [0,1) */

typedef enum { D_UNIFORM, D_EXPONENTIAL, D_LOGNORMAL_MONEY, D_PARETO, D_INT_0_50, D_RECENCY } dist_t;

static double draw(dist_t d, uint64_t *s) {
    double u = rng_unit(s);
    switch (d) {
    case D_UNIFORM: return 1000.0 * u;
    case D_EXPONENTIAL: return -log1p(-u) * 30.0;
    case D_LOGNORMAL_MONEY: { /* monetary in minor units: lognormal, rounded to cents */
        double u2 = rng_unit(s);
        double z = sqrt(-2.0 * log1p(-u)) * cos(2 * M_PI * u2);
        return floor(exp(8.5 + 1.2 * z));
    }
    case D_PARETO: return 100.0 / pow(1.0 - u, 1.0 / 1.2); /* heavy tail, alpha 1.2 */
    case D_INT_0_50: return floor(51.0 * u * u);           /* integer frequencies: many ties */
    case D_RECENCY: return floor(-log1p(-u) * 60.0) > 730 ? 730 : floor(-log1p(-u) * 60.0);
    }
    return 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Number of sorted[i] < v (strict) or ≤ v. */
static size_t count_below(const double *sorted, size_t n, double v, bool inclusive) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (inclusive ? sorted[mid] <= v : sorted[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Rank error of answering x for quantile q: distance from q to x's exact rank interval
 * [#(<x)/n, #(≤x)/n] (with ties, every q in the interval is answered exactly by x). */
static double rank_error(const double *sorted, size_t n, double q, double x) {
    double lo = (double)count_below(sorted, n, x, false) / (double)n;
    double hi = (double)count_below(sorted, n, x, true) / (double)n;
    if (q < lo) return lo - q;
    if (q > hi) return q - hi;
    return 0.0;
}

/* Checks every decile (which includes every quintile boundary) and every 5% step, and the
 * rank estimate at the exact deciles; returns the worst error seen. */
static double check_accuracy(const cx_kll_t *s, const double *sorted, size_t n, double bound) {
    double worst = 0;
    for (int i = 1; i < 20; i++) {
        double q = i / 20.0;
        double x = cx_kll_quantile(s, q);
        cr_assert(isfinite(x), "quantile(%g) is not finite", q);
        double err = rank_error(sorted, n, q, x);
        cr_expect(err <= bound, "quantile(%g)=%g has rank error %g > %g", q, x, err, bound);
        if (err > worst) worst = err;

        double v = sorted[(size_t)(q * (double)n)];
        double est = cx_kll_rank(s, v);
        double exact = (double)count_below(sorted, n, v, true) / (double)n;
        cr_expect(fabs(est - exact) <= bound, "rank(%g)=%g, exact %g", v, est, exact);
        if (fabs(est - exact) > worst) worst = fabs(est - exact);
    }
    cr_expect_eq(cx_kll_quantile(s, 0.0), sorted[0]);
    cr_expect_eq(cx_kll_quantile(s, 1.0), sorted[n - 1]);
    return worst;
}

static double *gen(dist_t d, size_t n, uint64_t seed) {
    double *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = draw(d, &seed);
    return v;
}

static double *sorted_copy(const double *v, size_t n) {
    double *s = malloc(n * sizeof *s);
    cr_assert_not_null(s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_d);
    return s;
}

#define N 100000

static void accuracy_case(dist_t d, uint64_t seed) {
    double *v = gen(d, N, seed);
    double *sorted = sorted_copy(v, N);
    cx_kll_t *s = cx_kll_new(0);
    cr_assert_not_null(s);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(cx_kll_add(s, v[i]), CX_OK);
    cr_expect_eq(cx_kll_count(s), N);
    cr_expect_eq(cx_kll_k(s), CX_KLL_DEFAULT_K);
    check_accuracy(s, sorted, N, 0.01);
    cx_kll_destroy(s);
    free(v);
    free(sorted);
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* Rewrites the CRC trailer so that a deliberately altered body reaches the semantic checks. */
static void fix_crc(uint8_t *p, size_t len) {
    uint32_t c = crc32_ieee(p, len - 4);
    for (int i = 0; i < 4; i++)
        p[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

/* ------------------------------------------------------------------------------------------ */
/* KLL                                                                                         */
/* ------------------------------------------------------------------------------------------ */

Test(kll, deciles_of_uniform_values_within_one_percent) {
    accuracy_case(D_UNIFORM, 1);
}
Test(kll, deciles_of_exponential_values_within_one_percent) {
    accuracy_case(D_EXPONENTIAL, 2);
}
Test(kll, deciles_of_lognormal_monetary_within_one_percent) {
    accuracy_case(D_LOGNORMAL_MONEY, 3);
}
Test(kll, deciles_of_pareto_heavy_tail_within_one_percent) {
    accuracy_case(D_PARETO, 4);
}
Test(kll, deciles_of_integer_frequencies_with_ties_within_one_percent) {
    accuracy_case(D_INT_0_50, 5);
}
Test(kll, deciles_of_recency_days_within_one_percent) {
    accuracy_case(D_RECENCY, 6);
}

Test(kll, sorted_and_reverse_sorted_input_within_one_percent) {
    double *v = gen(D_UNIFORM, N, 7);
    double *sorted = sorted_copy(v, N);
    cx_kll_t *asc = cx_kll_new(0), *desc = cx_kll_new(0);
    for (size_t i = 0; i < N; i++) {
        cx_kll_add(asc, sorted[i]);
        cx_kll_add(desc, sorted[N - 1 - i]);
    }
    check_accuracy(asc, sorted, N, 0.01);
    check_accuracy(desc, sorted, N, 0.01);
    cx_kll_destroy(asc);
    cx_kll_destroy(desc);
    free(v);
    free(sorted);
}

Test(kll, accuracy_holds_over_many_seeds) {
    /* The bound is probabilistic: check it is not a lucky seed. */
    double worst = 0;
    for (uint64_t seed = 100; seed < 120; seed++) {
        double *v = gen(seed % 2 ? D_LOGNORMAL_MONEY : D_UNIFORM, N / 2, seed);
        double *sorted = sorted_copy(v, N / 2);
        cx_kll_t *s = cx_kll_new(0);
        for (size_t i = 0; i < N / 2; i++)
            cx_kll_add(s, v[i]);
        double w = check_accuracy(s, sorted, N / 2, 0.01);
        if (w > worst) worst = w;
        cx_kll_destroy(s);
        free(v);
        free(sorted);
    }
    cr_log_info("kll k=%d worst rank error over 20 seeds: %.4f", CX_KLL_DEFAULT_K, worst);
}

Test(kll, merging_four_partition_sketches_keeps_one_percent) {
    dist_t dists[] = {D_UNIFORM, D_LOGNORMAL_MONEY, D_INT_0_50, D_RECENCY};
    for (size_t di = 0; di < 4; di++) {
        double *v = gen(dists[di], N, 40 + di);
        double *sorted = sorted_copy(v, N);
        cx_kll_t *part[4], *merged = cx_kll_new(0);
        for (int p = 0; p < 4; p++) {
            part[p] = cx_kll_new(0);
            for (size_t i = (size_t)p * (N / 4); i < (size_t)(p + 1) * (N / 4); i++)
                cx_kll_add(part[p], v[i]);
            cr_assert_eq(cx_kll_merge(merged, part[p]), CX_OK);
        }
        cr_expect_eq(cx_kll_count(merged), N);
        cr_expect_eq(cx_kll_min(merged), sorted[0]);
        cr_expect_eq(cx_kll_max(merged), sorted[N - 1]);
        check_accuracy(merged, sorted, N, 0.01);
        /* merging into a non-empty sketch: same guarantee */
        cx_kll_t *m2 = cx_kll_new(0);
        cr_assert_eq(cx_kll_merge(m2, part[0]), CX_OK);
        cr_assert_eq(cx_kll_merge(m2, part[1]), CX_OK);
        cx_kll_t *m3 = cx_kll_new(0);
        cr_assert_eq(cx_kll_merge(m3, part[2]), CX_OK);
        cr_assert_eq(cx_kll_merge(m3, part[3]), CX_OK);
        cr_assert_eq(cx_kll_merge(m2, m3), CX_OK);
        check_accuracy(m2, sorted, N, 0.01);
        for (int p = 0; p < 4; p++)
            cx_kll_destroy(part[p]);
        cx_kll_destroy(merged);
        cx_kll_destroy(m2);
        cx_kll_destroy(m3);
        free(v);
        free(sorted);
    }
}

Test(kll, merging_many_small_sketches_keeps_one_percent) {
    /* 64 partitions of very different sizes, merged one by one. */
    double *v = gen(D_PARETO, N, 77);
    double *sorted = sorted_copy(v, N);
    cx_kll_t *merged = cx_kll_new(0), *part = cx_kll_new(0);
    size_t i = 0;
    for (int p = 0; p < 64 && i < N; p++) {
        size_t len = p == 63 ? N - i : (size_t)(p % 7 + 1) * 250;
        cx_kll_reset(part);
        for (size_t j = 0; j < len && i < N; j++)
            cx_kll_add(part, v[i++]);
        cr_assert_eq(cx_kll_merge(merged, part), CX_OK);
    }
    cr_assert_eq(cx_kll_count(merged), N);
    check_accuracy(merged, sorted, N, 0.01);
    cx_kll_destroy(merged);
    cx_kll_destroy(part);
    free(v);
    free(sorted);
}

Test(kll, serialize_then_deserialize_gives_same_quantiles_and_bytes) {
    double *v = gen(D_LOGNORMAL_MONEY, N, 9);
    cx_kll_t *s = cx_kll_new(0);
    for (size_t i = 0; i < N; i++)
        cx_kll_add(s, v[i]);
    cx_buf_t b = CX_BUF_INIT, b2 = CX_BUF_INIT;
    cr_assert_eq(cx_kll_serialize(s, &b), CX_OK);
    cr_expect_lt(b.len, 8 * cx_kll_retained(s) + 256, "encoding is compact: %zu bytes", b.len);
    cx_kll_t *d = NULL;
    char err[128] = "";
    cr_assert_eq(cx_kll_deserialize(b.data, b.len, &d, err, sizeof err), CX_OK, "%s", err);
    cr_expect_eq(cx_kll_count(d), cx_kll_count(s));
    cr_expect_eq(cx_kll_retained(d), cx_kll_retained(s));
    for (int i = 0; i <= 100; i++)
        cr_expect_eq(cx_kll_quantile(d, i / 100.0), cx_kll_quantile(s, i / 100.0));
    cr_assert_eq(cx_kll_serialize(d, &b2), CX_OK);
    cr_expect(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    /* and both continue identically (the coin state travels with the sketch) */
    for (size_t i = 0; i < N / 2; i++) {
        cx_kll_add(s, v[i] * 0.5);
        cx_kll_add(d, v[i] * 0.5);
    }
    cx_buf_reset(&b);
    cx_buf_reset(&b2);
    cx_kll_serialize(s, &b);
    cx_kll_serialize(d, &b2);
    cr_expect(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    cx_kll_destroy(s);
    cx_kll_destroy(d);
    cx_buf_free(&b);
    cx_buf_free(&b2);
    free(v);
}

Test(kll, empty_sketch_round_trips_and_answers_nan) {
    cx_kll_t *s = cx_kll_new(200);
    cr_expect(isnan(cx_kll_quantile(s, 0.5)));
    cr_expect(isnan(cx_kll_rank(s, 1.0)));
    cr_expect(isnan(cx_kll_min(s)));
    cx_buf_t b = CX_BUF_INIT;
    cr_assert_eq(cx_kll_serialize(s, &b), CX_OK);
    cx_kll_t *d = NULL;
    cr_assert_eq(cx_kll_deserialize(b.data, b.len, &d, NULL, 0), CX_OK);
    cr_expect_eq(cx_kll_count(d), 0);
    cr_expect_eq(cx_kll_k(d), 200);
    cx_kll_destroy(s);
    cx_kll_destroy(d);
    cx_buf_free(&b);
}

Test(kll, every_flipped_byte_and_truncation_is_rejected) {
    cx_kll_t *s = cx_kll_new(64);
    uint64_t seed = 11;
    for (int i = 0; i < 5000; i++)
        cx_kll_add(s, draw(D_EXPONENTIAL, &seed));
    cx_buf_t b = CX_BUF_INIT;
    cr_assert_eq(cx_kll_serialize(s, &b), CX_OK);
    uint8_t *p = malloc(b.len + 1);
    char err[128];
    cx_kll_t *d = NULL;
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(p, b.data, b.len);
            p[i] ^= (uint8_t)(1u << bit);
            cr_assert_eq(cx_kll_deserialize(p, b.len, &d, err, sizeof err), CX_ERR_INVALID,
                         "flip at byte %zu bit %d accepted", i, bit);
            cr_assert_null(d);
        }
    }
    for (size_t len = 0; len < b.len; len++)
        cr_assert_eq(cx_kll_deserialize(b.data, len, &d, err, sizeof err), CX_ERR_INVALID, "truncation to %zu accepted",
                     len);
    memcpy(p, b.data, b.len);
    p[b.len] = 0;
    cr_expect_eq(cx_kll_deserialize(p, b.len + 1, &d, err, sizeof err), CX_ERR_INVALID);
    cr_expect_eq(cx_kll_deserialize(NULL, 0, &d, err, sizeof err), CX_ERR_INVALID);
    free(p);
    cx_kll_destroy(s);
    cx_buf_free(&b);
}

Test(kll, well_checksummed_but_inconsistent_input_is_rejected) {
    cx_kll_t *s = cx_kll_new(64);
    for (int i = 0; i < 1000; i++)
        cx_kll_add(s, i);
    cx_buf_t b = CX_BUF_INIT;
    cx_kll_serialize(s, &b);
    char err[128];
    cx_kll_t *d = NULL;
    uint8_t *p = malloc(b.len);

    /* header: "KL" 1, k=64 (1 byte), n=1000 (2 bytes: 0xe8 0x07) */
    memcpy(p, b.data, b.len);
    p[4] = 0xe9; /* n = 1001: the weights no longer add up */
    fix_crc(p, b.len);
    cr_expect_eq(cx_kll_deserialize(p, b.len, &d, err, sizeof err), CX_ERR_INVALID);
    cr_expect(strstr(err, "weights") != NULL, "%s", err);

    memcpy(p, b.data, b.len);
    p[2] = 2; /* future version */
    fix_crc(p, b.len);
    cr_expect_eq(cx_kll_deserialize(p, b.len, &d, err, sizeof err), CX_ERR_INVALID);
    cr_expect(strstr(err, "version") != NULL, "%s", err);

    memcpy(p, b.data, b.len);
    p[3] = 4; /* k below the minimum */
    fix_crc(p, b.len);
    cr_expect_eq(cx_kll_deserialize(p, b.len, &d, err, sizeof err), CX_ERR_INVALID);

    /* an item replaced by NaN: the last 8 bytes before the CRC are the last item */
    memcpy(p, b.data, b.len);
    double nan = NAN;
    memcpy(p + b.len - 12, &nan, 8);
    fix_crc(p, b.len);
    cr_expect_eq(cx_kll_deserialize(p, b.len, &d, err, sizeof err), CX_ERR_INVALID);
    cr_expect_null(d);
    free(p);
    cx_kll_destroy(s);
    cx_buf_free(&b);
}

Test(kll, memory_stays_bounded_over_ten_million_adds) {
    cx_kll_t *s = cx_kll_new(0);
    uint64_t seed = 12;
    size_t peak = 0, bytes_at_1m = 0;
    for (uint32_t i = 0; i < 10000000; i++) {
        cx_kll_add(s, (double)(rng_next(&seed) >> 40));
        if (cx_kll_retained(s) > peak) peak = cx_kll_retained(s);
        if (i == 1000000) bytes_at_1m = cx_kll_bytes(s);
    }
    uint32_t levels = cx_kll_levels(s);
    cr_log_info("kll k=%d after 10M adds: retained %zu (peak %zu), %u levels, %zu bytes "
                "(%zu at 1M)",
                CX_KLL_DEFAULT_K, cx_kll_retained(s), peak, levels, cx_kll_bytes(s), bytes_at_1m);
    cr_expect_eq(cx_kll_count(s), 10000000);
    cr_expect_leq(levels, 20);
    cr_expect_leq(peak, 3 * CX_KLL_DEFAULT_K + 8 * levels, "peak %zu", peak);
    /* one buffer of the sketch's capacity: ≈ 3k doubles, growing with log n only */
    cr_expect_leq(cx_kll_bytes(s), 8 * (3 * CX_KLL_DEFAULT_K + 8 * levels) + 1024);
    cr_expect_leq(cx_kll_bytes(s) - bytes_at_1m, 8 * 8 * 4, "grew from %zu", bytes_at_1m);
    cx_kll_destroy(s);
}

Test(kll, same_input_gives_same_bytes_and_reset_restarts_cleanly) {
    cx_kll_t *a = cx_kll_new(0), *b = cx_kll_new(0);
    uint64_t s1 = 13, s2 = 13;
    for (int i = 0; i < 50000; i++)
        cx_kll_add(a, draw(D_PARETO, &s1));
    for (int i = 0; i < 7; i++)
        cx_kll_add(b, 1e9); /* noise, then reset */
    cx_kll_reset(b);
    cr_expect_eq(cx_kll_count(b), 0);
    cr_expect(isnan(cx_kll_quantile(b, 0.5)));
    for (int i = 0; i < 50000; i++)
        cx_kll_add(b, draw(D_PARETO, &s2));
    cx_buf_t ba = CX_BUF_INIT, bb = CX_BUF_INIT;
    cx_kll_serialize(a, &ba);
    cx_kll_serialize(b, &bb);
    cr_expect(ba.len == bb.len && memcmp(ba.data, bb.data, ba.len) == 0);
    cx_kll_destroy(a);
    cx_kll_destroy(b);
    cx_buf_free(&ba);
    cx_buf_free(&bb);
}

Test(kll, small_inputs_are_exact) {
    cx_kll_t *s = cx_kll_new(0);
    for (int i = 10; i >= 1; i--)
        cx_kll_add(s, i); /* 1..10 */
    cr_expect_eq(cx_kll_quantile(s, 0.0), 1);
    cr_expect_eq(cx_kll_quantile(s, 0.1), 1);
    cr_expect_eq(cx_kll_quantile(s, 0.15), 2);
    cr_expect_eq(cx_kll_quantile(s, 0.5), 5);
    cr_expect_eq(cx_kll_quantile(s, 1.0), 10);
    cr_expect_eq(cx_kll_rank(s, 0.5), 0.0);
    cr_expect_eq(cx_kll_rank(s, 3), 0.3);
    cr_expect_eq(cx_kll_rank(s, 10), 1.0);
    double qs[3] = {0.2, 0.8, 0.6}, out[3];
    cr_assert_eq(cx_kll_quantiles(s, qs, 3, out), CX_OK);
    cr_expect(out[0] == 2 && out[1] == 8 && out[2] == 6);
    cx_kll_destroy(s);
}

Test(kll, bad_arguments_are_refused) {
    cr_expect_null(cx_kll_new(4));
    cr_expect_null(cx_kll_new(CX_KLL_MAX_K + 1));
    cx_kll_t *s = cx_kll_new(0), *t = cx_kll_new(200);
    cr_expect_eq(cx_kll_add(s, NAN), CX_ERR_INVALID);
    cr_expect_eq(cx_kll_add(s, INFINITY), CX_ERR_INVALID);
    cr_expect_eq(cx_kll_count(s), 0);
    cx_kll_add(s, 1);
    cx_kll_add(t, 2);
    cr_expect_eq(cx_kll_merge(s, t), CX_ERR_INVALID, "different k");
    cr_expect_eq(cx_kll_merge(s, s), CX_ERR_INVALID);
    cr_expect_eq(cx_kll_count(s), 1);
    cr_expect(isnan(cx_kll_quantile(s, -0.1)));
    cr_expect(isnan(cx_kll_quantile(s, 1.5)));
    cr_expect(isnan(cx_kll_quantile(s, NAN)));
    cx_kll_destroy(s);
    cx_kll_destroy(t);
    cx_kll_destroy(NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Space-Saving                                                                                */
/* ------------------------------------------------------------------------------------------ */

#define ZIPF_TERMS 5000

typedef struct zipf {
    double cdf[ZIPF_TERMS];
} zipf_t;

static void zipf_init(zipf_t *z, double s) {
    double sum = 0;
    for (int i = 0; i < ZIPF_TERMS; i++)
        z->cdf[i] = sum += 1.0 / pow(i + 1, s);
    for (int i = 0; i < ZIPF_TERMS; i++)
        z->cdf[i] /= sum;
}

static int zipf_draw(const zipf_t *z, uint64_t *seed) {
    double u = rng_unit(seed);
    int lo = 0, hi = ZIPF_TERMS - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (z->cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static size_t term_of(int rank, char *buf) {
    return (size_t)sprintf(buf, "theme-%04d", rank);
}

/* The true top 10 are reported first, in order of their true counts (clear gaps at the head of
 * a Zipf law), and every reported count brackets the true one. */
static void check_topk(const cx_topk_t *t, const uint64_t *truth, uint64_t total) {
    cx_topk_item_t items[64];
    size_t got = cx_topk_top(t, 64, items);
    cr_assert_eq(got, 64);
    for (size_t i = 0; i < got; i++) {
        int rank = atoi(items[i].term + 6);
        uint64_t tc = truth[rank];
        cr_expect(items[i].count >= tc && items[i].count - items[i].error <= tc, "%s: count %lu error %lu, true %lu",
                  items[i].term, (unsigned long)items[i].count, (unsigned long)items[i].error, (unsigned long)tc);
        cr_expect_leq(items[i].error, total / cx_topk_capacity(t));
        if (i > 0) cr_expect_geq(items[i - 1].count, items[i].count);
    }
    for (int r = 0; r < 10; r++) {
        char want[32];
        term_of(r, want);
        cr_expect_str_eq(items[r].term, want, "position %d", r);
    }
}

Test(topk, zipf_stream_reports_true_top_ten_within_error_bounds) {
    static zipf_t z;
    zipf_init(&z, 1.1);
    uint64_t *truth = calloc(ZIPF_TERMS, sizeof *truth);
    cx_topk_t *t = cx_topk_new(200);
    uint64_t seed = 21;
    char term[32];
    for (int i = 0; i < 500000; i++) {
        int r = zipf_draw(&z, &seed);
        truth[r]++;
        cr_assert_eq(cx_topk_add(t, term, term_of(r, term), 1), CX_OK);
    }
    cr_expect_eq(cx_topk_total(t), 500000);
    cr_expect_eq(cx_topk_size(t), 200);
    check_topk(t, truth, 500000);
    cx_topk_destroy(t);
    free(truth);
}

Test(topk, merged_partition_summaries_report_true_top_ten_within_bounds) {
    static zipf_t z;
    zipf_init(&z, 1.1);
    uint64_t *truth = calloc(ZIPF_TERMS, sizeof *truth);
    cx_topk_t *part[4], *merged = cx_topk_new(200);
    uint64_t seed = 22;
    char term[32];
    for (int p = 0; p < 4; p++) {
        part[p] = cx_topk_new(200);
        for (int i = 0; i < 125000; i++) {
            int r = zipf_draw(&z, &seed);
            truth[r]++;
            cx_topk_add(part[p], term, term_of(r, term), 1 + (uint64_t)(p == 3)); /* weighted */
            if (p == 3) truth[r]++;
        }
        cr_assert_eq(cx_topk_merge(merged, part[p]), CX_OK);
    }
    uint64_t total = 3 * 125000 + 2 * 125000;
    cr_expect_eq(cx_topk_total(merged), total);
    check_topk(merged, truth, total);
    for (int p = 0; p < 4; p++)
        cx_topk_destroy(part[p]);
    cx_topk_destroy(merged);
    free(truth);
}

Test(topk, ties_are_ordered_by_term_and_evict_the_greatest_term) {
    cx_topk_t *t = cx_topk_new(3);
    cx_topk_add(t, "delta", 5, 5);
    cx_topk_add(t, "bravo", 5, 5);
    cx_topk_add(t, "charlie", 7, 5);
    cx_topk_item_t it[4];
    cr_assert_eq(cx_topk_top(t, 4, it), 3);
    cr_expect_str_eq(it[0].term, "bravo");
    cr_expect_str_eq(it[1].term, "charlie");
    cr_expect_str_eq(it[2].term, "delta");
    /* full: a newcomer replaces the counter ranked last (count 5, greatest term "delta") */
    cx_topk_add(t, "alpha", 5, 1);
    cr_assert_eq(cx_topk_top(t, 4, it), 3);
    cr_expect_str_eq(it[0].term, "alpha");
    cr_expect_eq(it[0].count, 6);
    cr_expect_eq(it[0].error, 5);
    cr_expect_str_eq(it[1].term, "bravo");
    cr_expect_str_eq(it[2].term, "charlie");
    cr_expect_eq(it[1].error, 0);
    /* asking for fewer than monitored picks the best ones */
    cr_assert_eq(cx_topk_top(t, 1, it), 1);
    cr_expect_str_eq(it[0].term, "alpha");
    cx_topk_destroy(t);
}

/* A plainly written O(m) Space-Saving with the same tie rule, for comparison. */
typedef struct naive_ctr {
    char term[CX_TOPK_TERM_MAX + 1];
    size_t len;
    uint64_t count, error;
} naive_ctr_t;

static int naive_rank(const naive_ctr_t *a, const naive_ctr_t *b) {
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    size_t l = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->term, b->term, l);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int naive_cmp(const void *a, const void *b) {
    return naive_rank(a, b);
}

static void naive_add(naive_ctr_t *c, size_t *n, size_t m, const char *term, size_t len, uint64_t w) {
    for (size_t i = 0; i < *n; i++)
        if (c[i].len == len && memcmp(c[i].term, term, len) == 0) {
            c[i].count += w;
            return;
        }
    size_t slot = *n;
    uint64_t floor_count = 0;
    if (*n < m) {
        (*n)++;
    } else {
        slot = 0;
        for (size_t i = 1; i < *n; i++)
            if (naive_rank(&c[i], &c[slot]) > 0) slot = i;
        floor_count = c[slot].count;
    }
    memcpy(c[slot].term, term, len);
    c[slot].term[len] = 0;
    c[slot].len = len;
    c[slot].count = floor_count + w;
    c[slot].error = floor_count;
}

Test(topk, matches_a_naive_space_saving_exactly_under_heavy_eviction) {
    enum { M = 37 };
    cx_topk_t *t = cx_topk_new(M);
    naive_ctr_t ref[M];
    size_t nref = 0;
    uint64_t seed = 23;
    char term[64];
    for (int i = 0; i < 200000; i++) {
        /* many distinct terms with hash collisions galore in a small table */
        uint64_t x = rng_next(&seed);
        int len = sprintf(term, "t%lu", (unsigned long)((x >> 8) % (x & 1 ? 50 : 3000)));
        uint64_t w = 1 + (x >> 60);
        cx_topk_add(t, term, (size_t)len, w);
        naive_add(ref, &nref, M, term, (size_t)len, w);
        if (i % 9973 == 0 || i == 199999) {
            cx_topk_item_t it[M + 3];
            size_t got = cx_topk_top(t, M + 3, it);
            cr_assert_eq(got, nref);
            naive_ctr_t sorted[M];
            memcpy(sorted, ref, nref * sizeof *ref);
            qsort(sorted, nref, sizeof *sorted, naive_cmp);
            for (size_t k = 0; k < got; k++) {
                cr_assert_str_eq(it[k].term, sorted[k].term, "step %d pos %zu", i, k);
                cr_assert_eq(it[k].count, sorted[k].count);
                cr_assert_eq(it[k].error, sorted[k].error);
            }
        }
    }
    cx_topk_destroy(t);
}

Test(topk, serialize_round_trip_is_canonical_and_behaves_the_same) {
    static zipf_t z;
    zipf_init(&z, 1.0);
    cx_topk_t *t = cx_topk_new(50);
    uint64_t seed = 24;
    char term[32];
    for (int i = 0; i < 20000; i++) {
        int r = zipf_draw(&z, &seed);
        cx_topk_add(t, term, term_of(r, term), 1);
    }
    cx_buf_t b = CX_BUF_INIT, b2 = CX_BUF_INIT;
    cr_assert_eq(cx_topk_serialize(t, &b), CX_OK);
    cx_topk_t *d = NULL;
    char err[128] = "";
    cr_assert_eq(cx_topk_deserialize(b.data, b.len, &d, err, sizeof err), CX_OK, "%s", err);
    cr_expect_eq(cx_topk_total(d), cx_topk_total(t));
    cr_expect_eq(cx_topk_capacity(d), 50);
    cr_assert_eq(cx_topk_serialize(d, &b2), CX_OK);
    cr_expect(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    for (int i = 0; i < 20000; i++) {
        int r = zipf_draw(&z, &seed);
        size_t l = term_of(r, term);
        cx_topk_add(t, term, l, 1);
        cx_topk_add(d, term, l, 1);
    }
    cx_buf_reset(&b);
    cx_buf_reset(&b2);
    cx_topk_serialize(t, &b);
    cx_topk_serialize(d, &b2);
    cr_expect(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0, "diverged after reload");
    cx_topk_destroy(d);
    d = NULL;

    /* corruption: every flipped byte and every truncation is refused */
    uint8_t *p = malloc(b.len + 1);
    for (size_t i = 0; i < b.len; i++) {
        memcpy(p, b.data, b.len);
        p[i] ^= 0x10;
        cr_assert_eq(cx_topk_deserialize(p, b.len, &d, err, sizeof err), CX_ERR_INVALID, "flip at %zu accepted", i);
    }
    for (size_t len = 0; len < b.len; len++)
        cr_assert_eq(cx_topk_deserialize(b.data, len, &d, err, sizeof err), CX_ERR_INVALID);
    free(p);
    cx_topk_destroy(t);
    cx_buf_free(&b);
    cx_buf_free(&b2);
}

Test(topk, checksummed_but_inconsistent_input_is_rejected) {
    cx_topk_t *t = cx_topk_new(4);
    cx_topk_add(t, "aa", 2, 3);
    cx_topk_add(t, "bb", 2, 2);
    cx_buf_t b = CX_BUF_INIT;
    cx_topk_serialize(t, &b);
    /* "TK" 1, m=4, total=5, size=2, {2 "aa" 3 0} {2 "bb" 2 0}, crc */
    cr_assert_eq(b.len, 6 + 5 + 5 + 4);
    char err[128] = "";
    cx_topk_t *d = NULL;
    uint8_t p[32];

    memcpy(p, b.data, b.len);
    p[12] = 'a';
    p[13] = 'a'; /* duplicate term "aa" */
    p[14] = 3;   /* with equal count: the order check or duplicate check fires */
    fix_crc(p, b.len);
    cr_expect_eq(cx_topk_deserialize(p, b.len, &d, err, sizeof err), CX_ERR_INVALID);

    memcpy(p, b.data, b.len);
    p[10] = 4; /* error 4 > count 3 */
    fix_crc(p, b.len);
    cr_expect_eq(cx_topk_deserialize(p, b.len, &d, err, sizeof err), CX_ERR_INVALID);

    memcpy(p, b.data, b.len);
    p[5] = 5; /* size 5 > m 4 */
    fix_crc(p, b.len);
    cr_expect_eq(cx_topk_deserialize(p, b.len, &d, err, sizeof err), CX_ERR_INVALID);

    memcpy(p, b.data, b.len);
    p[9] = 1; /* "aa" count 1 now ranks below "bb" 2: not canonical */
    fix_crc(p, b.len);
    cr_expect_eq(cx_topk_deserialize(p, b.len, &d, err, sizeof err), CX_ERR_INVALID);
    cr_expect_null(d);
    cx_topk_destroy(t);
    cx_buf_free(&b);
}

Test(topk, bad_terms_are_refused_and_limits_accepted) {
    cr_expect_null(cx_topk_new(0));
    cx_topk_t *t = cx_topk_new(2);
    char big[CX_TOPK_TERM_MAX + 1];
    memset(big, 'x', sizeof big);
    cr_expect_eq(cx_topk_add(t, big, 0, 1), CX_ERR_INVALID);
    cr_expect_eq(cx_topk_add(t, big, CX_TOPK_TERM_MAX + 1, 1), CX_ERR_INVALID);
    cr_expect_eq(cx_topk_add(t, big, CX_TOPK_TERM_MAX, 1), CX_OK);
    cr_expect_eq(cx_topk_add(t, "zero", 4, 0), CX_OK);
    cr_expect_eq(cx_topk_size(t), 1);
    cr_expect_eq(cx_topk_merge(t, t), CX_ERR_INVALID);
    cx_topk_item_t it[2];
    cr_assert_eq(cx_topk_top(t, 2, it), 1);
    cr_expect_eq(it[0].len, CX_TOPK_TERM_MAX);
    cr_expect_eq(strlen(it[0].term), CX_TOPK_TERM_MAX);
    cx_topk_reset(t);
    cr_expect_eq(cx_topk_size(t), 0);
    cr_expect_eq(cx_topk_total(t), 0);
    cx_topk_destroy(t);
    cx_topk_destroy(NULL);
}

Test(topk, merge_fills_absent_terms_with_the_other_side_minimum) {
    cx_topk_t *a = cx_topk_new(2), *b = cx_topk_new(2), *c = cx_topk_new(3);
    cx_topk_add(a, "x", 1, 10);
    cx_topk_add(a, "y", 1, 4); /* a full, min 4 */
    cx_topk_add(b, "y", 1, 6);
    cx_topk_add(b, "z", 1, 3); /* b full, min 3 */
    cx_topk_add(c, "w", 1, 1); /* c not full: absent terms have 0 there */
    cr_assert_eq(cx_topk_merge(a, b), CX_OK);
    cx_topk_item_t it[3];
    cr_assert_eq(cx_topk_top(a, 3, it), 2);
    /* candidates: x 10+3 (err 3), y 4+6 (err 0), z 3+4 (err 4) → keep x, y */
    cr_expect_str_eq(it[0].term, "x");
    cr_expect_eq(it[0].count, 13);
    cr_expect_eq(it[0].error, 3);
    cr_expect_str_eq(it[1].term, "y");
    cr_expect_eq(it[1].count, 10);
    cr_expect_eq(it[1].error, 0);
    cr_expect_eq(cx_topk_total(a), 23);
    cr_assert_eq(cx_topk_merge(c, a), CX_OK); /* c (not full) into c: w gets a's min 10 */
    cr_assert_eq(cx_topk_top(c, 3, it), 3);
    cr_expect_str_eq(it[0].term, "x");
    cr_expect_eq(it[0].error, 3);
    cr_expect_str_eq(it[1].term, "w");
    cr_expect_eq(it[1].count, 11);
    cr_expect_eq(it[1].error, 10);
    cr_expect_str_eq(it[2].term, "y");
    cx_topk_destroy(a);
    cx_topk_destroy(b);
    cx_topk_destroy(c);
}

Test(sketch, random_checksummed_bodies_are_refused_or_valid_never_crash) {
    /* Past the CRC, the parsers must still hold up against any body (ASan checks the reads). */
    uint64_t seed = 31;
    uint8_t p[256];
    char err[128];
    for (int i = 0; i < 20000; i++) {
        size_t len = 7 + (size_t)(rng_next(&seed) % (sizeof p - 7));
        for (size_t j = 0; j < len; j++)
            p[j] = (uint8_t)rng_next(&seed);
        bool kll = i & 1;
        p[0] = kll ? 'K' : 'T';
        p[1] = kll ? 'L' : 'K';
        p[2] = 1;
        if (i % 3 == 0 && len > 8) { /* plausible small headers reach deeper */
            p[3] = kll ? 64 : 4;
            p[4] = (uint8_t)(p[4] & 0x3f);
            p[5] = (uint8_t)(p[5] & 0x07);
        }
        fix_crc(p, len);
        if (kll) {
            cx_kll_t *d = NULL;
            cx_err_t e = cx_kll_deserialize(p, len, &d, err, sizeof err);
            cr_assert(e == CX_ERR_INVALID || (e == CX_OK && d));
            if (d) cr_expect_leq(cx_kll_retained(d), 3 * 64 + 8 * 64);
            cx_kll_destroy(d);
        } else {
            cx_topk_t *d = NULL;
            cx_err_t e = cx_topk_deserialize(p, len, &d, err, sizeof err);
            cr_assert(e == CX_ERR_INVALID || (e == CX_OK && d));
            cx_topk_destroy(d);
        }
    }
}
