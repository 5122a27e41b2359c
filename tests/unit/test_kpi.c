/*
 * test_kpi.c — KPI arithmetic, the two-proportion z-test against values computed independently
 * (Python: math.erfc over the pooled z), the partial encodings, and the merged KPI records:
 * several partitions, closing only once every partition's watermark is past, remote partials, and
 * exact counts after a restart from the store.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "attribution.h"
#include "campaigns.h"
#include "kpi.h"

#define T0 INT64_C(1700000000000)
#define D  CX_DAY_MS

Test(kpi, z_test_100_of_1000_vs_70_of_1000) {
    double z, p;
    cr_assert(cx_kpi_z_test(100, 1000, 70, 1000, &z, &p));
    /* Python: p1=.1, p2=.07, pooled .085, z = .03 / sqrt(.085*.915*(2/1000)) */
    cr_assert_float_eq(z, 2.4053941310619655, 1e-12);
    cr_assert_float_eq(p, 0.016155032073740413, 1e-12);
}

Test(kpi, z_test_is_symmetric_and_two_sided) {
    double z1, p1, z2, p2;
    cr_assert(cx_kpi_z_test(30, 200, 45, 210, &z1, &p1));
    cr_assert(cx_kpi_z_test(45, 210, 30, 200, &z2, &p2));
    cr_assert_float_eq(z1, -1.6829763461389204, 1e-12);
    cr_assert_float_eq(z1, -z2, 1e-12);
    cr_assert_float_eq(p1, 0.09237967055994599, 1e-12);
    cr_assert_float_eq(p1, p2, 1e-15);
}

Test(kpi, z_test_is_undefined_without_a_group_or_without_variance) {
    double z, p;
    cr_assert_not(cx_kpi_z_test(1, 10, 0, 0, &z, &p));
    cr_assert_not(cx_kpi_z_test(0, 0, 1, 10, &z, &p));
    cr_assert_not(cx_kpi_z_test(0, 10, 0, 20, &z, &p), "pooled proportion 0");
    cr_assert_not(cx_kpi_z_test(10, 10, 20, 20, &z, &p), "pooled proportion 1");
}

Test(kpi, compute_rates_lift_and_revenue_per_responder) {
    cx_kpi_counts_t c = {.sent = {1000, 1000},
                         .resp_any = {100, 70},
                         .resp_hard = {40, 5},
                         .retrievals = 150,
                         .purchases = 80,
                         .turnover_minor = 99999};
    cx_kpi_t k;
    memset(&k, 0, sizeof k);
    cx_kpi_compute(&c, &k);
    cr_assert_eq(k.sent_test, 1000);
    cr_assert_eq(k.responders_control_hard, 5);
    cr_assert_eq(k.revenue_per_responder_minor, 999, "99999 / 100 rounded down");
    cr_assert_float_eq(k.response_rate_test, 0.1, 1e-15);
    cr_assert_float_eq(k.response_rate_control, 0.07, 1e-15);
    cr_assert(k.has_lift);
    cr_assert_float_eq(k.lift, (0.1 - 0.07) / 0.07, 1e-12);
    cr_assert(k.has_lift_p_value);
    cr_assert_float_eq(k.lift_p_value, 0.016155032073740413, 1e-12);
}

Test(kpi, lift_is_null_when_the_control_rate_is_zero) {
    cx_kpi_counts_t c = {.sent = {10, 10}, .resp_any = {3, 0}};
    cx_kpi_t k;
    cx_kpi_compute(&c, &k);
    cr_assert_not(k.has_lift);
    cr_assert(k.has_lift_p_value, "the test itself is defined: pooled 3/20");
    cx_kpi_counts_t none = {.sent = {0, 0}};
    cx_kpi_compute(&none, &k);
    cr_assert_eq(k.revenue_per_responder_minor, 0);
    cr_assert_float_eq(k.response_rate_test, 0.0, 0);
    cr_assert_not(k.has_lift);
    cr_assert_not(k.has_lift_p_value);
}

