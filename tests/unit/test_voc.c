/*
 * test_voc.c — the voice-of-customer aggregates (voc.h): a customer's latest score counts once, in
 * the segment they are in now, and leaves at 00:00 UTC of its day + nps.window_days; touchpoints
 * count every response inside the window; comment terms per segment/touchpoint and category;
 * economics sums follow the customer; the aggregates survive a flush and a restart. Both on the
 * module directly and through the pipeline (segment changes by timer).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "attribution.h"
#include "pipeline.h"
#include "voc.h"

#define DAY0 19723 /* 2024-01-01 */
static int64_t at(int32_t day, int hour) {
    return (int64_t)(DAY0 + day) * CX_DAY_MS + (int64_t)hour * 3600000;
}
static int64_t midnight(int32_t day) {
    return (int64_t)(DAY0 + day) * CX_DAY_MS;
}

static char err[512];

static cx_config_t *config(void) {
    cx_config_t *cfg = cx_config_new();
    cr_assert_not_null(cfg);
    cr_assert_eq(cx_config_set_kv(cfg, "enriched.enabled=false", NULL, err, sizeof err), CX_OK, "%s", err);
    return cfg;
}

static int seg_index(const cx_config_t *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_segments; i++)
        if (strcmp(cfg->segments[i].name, name) == 0) return (int)i;
    cr_assert_fail("no segment %s", name);
    return -1;
}

static cx_survey_t survey(int score, const char *touchpoint, const char *comment) {
    cx_survey_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.survey_id, sizeof s.survey_id, "s");
    s.score = score;
    snprintf(s.touchpoint, sizeof s.touchpoint, "%s", touchpoint);
    if (comment) {
        s.has_comment = true;
        s.comment = comment;
        s.comment_len = strlen(comment);
    }
    return s;
}

static cx_voc_segment_t seg_fig(const cx_voc_t *v, int seg) {
    cx_voc_segment_t all[CX_SEGMENTS_MAX];
    cx_voc_segments(v, all, CX_SEGMENTS_MAX);
    return all[seg];
}

static int64_t seg_n(const cx_voc_t *v, int seg) {
    cx_voc_segment_t s = seg_fig(v, seg);
    return s.nps.promoters + s.nps.passives + s.nps.detractors;
}

static cx_nps_counts_t tp_fig(const cx_voc_t *v, const char *name) {
    cx_voc_touchpoint_t tps[CX_VOC_TOUCHPOINTS_MAX * 4];
    size_t n = cx_voc_touchpoints(v, tps, sizeof tps / sizeof tps[0]);
    for (size_t i = 0; i < n; i++)
        if (strcmp(tps[i].name, name) == 0) return tps[i].nps;
    return (cx_nps_counts_t)CX_NPS_COUNTS_INIT;
}

/* ---------- the module ---------- */

typedef struct fx {
    cx_config_t *cfg;
    cx_voc_t *v;
    cx_profile_t pr;
    int champions, at_risk;
} fx_t;

static void fx_open(fx_t *f) {
    memset(f, 0, sizeof *f);
    f->cfg = config();
    f->v = cx_voc_new(f->cfg, err, sizeof err);
    cr_assert_not_null(f->v, "%s", err);
    cr_assert_eq(cx_voc_assign(f->v, NULL, 0, err, sizeof err), CX_OK, "%s", err);
    cx_profile_init(&f->pr, "c1");
    f->champions = seg_index(f->cfg, "Champions");
    f->at_risk = seg_index(f->cfg, "At Risk");
}

static void fx_close(fx_t *f) {
    cx_profile_clear(&f->pr);
    cx_voc_destroy(f->v);
    cx_config_destroy(f->cfg);
}

