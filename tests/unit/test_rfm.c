/*
 * test_rfm.c — RFM over day buckets (DESIGN §6) with the default thresholds: window edges,
 * score bands, the day on which a quiet customer's scores next change, and distinct transaction
 * days (BG/NBD x) when transactions arrive out of order.
 */
#include <criterion/criterion.h>
#include <limits.h>

#include "config.h"
#include "rfm.h"

static cx_config_t *cfg;
static cx_rfm_thresholds_t th;
static cx_profile_t p;
#define KEEP 365
#define DAY0 20000 /* a UTC day number (2024-10-04) */

static void setup(void) {
    cfg = cx_config_new();
    cr_assert_not_null(cfg);
    cx_rfm_thresholds_from_config(cfg, &th);
    cx_profile_init(&p, "c");
}
static void teardown(void) {
    cx_profile_clear(&p);
    cx_config_destroy(cfg);
}

static int64_t noon(int32_t day) {
    return (int64_t)day * CX_DAY_MS + CX_DAY_MS / 2;
}

/* adds a purchase on `day` seen with the watermark on `wm_day` */
static void buy(int32_t day, int64_t amount, int32_t wm_day) {
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(day), amount, false, wm_day, KEEP, NULL), CX_OK);
}

TestSuite(rfm, .init = setup, .fini = teardown);

Test(rfm, defaults_are_those_of_the_design) {
    cr_assert_eq(th.window_days, 365);
    int32_t r[] = {7, 30, 90, 180};
    int64_t f[] = {100, 40, 12, 4}, m[] = {50000, 20000, 8000, 2000};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(th.r_days[i], r[i]);
        cr_assert_eq(th.f_min[i], f[i]);
        cr_assert_eq(th.m_min[i], m[i]);
    }
}

Test(rfm, score_bands_change_exactly_at_the_thresholds) {
    int rec[][2] = {{0, 5}, {7, 5}, {8, 4}, {30, 4}, {31, 3}, {90, 3}, {91, 2}, {180, 2}, {181, 1}, {5000, 1}};
    for (size_t i = 0; i < sizeof rec / sizeof *rec; i++)
        cr_assert_eq(cx_rfm_score_r(&th, rec[i][0]), rec[i][1], "recency %d", rec[i][0]);
    int64_t fr[][2] = {{0, 1}, {3, 1}, {4, 2}, {11, 2}, {12, 3}, {39, 3}, {40, 4}, {99, 4}, {100, 5}};
    for (size_t i = 0; i < sizeof fr / sizeof *fr; i++)
        cr_assert_eq(cx_rfm_score_f(&th, fr[i][0]), fr[i][1], "frequency %ld", (long)fr[i][0]);
    int64_t mo[][2] = {{0, 1},     {1999, 1},  {2000, 2},  {7999, 2}, {8000, 3},
                       {19999, 3}, {20000, 4}, {49999, 4}, {50000, 5}};
    for (size_t i = 0; i < sizeof mo / sizeof *mo; i++)
        cr_assert_eq(cx_rfm_score_m(&th, mo[i][0]), mo[i][1], "monetary %ld", (long)mo[i][0]);
}

Test(rfm, transaction_exactly_window_days_ago_is_out_one_day_later_in) {
    buy(DAY0, 1000, DAY0);
    buy(DAY0 + 1, 2000, DAY0 + 1);
    cx_rfm_t r;
    cx_rfm_compute(&p, &th, DAY0 + 364, &r); /* both inside */
    cr_assert_eq(r.frequency, 2);
    cr_assert_eq(r.monetary_minor, 3000);
    cx_rfm_compute(&p, &th, DAY0 + 365, &r); /* DAY0 is exactly 365 days ago: out */
    cr_assert_eq(r.frequency, 1);
    cr_assert_eq(r.monetary_minor, 2000);
    cr_assert_eq(r.recency_days, 364);
    cx_rfm_compute(&p, &th, DAY0 + 366, &r);
    cr_assert_eq(r.frequency, 0);
    cr_assert_eq(r.monetary_minor, 0);
    cr_assert_eq(r.f, 1);
    cr_assert_eq(r.m, 1);
    cr_assert_eq(r.recency_days, 365);
}

Test(rfm, recency_counts_utc_days_not_hours) {
    /* 23:59:59.999 on DAY0, watermark 00:00 of DAY0 + 1: one day */
    cr_assert_eq(cx_rfm_add_transaction(&p, (int64_t)(DAY0 + 1) * CX_DAY_MS - 1, 0, true, DAY0, KEEP, NULL), CX_OK);
    cx_rfm_t r;
    cx_rfm_compute(&p, &th, DAY0 + 1, &r);
    cr_assert_eq(r.recency_days, 1);
    cx_rfm_compute(&p, &th, DAY0, &r);
    cr_assert_eq(r.recency_days, 0);
}

