/*
 * nps.c — NPS counts and statistics (DESIGN §6). The standard error is that of the difference of
 * two shares of one multinomial sample: Var(p - d) = (p + d - (p - d)^2) / n, so
 * SE(NPS) = 100 sqrt((p + d - (p - d)^2) / n). The interval is the normal approximation ±1.96 SE,
 * clamped to the score's range [-100, 100]; with all responses in one category SE is 0.
 */
#include "nps.h"

#include <math.h>
#include <stddef.h>

int cx_nps_category(int score) {
    if (score < 0 || score > 10) return -1;
    if (score >= 9) return CX_NPS_PROMOTER;
    if (score >= 7) return CX_NPS_PASSIVE;
    return CX_NPS_DETRACTOR;
}

void cx_nps_add(cx_nps_counts_t *c, int score, int64_t sign) {
    if (!c || (sign != 1 && sign != -1)) return;
    switch (cx_nps_category(score)) {
    case CX_NPS_PROMOTER: c->promoters += sign; break;
    case CX_NPS_PASSIVE: c->passives += sign; break;
    case CX_NPS_DETRACTOR: c->detractors += sign; break;
    default: break;
    }
}

void cx_nps_counts_merge(cx_nps_counts_t *dst, const cx_nps_counts_t *src) {
    if (!dst || !src) return;
    dst->promoters += src->promoters;
    dst->passives += src->passives;
    dst->detractors += src->detractors;
}

static double clamp100(double v) {
    return v < -100.0 ? -100.0 : v > 100.0 ? 100.0 : v;
}

cx_nps_stats_t cx_nps_stats(const cx_nps_counts_t *c) {
    cx_nps_stats_t s = {0, 0.0, 0.0, 0.0, 0.0, false};
    if (!c || c->promoters < 0 || c->passives < 0 || c->detractors < 0) return s;
    int64_t n = c->promoters + c->passives + c->detractors;
    if (n <= 0) return s;
    double p = (double)c->promoters / (double)n;
    double d = (double)c->detractors / (double)n;
    double diff = p - d;
    /* Mathematically >= 0; rounding can leave a tiny negative when one category holds all. */
    double var = (p + d - diff * diff) / (double)n;
    if (var < 0.0) var = 0.0;
    s.n = n;
    s.nps = 100.0 * diff;
    s.se = 100.0 * sqrt(var);
    s.ci_low = clamp100(s.nps - 1.96 * s.se);
    s.ci_high = clamp100(s.nps + 1.96 * s.se);
    s.defined = true;
    return s;
}
