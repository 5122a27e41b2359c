/*
 * test_fit.c — maximum-likelihood fits against the published CDNOW results (BG/NBD: Fader, Hardie
 * & Lee 2005; Gamma-Gamma: the "RFM and CLV" paper), and the `cxstream fit` subcommand: both
 * input kinds, column order, and the messages and exit codes for bad input.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bgnbd.h"
#include "fit.h"
#include "gammagamma.h"

#define CDNOW_DIR CX_DATA_DIR "/cdnow" /* ../shared/data beside the checkout (CMakeLists.txt) */
#define N_CUST    2357

static void assert_rel(double got, double want, double rel, const char *what) {
    cr_assert(fabs(got - want) <= rel * fabs(want), "%s: got %.6g, want %.6g within %.2g%%", what, got, want,
              rel * 100);
}

/* ---- CDNOW summary: ID,frequency,recency,T */
static size_t load_summary(double *x, double *tx, double *T) {
    FILE *f = fopen(CDNOW_DIR "/cdnow_customers_summary.csv", "r");
    cr_assert_not_null(f, "cannot open the CDNOW summary");
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, f));
    size_t n = 0;
    int id;
    while (n < N_CUST && fscanf(f, "%d,%lf,%lf,%lf", &id, &x[n], &tx[n], &T[n]) == 4)
        n++;
    fclose(f);
    return n;
}

/* ---- CDNOW transactions, calibration period: per customer, the distinct purchase days up to
 * 1997-09-30 with the day's total; x = days after the first, m = their mean (dollars), and the
 * day numbers for the profile view. */
typedef struct cust {
    int n_days;
    int day[64];
    double amount[64];
} cust_t;

