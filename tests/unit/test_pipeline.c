/*
 * test_pipeline.c — the pipeline over an in-memory store with a capturing sink: event-time timers
 * (order across customers, due exactly at the watermark, the path of a Champion who goes quiet),
 * flushes in the middle of timer firing and restarts on the same store leave the outputs unchanged,
 * duplicates are dropped and counted within dedup.per_customer, late events count.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "pipeline.h"

#define DAY0 19723 /* 2024-01-01 */
static int64_t at(int32_t day, int hour) {
    return (int64_t)(DAY0 + day) * CX_DAY_MS + (int64_t)hour * 3600000;
}
static int64_t midnight(int32_t day) {
    return (int64_t)(DAY0 + day) * CX_DAY_MS;
}

typedef struct run {
    cx_config_t *cfg;
    cx_store_t *st;
    cx_pipeline_t *p;
    cx_codec_t *codec;
    cx_buf_t out;   /* every record as "<kind> <json>\n", in production order */
    cx_buf_t brief; /* segment changes as "<customer> <segment> <cause>\n" */
    cx_buf_t tmp;
    char err[512];
} run_t;

static cx_err_t capture(void *opaque, cx_record_kind_t kind, const char *key, const void *rec) {
    run_t *r = opaque;
    if (kind > CX_REC_PROFILE) return CX_OK; /* internal records (cx.partials, changelog): no file in replay either */
    cx_buf_reset(&r->tmp);
    cr_assert_eq(cx_codec_encode(r->codec, kind, rec, CX_FMT_JSON, &r->tmp), CX_OK, "kind %d key %s", (int)kind, key);
    cx_buf_appendf(&r->out, "%d ", (int)kind);
    cx_buf_append(&r->out, r->tmp.data, r->tmp.len);
    cx_buf_putc(&r->out, '\n');
    if (kind == CX_REC_SEGMENT_CHANGE) {
        const cx_segment_change_t *sc = rec;
        cr_assert_str_eq(key, sc->customer_id);
        cx_buf_appendf(&r->brief, "%s %s %s\n", sc->customer_id, sc->segment, sc->cause);
    }
    return CX_OK;
}

static void pipeline_open(run_t *r) {
    cx_sink_t sink = {r, capture};
    r->p = cx_pipeline_new(r->cfg, r->st, &sink, r->err, sizeof r->err);
    cr_assert_not_null(r->p, "%s", r->err);
    cr_assert_eq(cx_pipeline_assign(r->p, 0, NULL, r->err, sizeof r->err), CX_OK, "%s", r->err);
}

/* settings: NULL-terminated "key=value" list */
static void run_open(run_t *r, const char *const *settings) {
    memset(r, 0, sizeof *r);
    r->cfg = cx_config_new();
    cr_assert_not_null(r->cfg);
    cr_assert_eq(cx_config_set_kv(r->cfg, "enriched.enabled=false", NULL, r->err, sizeof r->err), CX_OK);
    for (; settings && *settings; settings++)
        cr_assert_eq(cx_config_set_kv(r->cfg, *settings, NULL, r->err, sizeof r->err), CX_OK, "%s", r->err);
    cx_store_opts_t so = {.dir = NULL};
    r->st = cx_store_open(&so, r->err, sizeof r->err);
    cr_assert_not_null(r->st, "%s", r->err);
    r->codec = cx_codec_new(r->err, sizeof r->err);
    cr_assert_not_null(r->codec, "%s", r->err);
    pipeline_open(r);
}

static void run_close(run_t *r) {
    cx_pipeline_destroy(r->p);
    cx_store_close(r->st);
    cx_codec_destroy(r->codec);
    cx_config_destroy(r->cfg);
    cx_buf_free(&r->out);
    cx_buf_free(&r->brief);
    cx_buf_free(&r->tmp);
}

static const char *text(cx_buf_t *b) {
    cx_buf_putc(b, 0);
    b->len--;
    return (const char *)b->data;
}

static void flush(run_t *r) {
    cr_assert_eq(cx_pipeline_flush(r->p, -1, r->err, sizeof r->err), CX_OK, "%s", r->err);
}

/* Advances to wm; flush_each: flush between timer batches (as replay and run do). Returns the
 * number of batches. */
