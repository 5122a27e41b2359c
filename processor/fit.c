/*
 * fit.c — maximum likelihood for BG/NBD and Gamma-Gamma, and the `cxstream fit` subcommand.
 *
 * The optimiser is Nelder-Mead on log-parameters: four (or three) smooth parameters and a
 * likelihood that is cheap to evaluate do not need gradients, and the log keeps every trial point
 * valid. A simplex can stall short of the optimum, so each run is restarted from its best vertex
 * with a fresh simplex until a restart gains nothing, and the best of several starting points is
 * kept. Customers with identical (x, t_x, T) are collapsed into one weighted row first: day
 * counts are integers, so a large base has few distinct triples.
 *
 * The subcommand is the only part that prints: the JSON result to stdout, errors to stderr.
 */
#include "fit.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* ---------------------------------------------------------------- Nelder-Mead */

#define NM_MAX_DIM 4
#define NM_BAD     1e300 /* objective value for invalid points */

typedef double (*nm_fn)(const double *theta, void *ctx);

/* One Nelder-Mead run from x (updated to the best vertex), at most max_evals evaluations (the
 * count used is added to *evals_used); returns its objective value. */
static double nm_run(nm_fn f, void *ctx, int k, double *x, double step, int max_evals, int *evals_used) {
    double s[NM_MAX_DIM + 1][NM_MAX_DIM], fs[NM_MAX_DIM + 1];
    double xo[NM_MAX_DIM], xr[NM_MAX_DIM], xe[NM_MAX_DIM], xc[NM_MAX_DIM];
    int evals = 0;
    for (int i = 0; i <= k; i++) {
        memcpy(s[i], x, sizeof(double) * (size_t)k);
        if (i > 0) s[i][i - 1] += step;
        fs[i] = f(s[i], ctx);
        evals++;
    }
    for (;;) {
        /* order: best first (insertion sort, k <= 4) */
        for (int i = 1; i <= k; i++) {
            for (int j = i; j > 0 && fs[j] < fs[j - 1]; j--) {
                double tf = fs[j];
                fs[j] = fs[j - 1];
                fs[j - 1] = tf;
                for (int d = 0; d < k; d++) {
                    double tv = s[j][d];
                    s[j][d] = s[j - 1][d];
                    s[j - 1][d] = tv;
                }
            }
        }
        double spread = 0.0;
        for (int i = 1; i <= k; i++)
            for (int d = 0; d < k; d++)
                spread = fmax(spread, fabs(s[i][d] - s[0][d]));
        if ((fs[k] - fs[0] <= 1e-13 * (fabs(fs[0]) + 1e-10) && spread < 1e-9) || evals >= max_evals) break;
        for (int d = 0; d < k; d++) {
            xo[d] = 0.0;
            for (int i = 0; i < k; i++)
                xo[d] += s[i][d];
            xo[d] /= k;
        }
        for (int d = 0; d < k; d++)
            xr[d] = xo[d] + (xo[d] - s[k][d]);
        double fr = f(xr, ctx);
        evals++;
        if (fr < fs[0]) {
            for (int d = 0; d < k; d++)
                xe[d] = xo[d] + 2.0 * (xo[d] - s[k][d]);
            double fe = f(xe, ctx);
            evals++;
            if (fe < fr) {
                memcpy(s[k], xe, sizeof(double) * (size_t)k);
                fs[k] = fe;
            } else {
                memcpy(s[k], xr, sizeof(double) * (size_t)k);
                fs[k] = fr;
            }
            continue;
        }
        if (fr < fs[k - 1]) {
            memcpy(s[k], xr, sizeof(double) * (size_t)k);
            fs[k] = fr;
            continue;
        }
        /* contraction: outside if the reflection improved on the worst, else inside */
        int outside = fr < fs[k];
        for (int d = 0; d < k; d++)
            xc[d] = outside ? xo[d] + 0.5 * (xr[d] - xo[d]) : xo[d] + 0.5 * (s[k][d] - xo[d]);
        double fc = f(xc, ctx);
        evals++;
        if (fc < (outside ? fr : fs[k])) {
            memcpy(s[k], xc, sizeof(double) * (size_t)k);
            fs[k] = fc;
            continue;
        }
        for (int i = 1; i <= k; i++) { /* shrink towards the best */
            for (int d = 0; d < k; d++)
                s[i][d] = s[0][d] + 0.5 * (s[i][d] - s[0][d]);
            fs[i] = f(s[i], ctx);
            evals++;
        }
    }
    memcpy(x, s[0], sizeof(double) * (size_t)k);
    *evals_used += evals;
    return fs[0];
}