static int day_number(int yyyymmdd) {
    /* days since 1970-01-01 (civil-from-days inverse), exact for the Gregorian calendar */
    int y = yyyymmdd / 10000, m = yyyymmdd / 100 % 100, d = yyyymmdd % 100;
    y -= m <= 2;
    int era = y / 400, yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static cust_t *load_transactions(void) {
    cust_t *c = calloc(N_CUST + 1, sizeof *c);
    cr_assert_not_null(c);
    FILE *f = fopen(CDNOW_DIR "/CDNOW_sample.txt", "r");
    cr_assert_not_null(f, "cannot open CDNOW_sample.txt");
    int orig, id, date, cds;
    double dollars;
    int end = day_number(19970930);
    while (fscanf(f, "%d %d %d %d %lf", &orig, &id, &date, &cds, &dollars) == 5) {
        cr_assert(id >= 1 && id <= N_CUST);
        int day = day_number(date);
        if (day > end) continue;
        cust_t *k = &c[id];
        int i = 0;
        while (i < k->n_days && k->day[i] != day)
            i++;
        if (i == k->n_days) {
            cr_assert(k->n_days < 64);
            k->day[k->n_days] = day;
            k->amount[k->n_days++] = 0;
        }
        k->amount[i] += dollars;
    }
    fclose(f);
    return c;
}

static int first_day(const cust_t *k) {
    int first = k->day[0];
    for (int i = 1; i < k->n_days; i++)
        if (k->day[i] < first) first = k->day[i];
    return first;
}

Test(fit, bgnbd_on_cdnow_reproduces_the_paper) {
    static double x[N_CUST], tx[N_CUST], T[N_CUST];
    size_t n = load_summary(x, tx, T);
    cr_assert_eq(n, N_CUST);
    cx_bgnbd_params_t p;
    double ll;
    char err[256];
    cr_assert_eq(cx_fit_bgnbd(x, tx, T, n, &p, &ll, err, sizeof err), CX_OK, "%s", err);
    assert_rel(p.r, 0.243, 0.005, "r");
    assert_rel(p.alpha, 4.414, 0.005, "alpha");
    assert_rel(p.a, 0.793, 0.005, "a");
    assert_rel(p.b, 2.426, 0.005, "b");
    cr_assert(fabs(ll - -9582.43) <= 0.01, "loglik %.4f", ll);
    cr_assert_float_eq(cx_bgnbd_p_alive(&p, 2, 30.43, 38.86), 0.7266, 1e-3);
    cr_assert_float_eq(cx_bgnbd_expected(&p, 2, 30.43, 38.86, 39), 1.226, 1e-3);
}

Test(fit, gammagamma_on_cdnow_repeat_spend_reproduces_the_paper) {
    cust_t *c = load_transactions();
    static double x[N_CUST], m[N_CUST], sx[N_CUST], stx[N_CUST], sT[N_CUST];
    cr_assert_eq(load_summary(sx, stx, sT), N_CUST);
    size_t n = 0;
    for (int id = 1; id <= N_CUST; id++) {
        const cust_t *k = &c[id];
        cr_assert(k->n_days >= 1, "customer %d has no calibration purchase", id);
        /* the transactions agree with the summary's frequency */
        cr_assert_eq((double)(k->n_days - 1), sx[id - 1], "customer %d", id);
        if (k->n_days < 2) continue;
        int first = first_day(k);
        double sum = 0;
        for (int i = 0; i < k->n_days; i++)
            if (k->day[i] != first) sum += k->amount[i];
        if (sum <= 0) continue;
        x[n] = k->n_days - 1;
        m[n] = sum / (k->n_days - 1);
        n++;
    }
    free(c);
    cr_assert_eq(n, 946);
    cx_gg_params_t g;
    double ll;
    char err[256];
    cr_assert_eq(cx_fit_gg(x, m, n, &g, &ll, err, sizeof err), CX_OK, "%s", err);
    assert_rel(g.p, 6.25, 0.01, "p");
    assert_rel(g.q, 3.74, 0.01, "q");
    assert_rel(g.gamma, 15.44, 0.01, "gamma");
    cr_assert(fabs(ll - -4055.92) <= 0.05, "loglik %.4f", ll);
}

Test(fit, bgnbd_rejects_recency_beyond_T_naming_the_customer) {
    double x[2] = {1, 2}, tx[2] = {3, 9}, T[2] = {5, 8};
    cx_bgnbd_params_t p;
    char err[256] = "";
    cr_assert_eq(cx_fit_bgnbd(x, tx, T, 2, &p, NULL, err, sizeof err), CX_ERR_INVALID);
    cr_assert_not_null(strstr(err, "customer 1"), "%s", err);
    cr_assert_eq(cx_fit_bgnbd(x, tx, T, 0, &p, NULL, err, sizeof err), CX_ERR_INVALID);
}

Test(fit, gammagamma_rejects_rows_without_repeat_spend) {
    double x[3] = {1, 0, 2}, m[3] = {10, 5, 7};
    cx_gg_params_t g;
    char err[256] = "";
    cr_assert_eq(cx_fit_gg(x, m, 3, &g, NULL, err, sizeof err), CX_ERR_INVALID);
    cr_assert_not_null(strstr(err, "customer 1"), "%s", err);
}

/* ---- the subcommand, run in-process with stdout and stderr sent to files */

typedef struct run {
    int rc;
    char out[4096];
    char err[4096];
} run_t;

static void slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void run_fit(run_t *r, int argc, char **argv) {
    char out_path[] = "/tmp/cx_fit_out_XXXXXX", err_path[] = "/tmp/cx_fit_err_XXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    cr_assert(fo >= 0 && fe >= 0);
    fflush(stdout);
    fflush(stderr);
    cr_assert_not_null(freopen(out_path, "w", stdout));
    cr_assert_not_null(freopen(err_path, "w", stderr));
    r->rc = cx_cmd_fit(argc, argv);
    fflush(stdout);
    fflush(stderr);
    slurp(out_path, r->out, sizeof r->out);
    slurp(err_path, r->err, sizeof r->err);
    unlink(out_path);
    unlink(err_path);
}

static void write_file(char *path_template, const char *text) {
    int fd = mkstemp(path_template);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
}

/* Reads "key":number from a flat JSON object. */
static double json_num(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    cr_assert_not_null(p, "no %s in %s", key, json);
    return strtod(p + strlen(pat), NULL);
}

Test(fit_cli, bad_number_names_line_and_column_and_exits_2) {
    char path[] = "/tmp/cx_fit_bad_XXXXXX";
    write_file(path, "ID,frequency,recency,T\n1,2,30.43,38.86\n2,1,abc,38.86\n");
    char *argv[] = {"fit", "--summary", path};
    run_t r;
    run_fit(&r, 3, argv);
    unlink(path);
    cr_assert_eq(r.rc, 2, "rc %d, stderr: %s", r.rc, r.err);
    cr_assert_not_null(strstr(r.err, ":3:"), "no line number in: %s", r.err);
    cr_assert_not_null(strstr(r.err, "'recency'"), "no column in: %s", r.err);
    cr_assert_not_null(strstr(r.err, "abc"), "no value in: %s", r.err);
    cr_assert_str_empty(r.out);
}

Test(fit_cli, missing_column_and_ragged_row_are_usage_errors) {
    char p1[] = "/tmp/cx_fit_bad_XXXXXX", p2[] = "/tmp/cx_fit_bad_XXXXXX", p3[] = "/tmp/cx_fit_bad_XXXXXX";
    write_file(p1, "ID,frequency,T\n1,2,38.86\n");
    write_file(p2, "ID,frequency,recency,T\n1,2,30.43\n");
    write_file(p3, "ID,frequency,recency,T\n1,2,40,38.86\n");
    run_t r;
    char *a1[] = {"fit", "--summary", p1};
    run_fit(&r, 3, a1);
    cr_assert_eq(r.rc, 2);
    cr_assert_not_null(strstr(r.err, "'recency'"), "%s", r.err);
    char *a2[] = {"fit", "--summary", p2};
    run_fit(&r, 3, a2);
    cr_assert_eq(r.rc, 2);
    cr_assert_not_null(strstr(r.err, ":2:"), "%s", r.err);
    char *a3[] = {"fit", "--summary", p3};
    run_fit(&r, 3, a3);
    cr_assert_eq(r.rc, 2);
    cr_assert_not_null(strstr(r.err, "greater than T"), "%s", r.err);
    unlink(p1);
    unlink(p2);
    unlink(p3);
}

Test(fit_cli, flag_errors_exit_2_and_unreadable_file_exits_1) {
    run_t r;
    char *a1[] = {"fit", "--bogus"};
    run_fit(&r, 2, a1);
    cr_assert_eq(r.rc, 2);
    cr_assert_not_null(strstr(r.err, "--bogus"), "%s", r.err);
    char *a2[] = {"fit"};
    run_fit(&r, 1, a2);
    cr_assert_eq(r.rc, 2);
    char *a3[] = {"fit", "--summary", CDNOW_DIR "/cdnow_customers_summary.csv", "--unit-days", "0"};
    run_fit(&r, 5, a3);
    cr_assert_eq(r.rc, 2);
    cr_assert_not_null(strstr(r.err, "--unit-days"), "%s", r.err);
    char *a4[] = {"fit", "--summary"};
    run_fit(&r, 2, a4);
    cr_assert_eq(r.rc, 2);
    char *a5[] = {"fit", "--summary", "/nonexistent/summary.csv"};
    run_fit(&r, 3, a5);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "/nonexistent/summary.csv"), "%s", r.err);
}

