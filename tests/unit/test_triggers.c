/*
 * test_triggers.c — disengagement triggers through the pipeline (in-memory store, capturing sink):
 * each kind exactly at its due instant and not one millisecond before, the cooldown across kinds,
 * re-arming by a new play, eligibility from contact history, one-time customers, a restart over
 * the same store; and the pure estimators (usual gap, CV) on their own.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bgnbd.h"
#include "pipeline.h"
#include "rfm.h"
#include "triggers.h"

#define D0         INT64_C(20000) /* 2024-10-04 */
#define DAY(d)     ((D0 + (d)) * CX_DAY_MS)
#define EVENING(d) (DAY(d) + 20 * 3600 * INT64_C(1000))
#define MAX_OUT    64

typedef struct capture {
    cx_trigger_t trig[MAX_OUT];
    int n_trig;
    cx_segment_change_t sc[MAX_OUT];
    int n_sc;
} capture_t;

static capture_t cap;
static cx_config_t *cfg;
static cx_store_t *store;
static cx_pipeline_t *pipe_;
static int seq;
static char err[512];

static cx_err_t capture_emit(void *opaque, cx_record_kind_t kind, const char *key, const void *rec) {
    capture_t *c = opaque;
    (void)key;
    if (kind == CX_REC_TRIGGER && c->n_trig < MAX_OUT) c->trig[c->n_trig++] = *(const cx_trigger_t *)rec;
    if (kind == CX_REC_SEGMENT_CHANGE && c->n_sc < MAX_OUT) c->sc[c->n_sc++] = *(const cx_segment_change_t *)rec;
    return CX_OK;
}

static void open_pipeline(void) {
    cx_sink_t sink = {&cap, capture_emit};
    pipe_ = cx_pipeline_new(cfg, store, &sink, err, sizeof err);
    cr_assert_not_null(pipe_, "%s", err);
    cr_assert_eq(cx_pipeline_assign(pipe_, 0, NULL, err, sizeof err), CX_OK, "%s", err);
}

static void setup(void) {
    memset(&cap, 0, sizeof cap);
    seq = 0;
    cfg = cx_config_new();
    cr_assert_not_null(cfg);
    cx_store_opts_t so = {0};
    store = cx_store_open(&so, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    open_pipeline();
}

static void teardown(void) {
    cx_pipeline_destroy(pipe_);
    cx_store_close(store);
    cx_config_destroy(cfg);
}

static void send_event(cx_event_t *ev) {
    snprintf(ev->event_id, sizeof ev->event_id, "e%d", ++seq);
    cr_assert_eq(cx_pipeline_event(pipe_, 0, ev, -1, err, sizeof err), CX_OK, "%s", err);
}

static void play(const char *cid, int64_t ts, const char *genre) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_PLAY;
    snprintf(ev.customer_id, sizeof ev.customer_id, "%s", cid);
    ev.ts_ms = ts;
    snprintf(ev.u.play.title_id, sizeof ev.u.play.title_id, "t1");
    ev.u.play.seconds_watched = 3600;
    if (genre) {
        ev.u.play.has_genre = true;
        snprintf(ev.u.play.genre, sizeof ev.u.play.genre, "%s", genre);
    }
    send_event(&ev);
}

static void purchase(const char *cid, int64_t ts, int64_t amount_minor) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_PURCHASE;
    snprintf(ev.customer_id, sizeof ev.customer_id, "%s", cid);
    ev.ts_ms = ts;
    ev.u.purchase.kind = CX_PK_RENTAL;
    ev.u.purchase.amount_minor = amount_minor;
    memcpy(ev.u.purchase.currency, "EUR", 4);
    send_event(&ev);
}

static void email_send(const char *cid, int64_t ts, const char *campaign_id, cx_group_t group) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_EMAIL_SEND;
    snprintf(ev.customer_id, sizeof ev.customer_id, "%s", cid);
    ev.ts_ms = ts;
    snprintf(ev.u.email_send.campaign_id, sizeof ev.u.email_send.campaign_id, "%s", campaign_id);
    ev.u.email_send.group = group;
    send_event(&ev);
}

static void campaign(const char *id, cx_campaign_type_t type) {
    cx_campaign_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.campaign_id, sizeof c.campaign_id, "%s", id);
    c.name = (char *)"test campaign";
    c.type = type;
    c.start_ts_ms = DAY(-400);
    c.end_ts_ms = DAY(400);
    c.observation_days = 7;
    cr_assert_eq(cx_pipeline_campaign(pipe_, id, &c, err, sizeof err), CX_OK, "%s", err);
}

