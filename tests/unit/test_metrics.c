/*
 * test_metrics.c — Prometheus text rendering: sample and label formatting, histograms, the
 * statistics lag parser, and the cxstream families of a replay-fed pipeline checked line by line
 * against a strict grammar of the text exposition format 0.0.4.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "metrics.h"
#include "pipeline.h"
#include "runner.h"
#include "store.h"

/* ---------- a strict checker of the text format ---------- */

typedef struct fam {
    char name[128];
    char type[32];
} fam_t;

static bool is_name(const char *s, size_t n) {
    if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':')) return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':')) return false;
    return true;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static bool parse_value(const char *s, double *v) {
    if (!strcmp(s, "NaN")) return *v = NAN, true;
    if (!strcmp(s, "+Inf")) return *v = INFINITY, true;
    if (!strcmp(s, "-Inf")) return *v = -INFINITY, true;
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == 0 && !isnan(*v) && !isinf(*v);
}

/* Checks the whole exposition; returns the number of sample lines, or -1 with why. */
static int check_exposition(const char *text, size_t len, char *why, size_t why_n) {
    fam_t fams[128];
    int nf = 0, samples = 0;
    const char *cur_help = NULL;
    fam_t *cur = NULL;
    double last_le = -INFINITY, last_cum = 0, inf_cum = -1;
    char hist_key[512] = "";
    if (len == 0 || text[len - 1] != '\n') return snprintf(why, why_n, "no final newline"), -1;
    char *copy = strndup(text, len);
    char *save = NULL;
    int lineno = 0, rc = -1;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (!strncmp(line, "# HELP ", 7)) {
            const char *nm = line + 7, *sp = strchr(nm, ' ');
            if (!sp || !is_name(nm, (size_t)(sp - nm))) goto bad;
            cur_help = nm;
            continue;
        }
        if (!strncmp(line, "# TYPE ", 7)) {
            char nm[128], ty[32];
            if (sscanf(line + 7, "%127s %31s", nm, ty) != 2) goto bad;
            if (!cur_help || strncmp(cur_help, nm, strlen(nm)) || cur_help[strlen(nm)] != ' ') goto bad;
            if (strcmp(ty, "counter") && strcmp(ty, "gauge") && strcmp(ty, "histogram")) goto bad;
            if (!strcmp(ty, "counter") && !ends_with(nm, "_total")) goto bad;
            if (strncmp(nm, "cxstream_", 9)) goto bad;
            for (int i = 0; i < nf; i++)
                if (!strcmp(fams[i].name, nm)) goto bad; /* family declared twice */
            cur = &fams[nf++];
            snprintf(cur->name, sizeof cur->name, "%s", nm);
            snprintf(cur->type, sizeof cur->type, "%s", ty);
            cur_help = NULL;
            last_le = -INFINITY;
            last_cum = 0;
            inf_cum = -1;
            hist_key[0] = 0;
            continue;
        }
        if (line[0] == '#') goto bad;
        /* sample: name[{labels}] value */
        size_t n = 0;
        while (line[n] && line[n] != '{' && line[n] != ' ')
            n++;
        if (!cur || !is_name(line, n)) goto bad;
        char sname[160];
        snprintf(sname, sizeof sname, "%.*s", (int)n, line);
        bool hist = !strcmp(cur->type, "histogram");
        char base[160];
        snprintf(base, sizeof base, "%s", sname);
        const char *suffix = "";
        if (hist) {
            if (ends_with(sname, "_bucket"))
                suffix = "_bucket";
            else if (ends_with(sname, "_sum"))
                suffix = "_sum";
            else if (ends_with(sname, "_count"))
                suffix = "_count";
            else
                goto bad;
            base[strlen(base) - strlen(suffix)] = 0;
        }
        if (strcmp(base, cur->name)) goto bad;
        const char *p = line + n;
        double le = NAN;
        bool has_le = false;
        char others[512] = "";
        if (*p == '{') {
            p++;
            while (*p != '}') {
                size_t k = 0;
                while (p[k] && p[k] != '=')
                    k++;
                if (!is_name(p, k) || p[k + 1] != '"') goto bad;
                char lname[64];
                snprintf(lname, sizeof lname, "%.*s", (int)k, p);
                p += k + 2;
                char val[256];
                size_t vl = 0;
                while (*p && *p != '"') {
                    if (*p == '\\') {
                        p++;
                        if (*p != '\\' && *p != '"' && *p != 'n') goto bad;
                    }
                    if (vl < sizeof val - 1) val[vl++] = *p;
                    p++;
                }
                if (*p != '"') goto bad;
                val[vl] = 0;
                p++;
                if (!strcmp(lname, "le")) {
                    has_le = true;
                    if (!parse_value(val, &le) && strcmp(val, "+Inf")) goto bad;
                    if (!strcmp(val, "+Inf")) le = INFINITY;
                } else {
                    strncat(others, lname, sizeof others - strlen(others) - 1);
                    strncat(others, "=", sizeof others - strlen(others) - 1);
                    strncat(others, val, sizeof others - strlen(others) - 1);
                    strncat(others, ";", sizeof others - strlen(others) - 1);
                }
                if (*p == ',')
                    p++;
                else if (*p != '}')
                    goto bad;
            }
            p++;
        }
        if (*p != ' ') goto bad;
        double v;
        if (!parse_value(p + 1, &v) && strcmp(p + 1, "NaN")) goto bad;
        if (!strcmp(cur->type, "counter") && !(v >= 0)) goto bad;
        if (hist && !strcmp(suffix, "_bucket")) {
            if (!has_le) goto bad;
            if (strcmp(hist_key, others)) { /* a new label set starts its buckets */
                snprintf(hist_key, sizeof hist_key, "%s", others);
                last_le = -INFINITY;
                last_cum = 0;
            }
            if (!(le > last_le) || v < last_cum) goto bad; /* ascending le, cumulative counts */
            last_le = le;
            last_cum = v;
            if (isinf(le)) inf_cum = v;
        } else if (hist && !strcmp(suffix, "_count")) {
            if (inf_cum < 0 || v != inf_cum) goto bad; /* _count equals the +Inf bucket */
        } else if (has_le) {
            goto bad;
        }
        samples++;
    }
    rc = samples;
    goto done;