Test(voc, latest_score_moves_with_the_customer_to_the_new_segment) {
    fx_t f;
    fx_open(&f);
    f.pr.segment = (int8_t)f.champions;
    cx_voc_watermark(f.v, 0, at(0, 0));
    cx_survey_t s = survey(3, "support", NULL);
    cr_assert_eq(cx_voc_survey(f.v, 0, &f.pr, &s, at(0, 12)), CX_OK);
    cr_assert_eq(seg_fig(f.v, f.champions).nps.detractors, 1);
    f.pr.segment = (int8_t)f.at_risk;
    cx_voc_rescored(f.v, 0, &f.pr, f.champions, 0, 0);
    cr_assert_eq(seg_n(f.v, f.champions), 0, "the 3 left Champions");
    cr_assert_eq(seg_fig(f.v, f.at_risk).nps.detractors, 1, "and counts in At Risk, where the customer is now");
    cx_voc_segment_t g = seg_fig(f.v, f.at_risk);
    cx_nps_stats_t st = cx_nps_stats(&g.nps);
    cr_assert(st.defined);
    cr_assert_float_eq(st.nps, -100.0, 1e-9);
    fx_close(&f);
}

Test(voc, one_customer_one_vote_a_new_response_replaces_the_previous) {
    fx_t f;
    fx_open(&f);
    f.pr.segment = (int8_t)f.champions;
    cx_survey_t a = survey(2, "general", NULL), b = survey(10, "general", NULL), late = survey(0, "general", NULL);
    cx_voc_survey(f.v, 0, &f.pr, &a, at(0, 9));
    cx_voc_survey(f.v, 0, &f.pr, &b, at(1, 9));
    cx_voc_survey(f.v, 0, &f.pr, &late, at(0, 10)); /* older than the latest: not the customer's vote */
    cx_voc_segment_t g = seg_fig(f.v, f.champions);
    cr_assert_eq(g.nps.promoters, 1);
    cr_assert_eq(g.nps.detractors, 0);
    cr_assert_eq(f.pr.nps_last, 10);
    cr_assert_eq(f.pr.nps_count, 3);
    cx_nps_counts_t tp = tp_fig(f.v, "general");
    cr_assert_eq(tp.detractors, 2, "the touchpoint counts every response");
    cr_assert_eq(tp.promoters, 1);
    fx_close(&f);
}

Test(voc, score_leaves_the_segment_at_midnight_of_its_day_plus_window) {
    fx_t f;
    fx_open(&f);
    f.pr.segment = (int8_t)f.champions;
    cx_survey_t s = survey(9, "playback", NULL);
    cx_voc_survey(f.v, 0, &f.pr, &s, at(0, 23));
    cr_assert_eq(f.pr.nps_due_ms, midnight(90), "due at day + nps.window_days (90)");
    cx_voc_watermark(f.v, 0, midnight(90) - 1);
    cx_voc_nps_expire(f.v, 0, &f.pr, midnight(90) - 1);
    cr_assert_eq(seg_n(f.v, f.champions), 1, "still inside on the last day");
    cr_assert_eq(tp_fig(f.v, "playback").promoters, 1);
    cx_voc_watermark(f.v, 0, midnight(90));
    cx_voc_nps_expire(f.v, 0, &f.pr, midnight(90));
    cr_assert_eq(seg_n(f.v, f.champions), 0);
    cr_assert_eq(f.pr.nps_due_ms, 0);
    cr_assert_eq(tp_fig(f.v, "playback").promoters, 0, "the day bucket left the touchpoint window");
    /* an expired score does not follow the customer */
    f.pr.segment = (int8_t)f.at_risk;
    cx_voc_rescored(f.v, 0, &f.pr, f.champions, 0, 0);
    cr_assert_eq(seg_n(f.v, f.at_risk), 0);
    fx_close(&f);
}

Test(voc, late_survey_outside_the_window_counts_nowhere_but_in_the_profile) {
    fx_t f;
    fx_open(&f);
    f.pr.segment = (int8_t)f.champions;
    cx_voc_watermark(f.v, 0, midnight(200));
    cx_survey_t s = survey(1, "billing", "awful invoices");
    cr_assert_eq(cx_voc_survey(f.v, 0, &f.pr, &s, at(100, 1)), CX_OK); /* 100 days late */
    cr_assert_eq(seg_n(f.v, f.champions), 0);
    cr_assert_eq(tp_fig(f.v, "billing").detractors, 0);
    cr_assert_eq(f.pr.nps_due_ms, 0, "no timer for an expired score");
    cr_assert_eq(f.pr.nps_last, 1);
    cr_assert(f.pr.has_nps);
    /* a late one still inside the window counts */
    cx_survey_t t = survey(9, "billing", NULL);
    cx_voc_survey(f.v, 0, &f.pr, &t, at(111, 1));
    cr_assert_eq(seg_fig(f.v, f.champions).nps.promoters, 1);
    cr_assert_eq(tp_fig(f.v, "billing").promoters, 1);
    fx_close(&f);
}