static void advance(int64_t wm) {
    for (bool more = true; more;)
        cr_assert_eq(cx_pipeline_advance(pipe_, 0, wm, &more, err, sizeof err), CX_OK, "%s", err);
}

/* Plays every evening of days [first, last]. */
static void daily(const char *cid, int first, int last) {
    for (int d = first; d <= last; d++)
        play(cid, EVENING(d), "drama");
}

static void set(const char *key, const char *value) {
    cr_assert_eq(cx_config_set(cfg, key, value, "test", err, sizeof err), CX_OK, "%s", err);
}

TestSuite(triggers, .init = setup, .fini = teardown);

/* ---------- STOPPED_STREAMING ---------- */

Test(triggers, stopped_streaming_fires_exactly_at_last_play_day_plus_min_days) {
    daily("c1", 0, 29); /* usual gap 1 day: max(14, 3 x 1) = 14 */
    advance(DAY(43) - 1);
    cr_assert_eq(cap.n_trig, 0, "one tick before the due time nothing fires");
    advance(DAY(43));
    cr_assert_eq(cap.n_trig, 1);
    const cx_trigger_t *t = &cap.trig[0];
    cr_assert_eq(t->kind, CX_TRIG_STOPPED_STREAMING);
    cr_assert_eq(t->ts_ms, DAY(43));
    char id[128];
    snprintf(id, sizeof id, "c1:STOPPED_STREAMING:%" PRId64, DAY(43));
    cr_assert_str_eq(t->trigger_id, id);
    cr_assert(t->has_days_since_last_play);
    cr_assert_eq(t->days_since_last_play, 14);
    cr_assert(t->has_usual_gap_days);
    cr_assert_float_eq(t->usual_gap_days, 1.0, 1e-12);
    cr_assert_eq(t->suggested_action, CX_ACT_LOGIN_REMINDER, "a daily streamer is very regular");
    cr_assert(t->has_top_genre);
    cr_assert_str_eq(t->top_genre, "drama");
    cr_assert(t->eligible);
    cr_assert_not(t->has_last_contact_campaign_id);
    cr_assert(t->has_p_alive);
    cr_assert_str_neq(t->segment, "");
    advance(DAY(400));
    cr_assert_eq(cap.n_trig, 1, "silence gives one STOPPED_STREAMING, not one per day (and no CHURN_RISK)");
}

Test(triggers, stopped_streaming_uses_k_times_the_usual_gap_when_longer) {
    for (int w = 0; w < 6; w++)
        play("c1", EVENING(7 * w), NULL); /* weekly: 3 x 7 = 21 > 14 */
    advance(DAY(35 + 21) - 1);
    cr_assert_eq(cap.n_trig, 0);
    advance(DAY(35 + 21));
    cr_assert_eq(cap.n_trig, 1);
    cr_assert_eq(cap.trig[0].kind, CX_TRIG_STOPPED_STREAMING);
    cr_assert_eq(cap.trig[0].days_since_last_play, 21);
    cr_assert_eq(cap.trig[0].suggested_action, CX_ACT_NEW_RELEASE, "fewer than 8 play days: not LOGIN_REMINDER");
    cr_assert_not(cap.trig[0].has_top_genre);
}

Test(triggers, no_stopped_streaming_below_min_play_days) {
    play("c1", EVENING(0), NULL);
    play("c1", EVENING(1), NULL); /* 2 play days < inactivity.min_play_days = 3 */
    advance(DAY(60));
    for (int i = 0; i < cap.n_trig; i++)
        cr_assert_neq(cap.trig[i].kind, CX_TRIG_STOPPED_STREAMING);
}

Test(triggers, a_new_play_rearms_stopped_streaming) {
    daily("c1", 0, 29);
    advance(DAY(39));
    play("c1", EVENING(39), NULL); /* before the due day 43: moves it to 39 + 14 */
    advance(DAY(53) - 1);
    cr_assert_eq(cap.n_trig, 0, "the old due time no longer fires");
    advance(DAY(53));
    cr_assert_eq(cap.n_trig, 1);
    cr_assert_eq(cap.trig[0].ts_ms, DAY(53));
}

