/*
 * rfm.c — RFM arithmetic over sparse day buckets (DESIGN §6) and the day on which a quiet
 * customer's scores next change, which is when their RFM timer is due.
 */
#include "rfm.h"

#include <limits.h>

void cx_rfm_thresholds_from_config(const cx_config_t *cfg, cx_rfm_thresholds_t *t) {
    t->window_days = cfg->rfm_window_days;
    for (int i = 0; i < 4; i++) {
        t->r_days[i] = cfg->rfm_r_days[i];
        t->f_min[i] = cfg->rfm_f_min[i];
        t->m_min[i] = cfg->rfm_m_min[i];
    }
}

int cx_rfm_score_r(const cx_rfm_thresholds_t *t, int32_t recency_days) {
    for (int i = 0; i < 4; i++)
        if (recency_days <= t->r_days[i]) return 5 - i;
    return 1;
}

int cx_rfm_score_f(const cx_rfm_thresholds_t *t, int64_t frequency) {
    for (int i = 0; i < 4; i++)
        if (frequency >= t->f_min[i]) return 5 - i;
    return 1;
}

int cx_rfm_score_m(const cx_rfm_thresholds_t *t, int64_t monetary_minor) {
    for (int i = 0; i < 4; i++)
        if (monetary_minor >= t->m_min[i]) return 5 - i;
    return 1;
}

void cx_rfm_compute(const cx_profile_t *p, const cx_rfm_thresholds_t *t, int32_t wm_day, cx_rfm_t *out) {
    int64_t f = 0, m = 0;
    int32_t min_day = wm_day - t->window_days; /* buckets with day > min_day are inside */
    for (uint32_t i = p->n_buckets; i-- > 0;) {
        const cx_bucket_t *b = &p->buckets[i];
        if (b->day <= min_day) break;
        f += b->tx;
        m += b->amount_minor;
    }
    int32_t rec = wm_day - p->last_tx_day;
    out->recency_days = rec < 0 ? 0 : rec;
    out->frequency = f;
    out->monetary_minor = m;
    out->r = cx_rfm_score_r(t, out->recency_days);
    out->f = cx_rfm_score_f(t, f);
    out->m = cx_rfm_score_m(t, m);
}

int32_t cx_rfm_next_change_day(const cx_profile_t *p, const cx_rfm_thresholds_t *t, int32_t wm_day,
                               const cx_rfm_t *cur) {
    int32_t next = INT32_MAX;
    /* R drops when recency exceeds the threshold of its band: R=5 holds while recency <= r_days[0]. */
    if (cur->r > 1) {
        int32_t day = p->last_tx_day + t->r_days[5 - cur->r] + 1;
        if (day > wm_day) next = day;
    }
    /* F and M drop as buckets leave the window: bucket d is outside from day d + window_days on. */
    int64_t f = cur->frequency, m = cur->monetary_minor;
    int32_t min_day = wm_day - t->window_days;
    uint32_t i = 0;
    while (i < p->n_buckets && p->buckets[i].day <= min_day)
        i++;
    for (; i < p->n_buckets; i++) {
        int32_t expiry = p->buckets[i].day + t->window_days;
        if (expiry >= next) break;
        f -= p->buckets[i].tx;
        m -= p->buckets[i].amount_minor;
        if (cx_rfm_score_f(t, f) != cur->f || cx_rfm_score_m(t, m) != cur->m) return expiry;
    }
    return next;
}

cx_err_t cx_rfm_add_transaction(cx_profile_t *p, int64_t ts_ms, int64_t amount_minor, bool is_play, int32_t wm_day,
                                int32_t keep_days, bool *new_play_day) {
    bool fresh = true;
    int32_t day = (int32_t)cx_day(ts_ms);
    bool had_day;
    if (!p->has_tx) {
        had_day = false;
    } else if (day > p->last_tx_day || day < p->first_tx_day) {
        had_day = false;
    } else if (day == p->first_tx_day || day == p->last_tx_day) {
        had_day = true;
    } else {
        /* between first and last: known exactly while the day's bucket is retained; a day older
         * than the retained buckets counts as a new distinct day (documented in docs/design.md) */
        had_day = false;
        for (uint32_t i = 0; i < p->n_buckets; i++)
            if (p->buckets[i].day == day) {
                had_day = p->buckets[i].tx > 0;
                break;
            }
    }
    int32_t oldest = p->n_buckets ? p->buckets[0].day : INT32_MAX;
    int32_t horizon_ref = p->has_tx && p->last_tx_day < wm_day ? p->last_tx_day : wm_day;
    if (day > horizon_ref - keep_days || day >= oldest) {
        cx_bucket_t *b = cx_profile_bucket(p, day);
        if (!b) return CX_ERR_NOMEM;
        if (b->tx < CX_BUCKET_TX_MAX) b->tx++;
        if (is_play) {
            fresh = !b->play;
            b->play = 1;
        }
        b->amount_minor += amount_minor;
    }
    if (!p->has_tx) {
        p->has_tx = true;
        p->first_tx_ts_ms = p->last_tx_ts_ms = ts_ms;
        p->first_tx_day = p->last_tx_day = day;
        p->tx_days = 1;
        p->first_day_revenue_minor = amount_minor;
    } else {
        if (!had_day) p->tx_days++;
        if (day < p->first_tx_day) {
            p->first_tx_day = day;
            p->first_day_revenue_minor = amount_minor;
        } else if (day == p->first_tx_day) {
            p->first_day_revenue_minor += amount_minor;
        }
        if (day > p->last_tx_day) p->last_tx_day = day;
        if (ts_ms < p->first_tx_ts_ms) p->first_tx_ts_ms = ts_ms;
        if (ts_ms > p->last_tx_ts_ms) p->last_tx_ts_ms = ts_ms;
    }
    int32_t ref = p->last_tx_day < wm_day ? p->last_tx_day : wm_day;
    cx_profile_prune_buckets(p, ref - keep_days + 1);
    if (new_play_day) *new_play_day = fresh;
    return CX_OK;
}