bad:
    snprintf(why, why_n, "line %d does not conform", lineno);
done:
    free(copy);
    return rc;
}

static void expect_valid(const cx_buf_t *b) {
    char why[128] = "";
    int n = check_exposition((const char *)b->data, b->len, why, sizeof why);
    cr_assert(n > 0, "exposition rejected: %s\n%.*s", why, (int)b->len, (const char *)b->data);
}

/* ---------- writer ---------- */

Test(metrics, label_values_are_escaped) {
    cx_buf_t b = CX_BUF_INIT;
    cr_assert_eq(cx_metrics_family(&b, "cxstream_x_total", CX_METRIC_COUNTER, "a \\ help\nline"), CX_OK);
    cr_assert_eq(cx_metrics_sample_u64(&b, "cxstream_x_total", 3, "topic", "a\"b\\c\nd", (char *)NULL), CX_OK);
    cx_buf_putc(&b, 0);
    cr_assert_str_eq((char *)b.data, "# HELP cxstream_x_total a \\\\ help\\nline\n"
                                     "# TYPE cxstream_x_total counter\n"
                                     "cxstream_x_total{topic=\"a\\\"b\\\\c\\nd\"} 3\n");
    cx_buf_free(&b);
}

Test(metrics, values_are_exact_integers_or_round_trip_doubles) {
    cx_buf_t b = CX_BUF_INIT;
    cx_metrics_sample(&b, "a", 1234567890123.0, (char *)NULL);
    cx_metrics_sample(&b, "b", 0.1, (char *)NULL);
    cx_metrics_sample(&b, "c", NAN, (char *)NULL);
    cx_metrics_sample(&b, "d", -INFINITY, "k", "v", "k2", "w", (char *)NULL);
    cx_metrics_sample_u64(&b, "e", UINT64_MAX, (char *)NULL);
    cx_buf_putc(&b, 0);
    cr_assert_str_eq((char *)b.data, "a 1234567890123\nb 0.1\nc NaN\nd{k=\"v\",k2=\"w\"} -Inf\n"
                                     "e 18446744073709551615\n");
    cx_buf_free(&b);
}

