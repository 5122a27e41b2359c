/*
 * gammagamma.c — Gamma-Gamma expected spend and likelihood. The spend of one transaction is
 * Gamma(p, nu) and nu varies across customers as Gamma(q, gamma); the mean m of x transactions
 * is then Gamma(p x, nu x), and integrating nu out gives the per-customer likelihood below (in
 * logs, so x in the thousands is safe).
 */
#include "gammagamma.h"

#include <math.h>

static double lgam(double v) {
    int sign;
    return lgamma_r(v, &sign);
}

double cx_gg_expected_spend(const cx_gg_params_t *g, double x, double m) {
    if (!g || !(g->p > 0 && g->q > 0 && g->gamma > 0)) return NAN;
    if (!(x > 0.0)) return g->q > 1.0 ? g->p * g->gamma / (g->q - 1.0) : NAN;
    /* m = 0 is data, not "unknown": repeat transactions that brought no money (plays inside a
     * subscription) pull the posterior towards 0. Negative m (refunds) counts as 0. */
    if (!(m > 0.0)) m = 0.0;
    double den = g->p * x + g->q - 1.0;
    if (!(den > 0.0)) return NAN;
    return g->p * (g->gamma + x * m) / den;
}

double cx_gg_loglik(const cx_gg_params_t *g, double x, double m) {
    if (!g || !(g->p > 0 && g->q > 0 && g->gamma > 0) || !isfinite(g->p) || !isfinite(g->q) || !isfinite(g->gamma) ||
        !(x > 0) || !(m > 0))
        return -INFINITY;
    double p = g->p, q = g->q, v = g->gamma, px = p * x;
    return lgam(px + q) - lgam(px) - lgam(q) + q * log(v) + (px - 1.0) * log(m) + px * log(x) -
           (px + q) * log(x * m + v);
}
