/*
 * bgnbd.h — the BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way")
 * as pure functions of the population parameters and one customer's (x, t_x, T): P(alive), the
 * conditional expected number of transactions in the next t, and the per-customer
 * log-likelihood that cx_fit_bgnbd() maximises.
 *
 * Units: t_x, T, t and alpha share one time unit (bgnbd.unit_days days; the caller divides day
 * counts by it). x is the number of repeat transactions (distinct transaction days − 1).
 * Valid input: r, alpha, a, b > 0; x >= 0; 0 <= t_x <= T; t >= 0. For valid input every function
 * returns a finite number (no NaN, no infinity), also for large x (thousands) and T (thousands).
 * Nothing here allocates or keeps state; all functions are thread-safe.
 */
#ifndef CX_BGNBD_H
#define CX_BGNBD_H

typedef struct cx_bgnbd_params {
    double r, alpha; /* Gamma(r, alpha) heterogeneity of the transaction rate lambda */
    double a, b;     /* Beta(a, b) heterogeneity of the dropout probability p */
} cx_bgnbd_params_t;

/* P(customer still alive | x, t_x, T). Exactly 1 when x = 0 (the model's convention: a customer
 * without repeat transactions cannot have dropped out, since dropout follows a transaction). */
double cx_bgnbd_p_alive(const cx_bgnbd_params_t *p, double x, double t_x, double T);

/* The T at which cx_bgnbd_p_alive(p, x, t_x, T) falls to thr (it falls as T grows): P(alive) < thr
 * for T beyond it, up to rounding. NAN when x <= 0, thr is outside (0, 1) or the parameters are
 * invalid; may be below t_x (P(alive) is below thr from the start). */
double cx_bgnbd_p_alive_T(const cx_bgnbd_params_t *p, double x, double t_x, double thr);

/* E[Y(t) | x, t_x, T]: expected transactions in (T, T + t]. Closed form with the Gaussian
 * hypergeometric function 2F1, evaluated by its series after Euler's transformation where that
 * makes the terms decay (see bgnbd.c); a = 1 is handled by the limit, not a division by zero. */
double cx_bgnbd_expected(const cx_bgnbd_params_t *p, double x, double t_x, double T, double t);

/* E[X(t)] for a customer drawn from the population (the unconditional expectation, eq. 9 of the
 * paper); useful for checks and dashboards. */
double cx_bgnbd_expected_population(const cx_bgnbd_params_t *p, double t);

/* Per-customer log-likelihood ln L(r, alpha, a, b | x, t_x, T) (eq. 6 of the paper), computed in
 * log space. Returns -INFINITY only for invalid parameters (<= 0). */
double cx_bgnbd_loglik(const cx_bgnbd_params_t *p, double x, double t_x, double T);

/* Gaussian hypergeometric 2F1(a, b; c; z) for 0 <= z < 1, c not a non-positive integer; exposed
 * for tests. Returns NAN if the series fails to converge (z too close to 1 for the budget). */
double cx_bgnbd_hyp2f1(double a, double b, double c, double z);

#endif
