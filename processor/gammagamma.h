/*
 * gammagamma.h — the Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using
 * iso-value curves"): the expected spend per transaction of a customer given x repeat
 * transactions with mean value m, and the per-customer log-likelihood cx_fit_gg() maximises.
 *
 * Money is in whatever unit m is given in (cxstream: minor units), and gamma is in that unit.
 * Valid input: p, q, gamma > 0; x >= 0; m > 0 when x > 0. Pure functions, no allocation.
 */
#ifndef CX_GAMMAGAMMA_H
#define CX_GAMMAGAMMA_H

typedef struct cx_gg_params {
    double p;     /* shape of the Gamma distribution of one transaction's value */
    double q;     /* shape of the Gamma heterogeneity of the scale across customers */
    double gamma; /* scale of that heterogeneity (money unit) */
} cx_gg_params_t;

/* E[M | x, m] = p (gamma + x m) / (p x + q - 1), also for m = 0 (m < 0 counts as 0). For x = 0
 * the population mean p gamma / (q - 1). The mean exists only for q > 1 (and p x + q > 1): otherwise NAN, which
 * callers must treat as "no estimate". */
double cx_gg_expected_spend(const cx_gg_params_t *g, double x, double m);

/* ln L(p, q, gamma | x, m) for x > 0 transactions of mean value m > 0 (the density of the mean,
 * as lifetimes' GammaGammaFitter uses); -INFINITY for invalid parameters or input. */
double cx_gg_loglik(const cx_gg_params_t *g, double x, double m);

#endif