Test(fit_cli, summary_prints_the_paper_parameters_as_json) {
    char *argv[] = {"fit", "--summary", CDNOW_DIR "/cdnow_customers_summary.csv"};
    run_t r;
    run_fit(&r, 3, argv);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    cr_assert_eq(r.out[0], '{');
    assert_rel(json_num(r.out, "r"), 0.243, 0.005, "r");
    assert_rel(json_num(r.out, "alpha"), 4.414, 0.005, "alpha");
    assert_rel(json_num(r.out, "a"), 0.793, 0.005, "a");
    assert_rel(json_num(r.out, "b"), 2.426, 0.005, "b");
    cr_assert(fabs(json_num(r.out, "loglik") - -9582.43) <= 0.01);
    cr_assert_eq(json_num(r.out, "unit_days"), 7.0);
    cr_assert_eq(json_num(r.out, "n"), N_CUST);
    cr_assert_null(strstr(r.out, "\"gamma\""), "no spend column, no Gamma-Gamma: %s", r.out);
}

Test(fit_cli, summary_with_monetary_value_in_any_column_order_fits_gammagamma) {
    cust_t *c = load_transactions();
    static double sx[N_CUST], stx[N_CUST], sT[N_CUST];
    cr_assert_eq(load_summary(sx, stx, sT), N_CUST);
    char path[] = "/tmp/cx_fit_summary_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("T,monetary_value,ID,recency,frequency\r\n", f); /* CRLF too */
    for (int id = 1; id <= N_CUST; id++) {
        const cust_t *k = &c[id];
        int first = first_day(k);
        double sum = 0;
        for (int i = 0; i < k->n_days; i++)
            if (k->day[i] != first) sum += k->amount[i];
        double mv = k->n_days > 1 ? sum / (k->n_days - 1) : 0;
        fprintf(f, "%.2f,%.17g,%d,%.2f,%d\r\n", sT[id - 1], mv, id, stx[id - 1], (int)sx[id - 1]);
    }
    fclose(f);
    free(c);
    char *argv[] = {"fit", "--summary", path};
    run_t r;
    run_fit(&r, 3, argv);
    unlink(path);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    assert_rel(json_num(r.out, "r"), 0.243, 0.005, "r");
    assert_rel(json_num(r.out, "p"), 6.25, 0.01, "p");
    assert_rel(json_num(r.out, "q"), 3.74, 0.01, "q");
    assert_rel(json_num(r.out, "gamma"), 15.44, 0.01, "gamma");
    cr_assert(fabs(json_num(r.out, "gg_loglik") - -4055.92) <= 0.05);
    cr_assert_eq(json_num(r.out, "gg_n"), 946);
}