Test(metrics, histogram_buckets_are_cumulative_and_count_matches_inf) {
    cx_histogram_t h = {0};
    cx_histogram_observe(&h, 0.001); /* exactly on a bound: inside it (le is inclusive) */
    cx_histogram_observe(&h, 0.003);
    cx_histogram_observe(&h, 1000);
    cr_assert_eq(h.count, 3);
    cx_buf_t b = CX_BUF_INIT;
    cx_metrics_family(&b, "cxstream_t_seconds", CX_METRIC_HISTOGRAM, "t");
    cx_metrics_histogram(&b, "cxstream_t_seconds", &h, NULL, NULL);
    cx_buf_putc(&b, 0);
    const char *s = (const char *)b.data;
    cr_assert(strstr(s, "cxstream_t_seconds_bucket{le=\"0.001\"} 1\n"), "%s", s);
    cr_assert(strstr(s, "cxstream_t_seconds_bucket{le=\"0.0025\"} 1\n"), "%s", s);
    cr_assert(strstr(s, "cxstream_t_seconds_bucket{le=\"0.005\"} 2\n"), "%s", s);
    cr_assert(strstr(s, "cxstream_t_seconds_bucket{le=\"60\"} 2\n"), "%s", s);
    cr_assert(strstr(s, "cxstream_t_seconds_bucket{le=\"+Inf\"} 3\n"), "%s", s);
    cr_assert(strstr(s, "cxstream_t_seconds_count 3\n"), "%s", s);
    cr_assert(strstr(s, "cxstream_t_seconds_sum 1000.004\n"), "%s", s);
    b.len--; /* drop the NUL */
    expect_valid(&b);
    cx_buf_free(&b);
}