static int advance(run_t *r, int64_t wm, bool flush_each) {
    int batches = 0;
    for (bool more = true; more; batches++) {
        cr_assert_eq(cx_pipeline_advance(r->p, 0, wm, &more, r->err, sizeof r->err), CX_OK, "%s", r->err);
        if ((more && flush_each) || cx_pipeline_needs_flush(r->p)) flush(r);
    }
    return batches;
}

static void event(run_t *r, cx_event_type_t type, const char *cid, const char *eid, int64_t ts, int64_t amount,
                  int32_t seconds) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    snprintf(ev.event_id, sizeof ev.event_id, "%s", eid);
    snprintf(ev.customer_id, sizeof ev.customer_id, "%s", cid);
    ev.ts_ms = ts;
    if (type == CX_EV_PURCHASE) {
        ev.u.purchase.kind = CX_PK_PURCHASE;
        ev.u.purchase.amount_minor = amount;
        memcpy(ev.u.purchase.currency, "EUR", 4);
    } else {
        snprintf(ev.u.play.title_id, sizeof ev.u.play.title_id, "t1");
        ev.u.play.seconds_watched = seconds;
    }
    advance(r, ts - r->cfg->watermark_lateness_ms, true);
    cr_assert_eq(cx_pipeline_event(r->p, 0, &ev, -1, r->err, sizeof r->err), CX_OK, "%s", r->err);
    if (cx_pipeline_needs_flush(r->p)) flush(r);
}

static void buy(run_t *r, const char *cid, const char *eid, int64_t ts, int64_t amount) {
    event(r, CX_EV_PURCHASE, cid, eid, ts, amount, 0);
}

static cx_profile_out_t profile(run_t *r, const char *cid) {
    cx_profile_out_t o;
    bool found = false;
    cr_assert_eq(cx_pipeline_profile(r->p, 0, cid, &o, &found, r->err, sizeof r->err), CX_OK);
    cr_assert(found, "%s unknown", cid);
    return o;
}

/* ---------- timers ---------- */

Test(pipeline, timers_fire_in_due_then_customer_order_across_customers) {
    run_t r;
    run_open(&r, NULL);
    /* single purchases: New, then R falls at +8 (Promising), +31 (About To Sleep), +91
     * (Hibernating), +181 (Lost). c and a are flushed to the store's timer index, z and b stay in
     * the in-memory heap: the two sources merge in (due, customer_id) order. */
    buy(&r, "c", "e1", at(0, 9), 0);
    buy(&r, "a", "e2", at(0, 10), 0);
    flush(&r);
    buy(&r, "z", "e3", at(0, 11), 0);
    buy(&r, "b", "e4", at(1, 1), 0);
    cx_buf_reset(&r.brief);
    advance(&r, midnight(181), false);
    char want[2048];
    snprintf(want, sizeof want,
             "a Promising timer:%1$" PRId64 "\nc Promising timer:%1$" PRId64 "\nz Promising timer:%1$" PRId64 "\n"
             "b Promising timer:%2$" PRId64 "\n"
             "a About To Sleep timer:%3$" PRId64 "\nc About To Sleep timer:%3$" PRId64 "\n"
             "z About To Sleep timer:%3$" PRId64 "\nb About To Sleep timer:%4$" PRId64 "\n"
             "a Hibernating timer:%5$" PRId64 "\nc Hibernating timer:%5$" PRId64 "\nz Hibernating timer:%5$" PRId64 "\n"
             "b Hibernating timer:%6$" PRId64 "\n"
             "a Lost timer:%7$" PRId64 "\nc Lost timer:%7$" PRId64 "\nz Lost timer:%7$" PRId64 "\n",
             midnight(8), midnight(9), midnight(31), midnight(32), midnight(91), midnight(92), midnight(181));
    cr_assert_str_eq(text(&r.brief), want);
    /* b's last change is due at day 182, after the watermark */
    cx_buf_reset(&r.brief);
    advance(&r, midnight(182), false);
    snprintf(want, sizeof want, "b Lost timer:%" PRId64 "\n", midnight(182));
    cr_assert_str_eq(text(&r.brief), want);
    cr_assert_eq(cx_pipeline_stats(r.p).timers_fired, 4u * 4);
    run_close(&r);
}