Test(kpi, merge_sums_counts_and_keeps_the_latest_window_end) {
    cx_kpi_counts_t a = {.sent = {1, 2}, .resp_any = {1, 0}, .turnover_minor = 5, .max_end_ms = 100};
    cx_kpi_counts_t b = {.sent = {3, 4}, .resp_hard = {1, 1}, .turnover_minor = 7, .max_end_ms = 50};
    cx_kpi_counts_merge(&a, &b);
    cr_assert_eq(a.sent[0], 4);
    cr_assert_eq(a.sent[1], 6);
    cr_assert_eq(a.resp_hard[1], 1);
    cr_assert_eq(a.turnover_minor, 12);
    cr_assert_eq(a.max_end_ms, 100);
}

Test(kpi, partial_encodings_round_trip_and_refuse_garbage) {
    cx_kpi_counts_t c = {.sent = {50000, 5000},
                         .resp_any = {4000, 300},
                         .resp_hard = {1000, 2},
                         .retrievals = 7,
                         .purchases = 9,
                         .turnover_minor = INT64_C(123456789012),
                         .max_end_ms = T0 + 14 * D + 1};
    cx_kpi_counts_t back;
    cx_buf_t b = CX_BUF_INIT;
    cr_assert_eq(cx_kpi_counts_encode(&c, &b), CX_OK);
    cr_assert(cx_kpi_counts_decode(b.data, b.len, &back));
    cr_assert_eq(memcmp(&c, &back, sizeof c), 0);
    cr_assert_not(cx_kpi_counts_decode(b.data, b.len - 1, &back), "truncated");
    cx_buf_reset(&b);
    cr_assert_eq(cx_kpi_counts_json(&c, &b), CX_OK);
    cr_assert(cx_kpi_counts_from_json(b.data, b.len, &back));
    cr_assert_eq(memcmp(&c, &back, sizeof c), 0);
    cr_assert_not(cx_kpi_counts_from_json("{\"sent_test\":1}", 15, &back), "fields missing");
    cr_assert_not(cx_kpi_counts_from_json("nope", 4, &back));
    cx_buf_free(&b);
}

Test(kpi, partial_key_takes_the_partition_after_the_last_colon) {
    const char *kind, *id;
    size_t kl, il;
    int32_t part;
    const char *key = "campaign:spring:2024:12";
    cr_assert(cx_partial_key_parse(key, strlen(key), &kind, &kl, &id, &il, &part));
    cr_assert_eq(kl, 8);
    cr_assert_eq(il, strlen("spring:2024"));
    cr_assert_eq(strncmp(id, "spring:2024", il), 0);
    cr_assert_eq(part, 12);
    cr_assert(cx_partial_key_parse("wm::3", 5, &kind, &kl, &id, &il, &part));
    cr_assert_eq(il, 0);
    cr_assert_eq(part, 3);
    cr_assert_not(cx_partial_key_parse("campaign:x:", 11, &kind, &kl, &id, &il, &part));
    cr_assert_not(cx_partial_key_parse("nocolon", 7, &kind, &kl, &id, &il, &part));
}

/* ---- merged KPI records through campaigns.c ---- */

static cx_campaign_t camp;
static const cx_campaign_t *lookup(void *opaque, const char *id) {
    (void)opaque;
    return strcmp(id, camp.campaign_id) == 0 ? &camp : NULL;
}

typedef struct captured {
    cx_kpi_t kpis[64];
    int n_kpis;
    int n_partials;
    char last_partial_key[64];
    char last_partial_value[512];
    char partial_keys[16][64]; /* the first 16, in order, each "key=value" */
} captured_t;
static captured_t cap;

