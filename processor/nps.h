/*
 * nps.h — Net Promoter Score arithmetic (DESIGN §6): the three counts a segment, a touchpoint or a
 * partition keeps, and the score with its standard error and 95% interval computed from them.
 * Counts are plain integers so partitions can publish them as absolute partials and every instance
 * can sum them (cx_nps_counts_merge); a response leaves a window by being added with sign -1.
 *
 * Pure functions over caller-owned structs: nothing here allocates, logs or keeps state.
 */
#ifndef CX_NPS_H
#define CX_NPS_H

#include <stdbool.h>
#include <stdint.h>

#define CX_NPS_DETRACTOR 0 /* score 0..6 */
#define CX_NPS_PASSIVE   1 /* score 7..8 */
#define CX_NPS_PROMOTER  2 /* score 9..10 */

typedef struct cx_nps_counts {
    int64_t promoters, passives, detractors;
} cx_nps_counts_t;

#define CX_NPS_COUNTS_INIT \
    { 0, 0, 0 }

typedef struct cx_nps_stats {
    int64_t n;      /* responses: promoters + passives + detractors */
    double nps;     /* 100 (p - d), p and d the shares of promoters and detractors */
    double se;      /* 100 sqrt((p + d - (p - d)^2) / n) */
    double ci_low;  /* nps - 1.96 se, clamped to [-100, 100] */
    double ci_high; /* nps + 1.96 se, clamped to [-100, 100] */
    bool defined;   /* false when n <= 0 (or the counts are inconsistent): all numbers are 0 */
} cx_nps_stats_t;

/* CX_NPS_DETRACTOR, CX_NPS_PASSIVE or CX_NPS_PROMOTER; -1 for a score outside 0..10. */
int cx_nps_category(int score);

/* Adds (sign +1) or removes (sign -1) one response with this score. A score outside 0..10 or a
 * sign other than ±1 changes nothing (the decoder sends such events to the DLQ before they get
 * here; this is a guard, not validation). NULL counts are ignored. */
void cx_nps_add(cx_nps_counts_t *c, int score, int64_t sign);

/* dst += src, category by category (summing per-partition partials). */
void cx_nps_counts_merge(cx_nps_counts_t *dst, const cx_nps_counts_t *src);

/* Score, standard error and 95% interval. n = 0, a negative count or NULL → !defined. */
cx_nps_stats_t cx_nps_stats(const cx_nps_counts_t *c);

#endif