/* Evaluation budgets: a well-posed fit needs a few hundred evaluations per run; the caps bound the
 * time spent on data whose optimum lies at infinity. */
#define NM_EVALS_START  3000
#define NM_EVALS_POLISH 6000

/* Minimises f: one run from each of n_starts starting points (rows of starts), then the best of
 * them restarted with a fresh simplex until a restart stops improving it. Writes the best point
 * to best and returns its value. */
static double nm_minimise(nm_fn f, void *ctx, int k, const double *starts, int n_starts, double *best) {
    double fbest = INFINITY;
    for (int si = 0; si < n_starts; si++) {
        double x[NM_MAX_DIM];
        memcpy(x, starts + (size_t)si * (size_t)k, sizeof(double) * (size_t)k);
        int used = 0;
        double fx = nm_run(f, ctx, k, x, 0.5, NM_EVALS_START, &used);
        if (fx < fbest || si == 0) {
            fbest = fx;
            memcpy(best, x, sizeof(double) * (size_t)k);
        }
    }
    int used = 0;
    while (used < NM_EVALS_POLISH) {
        double fn = nm_run(f, ctx, k, best, 0.1, NM_EVALS_POLISH - used, &used);
        int gained = fbest - fn > 1e-11 * (fabs(fn) + 1.0);
        fbest = fn;
        if (!gained) break;
    }
    return fbest;
}

/* Log-parameters beyond this are not a finite optimum (e^30 ~ 1e13); an optimum beyond
 * LOGPAR_EDGE means the likelihood still rises towards the boundary: the data do not identify
 * the parameter (e.g. spend with no heterogeneity across customers sends q and gamma to infinity). */
#define LOGPAR_MAX  30.0
#define LOGPAR_EDGE 25.0

static int logpar_ok(const double *theta, int k) {
    for (int i = 0; i < k; i++)
        if (!(fabs(theta[i]) <= LOGPAR_MAX)) return 0;
    return 1;
}

/* Name of the first parameter that ran to the boundary, or NULL. */
static const char *at_edge(const double *theta, const char *const *names, int k) {
    for (int i = 0; i < k; i++)
        if (fabs(theta[i]) > LOGPAR_EDGE) return names[i];
    return NULL;
}

static double lgam(double v) {
    int sign;
    return lgamma_r(v, &sign);
}