static cx_err_t capture(void *opaque, cx_record_kind_t kind, const char *key, const void *rec) {
    (void)opaque;
    if (kind == CX_REC_KPI && cap.n_kpis < 64) cap.kpis[cap.n_kpis++] = *(const cx_kpi_t *)rec;
    if (kind == CX_REC_PARTIAL) {
        const cx_partial_rec_t *p = rec;
        cap.n_partials++;
        snprintf(cap.last_partial_key, sizeof cap.last_partial_key, "%s", key);
        snprintf(cap.last_partial_value, sizeof cap.last_partial_value, "%.*s", (int)p->len, (const char *)p->value);
        if (cap.n_partials <= 16)
            snprintf(cap.partial_keys[cap.n_partials - 1], sizeof cap.partial_keys[0], "%s=%.*s", key,
                     (int)(p->len > 40 ? 40 : p->len), (const char *)p->value);
    }
    return CX_OK;
}

static cx_config_t cfg;

static void setup(void) {
    memset(&cap, 0, sizeof cap);
    memset(&cfg, 0, sizeof cfg);
    cfg.campaign_wait_days = 7;
    cfg.kpi_interval_ms = 3600000;
    memset(&camp, 0, sizeof camp);
    strcpy(camp.campaign_id, "C1");
    camp.type = CX_CT_OTHER;
    camp.start_ts_ms = T0;
    camp.end_ts_ms = T0 + D;
    camp.observation_days = 2;
}

TestSuite(kpi_merge, .init = setup);

static void send_to(cx_campaigns_t *k, uint16_t part, cx_profile_t *pr, cx_group_t g, int64_t ts) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_EMAIL_SEND;
    snprintf(ev.event_id, sizeof ev.event_id, "s-%.60s", cx_sid_str(&pr->customer_id));
    snprintf(ev.customer_id, sizeof ev.customer_id, "%s", cx_sid_str(&pr->customer_id));
    ev.ts_ms = ts;
    strcpy(ev.u.email_send.campaign_id, "C1");
    ev.u.email_send.group = g;
    cr_assert_eq(cx_campaigns_send(k, part, pr, &ev), CX_OK);
}

static void buy(cx_campaigns_t *k, uint16_t part, cx_profile_t *pr, int64_t ts, int64_t amount) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_PURCHASE;
    snprintf(ev.event_id, sizeof ev.event_id, "b-%.60s-%lld", cx_sid_str(&pr->customer_id), (long long)ts);
    ev.ts_ms = ts;
    ev.u.purchase.amount_minor = amount;
    char got[CX_ID_MAX + 1];
    cr_assert_eq(cx_campaigns_transaction(k, part, pr, &ev, false, got), CX_OK);
}

Test(kpi_merge, campaign_closes_only_once_every_partition_is_past_its_last_window) {
    cx_sink_t sink = {NULL, capture};
    cx_campaigns_t *k = cx_campaigns_new(&cfg, lookup, NULL, &sink, NULL, 0);
    cr_assert_eq(cx_campaigns_assign(k, NULL, 0, INT64_MIN, NULL, 0), CX_OK);
    cr_assert_eq(cx_campaigns_assign(k, NULL, 1, INT64_MIN, NULL, 0), CX_OK);
    cx_profile_t a, b;
    cx_profile_init(&a, "a");
    cx_profile_init(&b, "b");
    send_to(k, 0, &a, CX_GROUP_TEST, T0);
    send_to(k, 1, &b, CX_GROUP_CONTROL, T0 + D); /* window due T0 + 3 days + 1 */
    buy(k, 0, &a, T0 + 1000, 250);
    int64_t close = T0 + 3 * D + 1;
    cx_campaigns_watermark(k, 0, close + 10 * D);
    cr_assert_eq(cx_campaigns_tick(k), CX_OK);
    cr_assert_eq(cap.n_kpis, 0, "partition 1 has no watermark yet");
    cx_campaigns_watermark(k, 1, close - 1);
    cr_assert_eq(cx_campaigns_tick(k), CX_OK);
    cr_assert_eq(cap.n_kpis, 1);
    cr_assert_not(cap.kpis[0].closed);
    cr_assert_eq(cap.kpis[0].as_of_ts_ms, close - 1);
    cx_campaigns_watermark(k, 1, close);
    cr_assert_eq(cx_campaigns_tick(k), CX_OK);
    cr_assert_eq(cap.n_kpis, 2);
    cx_kpi_t *f = &cap.kpis[1];
    cr_assert(f->closed);
    cr_assert_eq(f->ts_ms, close);
    cr_assert_eq(f->sent_test, 1);
    cr_assert_eq(f->sent_control, 1);
    cr_assert_eq(f->responders_test_any, 1);
    cr_assert_eq(f->turnover_minor, 250);
    cx_campaigns_watermark(k, 1, close + D);
    cr_assert_eq(cx_campaigns_tick(k), CX_OK);
    cr_assert_eq(cap.n_kpis, 2, "closed is final");
    cx_profile_clear(&a);
    cx_profile_clear(&b);
    cx_campaigns_destroy(k);
}

