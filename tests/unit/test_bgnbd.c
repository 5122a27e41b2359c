/*
 * test_bgnbd.c — BG/NBD and Gamma-Gamma as pure functions: the paper's worked numbers, the model's
 * conventions (x = 0), agreement of the transformed 2F1 evaluation with a plain long-double
 * series, continuity through a = 1, and finiteness where naive formulas overflow.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "bgnbd.h"
#include "gammagamma.h"

/* Fader, Hardie & Lee (2005), CDNOW, weeks. */
static const cx_bgnbd_params_t paper = {0.243, 4.414, 0.793, 2.426};

/* E[Y(t)] from the textbook formula with a plain long-double 2F1 series: the reference for
 * moderate x, where the naive sum is still accurate. */
static double naive_expected(const cx_bgnbd_params_t *p, double x, double t_x, double T, double t) {
    long double A = p->r + x, B = p->b + x, C = p->a + p->b + x - 1, z = t / (p->alpha + T + t);
    long double term = 1, sum = 1;
    for (int k = 0; k < 200000; k++) {
        term *= (A + k) * (B + k) / ((C + k) * (k + 1)) * z;
        sum += term;
        if (fabsl(term) < 1e-22L * sum) break;
    }
    long double g = powl((p->alpha + T) / (p->alpha + T + t), A) * sum;
    long double e = (p->a + p->b + x - 1) / (p->a - 1) * (1 - g);
    long double pa = x > 0 ? 1 / (1 + p->a / (p->b + x - 1) * powl((p->alpha + T) / (p->alpha + t_x), p->r + x)) : 1;
    return (double)(e * pa);
}

Test(bgnbd, paper_customer_p_alive_and_expected_transactions) {
    /* The paper's example customer: x = 2, t_x = 30.43, T = 38.86 weeks. */
    cr_assert_float_eq(cx_bgnbd_p_alive(&paper, 2, 30.43, 38.86), 0.7266, 1e-3);
    cr_assert_float_eq(cx_bgnbd_expected(&paper, 2, 30.43, 38.86, 39), 1.226, 1e-3);
}

Test(bgnbd, p_alive_is_one_without_repeat_transactions) {
    cr_assert_eq(cx_bgnbd_p_alive(&paper, 0, 0, 38.86), 1.0);
    cr_assert_eq(cx_bgnbd_p_alive(&paper, 0, 0, 5000), 1.0);
}

Test(bgnbd, p_alive_decreases_as_silence_grows) {
    double prev = 1.0;
    for (double T = 10; T <= 5000; T *= 1.5) {
        double pa = cx_bgnbd_p_alive(&paper, 3, 10, T);
        cr_assert(pa < prev, "T=%g p_alive=%g not below %g", T, pa, prev);
        cr_assert(pa >= 0.0);
        prev = pa;
    }
}

Test(bgnbd, p_alive_T_is_where_p_alive_falls_to_the_threshold) {
    const double xs[] = {1, 2, 7, 40}, txs[] = {0, 3.5, 30.43, 200}, thrs[] = {0.01, 0.2, 0.5, 0.9};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 4; j++)
            for (size_t k = 0; k < 4; k++) {
                double T = cx_bgnbd_p_alive_T(&paper, xs[i], txs[j], thrs[k]);
                cr_assert(isfinite(T), "x %g t_x %g thr %g", xs[i], txs[j], thrs[k]);
                /* below t_x the model does not apply (T >= t_x); there P(alive) starts below thr */
                if (T < txs[j]) {
                    cr_assert_lt(cx_bgnbd_p_alive(&paper, xs[i], txs[j], txs[j]), thrs[k]);
                    continue;
                }
                cr_assert_float_eq(cx_bgnbd_p_alive(&paper, xs[i], txs[j], T), thrs[k], 1e-9, "x %g t_x %g thr %g",
                                   xs[i], txs[j], thrs[k]);
                cr_assert_lt(cx_bgnbd_p_alive(&paper, xs[i], txs[j], T + 0.01), thrs[k]);
                cr_assert_gt(cx_bgnbd_p_alive(&paper, xs[i], txs[j], T - 0.01 > txs[j] ? T - 0.01 : txs[j]),
                             thrs[k] - 1e-9);
            }
    cr_assert(isnan(cx_bgnbd_p_alive_T(&paper, 0, 0, 0.2)), "no repeat transactions: P(alive) is 1");
    cr_assert(isnan(cx_bgnbd_p_alive_T(&paper, 2, 3, 0)));
    cr_assert(isnan(cx_bgnbd_p_alive_T(&paper, 2, 3, 1)));
    cx_bgnbd_params_t bad = paper;
    bad.alpha = 0;
    cr_assert(isnan(cx_bgnbd_p_alive_T(&bad, 2, 3, 0.2)));
}

Test(bgnbd, p_alive_is_higher_for_a_more_recent_last_transaction) {
    cr_assert(cx_bgnbd_p_alive(&paper, 5, 38, 39) > cx_bgnbd_p_alive(&paper, 5, 20, 39));
}