/* Sorted distinct values of v[0..n) into *out (allocated); returns the count, 0 on no memory. */
static int dbl_cmp(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

static size_t distinct_values(const double *v, size_t n, double **out) {
    double *u = malloc((n ? n : 1) * sizeof *u);
    if (!u) return 0;
    memcpy(u, v, n * sizeof *u);
    qsort(u, n, sizeof *u, dbl_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || u[m - 1] != u[i]) u[m++] = u[i];
    *out = u;
    return m;
}

static uint32_t index_of(const double *u, size_t m, double v) {
    size_t lo = 0, hi = m; /* u[lo..hi) holds v */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (u[mid] <= v)
            lo = mid;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

/* ---------------------------------------------------------------- BG/NBD fit */

/* Distinct (x, t_x, T) with their multiplicity w; t_x and T also as indices into the tables of
 * distinct values, so the optimiser takes one log per distinct time, not per customer. */
typedef struct bg_row {
    double x, t_x, T, w;
    uint32_t i_tx, i_T;
} bg_row_t;

typedef struct bg_ctx {
    bg_row_t *rows;
    size_t n;
    double *u_tx, *u_T; /* distinct t_x and T values */
    size_t n_tx, n_T;
    double *log_tx, *log_T; /* scratch: ln(alpha + value), per evaluation */
} bg_ctx_t;

static int bg_row_cmp(const void *pa, const void *pb) {
    const bg_row_t *a = pa, *b = pb;
    if (a->x != b->x) return a->x < b->x ? -1 : 1;
    if (a->t_x != b->t_x) return a->t_x < b->t_x ? -1 : 1;
    if (a->T != b->T) return a->T < b->T ? -1 : 1;
    return 0;
}

/* Total log-likelihood through the public per-customer function: what the fit reports. */
static double bg_total_loglik(const cx_bgnbd_params_t *p, const bg_ctx_t *c) {
    double ll = 0.0;
    for (size_t i = 0; i < c->n; i++)
        ll += c->rows[i].w * cx_bgnbd_loglik(p, c->rows[i].x, c->rows[i].t_x, c->rows[i].T);
    return ll;
}

/* The same sum for the optimiser: the log-gamma terms, which depend on x only, once per distinct
 * x (rows are sorted by x), the logs of alpha + time once per distinct time. */
static double bg_objective(const double *theta, void *vctx) {
    if (!logpar_ok(theta, 4)) return NM_BAD;
    bg_ctx_t *c = vctx;
    double r = exp(theta[0]), alpha = exp(theta[1]), a = exp(theta[2]), b = exp(theta[3]);
    for (size_t i = 0; i < c->n_tx; i++)
        c->log_tx[i] = log(alpha + c->u_tx[i]);
    for (size_t i = 0; i < c->n_T; i++)
        c->log_T[i] = log(alpha + c->u_T[i]);
    double base = lgam(a + b) - lgam(b) - lgam(r) + r * theta[1];
    double ll = 0.0, x_prev = -1.0, common = 0.0, ldrop = 0.0;
    for (size_t i = 0; i < c->n; i++) {
        const bg_row_t *row = &c->rows[i];
        double x = row->x;
        if (x != x_prev) {
            common = base + lgam(r + x) + lgam(b + x) - lgam(a + b + x);
            ldrop = x > 0 ? theta[2] - log(b + x - 1.0) : 0.0;
            x_prev = x;
        }
        double a3 = -(r + x) * c->log_T[row->i_T], li;
        if (x > 0) {
            double a4 = ldrop - (r + x) * c->log_tx[row->i_tx];
            li = a3 > a4 ? a3 + log1p(exp(a4 - a3)) : a4 + log1p(exp(a3 - a4));
        } else {
            li = a3;
        }
        ll += row->w * (common + li);
    }
    return isfinite(ll) ? -ll : NM_BAD;
}

cx_err_t cx_fit_bgnbd(const double *x, const double *t_x, const double *T, size_t n, cx_bgnbd_params_t *out,
                      double *loglik, char *errstr, size_t errstr_size) {
    if (!x || !t_x || !T || !out || n == 0) {
        cx_seterr(errstr, errstr_size, "BG/NBD fit needs at least one customer");
        return CX_ERR_INVALID;
    }
    if (n > UINT32_MAX) {
        cx_seterr(errstr, errstr_size, "BG/NBD fit: %zu customers is more than supported", n);
        return CX_ERR_INVALID;
    }
    double sum_x = 0.0, sum_T = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(isfinite(x[i]) && isfinite(t_x[i]) && isfinite(T[i]) && x[i] >= 0 && t_x[i] >= 0 && t_x[i] <= T[i])) {
            cx_seterr(errstr, errstr_size, "customer %zu: need x >= 0 and 0 <= t_x <= T, got x=%g t_x=%g T=%g", i, x[i],
                      t_x[i], T[i]);
            return CX_ERR_INVALID;
        }
        sum_x += x[i];
        sum_T += T[i];
    }
    cx_err_t err = CX_OK;
    bg_ctx_t ctx = {0};
    ctx.rows = malloc(n * sizeof *ctx.rows);
    ctx.n_tx = distinct_values(t_x, n, &ctx.u_tx);
    ctx.n_T = distinct_values(T, n, &ctx.u_T);
    ctx.log_tx = malloc(n * sizeof(double));
    ctx.log_T = malloc(n * sizeof(double));
    if (!ctx.rows || !ctx.n_tx || !ctx.n_T || !ctx.log_tx || !ctx.log_T) {
        cx_seterr(errstr, errstr_size, "out of memory for %zu customers", n);
        err = CX_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        ctx.rows[i] =
            (bg_row_t){x[i], t_x[i], T[i], 1.0, index_of(ctx.u_tx, ctx.n_tx, t_x[i]), index_of(ctx.u_T, ctx.n_T, T[i])};
    qsort(ctx.rows, n, sizeof *ctx.rows, bg_row_cmp);
    for (size_t i = 0; i < n; i++) {
        if (ctx.n > 0 && bg_row_cmp(&ctx.rows[ctx.n - 1], &ctx.rows[i]) == 0)
            ctx.rows[ctx.n - 1].w += 1.0;
        else
            ctx.rows[ctx.n++] = ctx.rows[i];
    }

    /* Starts: unit parameters (lifetimes' default), one scaled to the observed rate, one with
     * strong heterogeneity. */
    double mean_T = sum_T / (double)n > 0 ? sum_T / (double)n : 1.0;
    double rate = sum_x / (double)n / mean_T;
    double alpha0 = rate > 0 ? 1.0 / rate : mean_T;
    double starts[3 * 4] = {0.0,      0.0,      0.0,      0.0,       log(0.5), log(alpha0),
                            log(0.5), log(2.0), log(0.1), log(10.0), log(2.0), log(5.0)};
    double best[4];
    double fbest = nm_minimise(bg_objective, &ctx, 4, starts, 3, best);
    static const char *const names[4] = {"r", "alpha", "a", "b"};
    if (!(fbest < NM_BAD) || !isfinite(fbest) || !logpar_ok(best, 4)) {
        cx_seterr(errstr, errstr_size, "BG/NBD fit found no finite optimum for %zu customers", n);
        err = CX_ERR_FATAL;
        goto done;
    }
    const char *edge = at_edge(best, names, 4);
    if (edge) {
        cx_seterr(errstr, errstr_size,
                  "BG/NBD fit: parameter %s runs to 0 or infinity; the %zu customers do not "
                  "identify the model",
                  edge, n);
        err = CX_ERR_FATAL;
        goto done;
    }
    *out = (cx_bgnbd_params_t){exp(best[0]), exp(best[1]), exp(best[2]), exp(best[3])};
    if (loglik) *loglik = bg_total_loglik(out, &ctx);
done:
    free(ctx.rows);
    free(ctx.u_tx);
    free(ctx.u_T);
    free(ctx.log_tx);
    free(ctx.log_T);
    return err;
}

/* ---------------------------------------------------------------- Gamma-Gamma fit */

/* Rows sorted by x, with the logs that do not depend on the parameters precomputed. */
typedef struct gg_row {
    double x, m, log_m, log_x;
} gg_row_t;

typedef struct gg_ctx {
    gg_row_t *rows;
    size_t n;
} gg_ctx_t;

static int gg_row_cmp(const void *pa, const void *pb) {
    const gg_row_t *a = pa, *b = pb;
    return a->x < b->x ? -1 : a->x > b->x;
}

static double gg_total_loglik(const cx_gg_params_t *g, const gg_ctx_t *c) {
    double ll = 0.0;
    for (size_t i = 0; i < c->n; i++)
        ll += cx_gg_loglik(g, c->rows[i].x, c->rows[i].m);
    return ll;
}

/* cx_gg_loglik summed, the log-gamma terms once per distinct x. */
static double gg_objective(const double *theta, void *vctx) {
    if (!logpar_ok(theta, 3)) return NM_BAD;
    const gg_ctx_t *c = vctx;
    double p = exp(theta[0]), q = exp(theta[1]), v = exp(theta[2]);
    double base = -lgam(q) + q * theta[2];
    double ll = 0.0, x_prev = -1.0, common = 0.0;
    for (size_t i = 0; i < c->n; i++) {
        const gg_row_t *row = &c->rows[i];
        double px = p * row->x;
        if (row->x != x_prev) {
            common = base + lgam(px + q) - lgam(px);
            x_prev = row->x;
        }
        ll += common + (px - 1.0) * row->log_m + px * row->log_x - (px + q) * log(row->x * row->m + v);
    }
    return isfinite(ll) ? -ll : NM_BAD;
}

cx_err_t cx_fit_gg(const double *x, const double *m, size_t n, cx_gg_params_t *out, double *loglik, char *errstr,
                   size_t errstr_size) {
    if (!x || !m || !out || n < 2) {
        cx_seterr(errstr, errstr_size, "Gamma-Gamma fit needs at least two customers");
        return CX_ERR_INVALID;
    }
    double sum_m = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(isfinite(x[i]) && isfinite(m[i]) && x[i] > 0 && m[i] > 0)) {
            cx_seterr(errstr, errstr_size, "customer %zu: need x > 0 and m > 0, got x=%g m=%g", i, x[i], m[i]);
            return CX_ERR_INVALID;
        }
        sum_m += m[i];
    }
    gg_ctx_t ctx = {malloc(n * sizeof(gg_row_t)), n};
    if (!ctx.rows) {
        cx_seterr(errstr, errstr_size, "out of memory for %zu customers", n);
        return CX_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        ctx.rows[i] = (gg_row_t){x[i], m[i], log(m[i]), log(x[i])};
    qsort(ctx.rows, n, sizeof *ctx.rows, gg_row_cmp);
    double mean_m = sum_m / (double)n;
    /* Starts: E[spend] = p gamma / (q - 1) near the observed mean at different shapes. */
    double starts[3 * 3] = {log(1.0), log(2.0), log(mean_m), log(5.0), log(3.0), log(2.0 * mean_m / 5.0),
                            log(1.0), log(1.0), log(1.0)};
    double best[3];
    double fbest = nm_minimise(gg_objective, &ctx, 3, starts, 3, best);
    static const char *const names[3] = {"p", "q", "gamma"};
    cx_err_t err = CX_OK;
    const char *edge = NULL;
    if (!(fbest < NM_BAD) || !isfinite(fbest) || !logpar_ok(best, 3)) {
        cx_seterr(errstr, errstr_size, "Gamma-Gamma fit found no finite optimum for %zu customers", n);
        err = CX_ERR_FATAL;
    } else if ((edge = at_edge(best, names, 3)) != NULL) {
        cx_seterr(errstr, errstr_size,
                  "Gamma-Gamma fit: parameter %s runs to 0 or infinity (spend hardly varies "
                  "between customers?); the %zu customers do not identify the model",
                  edge, n);
        err = CX_ERR_FATAL;
    } else {
        *out = (cx_gg_params_t){exp(best[0]), exp(best[1]), exp(best[2])};
        if (loglik) *loglik = gg_total_loglik(out, &ctx);
    }
    free(ctx.rows);
    return err;
}