Test(metrics, checker_rejects_what_prometheus_would) {
    char why[128];
    const char *bad[] = {
        "cxstream_a_total 1\n",                                                /* no TYPE */
        "# HELP cxstream_a x\n# TYPE cxstream_a counter\ncxstream_a 1\n",      /* counter w/o _total */
        "# HELP cxstream_a x\n# TYPE cxstream_a gauge\ncxstream_a{k=\"v} 1\n", /* open quote */
        "# HELP cxstream_a x\n# TYPE cxstream_a gauge\ncxstream_a 1x\n",       /* bad value */
        "# HELP cxstream_a x\n# TYPE cxstream_a gauge\ncxstream_a 1",          /* no newline */
        "# HELP cxstream_a x\n# TYPE cxstream_a gauge\n# HELP cxstream_a x\n# TYPE cxstream_a gauge\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_lt(check_exposition(bad[i], strlen(bad[i]), why, sizeof why), 0, "accepted: %s", bad[i]);
}

/* ---------- statistics ---------- */

typedef struct lag_rec {
    char topic[32];
    int32_t p;
    int64_t lag;
} lag_rec_t;

static void on_lag(void *o, const char *topic, int32_t p, int64_t lag) {
    lag_rec_t *r = o;
    while (r->topic[0])
        r++;
    snprintf(r->topic, sizeof r->topic, "%s", topic);
    r->p = p;
    r->lag = lag;
}

Test(metrics, statistics_lag_skips_internal_and_unknown_partitions) {
    const char *js = "{\"name\":\"c\",\"topics\":{\"cx.play\":{\"topic\":\"cx.play\",\"partitions\":{"
                     "\"0\":{\"partition\":0,\"consumer_lag\":42,\"hi_offset\":100},"
                     "\"1\":{\"partition\":1,\"consumer_lag\":-1},"
                     "\"-1\":{\"partition\":-1,\"consumer_lag\":-1}}},"
                     "\"cx.survey\":{\"partitions\":{\"3\":{\"partition\":3,\"consumer_lag\":0}}}}}";
    lag_rec_t got[8] = {0};
    cr_assert_eq(cx_metrics_parse_lag(js, strlen(js), on_lag, got), CX_OK);
    cr_assert_str_eq(got[0].topic, "cx.play");
    cr_assert_eq(got[0].p, 0);
    cr_assert_eq(got[0].lag, 42);
    cr_assert_str_eq(got[1].topic, "cx.survey");
    cr_assert_eq(got[1].p, 3);
    cr_assert_eq(got[1].lag, 0);
    cr_assert_eq(got[2].topic[0], 0);
    cr_assert_eq(cx_metrics_parse_lag("{\"topics\":", 10, on_lag, got), CX_ERR_INVALID);
}

/* ---------- the cxstream families ---------- */

static cx_err_t null_emit(void *o, cx_record_kind_t k, const char *key, const void *rec) {
    (void)o, (void)k, (void)key, (void)rec;
    return CX_OK;
}

static void purchase(cx_pipeline_t *pl, const char *cid, const char *eid, int64_t ts, int64_t amount) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_PURCHASE;
    snprintf(ev.event_id, sizeof ev.event_id, "%s", eid);
    snprintf(ev.customer_id, sizeof ev.customer_id, "%s", cid);
    ev.ts_ms = ts;
    ev.u.purchase.kind = CX_PK_RENTAL;
    ev.u.purchase.amount_minor = amount;
    memcpy(ev.u.purchase.currency, "EUR", 4);
    char err[256];
    bool more = true;
    while (more)
        cr_assert_eq(cx_pipeline_advance(pl, 0, ts, &more, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(cx_pipeline_event(pl, 0, &ev, -1, err, sizeof err), CX_OK, "%s", err);
}

Test(metrics, pipeline_families_conform_and_count_what_happened) {
    char err[256];
    cx_config_t *cfg = cx_config_new();
    cx_store_opts_t so = {.dir = NULL};
    cx_store_t *st = cx_store_open(&so, err, sizeof err);
    cr_assert(st, "%s", err);
    cx_sink_t sink = {NULL, null_emit};
    cx_pipeline_t *pl = cx_pipeline_new(cfg, st, &sink, err, sizeof err);
    cr_assert(pl, "%s", err);
    cr_assert_eq(cx_pipeline_assign(pl, 0, NULL, err, sizeof err), CX_OK, "%s", err);
    int64_t t0 = INT64_C(1700000000000);
    purchase(pl, "c1", "e1", t0, 500);
    purchase(pl, "c1", "e1", t0 + 1000, 500); /* duplicate */
    purchase(pl, "c2", "e2", t0 + 2000, 900);

    cx_buf_t b = CX_BUF_INIT;
    cr_assert_eq(cx_metrics_collect_pipeline(&b, cfg, pl, t0 + 62000), CX_OK);
    expect_valid(&b);
    cx_buf_putc(&b, 0);
    const char *s = (const char *)b.data;
    cr_assert(strstr(s, "\ncxstream_events_total 2\n"), "%s", s);
    cr_assert(strstr(s, "\ncxstream_duplicates_total 1\n"), "%s", s);
    cr_assert(strstr(s, "cxstream_watermark_timestamp_seconds{partition=\"0\"} 1700000002\n"), "%s", s);
    cr_assert(strstr(s, "cxstream_watermark_lag_seconds{partition=\"0\"} 60\n"), "%s", s);
    /* every configured segment has a line; the two customers are in them */
    int64_t sum = 0;
    for (size_t i = 0; i < cfg->n_segments; i++) {
        char needle[128];
        snprintf(needle, sizeof needle, "cxstream_segment_customers{segment=\"%s\"} ", cfg->segments[i].name);
        const char *at = strstr(s, needle);
        cr_assert(at, "missing %s", needle);
        sum += atoll(at + strlen(needle));
    }
    cr_assert_eq(sum, 2);
    cx_buf_free(&b);
    cx_pipeline_destroy(pl);
    cx_store_close(st);
    cx_config_destroy(cfg);
}

/* processing.threads: two pipelines' expositions merged into one valid exposition, each family
 * once, every sample kept and labelled with its thread, labels or not. */
Test(metrics, threads_merge_into_one_family_each_with_a_thread_label) {
    char err[256];
    cx_config_t *cfg = cx_config_new();
    cx_store_opts_t so = {.dir = NULL};
    cx_store_t *st[2];
    cx_pipeline_t *pl[2];
    cx_buf_t in[2] = {CX_BUF_INIT, CX_BUF_INIT};
    cx_sink_t sink = {NULL, null_emit};
    int64_t t0 = INT64_C(1700000000000);
    int samples = 0;
    for (int k = 0; k < 2; k++) {
        st[k] = cx_store_open(&so, err, sizeof err);
        cr_assert(st[k], "%s", err);
        pl[k] = cx_pipeline_new(cfg, st[k], &sink, err, sizeof err);
        cr_assert(pl[k], "%s", err);
        cr_assert_eq(cx_pipeline_assign(pl[k], 0, NULL, err, sizeof err), CX_OK, "%s", err);
        for (int e = 0; e <= k; e++) { /* thread 0: one event, thread 1: two */
            char cid[16], eid[16];
            snprintf(cid, sizeof cid, "c%d%d", k, e);
            snprintf(eid, sizeof eid, "e%d%d", k, e);
            purchase(pl[k], cid, eid, t0 + e * 1000, 500);
        }
        cr_assert_eq(cx_metrics_collect_pipeline(&in[k], cfg, pl[k], t0 + 62000), CX_OK);
        samples += check_exposition((const char *)in[k].data, in[k].len, err, sizeof err);
    }
    cx_buf_t b = CX_BUF_INIT;
    cr_assert_eq(cx_metrics_merge_labelled(&b, in, 2, "thread"), CX_OK);
    cr_assert_eq(check_exposition((const char *)b.data, b.len, err, sizeof err), samples, "%s", err);
    cx_buf_putc(&b, 0);
    const char *s = (const char *)b.data;
    cr_assert(strstr(s, "\ncxstream_events_total{thread=\"0\"} 1\ncxstream_events_total{thread=\"1\"} 2\n"), "%s", s);
    cr_assert(strstr(s, "cxstream_watermark_timestamp_seconds{thread=\"1\",partition=\"0\"} 1700000001\n"), "%s", s);
    const char *help = strstr(s, "# HELP cxstream_events_total ");
    cr_assert(help && !strstr(help + 1, "# HELP cxstream_events_total "), "family twice:\n%s", s);
    /* one input: its own samples, labelled */
    cx_buf_t one = CX_BUF_INIT;
    cr_assert_eq(cx_metrics_merge_labelled(&one, in, 1, "thread"), CX_OK);
    cr_assert_eq(check_exposition((const char *)one.data, one.len, err, sizeof err),
                 check_exposition((const char *)in[0].data, in[0].len, err, sizeof err));
    /* a sample before any family is refused, not dropped */
    cx_buf_t bad = CX_BUF_INIT, out = CX_BUF_INIT;
    cx_buf_appendf(&bad, "cxstream_x 1\n");
    cr_assert_eq(cx_metrics_merge_labelled(&out, &bad, 1, "thread"), CX_ERR_INVALID);
    cx_buf_free(&bad);
    cx_buf_free(&out);
    cx_buf_free(&one);
    cx_buf_free(&b);
    for (int k = 0; k < 2; k++) {
        cx_buf_free(&in[k]);
        cx_pipeline_destroy(pl[k]);
        cx_store_close(st[k]);
    }
    cx_config_destroy(cfg);
}

Test(metrics, runner_before_start_exposes_only_info_and_started) {
    char err[512];
    cx_config_t *cfg = cx_config_new();
    cr_assert_eq(cx_config_set(cfg, "bootstrap.servers", "127.0.0.1:1", NULL, err, sizeof err), CX_OK, "%s", err);
    char dir[] = "/tmp/cx_test_metrics_XXXXXX";
    cr_assert(mkdtemp(dir));
    cr_assert_eq(cx_config_set(cfg, "state.dir", dir, NULL, err, sizeof err), CX_OK, "%s", err);
    cx_runner_t *r = cx_runner_new(cfg, NULL, err, sizeof err);
    cr_assert(r, "%s", err);
    cx_buf_t b = CX_BUF_INIT;
    cx_runner_lock(r);
    cr_assert_eq(cx_metrics_collect_runner(&b, cfg, r, 0), CX_OK);
    cx_runner_unlock(r);
    expect_valid(&b);
    cx_buf_putc(&b, 0);
    cr_assert(strstr((char *)b.data, "cxstream_started 0\n"), "%s", (char *)b.data);
    cr_assert(strstr((char *)b.data, "cxstream_info{version=\"" CX_VERSION "\""), "%s", (char *)b.data);
    cx_buf_free(&b);
    cx_runner_destroy(r);
    cx_config_destroy(cfg);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---------- changelog restore ---------- */

Test(metrics, restore_families_count_finished_and_running_restores) {
    cx_runner_restore_t rs = {0};
    cx_buf_t b = CX_BUF_INIT;
    cr_assert_eq(cx_metrics_collect_restore(&b, &rs), CX_OK);
    expect_valid(&b);
    cx_buf_putc(&b, 0);
    const char *s = (const char *)b.data;
    cr_assert(strstr(s, "\ncxstream_restoring_partitions 0\n"), "%s", s);
    cr_assert(strstr(s, "\ncxstream_restore_records_total 0\n"), "%s", s);
    cr_assert(strstr(s, "\ncxstream_restore_records_per_second 0\n"), "%s", s);

    /* two partitions done (1,000 records in 2 s), one of two pending is being read */
    rs.partitions_restored = 2;
    rs.records_total = 1000;
    rs.seconds_total = 2;
    rs.pending = 2;
    rs.active = true;
    rs.current = (cx_restore_progress_t){
        .part = 3, .from = 0, .end = 200000, .position = 150000, .records = 100000, .seconds = 4};
    cx_buf_reset(&b);
    cr_assert_eq(cx_metrics_collect_restore(&b, &rs), CX_OK);
    expect_valid(&b);
    cx_buf_putc(&b, 0);
    s = (const char *)b.data;
    cr_assert(strstr(s, "\ncxstream_restoring_partitions 2\n"), "%s", s);
    cr_assert(strstr(s, "\ncxstream_restored_partitions_total 2\n"), "%s", s);
    cr_assert(strstr(s, "\ncxstream_restore_records_total 101000\n"), "%s", s);
    cr_assert(strstr(s, "\ncxstream_restore_seconds_total 6\n"), "%s", s);
    cr_assert(strstr(s, "\ncxstream_restore_records_per_second 25000\n"), "%s", s);
    cr_assert(strstr(s, "\ncxstream_restore_remaining_records 50000\n"), "%s", s);

    /* finished: the running restore's records move into the total, the rate goes back to 0 */
    rs.active = false;
    rs.pending = 0;
    rs.partitions_restored = 3;
    rs.records_total = 1000 + 130000;
    rs.seconds_total = 2 + 5;
    cx_buf_reset(&b);
    cr_assert_eq(cx_metrics_collect_restore(&b, &rs), CX_OK);
    expect_valid(&b);
    cx_buf_putc(&b, 0);
    s = (const char *)b.data;
    cr_assert(strstr(s, "\ncxstream_restore_records_total 131000\n"), "%s", s);
    cr_assert(strstr(s, "\ncxstream_restore_records_per_second 0\n"), "%s", s);
    cr_assert(strstr(s, "\ncxstream_restore_remaining_records 0\n"), "%s", s);
    cx_buf_free(&b);
}