Test(fit_cli, profiles_in_days_are_converted_by_unit_days) {
    /* cxstream's profile view of the CDNOW calibration period: day counts, minor units. */
    cust_t *c = load_transactions();
    char path[] = "/tmp/cx_fit_profiles_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    int end = day_number(19970930);
    fputs("{\"customer_id\":\"nobody\",\"bgnbd_x\":null,\"bgnbd_t_x_days\":null,"
          "\"bgnbd_T_days\":null,\"repeat_revenue_minor\":null}\n",
          f); /* no transaction: skipped */
    for (int id = 1; id <= N_CUST; id++) {
        const cust_t *k = &c[id];
        int first = first_day(k), last = first;
        long long repeat_minor = 0;
        for (int i = 0; i < k->n_days; i++) {
            if (k->day[i] > last) last = k->day[i];
            if (k->day[i] != first) repeat_minor += llround(k->amount[i] * 100);
        }
        fprintf(f,
                "{\"customer_id\":\"c%05d\",\"bgnbd_x\":%d,\"bgnbd_t_x_days\":%d,"
                "\"bgnbd_T_days\":%d,\"repeat_revenue_minor\":%lld,\"p_alive\":1.0}\n",
                id, k->n_days - 1, last - first, end - first, repeat_minor);
    }
    fclose(f);
    free(c);
    char *argv[] = {"fit", "--profiles", path, "--unit-days", "7"};
    run_t r;
    run_fit(&r, 5, argv);
    unlink(path);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    /* The summary rounds weeks to two decimals; exact day counts move the optimum slightly. */
    assert_rel(json_num(r.out, "r"), 0.243, 0.01, "r");
    assert_rel(json_num(r.out, "alpha"), 4.414, 0.01, "alpha");
    assert_rel(json_num(r.out, "a"), 0.793, 0.01, "a");
    assert_rel(json_num(r.out, "b"), 2.426, 0.01, "b");
    cr_assert_eq(json_num(r.out, "n"), N_CUST);
    /* gamma in minor units: the dollar figure times 100 */
    assert_rel(json_num(r.out, "p"), 6.25, 0.01, "p");
    assert_rel(json_num(r.out, "q"), 3.74, 0.01, "q");
    assert_rel(json_num(r.out, "gamma"), 1544, 0.01, "gamma");
    cr_assert_eq(json_num(r.out, "gg_n"), 946);
}

Test(fit_cli, profile_missing_field_names_line_and_field) {
    char path[] = "/tmp/cx_fit_profiles_XXXXXX";
    write_file(path, "{\"bgnbd_x\":1,\"bgnbd_t_x_days\":3,\"bgnbd_T_days\":9,\"repeat_revenue_minor\":5}\n"
                     "{\"bgnbd_x\":1,\"bgnbd_T_days\":9,\"repeat_revenue_minor\":5}\n");
    char *argv[] = {"fit", "--profiles", path};
    run_t r;
    run_fit(&r, 3, argv);
    unlink(path);
    cr_assert_eq(r.rc, 2);
    cr_assert_not_null(strstr(r.err, ":2:"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "bgnbd_t_x_days"), "%s", r.err);
}