Test(voc, customer_without_segment_counts_in_touchpoints_and_joins_a_segment_later) {
    fx_t f;
    fx_open(&f);
    cx_survey_t s = survey(5, "general", NULL);
    cx_voc_survey(f.v, 0, &f.pr, &s, at(0, 1));
    for (int i = 0; i < (int)f.cfg->n_segments; i++)
        cr_assert_eq(seg_n(f.v, i), 0);
    cr_assert_eq(tp_fig(f.v, "general").detractors, 1);
    f.pr.segment = (int8_t)f.champions; /* first transaction */
    cx_voc_rescored(f.v, 0, &f.pr, -1, 12345, 678);
    cx_voc_segment_t g = seg_fig(f.v, f.champions);
    cr_assert_eq(g.nps.detractors, 1);
    cr_assert_eq(g.monetary_minor_sum, 12345);
    cr_assert_eq(g.clv_minor_sum, 678);
    fx_close(&f);
}

Test(voc, economics_sums_follow_the_customer_and_replace_the_old_contribution) {
    fx_t f;
    fx_open(&f);
    f.pr.segment = (int8_t)f.champions;
    cx_voc_rescored(f.v, 0, &f.pr, -1, 50000, 90000);
    cx_voc_rescored(f.v, 0, &f.pr, f.champions, 60000, 95000); /* same segment, new values */
    cr_assert_eq(seg_fig(f.v, f.champions).monetary_minor_sum, 60000);
    f.pr.segment = (int8_t)f.at_risk;
    cx_voc_rescored(f.v, 0, &f.pr, f.champions, 30000, 10000);
    cr_assert_eq(seg_fig(f.v, f.champions).monetary_minor_sum, 0);
    cr_assert_eq(seg_fig(f.v, f.champions).clv_minor_sum, 0);
    cr_assert_eq(seg_fig(f.v, f.at_risk).monetary_minor_sum, 30000);
    cr_assert_eq(seg_fig(f.v, f.at_risk).clv_minor_sum, 10000);
    cx_voc_trigger(f.v, 0, f.at_risk);
    cx_voc_trigger(f.v, 0, -1); /* no segment: counted nowhere */
    /* three TEST windows and a CONTROL one; two end at the timer, of which one had a response */
    const int64_t ends[4] = {at(5, 0), at(5, 0), at(9, 0), at(5, 0)};
    for (int i = 0; i < 4; i++) {
        cx_open_send_t *s = &f.pr.sends[f.pr.n_sends++];
        char id[16];
        snprintf(id, sizeof id, "send%d", i);
        cr_assert_eq(cx_sid_set(&s->send_event_id, id), CX_OK);
        s->end_ts_ms = ends[i];
        s->group = i == 3 ? CX_GROUP_CONTROL : CX_GROUP_TEST;
        s->responded = i == 0 || i == 3 ? 1 : 0;
    }
    cx_voc_windows_t w;
    cx_voc_windows_before(&f.pr, at(5, 0), &w);
    cr_assert_eq(w.n, 2);
    f.pr.sends[0].responded |= CX_SEND_CLOSED; /* what cx_campaigns_timer does: ended windows close */
    f.pr.sends[0].end_ts_ms = 0;
    f.pr.sends[1] = f.pr.sends[2]; /* or their slot is reused */
    f.pr.n_sends = 2;
    cx_voc_windows_after(f.v, 0, &f.pr, &w);
    cx_voc_segment_t g = seg_fig(f.v, f.at_risk);
    cr_assert_eq(g.triggers, 1);
    cr_assert_eq(g.sends_test, 2);
    cr_assert_eq(g.responders, 1);
    fx_close(&f);
}