Test(rfm, next_change_is_the_first_day_r_leaves_its_band) {
    buy(DAY0, 100, DAY0);
    cx_rfm_t r;
    cx_rfm_compute(&p, &th, DAY0, &r);
    cr_assert_eq(r.r, 5);
    int32_t next = cx_rfm_next_change_day(&p, &th, DAY0, &r);
    cr_assert_eq(next, DAY0 + 8, "R 5 holds through recency 7");
    int32_t expect[] = {DAY0 + 8, DAY0 + 31, DAY0 + 91, DAY0 + 181};
    int want_r[] = {4, 3, 2, 1};
    for (int i = 0; i < 4; i++) {
        cx_rfm_compute(&p, &th, next - 1, &r);
        cr_assert_eq(r.r, 5 - i, "the day before the change");
        cx_rfm_compute(&p, &th, next, &r);
        cr_assert_eq(r.r, want_r[i]);
        next = cx_rfm_next_change_day(&p, &th, expect[i], &r);
        if (i < 3) cr_assert_eq(next, expect[i + 1]);
    }
    /* R=1, F=1, M=1: the only further change is the bucket leaving the window, which lowers
     * nothing, so no change is due */
    cr_assert_eq(next, INT32_MAX);
}

Test(rfm, f_and_m_expiry_is_due_on_the_day_the_bucket_leaves) {
    /* 40 purchases on DAY0 and 1 on each of the next 3 days: F 4 (43 >= 40), M 4 */
    for (int i = 0; i < 40; i++)
        buy(DAY0, 500, DAY0);
    for (int d = 1; d <= 3; d++)
        buy(DAY0 + d, 100, DAY0 + d);
    int32_t wm = DAY0 + 200; /* R is 1 already: only expiry can change a score */
    cx_rfm_t r;
    cx_rfm_compute(&p, &th, wm, &r);
    cr_assert_eq(r.frequency, 43);
    cr_assert_eq(r.monetary_minor, 20300);
    cr_assert_eq(r.f, 4);
    cr_assert_eq(r.m, 4);
    cr_assert_eq(r.r, 1);
    int32_t next = cx_rfm_next_change_day(&p, &th, wm, &r);
    cr_assert_eq(next, DAY0 + 365, "DAY0's bucket leaves the window on DAY0 + window_days");
    cx_rfm_compute(&p, &th, next, &r);
    cr_assert_eq(r.frequency, 3);
    cr_assert_eq(r.f, 1);
    cr_assert_eq(r.m, 1);
}

Test(rfm, expiries_that_change_no_score_are_skipped) {
    /* F 3 with 15 transactions on distinct days: F falls to 2 only once 4 have left (11 < 12) */
    for (int d = 0; d < 15; d++)
        buy(DAY0 + d, 0, DAY0 + d);
    int32_t wm = DAY0 + 300;
    cx_rfm_t r;
    cx_rfm_compute(&p, &th, wm, &r);
    cr_assert_eq(r.f, 3);
    cr_assert_eq(r.r, 1);
    cr_assert_eq(cx_rfm_next_change_day(&p, &th, wm, &r), DAY0 + 3 + 365);
}

Test(rfm, the_earlier_of_r_and_an_expiry_is_due) {
    /* many purchases long ago, one recent: expiry of the old ones comes before R leaves band 5 */
    for (int i = 0; i < 40; i++)
        buy(DAY0, 1000, DAY0);
    buy(DAY0 + 360, 1000, DAY0 + 360);
    cx_rfm_t r;
    cx_rfm_compute(&p, &th, DAY0 + 360, &r);
    cr_assert_eq(r.r, 5);
    cr_assert_eq(r.f, 4);
    cr_assert_eq(cx_rfm_next_change_day(&p, &th, DAY0 + 360, &r), DAY0 + 365);
    cx_profile_clear(&p);
    cx_profile_init(&p, "c");
    for (int i = 0; i < 40; i++)
        buy(DAY0, 1000, DAY0);
    buy(DAY0 + 100, 1000, DAY0 + 100);
    cx_rfm_compute(&p, &th, DAY0 + 100, &r);
    cr_assert_eq(cx_rfm_next_change_day(&p, &th, DAY0 + 100, &r), DAY0 + 108);
}

Test(rfm, distinct_days_count_each_day_once_in_any_order) {
    int32_t days[] = {10, 10, 5, 7, 7, 5, 12, 10, 3, 12};
    int64_t amount[] = {100, 1, 20, 0, 0, 30, 0, 0, 7, 0};
    for (size_t i = 0; i < sizeof days / sizeof *days; i++)
        buy(DAY0 + days[i], amount[i], DAY0 + 12);
    cr_assert_eq(p.tx_days, 5, "days 3, 5, 7, 10, 12");
    cr_assert_eq(p.first_tx_day, DAY0 + 3);
    cr_assert_eq(p.last_tx_day, DAY0 + 12);
    cr_assert_eq(p.first_tx_ts_ms, noon(DAY0 + 3));
    cr_assert_eq(p.last_tx_ts_ms, noon(DAY0 + 12));
    cr_assert_eq(p.first_day_revenue_minor, 7, "revenue of the first day, re-based when an earlier day arrives");
    cx_rfm_t r;
    cx_rfm_compute(&p, &th, DAY0 + 12, &r);
    cr_assert_eq(r.frequency, 10);
    cr_assert_eq(r.monetary_minor, 158);
}