/* ---------------------------------------------------------------- `cxstream fit` */

/* Columns of fit's input, gathered before fitting. */
typedef struct fit_data {
    double *x, *t_x, *T; /* BG/NBD rows */
    size_t n, cap;
    double *gx, *gm; /* Gamma-Gamma rows (x > 0, m > 0) */
    size_t gn, gcap;
    int has_spend; /* the input carries spend (monetary_value column, or profiles) */
} fit_data_t;

static void fit_data_free(fit_data_t *d) {
    free(d->x);
    free(d->t_x);
    free(d->T);
    free(d->gx);
    free(d->gm);
    memset(d, 0, sizeof *d);
}

static int grow(double **arr, size_t cap) {
    double *p = realloc(*arr, cap * sizeof(double));
    if (!p) return -1;
    *arr = p;
    return 0;
}

static int fit_data_add(fit_data_t *d, double x, double t_x, double T) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        if (grow(&d->x, cap) || grow(&d->t_x, cap) || grow(&d->T, cap)) return -1;
        d->cap = cap;
    }
    d->x[d->n] = x;
    d->t_x[d->n] = t_x;
    d->T[d->n] = T;
    d->n++;
    return 0;
}

static int fit_data_add_gg(fit_data_t *d, double x, double m) {
    if (d->gn == d->gcap) {
        size_t cap = d->gcap ? d->gcap * 2 : 1024;
        if (grow(&d->gx, cap) || grow(&d->gm, cap)) return -1;
        d->gcap = cap;
    }
    d->gx[d->gn] = x;
    d->gm[d->gn] = m;
    d->gn++;
    return 0;
}