Test(triggers, usual_gap_is_robust_to_a_single_binge) {
    cx_profile_t p;
    cx_profile_init(&p, "c1");
    int days[] = {0, 7, 14, 15, 16, 17, 21, 28, 35, 42}; /* a weekly viewer with one binge */
    for (int i = 0; i < 10; i++)
        p.play_days[i] = 20000 + days[i];
    p.n_play_days = 10;
    p.play_days_total = 10;
    double gap, cv;
    cr_assert(cx_triggers_usual_gap(&p, &gap));
    cr_assert_float_eq(gap, 7.0, 1e-12, "gaps 7,7,1,1,1,4,7,7,7: median 7 (mean 4.7)");
    cr_assert(cx_triggers_gap_cv(&p, &cv));
    cr_assert_gt(cv, 0.5, "the binge makes the gaps irregular");
    int even[] = {0, 5, 6, 9, 11}; /* gaps 5, 1, 3, 2: an even count, out of order */
    for (int i = 0; i < 5; i++)
        p.play_days[i] = 20000 + even[i];
    p.n_play_days = 5;
    cr_assert(cx_triggers_usual_gap(&p, &gap));
    cr_assert_float_eq(gap, 2.5, 1e-12, "median of 1, 2, 3, 5");
    p.n_play_days = 1;
    cr_assert_not(cx_triggers_usual_gap(&p, &gap), "one play day has no gap");
    cx_profile_clear(&p);
}

/* ---------- cooldown ---------- */

Test(triggers, a_second_trigger_inside_the_cooldown_is_dropped) {
    set("trigger.cooldown_days", "30");
    daily("c1", 0, 29);
    advance(DAY(43));
    cr_assert_eq(cap.n_trig, 1);
    play("c1", EVENING(44), NULL); /* re-arms: due 58, inside 43 + 30 */
    advance(DAY(58));
    cr_assert_eq(cap.n_trig, 1, "due inside the cooldown: dropped");
    play("c1", EVENING(60), NULL); /* due 74, outside 43 + 30 = 73 */
    advance(DAY(74) - 1);
    cr_assert_eq(cap.n_trig, 1);
    advance(DAY(74));
    cr_assert_eq(cap.n_trig, 2);
    cr_assert_eq(cap.trig[1].ts_ms, DAY(74));
}

Test(triggers, cooldown_ends_exactly_after_cooldown_days) {
    set("trigger.cooldown_days", "15");
    daily("c1", 0, 29);
    advance(DAY(43));
    cr_assert_eq(cap.n_trig, 1);
    play("c1", EVENING(44), NULL); /* due 58 = 43 + 15: the cooldown has just ended */
    advance(DAY(58));
    cr_assert_eq(cap.n_trig, 2);
}

/* ---------- ENGAGEMENT_DROP ---------- */

/* 16 weeks of daily plays, then one play every 5 days: the 28-day count falls below
 * 0.3 x 4 x 7 = 8.4 at day 136 (4 daily days 108..111 + 116, 121, 126, 131 = 8). */
Test(triggers, engagement_drop_fires_on_the_first_day_below_the_threshold) {
    daily("c1", 0, 111);
    for (int d = 116; d <= 131; d += 5)
        play("c1", EVENING(d), NULL);
    advance(DAY(136) - 1);
    cr_assert_eq(cap.n_trig, 0);
    advance(DAY(136));
    cr_assert_eq(cap.n_trig, 1);
    cr_assert_eq(cap.trig[0].kind, CX_TRIG_ENGAGEMENT_DROP);
    cr_assert_eq(cap.trig[0].ts_ms, DAY(136));
    cr_assert_eq(cap.trig[0].days_since_last_play, 5);
}

Test(triggers, engagement_drop_needs_eight_weeks_of_history) {
    daily("c1", 0, 48); /* 7 weeks of history before the recent window at most */
    for (int d = 53; d <= 68; d += 5)
        play("c1", EVENING(d), NULL);
    advance(DAY(80));
    for (int i = 0; i < cap.n_trig; i++)
        cr_assert_neq(cap.trig[i].kind, CX_TRIG_ENGAGEMENT_DROP);
}

Test(triggers, engagement_drop_at_a_day_start_matches_the_pure_rule) {
    daily("c1", 0, 111);
    for (int d = 116; d <= 131; d += 5)
        play("c1", EVENING(d), NULL);
    cx_profile_out_t o;
    bool found;
    cr_assert_eq(cx_pipeline_profile(pipe_, 0, "c1", &o, &found, err, sizeof err), CX_OK);
    cr_assert(found);
    /* the pure rule, evaluated over a profile rebuilt the same way */
    cx_profile_t p;
    cx_profile_init(&p, "c1");
    p.has_tx = true;
    p.first_tx_day = (int32_t)D0;
    for (int d = 0; d <= 131; d++)
        if (d <= 111 || (d >= 116 && (d - 116) % 5 == 0)) cx_profile_bucket(&p, (int32_t)(D0 + d))->play = 1;
    cr_assert_not(cx_triggers_drop_holds(&p, cfg, (int32_t)(D0 + 135)));
    cr_assert(cx_triggers_drop_holds(&p, cfg, (int32_t)(D0 + 136)));
    cx_profile_clear(&p);
}