Test(bgnbd, expected_matches_plain_series_for_moderate_x) {
    const double xs[] = {0, 1, 2, 5, 20};
    const double ts[] = {0.5, 13, 39, 52};
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        for (size_t j = 0; j < sizeof ts / sizeof *ts; j++) {
            double tx = xs[i] > 0 ? 25 : 0;
            double got = cx_bgnbd_expected(&paper, xs[i], tx, 38.86, ts[j]);
            double want = naive_expected(&paper, xs[i], tx, 38.86, ts[j]);
            cr_assert(fabs(got - want) <= 1e-9 * fmax(1, fabs(want)), "x=%g t=%g got %.15g want %.15g", xs[i], ts[j],
                      got, want);
        }
    }
}

Test(bgnbd, expected_matches_plain_series_when_a_is_above_one_plus_r_plus_x) {
    /* x + r + 1 - a <= 0 takes the untransformed branch. */
    cx_bgnbd_params_t p = {0.3, 5.0, 2.5, 3.0};
    for (double t = 1; t <= 200; t *= 3) {
        double got = cx_bgnbd_expected(&p, 0, 0, 10, t);
        double want = naive_expected(&p, 0, 0, 10, t);
        cr_assert(fabs(got - want) <= 1e-9 * want, "t=%g got %.15g want %.15g", t, got, want);
        got = cx_bgnbd_expected(&p, 1, 4, 10, t);
        want = naive_expected(&p, 1, 4, 10, t);
        cr_assert(fabs(got - want) <= 1e-9 * want, "x=1 t=%g got %.15g want %.15g", t, got, want);
    }
}

Test(bgnbd, expected_is_continuous_through_a_equal_one) {
    cx_bgnbd_params_t lo = paper, mid = paper, hi = paper;
    lo.a = 1 - 1e-7;
    mid.a = 1;
    hi.a = 1 + 1e-7;
    double el = cx_bgnbd_expected(&lo, 2, 30, 39, 39), em = cx_bgnbd_expected(&mid, 2, 30, 39, 39),
           eh = cx_bgnbd_expected(&hi, 2, 30, 39, 39);
    cr_assert(isfinite(em) && em > 0);
    cr_assert(fabs(el - em) < 1e-6 && fabs(eh - em) < 1e-6, "%.12g %.12g %.12g", el, em, eh);
}

Test(bgnbd, large_x_and_T_stay_finite_and_in_range) {
    double pa = cx_bgnbd_p_alive(&paper, 1000, 4999, 5000);
    cr_assert(isfinite(pa) && pa >= 0 && pa <= 1, "p_alive %g", pa);
    cr_assert(pa > 0.9, "a customer active to the end should be alive, got %g", pa);
    double pa0 = cx_bgnbd_p_alive(&paper, 0, 0, 5000);
    cr_assert(pa0 >= 0 && pa0 <= 1);
    /* About 0.2 transactions a week over 5000 weeks: the next 39 weeks hold about 7.8. */
    double e = cx_bgnbd_expected(&paper, 1000, 4999, 5000, 39);
    cr_assert(isfinite(e) && e > 7 && e < 8.5, "expected %g", e);
    double ll = cx_bgnbd_loglik(&paper, 1000, 4999, 5000);
    cr_assert(isfinite(ll));
    /* long silence after many transactions: alive probability tiny but not NaN */
    double dead = cx_bgnbd_p_alive(&paper, 1000, 10, 5000);
    cr_assert(isfinite(dead) && dead >= 0 && dead < 1e-10);
    cr_assert(isfinite(cx_bgnbd_expected(&paper, 1000, 10, 5000, 39)));
}

Test(bgnbd, expected_grows_with_horizon_and_stays_finite_for_long_horizons) {
    double prev = 0;
    for (double t = 1; t <= 1e6; t *= 4) {
        double e = cx_bgnbd_expected(&paper, 2, 30.43, 38.86, t);
        cr_assert(isfinite(e) && e > prev, "t=%g e=%g prev=%g", t, e, prev);
        prev = e;
    }
    cr_assert_eq(cx_bgnbd_expected(&paper, 2, 30.43, 38.86, 0), 0.0);
}

Test(bgnbd, population_expectation_matches_paper_formula) {
    /* E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))] */
    const cx_bgnbd_params_t *p = &paper;
    double t = 78;
    double f = cx_bgnbd_hyp2f1(p->r, p->b, p->a + p->b - 1, t / (p->alpha + t));
    double want = (p->a + p->b - 1) / (p->a - 1) * (1 - pow(p->alpha / (p->alpha + t), p->r) * f);
    cr_assert_float_eq(cx_bgnbd_expected_population(p, t), want, 1e-10);
}

Test(bgnbd, hyp2f1_matches_closed_forms) {
    /* 2F1(1,1;2;z) = -ln(1-z)/z; 2F1(a,b;b;z) = (1-z)^-a */
    for (double z = 0.05; z < 0.999; z += 0.1) {
        cr_assert_float_eq(cx_bgnbd_hyp2f1(1, 1, 2, z), -log1p(-z) / z, 1e-12 * (-log1p(-z) / z));
        double w = pow(1 - z, -3.5);
        cr_assert_float_eq(cx_bgnbd_hyp2f1(3.5, 2.25, 2.25, z), w, 1e-11 * w);
    }
    cr_assert(isnan(cx_bgnbd_hyp2f1(1, 1, 2, 1.0)));
    cr_assert(isnan(cx_bgnbd_hyp2f1(1, 1, -2, 0.5)));
}