Test(kpi_merge, interval_records_at_most_once_per_interval_while_changing) {
    cx_sink_t sink = {NULL, capture};
    camp.end_ts_ms = T0 + 100 * D;
    cx_campaigns_t *k = cx_campaigns_new(&cfg, lookup, NULL, &sink, NULL, 0);
    cr_assert_eq(cx_campaigns_assign(k, NULL, 0, INT64_MIN, NULL, 0), CX_OK);
    cx_profile_t a;
    cx_profile_init(&a, "a");
    send_to(k, 0, &a, CX_GROUP_TEST, T0);
    cx_campaigns_watermark(k, 0, T0 + 1);
    cx_campaigns_tick(k);
    cr_assert_eq(cap.n_kpis, 1);
    buy(k, 0, &a, T0 + 2, 10);
    cx_campaigns_watermark(k, 0, T0 + 3); /* same hour: not yet */
    cx_campaigns_tick(k);
    cr_assert_eq(cap.n_kpis, 1);
    int64_t next_hour = (T0 / 3600000 + 1) * 3600000;
    cx_campaigns_watermark(k, 0, next_hour);
    cx_campaigns_tick(k);
    cr_assert_eq(cap.n_kpis, 2);
    cr_assert_eq(cap.kpis[1].purchases, 1);
    cx_campaigns_watermark(k, 0, next_hour + 5 * 3600000); /* nothing changed: no record */
    cx_campaigns_tick(k);
    cr_assert_eq(cap.n_kpis, 2);
    cx_profile_clear(&a);
    cx_campaigns_destroy(k);
}