Test(pipeline, timer_due_exactly_at_the_watermark_fires) {
    run_t r;
    run_open(&r, NULL);
    buy(&r, "a", "e1", at(0, 12), 0);
    cx_buf_reset(&r.brief);
    advance(&r, midnight(8) - 1, false);
    cr_assert_eq(r.brief.len, 0u, "not yet due one millisecond before");
    cx_profile_out_t o = profile(&r, "a");
    cr_assert_eq(o.r_score, 5);
    advance(&r, midnight(8), false);
    char want[128];
    snprintf(want, sizeof want, "a Promising timer:%" PRId64 "\n", midnight(8));
    cr_assert_str_eq(text(&r.brief), want);
    o = profile(&r, "a");
    cr_assert_eq(o.r_score, 4);
    cr_assert_eq(o.recency_days, 8);
    cr_assert_str_eq(o.segment, "Promising");
    run_close(&r);
}

Test(pipeline, an_event_fires_what_is_due_before_it_is_applied) {
    run_t r;
    run_open(&r, NULL);
    buy(&r, "a", "e1", at(0, 12), 0);
    cx_buf_reset(&r.brief);
    /* a's R=5 ends at day 8; a purchase of another customer at day 8 00:00 comes after the timer */
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_PURCHASE;
    strcpy(ev.event_id, "e2");
    strcpy(ev.customer_id, "b");
    ev.ts_ms = midnight(8);
    memcpy(ev.u.purchase.currency, "EUR", 4);
    cr_assert_eq(cx_pipeline_event(r.p, 0, &ev, -1, r.err, sizeof r.err), CX_OK);
    char want[256];
    snprintf(want, sizeof want, "a Promising timer:%" PRId64 "\nb New e2\n", midnight(8));
    cr_assert_str_eq(text(&r.brief), want);
    run_close(&r);
}

Test(pipeline, champion_going_quiet_passes_loyal_cannot_lose_them_and_at_risk_by_timers) {
    run_t r;
    run_open(&r, NULL);
    /* 40 purchases of 5.00 on days 0..39: F 40 (4), M 20,000 (4), R 5: Champions */
    char eid[16];
    for (int d = 0; d < 40; d++) {
        snprintf(eid, sizeof eid, "p%02d", d + 1);
        buy(&r, "champ", eid, at(d, 12), 500);
    }
    cr_assert_str_eq(profile(&r, "champ").segment, "Champions");
    cx_buf_reset(&r.brief);
    advance(&r, midnight(420), true);
    /* last day 39: R 3 at recency 31 (day 70) -> Loyal; R 2 at 91 (day 130) -> Cannot Lose Them;
     * R 1 at 181 (day 220) keeps Cannot Lose Them; day 365: day 0 leaves the window, F 39 (3),
     * M 19,500 (3) -> At Risk; day 393: F 11 (2) -> Lost */
    char want[1024];
    snprintf(want, sizeof want,
             "champ Loyal timer:%" PRId64 "\nchamp Cannot Lose Them timer:%" PRId64 "\n"
             "champ At Risk timer:%" PRId64 "\nchamp Lost timer:%" PRId64 "\n",
             midnight(70), midnight(130), midnight(365), midnight(393));
    cr_assert_str_eq(text(&r.brief), want);
    cx_profile_out_t o = profile(&r, "champ");
    cr_assert_str_eq(o.segment, "Lost");
    cr_assert_eq(o.frequency, 0);
    cr_assert_eq(o.recency_days, 381);
    cr_assert_eq(o.purchases_total, 40);
    cr_assert_eq(o.bgnbd_x, 39);
    cr_assert_eq(o.bgnbd_T_days, 420);
    /* the full SegmentChange of the first timer step, field by field */
    const char *line = strstr(text(&r.out), "\"segment\":\"Loyal\"");
    cr_assert_not_null(line);
    char ts[64];
    snprintf(ts, sizeof ts, "\"ts\":%" PRId64 ",", midnight(70));
    cr_assert_not_null(strstr(text(&r.out), ts));
    cr_assert_not_null(strstr(text(&r.out), "\"previous_segment\":\"Champions\",\"segment\":\"Loyal\",\"r_score\":3,"
                                            "\"f_score\":4,\"m_score\":4,\"recency_days\":31,\"frequency\":40,"
                                            "\"monetary_minor\":20000"));
    run_close(&r);
}

/* ---------- flushes and restarts ---------- */

/* 5,000 customers buying over 50 days, then 400 days of silence: some 20,000 timers, more than
 * one advance batch. */
