/*
 * bgnbd.c — BG/NBD (Fader, Hardie & Lee 2005) P(alive), conditional expectation and likelihood.
 *
 * Everything is computed in log space where products of powers and gamma functions appear, so a
 * customer with x = 1000 and T = 5000 is as safe as one with x = 2. The one delicate part is the
 * conditional expectation
 *
 *   E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1) * [1 - G] * P(alive),
 *   G = ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z),  z = t/(alpha+T+t).
 *
 * Summed as written (lifetimes does), the 2F1 series has terms that grow like k^(x+r-a) z^k
 * before they decay, and 2F1 itself grows like (1-z)^-(x+r+1-a): for large x it overflows, and
 * 1 - G cancels catastrophically. Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) *
 * 2F1(C-A, C-B; C; z) turns G into
 *
 *   G = (1-z)^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z),
 *
 * whose parameters no longer grow with x and whose terms decay like k^-(x+r+2-a) z^k. Every term
 * of that series beyond the first carries the factor (a-1), so (1 - G)/(a-1) is summed without the
 * division: -expm1((a-1) ln(1-z))/(a-1) - (1-z)^(a-1) * sum_k>=1 tau_k, which is smooth through
 * a = 1 (the model's removable singularity). When x + r + 1 - a <= 0 (only for x = 0 or small x
 * with a large) the untransformed series is the one whose terms decay, and a > 1 + r there, so it
 * is used instead. Both series are summed with a convergence test and, if the budget runs out
 * (z within about 1e-6 of 1), a geometric estimate of the tail.
 */
#include "bgnbd.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define CX_HYP_MAX_TERMS 4000000
#define CX_HYP_EPS       1e-17

static double lgam(double v) {
    int sign;
    return lgamma_r(v, &sign);
}

static int params_valid(const cx_bgnbd_params_t *p) {
    return p && p->r > 0 && p->alpha > 0 && p->a > 0 && p->b > 0 && isfinite(p->r) && isfinite(p->alpha) &&
           isfinite(p->a) && isfinite(p->b);
}

/* Sums sum_{k>=1} term_k with term_1 = first and term_{k+1} = term_k * (p + k)(q + k) z /
 * ((c + k)(k + 1)) (the tail of a 2F1 series, up to a constant factor). */
static double series_tail(double first, double p, double q, double c, double z) {
    double term = first, sum = 0.0;
    for (long k = 1; k <= CX_HYP_MAX_TERMS; k++) {
        sum += term;
        double ratio = (p + k) * (q + k) * z / ((c + k) * (k + 1));
        double next = term * ratio;
        if (fabs(next) <= CX_HYP_EPS * fabs(sum) && fabs(ratio) < 1.0) return sum + next;
        if (next == 0.0) return sum;
        term = next;
        if (k == CX_HYP_MAX_TERMS && fabs(ratio) < 1.0) return sum + term * ratio / (1.0 - ratio);
    }
    return sum;
}

double cx_bgnbd_hyp2f1(double a, double b, double c, double z) {
    if (!(z >= 0.0 && z < 1.0) || (c <= 0 && c == floor(c))) return NAN;
    if (z == 0.0) return 1.0;
    double s = c - a - b;
    if (s >= 0.0) return 1.0 + series_tail(a * b * z / c, a, b, c, z);
    /* Euler: the transformed series' terms decay, the prefactor carries the growth. */
    double f = 1.0 + series_tail((c - a) * (c - b) * z / c, c - a, c - b, c, z);
    return exp(s * log1p(-z)) * f;
}

/* log(a/(b+x-1)): the log of P(alive)'s odds ratio at T = t_x (cx_bgnbd_p_alive and its inverse) */
static double log_ratio_at_t_x(const cx_bgnbd_params_t *p, double x) {
    return log(p->a) - log(p->b + x - 1.0);
}

double cx_bgnbd_p_alive(const cx_bgnbd_params_t *p, double x, double t_x, double T) {
    if (x <= 0.0) return 1.0;
    if (!params_valid(p)) return NAN;
    /* 1 / (1 + a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)), the ratio in logs. */
    double lr = log_ratio_at_t_x(p, x) + (p->r + x) * log1p((T - t_x) / (p->alpha + t_x));
    if (lr > 0) {
        double e = exp(-lr);
        return e / (1.0 + e);
    }
    return 1.0 / (1.0 + exp(lr));
}