#define FIT_EXIT_OK      0
#define FIT_EXIT_RUNTIME 1
#define FIT_EXIT_USAGE   2

static void fit_usage(FILE *out) {
    fputs("usage: cxstream fit --summary FILE.csv [--unit-days D]\n"
          "       cxstream fit --profiles profiles.jsonl [--unit-days D]\n"
          "\n"
          "Fits BG/NBD (r, alpha, a, b) by maximum likelihood, and Gamma-Gamma (p, q, gamma) when\n"
          "spend is known, and prints one JSON object.\n"
          "  --summary FILE    CSV with header; columns frequency, recency, T (ID and\n"
          "                    monetary_value optional, any order), times in units of D days\n"
          "  --profiles FILE   cxstream's profiles.jsonl (replay output); day counts are divided by D\n"
          "  --unit-days D     days per time unit, > 0 (default 7)\n",
          out);
}

/* Trims blanks and one pair of surrounding double quotes, in place. */
static char *trim_field(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
        s[--len] = '\0';
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s[len - 1] = '\0';
        s++;
    }
    return s;
}

/* Splits line at commas into at most max fields; returns the count (max + 1 if more). */
static int split_csv(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (n < max) fields[n] = trim_field(p);
        n++;
        if (!comma || n > max) break;
        p = comma + 1;
    }
    return n;
}