static void many_customers(run_t *r, int from, int to) {
    char cid[16], eid[16];
    for (int i = from; i < to; i++) {
        snprintf(cid, sizeof cid, "c%04d", (i * 7919) % 5000);
        snprintf(eid, sizeof eid, "e%d", i);
        int64_t amount = (int64_t)(i % 7) * 3000;
        buy(r, cid, eid, at(i / 100, i % 24), amount);
    }
}

/* Every profile of partition 0 as JSON lines (cx_pipeline_each_profile flushes first). */
static cx_buf_t profiles_buf;
static void collect_profile(void *opaque, const cx_profile_out_t *prof) {
    run_t *r = opaque;
    cx_buf_reset(&r->tmp);
    cr_assert_eq(cx_codec_encode(r->codec, CX_REC_PROFILE, prof, CX_FMT_JSON, &r->tmp), CX_OK);
    cx_buf_append(&profiles_buf, r->tmp.data, r->tmp.len);
    cx_buf_putc(&profiles_buf, '\n');
}
static cx_buf_t final_profiles(run_t *r) {
    profiles_buf = (cx_buf_t)CX_BUF_INIT;
    cr_assert_eq(cx_pipeline_each_profile(r->p, 0, collect_profile, r, r->err, sizeof r->err), CX_OK, "%s", r->err);
    cx_buf_t out = profiles_buf;
    profiles_buf = (cx_buf_t)CX_BUF_INIT;
    return out;
}

Test(pipeline, flushes_between_timer_batches_and_a_small_cache_change_no_output) {
    const char *small[] = {"cache.max_customers=64", NULL};
    /* every profile but the one in use held encoded: each event and timer decodes, each trim encodes */
    const char *encoded[] = {"cache.max_decoded=1", NULL};
    run_t a, b, c, d;
    run_open(&a, NULL);
    run_open(&b, NULL);
    run_open(&c, small);
    run_open(&d, encoded);
    many_customers(&a, 0, 7000);
    many_customers(&b, 0, 7000);
    many_customers(&c, 0, 7000);
    many_customers(&d, 0, 7000);
    int batches_a = advance(&a, midnight(460), false);
    int batches_b = advance(&b, midnight(460), true);
    advance(&c, midnight(460), true);
    advance(&d, midnight(460), true);
    cx_cache_stats_t ds = cx_pipeline_cache_stats(d.p);
    cr_assert_gt(ds.encodes, 5000u, "profiles were encoded to stay within max_decoded (%" PRIu64 ")", ds.encodes);
    cr_assert_gt(ds.decodes, 5000u, "and decoded again on use (%" PRIu64 ")", ds.decodes);
    cr_assert_leq(ds.decoded, 2u, "decoded profiles held: %zu", ds.decoded);
    cr_assert_eq(cx_pipeline_cache_stats(a.p).encodes, 0u, "the default holds 7,000 customers decoded");
    cr_assert(strcmp(text(&a.out), text(&d.out)) == 0, "outputs differ with max_decoded=1");
    cr_assert_gt(batches_a, 2, "the test needs several timer batches (%d)", batches_a);
    cr_assert_eq(batches_a, batches_b);
    cr_assert_gt(cx_pipeline_stats(a.p).timers_fired, 8192u);
    cr_assert_gt(cx_pipeline_cache_stats(c.p).evictions, 1000u, "the small cache did evict");
    cr_assert_eq(a.out.len, b.out.len);
    cr_assert_str_eq(text(&a.out), text(&b.out));
    cr_assert_str_eq(text(&a.out), text(&c.out));
    cx_buf_t pa = final_profiles(&a), pc = final_profiles(&c);
    cr_assert_gt(pa.len, 5000u * 100);
    cr_assert_str_eq(text(&pa), text(&pc), "final profiles differ");
    cx_buf_t pd = final_profiles(&d);
    cr_assert(strcmp(text(&pa), text(&pd)) == 0, "final profiles differ with max_decoded=1");
    cx_buf_free(&pa);
    cx_buf_free(&pc);
    cx_buf_free(&pd);
    run_close(&a);
    run_close(&b);
    run_close(&c);
    run_close(&d);
}

/* Write-behind: the flush's batch is held in flight (the store's writer does not apply it) while the
 * watermark moves on. Every timer key of that flush is due, yet the timers must fire in order without
 * waiting for the write (the scan merges the batch's keys with the store as it was), and the outputs
 * must be those of a pipeline that writes synchronously. A scan that waited would hang (timeout). */