/* One xorshift64 step of the random histories below; returns the new state. */
static uint64_t xorshift(uint64_t *x) {
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

/* The due day search (play-day bitmap) against the rule evaluated day by day, over random histories:
 * dense and sparse play days, gaps, with and without a drop at the end, from every start day, and
 * over drop fractions and history minimums (the search skips days whose recent count is at or above
 * fraction x 28: a bound one day off, or one that ignored the fraction, fails it). */
Test(triggers, engagement_drop_due_is_the_first_day_the_rule_holds) {
    static const double fractions[] = {0.3, 0.05, 0.55, 0.9, 1.0};
    uint64_t x = 88172645463325252u;
    int checked = 0, dues = 0;
    for (int round = 0; round < 600; round++) {
        cfg->drop_fraction = fractions[round % 5];
        cfg->drop_min_history_weeks = round % 7 == 3 ? 1 + round % 12 : 8;
        cx_profile_t p;
        cx_profile_init(&p, "c1");
        p.has_tx = true;
        xorshift(&x);
        /* density 1 (a play every day) is the common heavy streamer, whose recent count starts at 28 */
        int days = 30 + (int)(x % 150), density = 1 + (int)((x >> 8) % 6) / 2, cut = (int)((x >> 16) % 40);
        int32_t last_play = -1;
        p.first_tx_day = (int32_t)D0;
        for (int d = 0; d < days; d++) {
            xorshift(&x);
            bool late = d > days - cut; /* the drop: fewer plays at the end */
            if (x % (uint64_t)(late ? density * 4 : density) == 0) {
                cx_profile_bucket(&p, (int32_t)(D0 + d))->play = 1;
                last_play = (int32_t)(D0 + d);
            }
        }
        if (last_play < 0) {
            cx_profile_clear(&p);
            continue;
        }
        p.play_days[0] = last_play;
        p.n_play_days = 1;
        for (int from = 0; from < days + 30; from += 3) {
            int32_t from_day = (int32_t)(D0 + from);
            int64_t expect = 0;
            for (int64_t d = from_day; d <= (int64_t)last_play + CX_TRIGGERS_RECENT_DAYS && !expect; d++)
                if (cx_triggers_drop_holds(&p, cfg, (int32_t)d)) expect = d * CX_DAY_MS;
            cr_assert_eq(cx_triggers_drop_due_ms(&p, cfg, from_day), expect, "round %d from day %d", round, from);
            checked++;
            if (expect) dues++;
        }
        cx_profile_clear(&p);
    }
    cr_assert_gt(dues, 100, "the histories must reach the rule often (%d of %d)", dues, checked);
    cr_assert_gt(checked - dues, 100);
}

/* ---------- CHURN_RISK ---------- */

Test(triggers, churn_risk_fires_on_the_first_day_p_alive_is_below_the_threshold) {
    purchase("r1", EVENING(0), 499);
    purchase("r1", EVENING(7), 499);
    purchase("r1", EVENING(14), 499); /* x = 2, t_x = 2 weeks */
    cx_bgnbd_params_t bg = {cfg->bgnbd_r, cfg->bgnbd_alpha, cfg->bgnbd_a, cfg->bgnbd_b};
    int first = -1;
    for (int d = 15; d < 3000 && first < 0; d++)
        if (cx_bgnbd_p_alive(&bg, 2, 2.0, d / 7.0) < cfg->churn_p_alive) first = d;
    cr_assert_gt(first, 15);
    advance(DAY(first) - 1);
    cr_assert_eq(cap.n_trig, 0);
    advance(DAY(first));
    cr_assert_eq(cap.n_trig, 1);
    const cx_trigger_t *t = &cap.trig[0];
    cr_assert_eq(t->kind, CX_TRIG_CHURN_RISK);
    cr_assert_eq(t->ts_ms, DAY(first));
    cr_assert(t->has_p_alive);
    cr_assert_lt(t->p_alive, 0.2);
    cr_assert_not(t->has_days_since_last_play, "no play: null");
    cr_assert_not(t->has_usual_gap_days);
}

/* The due against the rule evaluated day by day, over random histories, model parameters and
 * thresholds (the due comes from the closed-form inverse, confirmed, or from a search). */
Test(triggers, churn_due_is_the_first_day_p_alive_is_below_the_threshold_over_random_histories) {
    uint64_t seed = 0x9e3779b97f4a7c15u;
    int found = 0, none = 0;
    for (int round = 0; round < 400; round++) {
        cx_profile_t p = {0};
        p.has_tx = true;
        p.first_tx_day = 19000 + (int32_t)((xorshift(&seed) >> 11) % 400);
        p.last_tx_day = p.first_tx_day + (int32_t)((xorshift(&seed) >> 11) % 500);
        p.tx_days = 2 + (int64_t)((xorshift(&seed) >> 11) % 40);
        cx_bgnbd_params_t bg = {0.05 + (double)((xorshift(&seed) >> 11) % 400) / 100.0,
                                0.5 + (double)((xorshift(&seed) >> 11) % 3000) / 100.0,
                                0.05 + (double)((xorshift(&seed) >> 11) % 300) / 100.0,
                                0.05 + (double)((xorshift(&seed) >> 11) % 600) / 100.0};
        /* every 8th threshold tiny: P(alive) may then stay above it within the horizon */
        cfg->churn_p_alive = round % 8 ? 0.01 + (double)((xorshift(&seed) >> 11) % 98) / 100.0 : 1e-12;
        cfg->bgnbd_unit_days = 1 + (int)((xorshift(&seed) >> 11) % 14);
        int32_t from = p.last_tx_day + (int32_t)((xorshift(&seed) >> 11) % 200) - 50;
        int64_t expect = 0;
        for (int64_t d = from; d <= (int64_t)p.last_tx_day + CX_TRIGGERS_CHURN_HORIZON_DAYS; d++)
            if (cx_triggers_p_alive(&p, &bg, cfg->bgnbd_unit_days, (int32_t)d) < cfg->churn_p_alive) {
                expect = d * CX_DAY_MS;
                break;
            }
        cr_assert_eq(cx_triggers_churn_due_ms(&p, cfg, &bg, from), expect, "round %d", round);
        if (expect)
            found++;
        else
            none++;
    }
    cr_assert_gt(found, 100, "the histories must reach the threshold often (%d)", found);
    cr_assert_gt(none, 5, "and sometimes not within the horizon (%d)", none);
}

Test(triggers, a_one_time_customer_gets_no_trigger) {
    purchase("o1", EVENING(0), 999);
    purchase("o1", EVENING(0) + 3600000, 999); /* same day: still x = 0 */
    play("o1", EVENING(0), NULL);
    advance(DAY(2000));
    cr_assert_eq(cap.n_trig, 0);
}

/* Four genre counters (Space-Saving): a fifth genre takes the smallest counter and inherits its count;
 * a play of a counted genre finds its counter by the name's fingerprint. */
Test(triggers, top_genre_counts_genres_apart_and_a_fifth_inherits_the_smallest_counter) {
    static const char *genres[] = {"drama",    "drama",    "comedy",   "comedy", "comedy", "action",
                                   "kids",     "thriller", "thriller", "kids",   "drama",  "comedy",
                                   "thriller", "action",   "thriller", "kids"};
    for (int d = 0; d < 16; d++)
        play("g1", EVENING(d), genres[d]);
    /* drama 2, comedy 3, action 1, kids 1; thriller takes action's counter (1 + 2 = 3); kids 2, drama 3,
     * comedy 4, thriller 4; action takes kids' counter (2 + 1 = 3); thriller 5; kids takes drama's
     * counter (3 + 1 = 4). Top: thriller 5 (comedy 4 and kids 4). */
    advance(DAY(16 + 60));
    cr_assert_geq(cap.n_trig, 1);
    cr_assert(cap.trig[0].has_top_genre);
    cr_assert_str_eq(cap.trig[0].top_genre, "thriller");
}

Test(triggers, top_genre_ties_go_to_the_first_name) {
    static const char *genres[] = {"western", "comedy", "western", "comedy", "anime"};
    for (int d = 0; d < 5; d++)
        play("g2", EVENING(d), genres[d]);
    advance(DAY(5 + 60));
    cr_assert_geq(cap.n_trig, 1);
    cr_assert_str_eq(cap.trig[0].top_genre, "comedy", "western 2 and comedy 2: the first name in byte order");
}

Test(triggers, an_irregular_monthly_renter_gets_nothing_after_two_quiet_weeks) {
    int days[] = {0, 25, 61, 88, 120};
    for (int i = 0; i < 5; i++) {
        purchase("m1", EVENING(days[i]), 399);
        play("m1", EVENING(days[i]) + 60000, "thriller");
    }
    advance(DAY(120 + 15));
    cr_assert_eq(cap.n_trig, 0);
}

/* ---------- suggested action and eligibility ---------- */

Test(triggers, high_value_irregular_customer_gets_win_back_offer) {
    int days[] = {0, 3, 10, 12, 20, 21, 30, 34, 40, 41};
    for (int i = 0; i < 10; i++) {
        play("v1", EVENING(days[i]), "comedy");
        purchase("v1", EVENING(days[i]) + 1000, 5000); /* 50,000 in all: M = 5 */
    }
    advance(DAY(300));
    cr_assert_geq(cap.n_trig, 1);
    cr_assert_eq(cap.trig[0].kind, CX_TRIG_STOPPED_STREAMING);
    cr_assert_eq(cap.trig[0].suggested_action, CX_ACT_WIN_BACK_OFFER);
    cr_assert_str_eq(cap.trig[0].top_genre, "comedy");
}

Test(triggers, a_recent_win_back_contact_makes_the_trigger_ineligible) {
    campaign("wb", CX_CT_WIN_BACK);
    daily("c1", 0, 29);
    email_send("c1", DAY(30), "wb", CX_GROUP_TEST); /* 13 days before the due day 43 */
    advance(DAY(43));
    cr_assert_eq(cap.n_trig, 1);
    cr_assert_not(cap.trig[0].eligible);
    cr_assert(cap.trig[0].has_last_contact_campaign_id);
    cr_assert_str_eq(cap.trig[0].last_contact_campaign_id, "wb");
}

Test(triggers, eligibility_returns_exactly_after_the_exclusion_weeks) {
    campaign("wb", CX_CT_WIN_BACK);
    email_send("c1", DAY(15), "wb", CX_GROUP_TEST); /* due day 43 = 15 + 28: four weeks later */
    daily("c1", 16, 29);
    email_send("c2", DAY(15) + 1, "wb", CX_GROUP_TEST); /* one ms later: still inside */
    daily("c2", 16, 29);
    advance(DAY(43));
    cr_assert_eq(cap.n_trig, 2);
    cr_assert_str_eq(cap.trig[0].customer_id, "c1");
    cr_assert(cap.trig[0].eligible);
    cr_assert_str_eq(cap.trig[1].customer_id, "c2");
    cr_assert_not(cap.trig[1].eligible);
}

Test(triggers, a_control_group_send_is_not_a_contact) {
    campaign("wb", CX_CT_WIN_BACK);
    daily("c1", 0, 29);
    email_send("c1", DAY(30), "wb", CX_GROUP_CONTROL);
    advance(DAY(43));
    cr_assert_eq(cap.n_trig, 1);
    cr_assert(cap.trig[0].eligible);
    cr_assert_not(cap.trig[0].has_last_contact_campaign_id);
}

Test(triggers, newsletter_contacts_do_not_exclude_by_default) {
    campaign("nl", CX_CT_NEWSLETTER);
    daily("c1", 0, 29);
    email_send("c1", DAY(42), "nl", CX_GROUP_TEST);
    advance(DAY(43));
    cr_assert_eq(cap.n_trig, 1);
    cr_assert(cap.trig[0].eligible);
    cr_assert_str_eq(cap.trig[0].last_contact_campaign_id, "nl");
}

/* Campaign ids longer than a profile keeps inline (CX_SID_INLINE): the contact list rolls over (the
 * oldest ids freed), the win-back contact survives as the latest of its type, and the trigger names the
 * newest contact; ASan checks that every id is freed once. */
Test(triggers, long_campaign_ids_survive_the_contact_list_rolling_over) {
    char wb[CX_ID_MAX + 1], nl[CX_ID_MAX + 1];
    snprintf(wb, sizeof wb, "win-back-autumn-2024-lapsed-subscribers-%s", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    campaign(wb, CX_CT_WIN_BACK);
    daily("c1", 0, 29);
    email_send("c1", DAY(30), wb, CX_GROUP_TEST);
    for (int i = 0; i < CX_CONTACTS_KEPT + 3; i++) {
        snprintf(nl, sizeof nl, "newsletter-2024-weekly-new-releases-%02d", i);
        if (i % 2 == 0) campaign(nl, CX_CT_NEWSLETTER); /* the others stay unknown: their sends wait */
        email_send("c1", DAY(30) + 1 + i, nl, CX_GROUP_TEST);
    }
    advance(DAY(43));
    cr_assert_eq(cap.n_trig, 1);
    cr_assert_not(cap.trig[0].eligible, "the win-back contact, no longer in the last %d, still excludes",
                  CX_CONTACTS_KEPT);
    cr_assert(cap.trig[0].has_last_contact_campaign_id);
    cr_assert_str_eq(cap.trig[0].last_contact_campaign_id, nl);
}

/* ---------- restart ---------- */

Test(triggers, a_restart_over_the_same_store_fires_the_same_trigger) {
    daily("c1", 0, 29);
    daily("c2", 0, 20);
    cr_assert_eq(cx_pipeline_flush(pipe_, -1, err, sizeof err), CX_OK, "%s", err);
    cx_pipeline_destroy(pipe_);
    memset(&cap, 0, sizeof cap);
    open_pipeline();
    advance(DAY(43));
    cr_assert_eq(cap.n_trig, 2);
    cr_assert_str_eq(cap.trig[0].trigger_id, "c2:STOPPED_STREAMING:1730937600000"); /* day 34 */
    char id[128];
    snprintf(id, sizeof id, "c1:STOPPED_STREAMING:%" PRId64, DAY(43));
    cr_assert_str_eq(cap.trig[1].trigger_id, id);
    /* and a fired trigger stays fired across a restart */
    cr_assert_eq(cx_pipeline_flush(pipe_, -1, err, sizeof err), CX_OK, "%s", err);
    cx_pipeline_destroy(pipe_);
    memset(&cap, 0, sizeof cap);
    open_pipeline();
    advance(DAY(400));
    cr_assert_eq(cap.n_trig, 0);
}

/* ---------- SegmentChange carries P(alive) and CLV ---------- */

Test(triggers, segment_changes_carry_p_alive_and_clv) {
    purchase("s1", EVENING(0), 1000);
    purchase("s1", EVENING(3), 1000);
    cr_assert_geq(cap.n_sc, 1);
    for (int i = 0; i < cap.n_sc; i++) {
        cr_assert(cap.sc[i].has_p_alive);
        cr_assert(cap.sc[i].has_clv_minor);
        cr_assert(cap.sc[i].p_alive > 0 && cap.sc[i].p_alive <= 1);
        cr_assert_geq(cap.sc[i].clv_minor, 0);
    }
}

/* A streamer whose repeat transactions are all plays (no money after the first day) must not be
 * valued at the population mean spend per transaction: the Gamma-Gamma posterior with m = 0 pulls
 * the spend towards 0 as x grows. */
Test(triggers, clv_of_a_non_paying_streamer_uses_the_posterior_spend_not_the_population_mean) {
    cx_profile_t p;
    cx_profile_init(&p, "c1");
    p.has_tx = true;
    p.first_tx_day = 20000;
    p.last_tx_day = 20030;
    p.tx_days = 31; /* x = 30 repeat days */
    p.revenue_total_minor = 999;
    p.first_day_revenue_minor = 999; /* all revenue on the first day: m = 0 */
    cx_bgnbd_params_t bg = {cfg->bgnbd_r, cfg->bgnbd_alpha, cfg->bgnbd_a, cfg->bgnbd_b};
    cx_gg_params_t gg = {cfg->gammagamma_p, cfg->gammagamma_q, cfg->gammagamma_gamma};
    int64_t clv = cx_triggers_clv_minor(&p, cfg, &bg, &gg, 20031);
    double unit = cfg->bgnbd_unit_days;
    double n_h = cx_bgnbd_expected(&bg, 30, 30 / unit, 31 / unit, cfg->clv_horizon_days / unit);
    double posterior = gg.p * gg.gamma / (gg.p * 30 + gg.q - 1); /* m = 0 */
    double population = gg.p * gg.gamma / (gg.q - 1);
    cr_assert_eq(clv, (int64_t)(n_h * posterior), "clv %" PRId64 " vs %f", clv, n_h * posterior);
    cr_assert_lt((double)clv, 0.05 * n_h * population, "clv %" PRId64 " near the population-mean value", clv);
    cx_profile_clear(&p);
}

/* cx_triggers_arm keeps the pending STOPPED_STREAMING and ENGAGEMENT_DROP dues for a play on a known
 * play day. Two copies of a customer take the same random history (runs of daily and sparse plays,
 * several plays a day, purchases, late events, late purchases before the first transaction day that
 * move the history's start, watermark steps that fire due timers, some of which become triggers);
 * one is armed with the real new_play_day, the other always computes every due again. Their dues
 * must agree after every transaction. (Keeping the drop due across a moved history start, after it
 * fired, or from a search made without a watermark, fails it; so does keeping it only when it is
 * pending, without counting the searches that found none.) */
Test(triggers, a_play_on_a_known_play_day_keeps_the_dues_a_full_computation_gives) {
    cx_bgnbd_params_t bg = {cfg->bgnbd_r, cfg->bgnbd_alpha, cfg->bgnbd_a, cfg->bgnbd_b};
    uint64_t x = 0x9E3779B97F4A7C15u;
    long kept = 0, kept_pending_drop = 0, kept_no_drop = 0, steps = 0;
    for (int round = 0; round < 300; round++) {
        /* short minimum histories make the drop rule hold within the histories, where a moved start
         * (h counts weeks from the first transaction day) changes the due */
        cfg->drop_min_history_weeks = round % 3 ? 1 + round % 4 : 8;
        cx_profile_t a, b;
        cx_profile_init(&a, "c1");
        cx_profile_init(&b, "c1");
        int64_t wm = INT64_MIN, t = (D0 + 40) * CX_DAY_MS;
        int dense = (int)(xorshift(&x) % 3); /* 0: daily streamer, 1: every few days, 2: sparse */
        /* some rounds arm without a watermark at first (the search then starts after the last
         * transaction day), then get one that trails far behind */
        int no_wm = round % 4 == 1 ? 60 : 0;
        int64_t lag = no_wm ? 25 * CX_DAY_MS : CX_DAY_MS;
        for (int ev = 0; ev < 160; ev++) {
            xorshift(&x);
            int64_t step =
                dense == 0 ? (int64_t)(x % 9) * CX_DAY_MS / 8 : (int64_t)(x % (dense * 5 + 2)) * CX_DAY_MS / 2;
            if ((x >> 20) % 30 == 0) step += (int64_t)((x >> 30) % 40) * CX_DAY_MS; /* a silence */
            t += step;
            int64_t ts = t;
            bool purchase = (x >> 8) % 7 == 0;
            if ((x >> 12) % 13 == 0) ts -= (int64_t)((x >> 40) % 6) * CX_DAY_MS; /* late */
            if (purchase && (x >> 16) % 3 == 0 && a.has_tx)                      /* before the first transaction day */
                ts = (a.first_tx_day - 1 - (int64_t)((x >> 44) % 10)) * CX_DAY_MS + CX_DAY_MS / 2;
            /* the watermark trails the newest event by a day (or `lag`); timers it passes fire on both */
            int64_t nwm = t - lag;
            if (ev >= no_wm && (wm == INT64_MIN || nwm > wm)) {
                wm = nwm;
                for (int k = 0; k < CX_TRIG__COUNT; k++) {
                    int64_t *da = cx_triggers_due_field(&a, (cx_trigger_kind_t)k),
                            *db = cx_triggers_due_field(&b, (cx_trigger_kind_t)k);
                    cr_assert_eq(*da, *db);
                    if (*da && *da <= wm) {
                        if ((x >> 24) % 2) { /* it became a trigger */
                            a.last_trigger_due_ms[k] = b.last_trigger_due_ms[k] = *da;
                            a.last_trigger_ts_ms = b.last_trigger_ts_ms = *da;
                        }
                        cx_triggers_clear_due(&a, (cx_trigger_kind_t)k);
                        cx_triggers_clear_due(&b, (cx_trigger_kind_t)k);
                    }
                }
            }
            int32_t wm_day = wm == INT64_MIN ? (int32_t)cx_day(t) : (int32_t)cx_day(wm), day = (int32_t)cx_day(ts);
            bool fresh_a = true, fresh_b = true;
            cr_assert_eq(cx_rfm_add_transaction(&a, ts, purchase ? 999 : 0, !purchase, wm_day, 365, &fresh_a), CX_OK);
            cr_assert_eq(cx_rfm_add_transaction(&b, ts, purchase ? 999 : 0, !purchase, wm_day, 365, &fresh_b), CX_OK);
            if (!purchase) {
                if (cx_triggers_add_play_day(&a, day)) fresh_a = true;
                cx_triggers_add_play_day(&b, day);
            }
            if (!purchase && !fresh_a) {
                kept++;
                if (a.drop_due_ms)
                    kept_pending_drop++;
                else if (a.drop_armed_first)
                    kept_no_drop++;
            }
            cx_triggers_arm(&a, cfg, &bg, wm, !purchase, fresh_a);
            cx_triggers_arm(&b, cfg, &bg, wm, !purchase, true);
            cr_assert_eq(a.stop_due_ms, b.stop_due_ms, "round %d event %d: stop", round, ev);
            cr_assert_eq(a.drop_due_ms, b.drop_due_ms, "round %d event %d: drop", round, ev);
            cr_assert_eq(a.churn_due_ms, b.churn_due_ms, "round %d event %d: churn", round, ev);
            steps++;
        }
        cx_profile_clear(&a);
        cx_profile_clear(&b);
    }
    cr_assert_gt(kept, steps / 10, "plays on known play days: %ld of %ld", kept, steps);
    cr_assert_gt(kept_pending_drop, 200, "with a pending drop due: %ld", kept_pending_drop);
    cr_assert_gt(kept_no_drop, 200, "with none found: %ld", kept_no_drop);
}