static int parse_number(const char *s, double *v) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(d)) return -1;
    *v = d;
    return 0;
}

static int is_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') return 0;
    return 1;
}

#define CSV_MAX_COLS 64

/* Reads a summary CSV into d. Returns an exit code; prints the reason on stderr. */
static int read_summary(const char *path, fit_data_t *d) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cxstream fit: cannot open %s: %s\n", path, strerror(errno));
        return FIT_EXIT_RUNTIME;
    }
    int rc = FIT_EXIT_OK;
    char *line = NULL;
    size_t line_cap = 0;
    long lineno = 0;
    int ncols = 0, col_x = -1, col_tx = -1, col_T = -1, col_m = -1;
    static const char *const names[4] = {"frequency", "recency", "T", "monetary_value"};
    char *fields[CSV_MAX_COLS];
    while (getline(&line, &line_cap, f) != -1) {
        lineno++;
        if (is_blank(line)) continue;
        if (ncols == 0) { /* header */
            ncols = split_csv(line, fields, CSV_MAX_COLS);
            if (ncols > CSV_MAX_COLS) {
                fprintf(stderr, "%s:%ld: header has more than %d columns\n", path, lineno, CSV_MAX_COLS);
                rc = FIT_EXIT_USAGE;
                goto done;
            }
            for (int i = 0; i < ncols; i++) {
                int *slot = !strcmp(fields[i], "frequency")        ? &col_x
                            : !strcmp(fields[i], "recency")        ? &col_tx
                            : !strcmp(fields[i], "T")              ? &col_T
                            : !strcmp(fields[i], "monetary_value") ? &col_m
                                                                   : NULL;
                if (!slot) continue;
                if (*slot >= 0) {
                    fprintf(stderr, "%s:%ld: column '%s' appears twice\n", path, lineno, fields[i]);
                    rc = FIT_EXIT_USAGE;
                    goto done;
                }
                *slot = i;
            }
            d->has_spend = col_m >= 0;
            const int cols[3] = {col_x, col_tx, col_T};
            for (int i = 0; i < 3; i++) {
                if (cols[i] < 0) {
                    fprintf(stderr,
                            "%s:%ld: header lacks column '%s' (need ID,frequency,recency,T "
                            "[,monetary_value], any order)\n",
                            path, lineno, names[i]);
                    rc = FIT_EXIT_USAGE;
                    goto done;
                }
            }
            continue;
        }
        int nf = split_csv(line, fields, CSV_MAX_COLS);
        if (nf != ncols) {
            fprintf(stderr, "%s:%ld: %d fields, the header has %d\n", path, lineno, nf, ncols);
            rc = FIT_EXIT_USAGE;
            goto done;
        }
        double v[4] = {0, 0, 0, 0};
        const int cols[4] = {col_x, col_tx, col_T, col_m};
        for (int i = 0; i < 4; i++) {
            if (cols[i] < 0) continue;
            if (parse_number(fields[cols[i]], &v[i]) || v[i] < 0) {
                fprintf(stderr, "%s:%ld: column '%s': '%s' is not a non-negative number\n", path, lineno, names[i],
                        fields[cols[i]]);
                rc = FIT_EXIT_USAGE;
                goto done;
            }
        }
        if (v[1] > v[2]) {
            fprintf(stderr, "%s:%ld: column 'recency': %s is greater than T %s\n", path, lineno, fields[col_tx],
                    fields[col_T]);
            rc = FIT_EXIT_USAGE;
            goto done;
        }
        if (v[0] == 0 && v[1] != 0) {
            fprintf(stderr, "%s:%ld: column 'recency': %s with frequency 0 (must be 0)\n", path, lineno,
                    fields[col_tx]);
            rc = FIT_EXIT_USAGE;
            goto done;
        }
        if (fit_data_add(d, v[0], v[1], v[2]) ||
            (col_m >= 0 && v[0] > 0 && v[3] > 0 && fit_data_add_gg(d, v[0], v[3]))) {
            fprintf(stderr, "cxstream fit: out of memory\n");
            rc = FIT_EXIT_RUNTIME;
            goto done;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "cxstream fit: reading %s: %s\n", path, strerror(errno));
        rc = FIT_EXIT_RUNTIME;
    } else if (ncols == 0) {
        fprintf(stderr, "%s: empty file (a header ID,frequency,recency,T is required)\n", path);
        rc = FIT_EXIT_USAGE;
    }