Test(kpi_merge, partials_survive_a_restart_from_the_store_and_publish_absolute_counts) {
    char err[256];
    cx_store_opts_t so = {.dir = NULL};
    cx_store_t *store = cx_store_open(&so, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    cx_sink_t sink = {NULL, capture};
    cx_campaigns_t *k = cx_campaigns_new(&cfg, lookup, NULL, &sink, NULL, 0);
    cr_assert_eq(cx_campaigns_assign(k, store, 3, INT64_MIN, err, sizeof err), CX_OK);
    cx_profile_t a;
    cx_profile_init(&a, "a");
    send_to(k, 3, &a, CX_GROUP_TEST, T0);
    buy(k, 3, &a, T0 + 5, 40);
    cx_store_batch_t *batch = cx_store_batch_new();
    cx_campaigns_watermark(k, 3, T0 + 5);
    cr_assert_eq(cx_campaigns_flush(k, -1, batch), CX_OK);
    cr_assert_eq(cx_store_write(store, batch, err, sizeof err), CX_OK);
    cr_assert_eq(cap.n_partials, 3, "the watermark found at assignment, one campaign partial, the watermark now");
    cr_assert_str_eq(cap.partial_keys[0], "wm::3={\"watermark\":-9223372036854775808}");
    cr_assert(strncmp(cap.partial_keys[1], "campaign:C1:3=", 14) == 0, "%s", cap.partial_keys[1]);
    cr_assert_str_eq(cap.last_partial_key, "wm::3");
    cr_assert_eq(cx_campaigns_flush(k, -1, batch), CX_OK);
    cr_assert_eq(cap.n_partials, 3, "nothing changed: nothing published");
    /* unflushed change, then a crash: the new instance sees the flushed counts only */
    buy(k, 3, &a, T0 + 6, 60);
    cx_campaigns_destroy(k);
    memset(&cap, 0, sizeof cap);
    k = cx_campaigns_new(&cfg, lookup, NULL, &sink, NULL, 0);
    cr_assert_eq(cx_campaigns_assign(k, store, 3, INT64_MIN, err, sizeof err), CX_OK);
    cx_kpi_t kpi;
    cr_assert(cx_campaigns_kpi(k, "C1", &kpi));
    cr_assert_eq(kpi.sent_test, 1);
    cr_assert_eq(kpi.purchases, 1);
    cr_assert_eq(kpi.turnover_minor, 40);
    cx_profile_clear(&a);
    cx_campaigns_destroy(k);
    cx_store_batch_destroy(batch);
    cx_store_close(store);
}

Test(kpi_merge, remote_partials_are_merged_and_own_partitions_ignored) {
    cx_sink_t sink = {NULL, capture};
    cx_campaigns_t *k = cx_campaigns_new(&cfg, lookup, NULL, &sink, NULL, 0);
    cx_campaigns_set_partitions(k, 2);
    cr_assert_eq(cx_campaigns_assign(k, NULL, 0, INT64_MIN, NULL, 0), CX_OK);
    cx_profile_t a;
    cx_profile_init(&a, "a");
    send_to(k, 0, &a, CX_GROUP_TEST, T0);
    const char *v = "{\"sent_test\":0,\"sent_control\":4,\"responders_test_any\":0,\"responders_test_hard\":0,"
                    "\"responders_control_any\":1,\"responders_control_hard\":0,\"retrievals\":0,\"purchases\":0,"
                    "\"turnover_minor\":0,\"max_window_end_ts\":1700000000001}";
    const char *k1 = "campaign:C1:1", *k0 = "campaign:C1:0";
    cr_assert_eq(cx_campaigns_apply_partial(k, k1, strlen(k1), v, strlen(v)), CX_OK);
    cr_assert_eq(cx_campaigns_apply_partial(k, k0, strlen(k0), v, strlen(v)), CX_OK);
    cr_assert_eq(cx_campaigns_apply_partial(k, "wm::1", 5, "{\"watermark\":1700000000500}", 27), CX_OK);
    cx_kpi_t kpi;
    cr_assert(cx_campaigns_kpi(k, "C1", &kpi));
    cr_assert_eq(kpi.sent_test, 1, "partition 0 is ours: its remote copy is ignored");
    cr_assert_eq(kpi.sent_control, 4);
    cr_assert_eq(kpi.responders_control_any, 1);
    cr_assert_eq(cx_campaigns_apply_partial(k, "bad", 3, "{}", 2), CX_ERR_INVALID);
    cx_profile_clear(&a);
    cx_campaigns_destroy(k);
}

/* Partition 1 changes owner: the old owner had published counts and a watermark past the close that
 * the new owner's restored state is behind (at-least-once after a kill). The new owner announces its
 * restored watermark before its counts, and readers take the latest watermark, not the largest, so
 * the campaign closes only with the counts that reach the close, never with the restored ones. */
Test(kpi_merge, a_new_owners_counts_never_close_a_campaign_under_the_old_owners_watermark) {
    char err[256];
    cx_sink_t sink = {NULL, capture};
    int32_t own = cx_murmur2_partition("C1", 2, 2), other = 1 - own; /* this instance produces C1's KPIs */
    int64_t close = camp.end_ts_ms + 1;
    char key[32], wm[64], full[512], behind[512];
    const char *counts = "{\"sent_test\":0,\"sent_control\":%d,\"responders_test_any\":0,\"responders_test_hard\":0,"
                         "\"responders_control_any\":0,\"responders_control_hard\":0,\"retrievals\":0,"
                         "\"purchases\":0,\"turnover_minor\":0,\"max_window_end_ts\":0}";
    snprintf(full, sizeof full, counts, 4);
    snprintf(behind, sizeof behind, counts, 2);
    snprintf(key, sizeof key, "campaign:C1:%d", other);
    char wmkey[16];
    snprintf(wmkey, sizeof wmkey, "wm::%d", other);

    /* the reader: owns `own`, which is not yet past the close */
    cx_campaigns_t *k = cx_campaigns_new(&cfg, lookup, NULL, &sink, NULL, 0);
    cx_campaigns_set_partitions(k, 2);
    cr_assert_eq(cx_campaigns_assign(k, NULL, (uint16_t)own, close - 1, NULL, 0), CX_OK);
    /* the old owner of `other`: all 4 sends counted, watermark past the close */
    cr_assert_eq(cx_campaigns_apply_partial(k, key, strlen(key), full, strlen(full)), CX_OK);
    snprintf(wm, sizeof wm, "{\"watermark\":%" PRId64 "}", close + D);
    cr_assert_eq(cx_campaigns_apply_partial(k, wmkey, strlen(wmkey), wm, strlen(wm)), CX_OK);
    cr_assert_eq(cx_campaigns_tick(k), CX_OK);
    cr_assert_eq(cap.n_kpis, 1);
    cr_assert_not(cap.kpis[0].closed);

    /* the new owner of `other`, as its first flush publishes them: restored watermark, then counts */
    cx_campaigns_t *n = cx_campaigns_new(&cfg, lookup, NULL, &sink, NULL, 0);
    cx_campaigns_set_partitions(n, 2);
    cr_assert_eq(cx_campaigns_assign(n, NULL, (uint16_t)other, close - 10 * D, err, sizeof err), CX_OK);
    cx_store_batch_t *batch = cx_store_batch_new();
    int before = cap.n_partials;
    cr_assert_eq(cx_campaigns_flush(n, -1, batch), CX_OK);
    cr_assert_eq(cap.n_partials, before + 2, "the announced watermark (and the same one again)");
    snprintf(wm, sizeof wm, "%s={\"watermark\":%" PRId64 "}", wmkey, close - 10 * D);
    cr_assert_str_eq(cap.partial_keys[before], wm);
    snprintf(wm, sizeof wm, "{\"watermark\":%" PRId64 "}", close - 10 * D);
    cr_assert_eq(cx_campaigns_apply_partial(k, wmkey, strlen(wmkey), wm, strlen(wm)), CX_OK);
    cr_assert_eq(cx_campaigns_apply_partial(k, key, strlen(key), behind, strlen(behind)), CX_OK);

    /* the reader's own partition passes the close: the merged watermark is the new owner's */
    cx_campaigns_watermark(k, (uint16_t)own, close + D);
    cr_assert_eq(cx_campaigns_tick(k), CX_OK);
    for (int i = 0; i < cap.n_kpis; i++)
        cr_assert_not(cap.kpis[i].closed, "closed with the restored counts (sent_control %d)",
                      cap.kpis[i].sent_control);

    /* the new owner catches up and passes the close */
    cr_assert_eq(cx_campaigns_apply_partial(k, key, strlen(key), full, strlen(full)), CX_OK);
    snprintf(wm, sizeof wm, "{\"watermark\":%" PRId64 "}", close + 1);
    cr_assert_eq(cx_campaigns_apply_partial(k, wmkey, strlen(wmkey), wm, strlen(wm)), CX_OK);
    cr_assert_eq(cx_campaigns_tick(k), CX_OK);
    cr_assert_gt(cap.n_kpis, 0);
    cx_kpi_t *f = &cap.kpis[cap.n_kpis - 1];
    cr_assert(f->closed);
    cr_assert_eq(f->sent_control, 4);
    cr_assert_eq(f->ts_ms, close);
    cx_store_batch_destroy(batch);
    cx_campaigns_destroy(n);
    cx_campaigns_destroy(k);
}