static bool has_term(const cx_topk_item_t *it, size_t n, const char *term, uint64_t count) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(it[i].term, term) == 0) return it[i].count == count;
    return false;
}

Test(voc, themes_top_terms_per_segment_and_category) {
    fx_t f;
    fx_open(&f);
    f.pr.segment = (int8_t)f.at_risk;
    cx_survey_t d1 = survey(2, "playback", "Buffering ALL the time!! buffering"),
                d2 = survey(4, "playback", "Långsam buffering och dålig ljud"),
                p1 = survey(10, "playback", "Great films, great app"),
                pas = survey(8, "playback", "passive comment ignored");
    cx_voc_survey(f.v, 0, &f.pr, &d1, at(0, 1));
    cx_voc_survey(f.v, 0, &f.pr, &d2, at(0, 2));
    cx_voc_survey(f.v, 0, &f.pr, &p1, at(0, 3));
    cx_voc_survey(f.v, 0, &f.pr, &pas, at(0, 4));
    cx_topk_item_t it[8];
    size_t n;
    uint64_t total;
    bool found;
    cr_assert_eq(cx_voc_themes(f.v, CX_VOC_BY_SEGMENT, "At Risk", CX_VOC_DETRACTORS, it, 8, &n, &total, &found), CX_OK);
    cr_assert(found);
    cr_assert_geq(n, 1);
    cr_assert_str_eq(it[0].term, "buffering", "what At Risk detractors complain about");
    cr_assert_eq(it[0].count, 3);
    cr_assert(has_term(it, n, "långsam", 1));
    cr_assert(!has_term(it, n, "great", 1), "promoters' terms are counted separately");
    cr_assert_eq(total, 7, "buffering x3, time, långsam, dålig, ljud");
    cr_assert_eq(cx_voc_themes(f.v, CX_VOC_BY_SEGMENT, "At Risk", CX_VOC_PROMOTERS, it, 8, &n, &total, &found), CX_OK);
    cr_assert_str_eq(it[0].term, "great");
    cr_assert_eq(it[0].count, 2);
    cr_assert(!has_term(it, n, "passive", 1), "passives' comments are not counted");
    cr_assert_eq(cx_voc_themes(f.v, CX_VOC_BY_TOUCHPOINT, "playback", CX_VOC_DETRACTORS, it, 8, &n, &total, &found),
                 CX_OK);
    cr_assert_str_eq(it[0].term, "buffering");
    cr_assert_eq(cx_voc_themes(f.v, CX_VOC_BY_SEGMENT, "Champions", CX_VOC_DETRACTORS, it, 8, &n, &total, &found),
                 CX_OK);
    cr_assert(found);
    cr_assert_eq(n, 0);
    cr_assert_eq(cx_voc_themes(f.v, CX_VOC_BY_SEGMENT, "No Such", CX_VOC_DETRACTORS, it, 8, &n, &total, &found), CX_OK);
    cr_assert(!found);
    fx_close(&f);
}

Test(voc, touchpoints_beyond_the_cap_are_pooled_under_other) {
    fx_t f;
    fx_open(&f);
    char name[16];
    for (int i = 0; i < CX_VOC_TOUCHPOINTS_MAX + 5; i++) {
        snprintf(name, sizeof name, "tp%02d", i);
        cx_survey_t s = survey(10, name, NULL);
        cr_assert_eq(cx_voc_survey(f.v, 0, &f.pr, &s, at(0, 1)), CX_OK);
    }
    cx_voc_touchpoint_t tps[64];
    size_t n = cx_voc_touchpoints(f.v, tps, 64);
    cr_assert_eq(n, CX_VOC_TOUCHPOINTS_MAX);
    cr_assert_eq(tp_fig(f.v, CX_VOC_OTHER).promoters, 6);
    fx_close(&f);
}

/* ---------- through the pipeline, with a restart ---------- */

static void pl_event(cx_pipeline_t *p, const cx_config_t *cfg, cx_event_t *ev) {
    bool more = true;
    while (more)
        cr_assert_eq(cx_pipeline_advance(p, 0, ev->ts_ms - cfg->watermark_lateness_ms, &more, err, sizeof err), CX_OK);
    cr_assert_eq(cx_pipeline_event(p, 0, ev, -1, err, sizeof err), CX_OK, "%s", err);
}