done:
    free(line);
    fclose(f);
    return rc;
}

/* Reads a numeric field of a profile. 1: value, 0: null (customer skipped), -1: error printed. */
static int profile_number(json_t *obj, const char *key, const char *path, long lineno, double *v) {
    json_t *j = json_object_get(obj, key);
    if (!j) {
        fprintf(stderr, "%s:%ld: field '%s' missing\n", path, lineno, key);
        return -1;
    }
    if (json_is_null(j)) return 0;
    if (!json_is_number(j) || !isfinite(json_number_value(j)) || json_number_value(j) < 0) {
        fprintf(stderr, "%s:%ld: field '%s' is not a non-negative number\n", path, lineno, key);
        return -1;
    }
    *v = json_number_value(j);
    return 1;
}

static int read_profiles(const char *path, double unit_days, fit_data_t *d) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cxstream fit: cannot open %s: %s\n", path, strerror(errno));
        return FIT_EXIT_RUNTIME;
    }
    int rc = FIT_EXIT_OK;
    char *line = NULL;
    size_t line_cap = 0;
    long lineno = 0;
    ssize_t len;
    d->has_spend = 1;
    static const char *const keys[4] = {"bgnbd_x", "bgnbd_t_x_days", "bgnbd_T_days", "repeat_revenue_minor"};
    while ((len = getline(&line, &line_cap, f)) != -1) {
        lineno++;
        if (is_blank(line)) continue;
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)len, 0, &jerr);
        if (!obj || !json_is_object(obj)) {
            fprintf(stderr, "%s:%ld: not a JSON object: %s\n", path, lineno, obj ? "other JSON value" : jerr.text);
            json_decref(obj);
            rc = FIT_EXIT_USAGE;
            goto done;
        }
        double v[4];
        /* p_alive is null exactly for customers without a transaction (DESIGN §5): skip them
         * whatever their counters say. */
        json_t *pa = json_object_get(obj, "p_alive");
        int skip = pa && json_is_null(pa), bad = 0;
        for (int i = 0; i < 4 && !bad && !skip; i++) {
            int got = profile_number(obj, keys[i], path, lineno, &v[i]);
            if (got < 0) bad = 1;
            if (got == 0) skip = 1;
        }
        json_decref(obj);
        if (bad) {
            rc = FIT_EXIT_USAGE;
            goto done;
        }
        if (skip || v[2] <= 0) continue; /* no transaction yet, or first seen today */
        if (v[1] > v[2]) {
            fprintf(stderr, "%s:%ld: field 'bgnbd_t_x_days' %g exceeds 'bgnbd_T_days' %g\n", path, lineno, v[1], v[2]);
            rc = FIT_EXIT_USAGE;
            goto done;
        }
        if (fit_data_add(d, v[0], v[1] / unit_days, v[2] / unit_days) ||
            (v[0] > 0 && v[3] > 0 && fit_data_add_gg(d, v[0], v[3] / v[0]))) {
            fprintf(stderr, "cxstream fit: out of memory\n");
            rc = FIT_EXIT_RUNTIME;
            goto done;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "cxstream fit: reading %s: %s\n", path, strerror(errno));
        rc = FIT_EXIT_RUNTIME;
    }
done:
    free(line);
    fclose(f);
    return rc;
}

static int json_field(cx_buf_t *b, const char *name, double v) {
    return cx_buf_appendf(b, ",\"%s\":", name) || cx_buf_json_double(b, v);
}