Test(pipeline, timers_fire_from_a_flush_still_in_flight_without_waiting_for_it, .timeout = 120) {
    run_t a, b;
    run_open(&a, NULL);
    run_open(&b, NULL);
    cx_pipeline_set_write_behind(a.p, true);
    many_customers(&a, 0, 7000);
    many_customers(&b, 0, 7000);
    cx_store_hold(a.st, true);
    flush(&a);
    flush(&b);
    cr_assert(cx_store_writing(a.st), "the flush is in flight");
    uint64_t fired0 = cx_pipeline_stats(a.p).timers_fired;
    bool more = true;
    cr_assert_eq(cx_pipeline_advance(a.p, 0, midnight(460), &more, a.err, sizeof a.err), CX_OK, "%s", a.err);
    cr_assert(more, "the test needs a second timer batch");
    uint64_t reads, scans;
    cx_store_behind_counts(a.st, &reads, &scans);
    cr_assert_gt(scans, 0u, "the index was scanned while the write was in flight");
    cr_assert(cx_store_writing(a.st), "and the write is still held");
    cr_assert_eq(cx_pipeline_stats(a.p).timers_fired - fired0, 4096u, "a whole batch fired from the held flush");
    /* the write lands in the middle of the firing; the rest reads the store as written */
    cx_store_hold(a.st, false);
    cr_assert_eq(cx_store_wait(a.st, a.err, sizeof a.err), CX_OK, "%s", a.err);
    advance(&a, midnight(460), false);
    advance(&b, midnight(460), false);
    cr_assert_gt(cx_pipeline_stats(b.p).timers_fired - fired0, 8192u);
    cr_assert_eq(cx_pipeline_stats(a.p).timers_fired, cx_pipeline_stats(b.p).timers_fired);
    cr_assert_str_eq(text(&a.out), text(&b.out), "write-behind changed the outputs");
    cx_buf_t pa = final_profiles(&a), pb = final_profiles(&b);
    cr_assert_str_eq(text(&pa), text(&pb), "final profiles differ");
    cx_buf_free(&pa);
    cx_buf_free(&pb);
    run_close(&a);
    run_close(&b);
}

/* The timer index of partition 0: every key, and the profiles' index_due_ms / timer_due_ms. */
typedef struct index_check {
    int keys, profiles_with_timer, dup_keys, early; /* early: keys kept lazily before the due */
    int64_t key_due[64];
    char key_cid[64][CX_ID_MAX + 1];
} index_check_t;

static bool collect_timer_key(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    index_check_t *ic = opaque;
    uint16_t part;
    int64_t due;
    const char *cid;
    size_t cl;
    cr_assert(cx_store_timer_key_parse(k, kl, &part, &due, &cid, &cl));
    for (int i = 0; i < ic->keys && i < 64; i++)
        if (strlen(ic->key_cid[i]) == cl && memcmp(ic->key_cid[i], cid, cl) == 0) ic->dup_keys++;
    if (ic->keys < 64) {
        memcpy(ic->key_cid[ic->keys], cid, cl);
        ic->key_cid[ic->keys][cl] = 0;
        ic->key_due[ic->keys] = due;
    }
    ic->keys++;
    return true;
}

static bool check_profile_index(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    index_check_t *ic = opaque;
    char cid[CX_ID_MAX + 1], err[256];
    memcpy(cid, (const char *)k + 3, kl - 3);
    cid[kl - 3] = 0;
    cx_profile_t pr;
    cx_profile_init_lean(&pr, cid);
    cr_assert_eq(cx_profile_decode(&pr, cid, v, vl, err, sizeof err), CX_OK, "%s", err);
    int found = -1;
    for (int i = 0; i < ic->keys && i < 64; i++)
        if (strcmp(ic->key_cid[i], cid) == 0) found = i;
    if (pr.timer_due_ms) {
        ic->profiles_with_timer++;
        cr_assert_geq(found, 0, "%s has a due timer (%" PRId64 ") but no index key", cid, pr.timer_due_ms);
        cr_assert_eq(ic->key_due[found], pr.index_due_ms, "%s: key at %" PRId64 ", index_due_ms %" PRId64, cid,
                     ic->key_due[found], pr.index_due_ms);
        cr_assert_leq(pr.index_due_ms, pr.timer_due_ms, "%s: the key may only be early", cid);
        if (pr.index_due_ms < pr.timer_due_ms) ic->early++;
    } else if (found >= 0) {
        cr_assert_eq(ic->key_due[found], pr.index_due_ms, "%s: a lazily kept key is the recorded one", cid);
    }
    cx_profile_clear(&pr);
    return true;
}