Test(bgnbd, loglik_matches_the_likelihood_written_out) {
    const cx_bgnbd_params_t *p = &paper;
    double x = 2, tx = 30.43, T = 38.86;
    double beta_ratio = tgamma(p->a + p->b) * tgamma(p->b + x) / (tgamma(p->b) * tgamma(p->a + p->b + x));
    double common = tgamma(p->r + x) * pow(p->alpha, p->r) / tgamma(p->r);
    double l = beta_ratio * common *
               (pow(p->alpha + T, -(p->r + x)) + p->a / (p->b + x - 1) * pow(p->alpha + tx, -(p->r + x)));
    cr_assert_float_eq(cx_bgnbd_loglik(p, x, tx, T), log(l), 1e-12);
    double l0 = pow(p->alpha / (p->alpha + T), p->r);
    cr_assert_float_eq(cx_bgnbd_loglik(p, 0, 0, T), log(l0), 1e-12);
}

Test(bgnbd, invalid_parameters_are_reported_not_computed) {
    cx_bgnbd_params_t bad = {0, 1, 1, 1};
    cr_assert(isinf(cx_bgnbd_loglik(&bad, 1, 1, 2)));
    cr_assert(isnan(cx_bgnbd_p_alive(&bad, 1, 1, 2)));
    cr_assert(isnan(cx_bgnbd_expected(&bad, 1, 1, 2, 3)));
}

static const cx_gg_params_t gg_paper = {6.25, 3.74, 15.44};

Test(gammagamma, expected_spend_shrinks_towards_population_mean) {
    double pop = 6.25 * 15.44 / (3.74 - 1);
    cr_assert_float_eq(cx_gg_expected_spend(&gg_paper, 0, 0), pop, 1e-12);
    cr_assert_float_eq(cx_gg_expected_spend(&gg_paper, 2, 50), 6.25 * (15.44 + 2 * 50) / (6.25 * 2 + 3.74 - 1), 1e-12);
    /* between the customer's own mean and the population mean, nearer the own mean for larger x */
    double e1 = cx_gg_expected_spend(&gg_paper, 1, 100), e10 = cx_gg_expected_spend(&gg_paper, 10, 100);
    cr_assert(e1 > pop && e1 < 100 && e10 > e1 && e10 < 100);
}

Test(gammagamma, population_mean_is_undefined_for_q_at_most_one) {
    cx_gg_params_t g = {2, 0.8, 10};
    cr_assert(isnan(cx_gg_expected_spend(&g, 0, 0)));
    cr_assert(isfinite(cx_gg_expected_spend(&g, 3, 20)));
}

Test(gammagamma, loglik_is_the_gamma_mixture_density) {
    /* x = 1: m is one transaction's value, Gamma(p, nu) mixed over nu ~ Gamma(q, gamma). */
    const cx_gg_params_t *g = &gg_paper;
    double m = 20;
    double want = lgamma(g->p + g->q) - lgamma(g->p) - lgamma(g->q) + g->q * log(g->gamma) + (g->p - 1) * log(m) -
                  (g->p + g->q) * log(m + g->gamma);
    cr_assert_float_eq(cx_gg_loglik(g, 1, m), want, 1e-12);
    cr_assert(isfinite(cx_gg_loglik(g, 5000, 1e6)));
    cr_assert(isinf(cx_gg_loglik(g, 0, 10)));
}

Test(bgnbd, expected_matches_high_precision_references_at_the_extremes) {
    /* References computed with mpmath (50 digits) from the textbook closed form. */
    static const struct {
        cx_bgnbd_params_t p;
        double x, t_x, T, t, want;
    } cases[] = {
        {{0.243, 4.414, 0.793, 2.426}, 1000, 4999, 5000, 39, 7.7635780999073934},
        {{0.243, 4.414, 0.793, 2.426}, 1000, 4999, 5000, 1e6, 9653.3786152714219},
        {{0.243, 4.414, 0.793, 2.426}, 50, 40, 50, 1e6, 3.9761491283887517},
        {{0.243, 4.414, 1.2, 2.426}, 0, 0, 0, 1e5, 7.8183457141546339}, /* z = 1 - 4.4e-5 */
        {{0.243, 4.414, 0.5, 0.2}, 0, 0, 0, 1e5, 28.649345407879694},   /* a + b < 1 */
        {{2, 1, 0.5, 0.3}, 0, 0, 1, 1e4, 73.559475514998598},
        {{0.5, 0.01, 3, 1}, 0, 0, 0, 1e6, 1.4998000000029996}, /* untransformed branch */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double got = cx_bgnbd_expected(&cases[i].p, cases[i].x, cases[i].t_x, cases[i].T, cases[i].t);
        cr_assert(fabs(got - cases[i].want) <= 1e-10 * cases[i].want, "case %zu: got %.17g want %.17g", i, got,
                  cases[i].want);
    }
}