Test(rfm, late_days_within_the_retained_buckets_are_exact) {
    /* the watermark is far ahead (a file sorted by customer, as CDNOW): buckets are kept relative
     * to the customer's own last day, so a late repeat of an old day is still recognised */
    int32_t wm = DAY0 + 1000;
    buy(DAY0, 100, wm);
    buy(DAY0 + 100, 100, wm);
    buy(DAY0 + 50, 100, wm);
    buy(DAY0 + 50, 100, wm);
    buy(DAY0 + 100, 100, wm);
    buy(DAY0, 100, wm);
    cr_assert_eq(p.tx_days, 3);
    cr_assert_eq(p.first_day_revenue_minor, 200);
    buy(DAY0 - 10, 5, wm); /* before the first day: a new first day */
    cr_assert_eq(p.tx_days, 4);
    cr_assert_eq(p.first_tx_day, DAY0 - 10);
    cr_assert_eq(p.first_day_revenue_minor, 5);
}

Test(rfm, a_day_older_than_the_retained_buckets_counts_as_new) {
    /* documented approximation (docs/design.md): between first and last day and older than the
     * retained buckets, a late day cannot be recognised, so each arrival counts */
    buy(DAY0, 1, DAY0);
    buy(DAY0 + 500, 1, DAY0 + 500); /* prunes DAY0's bucket */
    buy(DAY0 + 20, 1, DAY0 + 500);
    cr_assert_eq(p.tx_days, 3, "day 20 is new");
    buy(DAY0, 1, DAY0 + 500);
    cr_assert_eq(p.tx_days, 3, "the first day is known without its bucket");
    buy(DAY0 + 500, 1, DAY0 + 500);
    cr_assert_eq(p.tx_days, 3, "and so is the last");
}

Test(rfm, buckets_are_pruned_past_the_horizon) {
    for (int d = 0; d < 800; d += 10)
        buy(DAY0 + d, 1, DAY0 + d);
    cr_assert_geq(p.buckets[0].day, DAY0 + 790 - KEEP + 1);
    cr_assert_eq(p.buckets[p.n_buckets - 1].day, DAY0 + 790);
    cr_assert_eq(p.tx_days, 80);
    cx_rfm_t r;
    cx_rfm_compute(&p, &th, DAY0 + 790, &r);
    cr_assert_eq(r.frequency, 37, "days 430..790 step 10 are inside the 365-day window");
}

Test(rfm, plays_mark_play_days_in_buckets) {
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(DAY0), 0, true, DAY0, KEEP, NULL), CX_OK);
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(DAY0), 999, false, DAY0, KEEP, NULL), CX_OK);
    cr_assert_eq(p.n_buckets, 1u);
    cr_assert_eq(p.buckets[0].tx, 2u);
    cr_assert_eq(p.buckets[0].play, 1u);
    cr_assert_eq(p.buckets[0].amount_minor, 999);
    cr_assert_eq(p.tx_days, 1);
}

/* A play on a day whose bucket already had plays is the only transaction that leaves the play days
 * as they were (cx_triggers_arm then keeps the pending dues). */
Test(rfm, new_play_day_is_false_only_for_a_play_on_a_day_with_plays) {
    cx_profile_t p;
    cx_profile_init(&p, "c1");
    bool fresh = false;
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(DAY0), 0, true, DAY0, KEEP, &fresh), CX_OK);
    cr_assert(fresh, "first play of the day");
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(DAY0) + 1000, 0, true, DAY0, KEEP, &fresh), CX_OK);
    cr_assert_not(fresh, "second play of the same day");
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(DAY0 + 1), 500, false, DAY0 + 1, KEEP, &fresh), CX_OK);
    cr_assert(fresh, "a purchase");
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(DAY0 + 1) + 1, 0, true, DAY0 + 1, KEEP, &fresh), CX_OK);
    cr_assert(fresh, "the first play of a day that only had a purchase");
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(DAY0 + 1) + 2, 0, true, DAY0 + 1, KEEP, &fresh), CX_OK);
    cr_assert_not(fresh);
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(DAY0 - 1), 0, true, DAY0 + 1, KEEP, &fresh), CX_OK);
    cr_assert(fresh, "a late play on an earlier day");
    /* a play older than the kept buckets has no bucket: counted as new, so the dues are computed */
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(DAY0 + 1 - KEEP - 5), 0, true, DAY0 + 1, KEEP, &fresh), CX_OK);
    cr_assert(fresh);
    cr_assert_eq(cx_rfm_add_transaction(&p, noon(DAY0 + 1 - KEEP - 5) + 1, 0, true, DAY0 + 1, KEEP, &fresh), CX_OK);
    cr_assert(fresh, "still no bucket for that day");
    cx_profile_clear(&p);
}