Test(pipeline, the_timer_index_is_kept_lazily_one_key_per_customer_never_late) {
    run_t a, b;
    run_open(&a, NULL);
    run_open(&b, NULL);
    /* 20 customers buy every other day for 60 days; a flushes after every day (its dues move later
     * between flushes, so keys are kept lazily and consumed by the scan), b only at the end */
    char cid[16], eid[24];
    int early = 0;
    for (int day = 0; day < 60; day += 2) {
        for (int c = 0; c < 20; c++) {
            if ((c + day) % 3 == 0) continue; /* some skip a purchase: their dues move less */
            snprintf(cid, sizeof cid, "k%02d", c);
            snprintf(eid, sizeof eid, "k%02d-%d", c, day);
            buy(&a, cid, eid, at(day, 8 + c % 10), 1000 + c * 100);
            buy(&b, cid, eid, at(day, 8 + c % 10), 1000 + c * 100);
        }
        flush(&a);
        index_check_t ic = {0};
        cr_assert_eq(cx_store_scan_tag(a.st, 0, CX_KEY_TIMER, collect_timer_key, &ic, a.err, sizeof a.err), CX_OK);
        cr_assert_eq(ic.dup_keys, 0, "day %d: a customer with two index keys", day);
        cr_assert_eq(cx_store_scan_tag(a.st, 0, CX_KEY_PROFILE, check_profile_index, &ic, a.err, sizeof a.err), CX_OK);
        cr_assert_gt(ic.profiles_with_timer, 0);
        early += ic.early;
    }
    cr_assert_gt(early, 0, "no key was ever kept lazily: the test does not test the lazy index");
    /* then a year of silence: every decay timer fires, from keys that were kept early */
    advance(&a, midnight(420), true);
    advance(&b, midnight(420), false);
    cr_assert_gt(cx_pipeline_stats(a.p).timers_fired, 40u);
    cr_assert_str_eq(text(&a.out), text(&b.out), "flushing (and so lazy index keys) changed the outputs");
    flush(&a);
    index_check_t ic = {0};
    cr_assert_eq(cx_store_scan_tag(a.st, 0, CX_KEY_TIMER, collect_timer_key, &ic, a.err, sizeof a.err), CX_OK);
    cr_assert_eq(ic.dup_keys, 0);
    cr_assert_eq(cx_store_scan_tag(a.st, 0, CX_KEY_PROFILE, check_profile_index, &ic, a.err, sizeof a.err), CX_OK);
    run_close(&a);
    run_close(&b);
}

static void restart(run_t *r) {
    flush(r);
    cx_pipeline_destroy(r->p);
    pipeline_open(r);
}

Test(pipeline, restart_on_the_same_store_gives_the_outputs_of_an_uninterrupted_run) {
    const char *enriched[] = {"enriched.enabled=true", NULL};
    /* b also holds all but 16 profiles in their encoded form, across both restarts */
    const char *enriched_encoded[] = {"enriched.enabled=true", "cache.max_decoded=16", NULL};
    run_t a, b;
    run_open(&a, enriched);
    run_open(&b, enriched_encoded);
    many_customers(&a, 0, 7000);
    advance(&a, midnight(460), true);
    /* b: restart after the first half of the events, then again in the middle of timer firing */
    many_customers(&b, 0, 3500);
    restart(&b);
    cr_assert_eq(cx_pipeline_watermark(b.p, 0), at(34, 23), "watermark restored from the store");
    many_customers(&b, 3500, 7000);
    bool more = false;
    cr_assert_eq(cx_pipeline_advance(b.p, 0, midnight(460), &more, b.err, sizeof b.err), CX_OK);
    cr_assert(more, "stopped in the middle of the due timers");
    restart(&b);
    advance(&b, midnight(460), true);
    cr_assert_str_eq(text(&a.out), text(&b.out));
    int64_t ca[CX_SEGMENTS_MAX], cb_[CX_SEGMENTS_MAX];
    cx_pipeline_segment_counts(a.p, ca, CX_SEGMENTS_MAX);
    cx_pipeline_segment_counts(b.p, cb_, CX_SEGMENTS_MAX);
    cr_assert(memcmp(ca, cb_, sizeof ca) == 0, "segment counts restored");
    cx_buf_t pa = final_profiles(&a), pb = final_profiles(&b);
    cr_assert_gt(pa.len, 5000u * 100);
    cr_assert_str_eq(text(&pa), text(&pb), "final profiles differ");
    cx_buf_free(&pa);
    cx_buf_free(&pb);
    run_close(&a);
    run_close(&b);
}

