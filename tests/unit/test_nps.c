/* Unit tests for processor/nps.c: categories, counts with add/remove, score, SE and interval. */
#include <criterion/criterion.h>
#include <math.h>

#include "nps.h"

static cx_nps_counts_t counts(int64_t p, int64_t pa, int64_t d) {
    cx_nps_counts_t c = {p, pa, d};
    return c;
}

Test(nps, scores_map_to_detractor_passive_promoter_at_the_boundaries) {
    for (int s = 0; s <= 6; s++)
        cr_assert_eq(cx_nps_category(s), CX_NPS_DETRACTOR, "score %d", s);
    cr_assert_eq(cx_nps_category(7), CX_NPS_PASSIVE);
    cr_assert_eq(cx_nps_category(8), CX_NPS_PASSIVE);
    cr_assert_eq(cx_nps_category(9), CX_NPS_PROMOTER);
    cr_assert_eq(cx_nps_category(10), CX_NPS_PROMOTER);
    cr_assert_eq(cx_nps_category(-1), -1);
    cr_assert_eq(cx_nps_category(11), -1);
}

Test(nps, fifty_thirty_twenty_gives_nps_30_and_known_interval) {
    cx_nps_counts_t c = counts(50, 30, 20);
    cx_nps_stats_t s = cx_nps_stats(&c);
    cr_assert(s.defined);
    cr_assert_eq(s.n, 100);
    cr_assert_float_eq(s.nps, 30.0, 1e-9);
    double se = 100.0 * sqrt((0.5 + 0.2 - 0.09) / 100.0); /* 7.8102... */
    cr_assert_float_eq(s.se, se, 1e-9);
    cr_assert_float_eq(s.se, 7.8102497, 1e-6);
    cr_assert_float_eq(s.ci_low, 14.692, 1e-3);
    cr_assert_float_eq(s.ci_high, 45.308, 1e-3);
}

Test(nps, counts_built_with_add_equal_the_literal_counts) {
    cx_nps_counts_t c = CX_NPS_COUNTS_INIT;
    for (int i = 0; i < 50; i++)
        cx_nps_add(&c, 9 + i % 2, +1);
    for (int i = 0; i < 30; i++)
        cx_nps_add(&c, 7 + i % 2, +1);
    for (int i = 0; i < 20; i++)
        cx_nps_add(&c, i % 7, +1);
    cr_assert_eq(c.promoters, 50);
    cr_assert_eq(c.passives, 30);
    cr_assert_eq(c.detractors, 20);
}

Test(nps, all_promoters_is_100_with_zero_se) {
    cx_nps_counts_t c = counts(37, 0, 0);
    cx_nps_stats_t s = cx_nps_stats(&c);
    cr_assert(s.defined);
    cr_assert_float_eq(s.nps, 100.0, 1e-12);
    cr_assert_eq(s.se, 0.0);
    cr_assert_eq(s.ci_low, 100.0);
    cr_assert_eq(s.ci_high, 100.0);
}

Test(nps, all_passives_is_zero_with_zero_se) {
    cx_nps_counts_t c = counts(0, 12, 0);
    cx_nps_stats_t s = cx_nps_stats(&c);
    cr_assert(s.defined);
    cr_assert_eq(s.nps, 0.0);
    cr_assert_eq(s.se, 0.0);
}

Test(nps, all_detractors_is_minus_100) {
    cx_nps_counts_t c = counts(0, 0, 5);
    cx_nps_stats_t s = cx_nps_stats(&c);
    cr_assert_float_eq(s.nps, -100.0, 1e-12);
    cr_assert_eq(s.se, 0.0);
    cr_assert_eq(s.ci_low, -100.0);
}

Test(nps, no_responses_is_undefined) {
    cx_nps_counts_t c = CX_NPS_COUNTS_INIT;
    cx_nps_stats_t s = cx_nps_stats(&c);
    cr_assert_not(s.defined);
    cr_assert_eq(s.n, 0);
    cr_assert_not(cx_nps_stats(NULL).defined);
}

Test(nps, negative_count_is_undefined_not_garbage) {
    cx_nps_counts_t c = counts(3, 0, -1);
    cr_assert_not(cx_nps_stats(&c).defined);
}

Test(nps, interval_is_clamped_to_plus_minus_100) {
    /* One promoter, one detractor: NPS 0, SE 100·√(1/2) ≈ 70.7, ±138.6 before clamping. */
    cx_nps_counts_t c = counts(1, 0, 1);
    cx_nps_stats_t s = cx_nps_stats(&c);
    cr_assert_float_eq(s.se, 100.0 * sqrt(0.5), 1e-9);
    cr_assert_eq(s.ci_low, -100.0);
    cr_assert_eq(s.ci_high, 100.0);
    /* 9 promoters, 1 detractor: NPS 80, SE 100·√(1 − 0.64)/√10 ≈ 18.97, high end clamped. */
    c = counts(9, 0, 1);
    s = cx_nps_stats(&c);
    cr_assert_float_eq(s.nps, 80.0, 1e-9);
    cr_assert_eq(s.ci_high, 100.0);
    cr_assert_float_eq(s.ci_low, 80.0 - 1.96 * 100.0 * sqrt(0.36 / 10.0), 1e-9);
}

Test(nps, add_then_remove_restores_the_counts_exactly) {
    cx_nps_counts_t c = counts(4, 5, 6);
    for (int score = 0; score <= 10; score++) {
        cx_nps_counts_t before = c;
        cx_nps_add(&c, score, +1);
        cr_assert_eq(c.promoters + c.passives + c.detractors,
                     before.promoters + before.passives + before.detractors + 1);
        cx_nps_add(&c, score, -1);
        cr_assert_eq(c.promoters, before.promoters, "score %d", score);
        cr_assert_eq(c.passives, before.passives, "score %d", score);
        cr_assert_eq(c.detractors, before.detractors, "score %d", score);
    }
}

Test(nps, removing_moves_the_score_the_other_way) {
    cx_nps_counts_t c = counts(2, 0, 2);
    cx_nps_add(&c, 3, -1); /* a detractor's response leaves the window */
    cx_nps_stats_t s = cx_nps_stats(&c);
    cr_assert_eq(s.n, 3);
    cr_assert_float_eq(s.nps, 100.0 / 3.0, 1e-9);
}

Test(nps, out_of_range_score_or_sign_changes_nothing) {
    cx_nps_counts_t c = counts(1, 1, 1);
    cx_nps_add(&c, 11, +1);
    cx_nps_add(&c, -1, +1);
    cx_nps_add(&c, 9, 2);
    cx_nps_add(&c, 9, 0);
    cx_nps_add(NULL, 9, 1);
    cr_assert_eq(c.promoters, 1);
    cr_assert_eq(c.passives, 1);
    cr_assert_eq(c.detractors, 1);
}

Test(nps, merged_partials_equal_the_counts_of_the_union) {
    cx_nps_counts_t a = counts(10, 3, 2), b = counts(5, 7, 9), sum = CX_NPS_COUNTS_INIT;
    cx_nps_counts_merge(&sum, &a);
    cx_nps_counts_merge(&sum, &b);
    cr_assert_eq(sum.promoters, 15);
    cr_assert_eq(sum.passives, 10);
    cr_assert_eq(sum.detractors, 11);
    cx_nps_stats_t s = cx_nps_stats(&sum);
    cr_assert_float_eq(s.nps, 100.0 * (15.0 - 11.0) / 36.0, 1e-9);
}