Test(fit, gammagamma_with_identical_spend_everywhere_is_reported_unidentified) {
    /* No variation within or between customers: the likelihood rises without bound as p grows. */
    double x[40], m[40];
    for (int i = 0; i < 40; i++) {
        x[i] = 1 + i % 5;
        m[i] = 10.0;
    }
    cx_gg_params_t g;
    char err[256] = "";
    cr_assert_eq(cx_fit_gg(x, m, 40, &g, NULL, err, sizeof err), CX_ERR_FATAL);
    cr_assert_not_null(strstr(err, "do not identify"), "%s", err);
}

/* A small deterministic generator for simulation tests (PCG-style LCG, top 53 bits). */
static double u01(unsigned long long *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(*s >> 11) + 0.5) * 0x1.0p-53;
}

/* Gamma(shape, 1) by Marsaglia-Tsang; shape < 1 through the U^(1/shape) boost. */
static double rgamma(double shape, unsigned long long *s) {
    if (shape < 1) return rgamma(shape + 1, s) * pow(u01(s), 1 / shape);
    double d = shape - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double nrm = sqrt(-2 * log(u01(s))) * cos(2 * M_PI * u01(s));
        double v = pow(1 + c * nrm, 3);
        if (v > 0 && log(u01(s)) < 0.5 * nrm * nrm + d - d * v + d * log(v)) return d * v;
    }
}

Test(fit, bgnbd_recovers_parameters_of_a_simulated_base) {
    /* 20,000 customers drawn from the model itself, in continuous time, with a fixed seed. */
    const cx_bgnbd_params_t truth = {0.8, 5.0, 1.2, 3.0};
    enum { N = 20000 };
    static double x[N], tx[N], T[N];
    unsigned long long s = 42;
    for (int i = 0; i < N; i++) {
        double lambda = rgamma(truth.r, &s) / truth.alpha;
        double ga = rgamma(truth.a, &s), pdrop = ga / (ga + rgamma(truth.b, &s));
        T[i] = 20 + 30 * u01(&s);
        x[i] = tx[i] = 0;
        for (double t = 0;;) {
            t += -log(u01(&s)) / lambda;
            if (t > T[i]) break;
            x[i] += 1;
            tx[i] = t;
            if (u01(&s) < pdrop) break;
        }
    }
    cx_bgnbd_params_t p;
    double ll;
    char err[256];
    cr_assert_eq(cx_fit_bgnbd(x, tx, T, N, &p, &ll, err, sizeof err), CX_OK, "%s", err);
    assert_rel(p.r, truth.r, 0.1, "r");
    assert_rel(p.alpha, truth.alpha, 0.1, "alpha");
    assert_rel(p.a, truth.a, 0.2, "a");
    assert_rel(p.b, truth.b, 0.2, "b");
    /* the optimum is at least as likely as the truth */
    double ll_truth = 0;
    for (int i = 0; i < N; i++)
        ll_truth += cx_bgnbd_loglik(&truth, x[i], tx[i], T[i]);
    cr_assert(ll >= ll_truth - 1e-6, "fit %.4f below truth %.4f", ll, ll_truth);
}

Test(fit_cli, failed_spend_fit_warns_and_still_prints_bgnbd) {
    char path[] = "/tmp/cx_fit_flat_XXXXXX";
    write_file(path, "ID,frequency,recency,T,monetary_value\n"
                     "1,2,30,38\n1,0,0,38,0\n3,1,5,38,10\n4,3,20,38,10\n5,0,0,20,0\n6,4,30,38,10\n");
    char *argv[] = {"fit", "--summary", path};
    run_t r;
    run_fit(&r, 3, argv);
    cr_assert_eq(r.rc, 2, "a short row is still an input error: %s", r.err);
    unlink(path);
    char path2[] = "/tmp/cx_fit_flat_XXXXXX";
    argv[2] = path2;
    write_file(path2, "ID,frequency,recency,T,monetary_value\n"
                      "1,2,30,38,10\n2,0,0,38,0\n3,1,5,38,10\n4,3,20,38,10\n5,0,0,20,0\n6,4,30,38,10\n");
    run_fit(&r, 3, argv);
    unlink(path2);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.err, "warning: no Gamma-Gamma"), "%s", r.err);
    cr_assert_not_null(strstr(r.out, "\"alpha\":"), "%s", r.out);
    cr_assert_null(strstr(r.out, "\"gamma\""), "%s", r.out);
    cr_assert_eq(json_num(r.out, "n"), 6);
}