/* ---------- duplicates and late events ---------- */

Test(pipeline, duplicate_event_id_is_dropped_and_counted) {
    run_t r;
    run_open(&r, NULL);
    buy(&r, "d", "e1", at(0, 1), 100);
    buy(&r, "d", "e1", at(0, 2), 100);
    buy(&r, "d", "e2", at(0, 3), 100);
    flush(&r);
    buy(&r, "d", "e2", at(0, 4), 100); /* remembered across a flush: it lives in the profile */
    cx_pipeline_stats_t s = cx_pipeline_stats(r.p);
    cr_assert_eq(s.duplicates, 2u);
    cr_assert_eq(s.events, 2u);
    cr_assert_eq(profile(&r, "d").purchases_total, 2);
    cr_assert_eq(profile(&r, "d").revenue_total_minor, 200);
    buy(&r, "other", "e1", at(0, 5), 100); /* ids are per customer */
    cr_assert_eq(cx_pipeline_stats(r.p).duplicates, 2u);
    run_close(&r);
}

Test(pipeline, dedup_remembers_the_last_per_customer_ids_only) {
    const char *two[] = {"dedup.per_customer=2", NULL};
    run_t r;
    run_open(&r, two);
    buy(&r, "d", "e1", at(0, 1), 1);
    buy(&r, "d", "e2", at(0, 2), 1);
    buy(&r, "d", "e2", at(0, 3), 1); /* inside the window: dropped */
    buy(&r, "d", "e3", at(0, 4), 1);
    buy(&r, "d", "e1", at(0, 5), 1); /* e1 left the window of 2 (e2, e3): accepted again */
    cx_pipeline_stats_t s = cx_pipeline_stats(r.p);
    cr_assert_eq(s.duplicates, 1u);
    cr_assert_eq(s.events, 4u);
    cr_assert_eq(profile(&r, "d").purchases_total, 4);
    run_close(&r);
}

Test(pipeline, late_events_count_and_fire_no_timer_retroactively) {
    run_t r;
    run_open(&r, NULL);
    buy(&r, "l", "e1", at(10, 12), 1000);
    buy(&r, "x", "e2", at(40, 12), 0); /* watermark to day 40: l's timers at 18 and 41? */
    cx_buf_reset(&r.brief);
    buy(&r, "l", "e3", at(5, 12), 2500); /* late by 35 days */
    cr_assert_eq(cx_pipeline_stats(r.p).late, 1u);
    cx_profile_out_t o = profile(&r, "l");
    cr_assert_eq(o.purchases_total, 2);
    cr_assert_eq(o.revenue_total_minor, 3500);
    cr_assert_eq(o.first_transaction_ts, at(5, 12));
    cr_assert_eq(o.last_transaction_ts, at(10, 12));
    cr_assert_eq(o.frequency, 2);
    cr_assert_eq(o.monetary_minor, 3500);
    cr_assert_eq(o.recency_days, 30, "recency from the last transaction day, as of the watermark");
    cr_assert_eq(o.bgnbd_x, 1);
    cr_assert_eq(o.bgnbd_t_x_days, 5);
    cr_assert_eq(o.bgnbd_T_days, 35);
    cr_assert_eq(o.r_score, 4);
    cr_assert_eq(o.m_score, 2, "3,500 >= 2,000");
    /* the late event re-scored at the watermark's day: F 1 M 2 R 4 is still Promising */
    cr_assert_str_eq(o.segment, "Promising");
    cr_assert_eq(r.brief.len, 0u, "%s", text(&r.brief));
    /* nothing fires for days before the watermark; the next R change (recency 31) is day 41 */
    advance(&r, midnight(41) - 1, false);
    cr_assert_eq(r.brief.len, 0u);
    advance(&r, midnight(41), false);
    char want[128];
    snprintf(want, sizeof want, "l About To Sleep timer:%" PRId64 "\n", midnight(41));
    cr_assert_str_eq(text(&r.brief), want);
    run_close(&r);
}