double cx_bgnbd_p_alive_T(const cx_bgnbd_params_t *p, double x, double t_x, double thr) {
    if (x <= 0.0 || !(thr > 0.0 && thr < 1.0) || !params_valid(p)) return NAN;
    /* P < thr  <=>  lr > log(1/thr - 1), lr as in cx_bgnbd_p_alive, solved for T */
    double need = log1p(-thr) - log(thr) - log_ratio_at_t_x(p, x);
    return t_x + (p->alpha + t_x) * expm1(need / (p->r + x));
}

static double expected_uncached(const cx_bgnbd_params_t *p, double x, double t_x, double T, double t);

/* The series costs up to thousands of terms when t is long against alpha + T (a new customer's
 * one-year CLV horizon), and the pipeline asks for the same few (x, t_x, T, t) over and over: day
 * counts are integers. A small direct-mapped memo per thread makes a repeat cost one hash. */
#define EXPECTED_MEMO 4096
typedef struct memo_slot {
    double key[8];
    double value;
    bool used;
} memo_slot_t;
static _Thread_local memo_slot_t expected_memo[EXPECTED_MEMO];

double cx_bgnbd_expected(const cx_bgnbd_params_t *p, double x, double t_x, double T, double t) {
    double key[8] = {p->r, p->alpha, p->a, p->b, x, t_x, T, t};
    uint64_t w[8], h = 0;
    memcpy(w, key, sizeof w);
    for (size_t i = 0; i < 8; i++) /* a word at a time: the memo is asked once or twice per event */
        h = (h ^ w[i]) * UINT64_C(0x9E3779B97F4A7C15);
    h ^= h >> 33; /* the doubles differ in their high bits: fold those down (murmur3's fmix64) */
    h *= UINT64_C(0xFF51AFD7ED558CCD);
    h ^= h >> 33;
    memo_slot_t *slot = &expected_memo[h % EXPECTED_MEMO];
    if (slot->used && memcmp(slot->key, key, sizeof key) == 0) return slot->value;
    double v = expected_uncached(p, x, t_x, T, t);
    memcpy(slot->key, key, sizeof key);
    slot->value = v;
    slot->used = true;
    return v;
}

static double expected_uncached(const cx_bgnbd_params_t *p, double x, double t_x, double T, double t) {
    if (!params_valid(p)) return NAN;
    if (t <= 0.0) return 0.0;
    double r = p->r, alpha = p->alpha, a = p->a, b = p->b;
    double u = a - 1.0;
    double c = a + b + x - 1.0;
    double z = t / (alpha + T + t);
    double L = -log1p(t / (alpha + T)); /* ln(1 - z), exact for small z */
    double q;                           /* (1 - G) / (a - 1), times c */
    if (x + r + 1.0 - a > 0.0) {
        /* Euler-transformed series; sigma_k = c * tau_k so c near 0 (x = 0, a + b near 1) is
         * harmless: sigma_1 = (a+b-1-r) z, ratio (p1 + k)(a + k - 1) z / ((c + k)(k + 1)). */
        double p1 = a + b - 1.0 - r;
        double sig = series_tail(p1 * z, p1, a - 1.0, c, z);
        double lead = (u == 0.0) ? -L : -expm1(u * L) / u;
        q = c * lead - exp(u * L) * sig;
    } else {
        /* Untransformed series; here a >= 1 + r + x, so u >= r > 0. */
        double A = r + x, B = b + x;
        double f1 = series_tail(A * B * z / c, A, B, c, z);
        double one_minus_g = -expm1(A * L) - exp(A * L) * f1;
        q = c * one_minus_g / u;
    }
    double e = q * cx_bgnbd_p_alive(p, x, t_x, T);
    return e > 0.0 ? e : 0.0; /* rounding near t = 0 only */
}

double cx_bgnbd_expected_population(const cx_bgnbd_params_t *p, double t) {
    /* E[X(t)] is the conditional expectation of a customer observed for T = 0: P(alive) = 1. */
    return cx_bgnbd_expected(p, 0.0, 0.0, 0.0, t);
}

double cx_bgnbd_loglik(const cx_bgnbd_params_t *p, double x, double t_x, double T) {
    if (!params_valid(p)) return -INFINITY;
    double r = p->r, alpha = p->alpha, a = p->a, b = p->b;
    double a1 = lgam(r + x) - lgam(r) + r * log(alpha);
    double a2 = lgam(a + b) + lgam(b + x) - lgam(b) - lgam(a + b + x);
    double a3 = -(r + x) * log(alpha + T);
    if (x <= 0.0) return a1 + a2 + a3;
    double a4 = log_ratio_at_t_x(p, x) - (r + x) * log(alpha + t_x);
    double hi = a3 > a4 ? a3 : a4, lo = a3 > a4 ? a4 : a3;
    return a1 + a2 + hi + log1p(exp(lo - hi));
}