static void pl_advance(cx_pipeline_t *p, int64_t wm) {
    for (bool more = true; more;)
        cr_assert_eq(cx_pipeline_advance(p, 0, wm, &more, err, sizeof err), CX_OK, "%s", err);
}

static cx_pipeline_t *pl_open(const cx_config_t *cfg, cx_store_t *st) {
    cx_pipeline_t *p = cx_pipeline_new(cfg, st, NULL, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(cx_pipeline_assign(p, 0, NULL, err, sizeof err), CX_OK, "%s", err);
    return p;
}

Test(voc, pipeline_moves_the_score_on_a_timer_segment_change_and_expires_it_after_a_restart) {
    cx_config_t *cfg = config();
    cx_store_opts_t so = {.dir = NULL};
    cx_store_t *st = cx_store_open(&so, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    cx_pipeline_t *p = pl_open(cfg, st);
    int new_seg = seg_index(cfg, "New"), promising = seg_index(cfg, "Promising");

    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_PURCHASE;
    snprintf(ev.event_id, sizeof ev.event_id, "e1");
    snprintf(ev.customer_id, sizeof ev.customer_id, "c1");
    ev.ts_ms = at(0, 9);
    ev.u.purchase.kind = CX_PK_PURCHASE;
    ev.u.purchase.amount_minor = 4900;
    memcpy(ev.u.purchase.currency, "EUR", 4);
    pl_event(p, cfg, &ev);
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_SURVEY;
    snprintf(ev.event_id, sizeof ev.event_id, "e2");
    snprintf(ev.customer_id, sizeof ev.customer_id, "c1");
    ev.ts_ms = at(1, 9);
    ev.u.survey = survey(3, "support", "rude support");
    pl_event(p, cfg, &ev);

    cx_voc_t *v = cx_pipeline_voc(p);
    cr_assert_eq(seg_fig(v, new_seg).nps.detractors, 1, "counted in New");
    cr_assert_eq(seg_fig(v, new_seg).monetary_minor_sum, 4900);
    pl_advance(p, midnight(8)); /* R falls to 4: Promising */
    cr_assert_eq(seg_n(v, new_seg), 0);
    cr_assert_eq(seg_fig(v, promising).nps.detractors, 1, "moved with the timer's segment change");
    cr_assert_eq(seg_fig(v, promising).monetary_minor_sum, 4900);

    /* restart on the same store: the figures come back with the profiles */
    cr_assert_eq(cx_pipeline_flush(p, -1, err, sizeof err), CX_OK, "%s", err);
    cx_pipeline_destroy(p);
    p = pl_open(cfg, st);
    v = cx_pipeline_voc(p);
    cr_assert_eq(seg_fig(v, promising).nps.detractors, 1);
    cr_assert_eq(tp_fig(v, "support").detractors, 1);
    cx_topk_item_t it[4];
    size_t n;
    uint64_t total;
    bool found;
    cr_assert_eq(cx_voc_themes(v, CX_VOC_BY_SEGMENT, "New", CX_VOC_DETRACTORS, it, 4, &n, &total, &found), CX_OK);
    cr_assert_eq(n, 2, "rude, support: counted in the segment at the time of the response");

    pl_advance(p, midnight(91) - 1);
    cr_assert_eq(seg_n(v, seg_index(cfg, "About To Sleep")), 1, "still counted on day 90");
    pl_advance(p, midnight(91)); /* day 1 + 90 */
    for (size_t i = 0; i < cfg->n_segments; i++)
        cr_assert_eq(seg_n(v, (int)i), 0, "segment %zu", i);
    cr_assert_eq(tp_fig(v, "support").detractors, 0);
    cx_profile_out_t o;
    cr_assert_eq(cx_pipeline_profile(p, 0, "c1", &o, &found, err, sizeof err), CX_OK);
    cr_assert(found && o.has_nps_last && o.nps_last == 3, "the profile keeps the latest score");
    cx_pipeline_destroy(p);
    cx_store_close(st);
    cx_config_destroy(cfg);
}