int cx_cmd_fit(int argc, char **argv) {
    const char *summary = NULL, *profiles = NULL, *unit_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *val = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fit_usage(stdout);
            return FIT_EXIT_OK;
        }
        static const char *const flags[3] = {"--summary", "--profiles", "--unit-days"};
        const char **slots[3] = {&summary, &profiles, &unit_arg};
        for (int k = 0; k < 3; k++) {
            size_t fl = strlen(flags[k]);
            if (!strncmp(a, flags[k], fl) && (a[fl] == '\0' || a[fl] == '=')) {
                slot = slots[k];
                if (a[fl] == '=') {
                    val = a + fl + 1;
                } else if (i + 1 < argc) {
                    val = argv[++i];
                } else {
                    fprintf(stderr, "cxstream fit: %s needs a value\n", flags[k]);
                    return FIT_EXIT_USAGE;
                }
                break;
            }
        }
        if (!slot) {
            fprintf(stderr, "cxstream fit: unknown argument '%s'\n", a);
            fit_usage(stderr);
            return FIT_EXIT_USAGE;
        }
        *slot = val;
    }
    if (!summary == !profiles) {
        fprintf(stderr, "cxstream fit: give exactly one of --summary FILE or --profiles FILE\n");
        fit_usage(stderr);
        return FIT_EXIT_USAGE;
    }
    double unit_days = 7.0;
    if (unit_arg && (parse_number(unit_arg, &unit_days) || !(unit_days > 0))) {
        fprintf(stderr, "cxstream fit: --unit-days '%s' is not a positive number\n", unit_arg);
        return FIT_EXIT_USAGE;
    }

    fit_data_t d = {0};
    cx_buf_t out = CX_BUF_INIT;
    int rc = summary ? read_summary(summary, &d) : read_profiles(profiles, unit_days, &d);
    if (rc != FIT_EXIT_OK) goto done;
    if (d.n == 0) {
        fprintf(stderr, "cxstream fit: %s holds no customer to fit\n", summary ? summary : profiles);
        rc = FIT_EXIT_USAGE;
        goto done;
    }
    char errstr[256];
    cx_bgnbd_params_t bp;
    double ll;
    cx_err_t err = cx_fit_bgnbd(d.x, d.t_x, d.T, d.n, &bp, &ll, errstr, sizeof errstr);
    if (err != CX_OK) {
        fprintf(stderr, "cxstream fit: %s\n", errstr);
        rc = err == CX_ERR_INVALID ? FIT_EXIT_USAGE : FIT_EXIT_RUNTIME;
        goto done;
    }
    int bad = cx_buf_appendf(&out, "{\"r\":") || cx_buf_json_double(&out, bp.r) ||
              json_field(&out, "alpha", bp.alpha) || json_field(&out, "a", bp.a) || json_field(&out, "b", bp.b) ||
              json_field(&out, "loglik", ll) || json_field(&out, "unit_days", unit_days) ||
              cx_buf_appendf(&out, ",\"n\":%zu", d.n);
    if (d.has_spend && d.gn < 2)
        fprintf(stderr,
                "cxstream fit: warning: no Gamma-Gamma parameters: %zu customer(s) with "
                "repeat transactions and spend, at least 2 needed\n",
                d.gn);
    if (d.gn >= 2) {
        cx_gg_params_t gp;
        double gll;
        err = cx_fit_gg(d.gx, d.gm, d.gn, &gp, &gll, errstr, sizeof errstr);
        if (err == CX_ERR_NOMEM) {
            fprintf(stderr, "cxstream fit: %s\n", errstr);
            rc = FIT_EXIT_RUNTIME;
            goto done;
        }
        /* The BG/NBD result stands on its own: print it, and say why spend is missing. */
        if (err != CX_OK)
            fprintf(stderr, "cxstream fit: warning: no Gamma-Gamma parameters: %s\n", errstr);
        else
            bad = bad || json_field(&out, "p", gp.p) || json_field(&out, "q", gp.q) ||
                  json_field(&out, "gamma", gp.gamma) || json_field(&out, "gg_loglik", gll) ||
                  cx_buf_appendf(&out, ",\"gg_n\":%zu", d.gn);
    }
    bad = bad || cx_buf_append(&out, "}\n", 2);
    if (bad) {
        fprintf(stderr, "cxstream fit: out of memory\n");
        rc = FIT_EXIT_RUNTIME;
        goto done;
    }
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        fprintf(stderr, "cxstream fit: writing the result: %s\n", strerror(errno));
        rc = FIT_EXIT_RUNTIME;
    }
done:
    cx_buf_free(&out);
    fit_data_free(&d);
    return rc;
}
