/*
 * rfm.h — recency, frequency, monetary and their 1–5 scores, as pure functions over a profile and
 * the watermark's day (DESIGN §6). Scores come from thresholds: the fixed ones of the
 * configuration, or quintile boundaries from the merged sketches (quantile scoring), in the same
 * shape, so one scoring function serves both.
 */
#ifndef CX_RFM_H
#define CX_RFM_H

#include "config.h"
#include "profile.h"

typedef struct cx_rfm_thresholds {
    int32_t window_days;
    int32_t r_days[4]; /* R 5,4,3,2 when recency_days <= r_days[i] */
    int64_t f_min[4];  /* F 5,4,3,2 when frequency >= f_min[i] */
    int64_t m_min[4];  /* M 5,4,3,2 when monetary_minor >= m_min[i] */
} cx_rfm_thresholds_t;

typedef struct cx_rfm {
    int32_t recency_days;
    int64_t frequency;
    int64_t monetary_minor;
    int r, f, m;
} cx_rfm_t;

void cx_rfm_thresholds_from_config(const cx_config_t *cfg, cx_rfm_thresholds_t *t);
int cx_rfm_score_r(const cx_rfm_thresholds_t *t, int32_t recency_days);
int cx_rfm_score_f(const cx_rfm_thresholds_t *t, int64_t frequency);
int cx_rfm_score_m(const cx_rfm_thresholds_t *t, int64_t monetary_minor);

/* R, F, M and scores of a customer with at least one transaction, as of day `wm_day`:
 * frequency and monetary sum the buckets with day > wm_day - window_days. */
void cx_rfm_compute(const cx_profile_t *p, const cx_rfm_thresholds_t *t, int32_t wm_day, cx_rfm_t *out);

/* The first day after wm_day on which R, F or M would change if nothing else happened (recency
 * crossing a threshold, a bucket leaving the window and lowering F or M), or INT32_MAX if none. */
int32_t cx_rfm_next_change_day(const cx_profile_t *p, const cx_rfm_thresholds_t *t, int32_t wm_day,
                               const cx_rfm_t *cur);

/* Records one transaction (a purchase, or a play >= retrieval.min_seconds) on UTC day `day` with
 * `amount_minor` (0 for plays) in buckets and BG/NBD day counters. `is_play` marks play days.
 * Buckets older than min(wm_day, last_tx_day) - keep_days are pruned. *new_play_day (may be NULL)
 * is false only for a play on a day whose bucket already had plays (true for a purchase). CX_ERR_NOMEM
 * only. */
cx_err_t cx_rfm_add_transaction(cx_profile_t *p, int64_t ts_ms, int64_t amount_minor, bool is_play, int32_t wm_day,
                                int32_t keep_days, bool *new_play_day);

#endif
