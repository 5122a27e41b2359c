/*
 * triggers.c — disengagement rules (DESIGN §6): when silence or a drop becomes a trigger. Due times
 * are computed when a transaction arrives, as if no further play came; the pipeline keeps them as
 * event-time timers and asks cx_triggers_decide() when one comes due, which re-checks the rule on
 * the state of that moment (late events may have changed it) and applies the shared cooldown.
 */
#include "triggers.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define DROP_SPAN_MAX 512 /* days covered by the play-day bitmap of cx_triggers_drop_due_ms */

static int64_t day_start(int64_t day) {
    return day * CX_DAY_MS;
}

static int unit_of(const cx_config_t *cfg) {
    return cfg->bgnbd_unit_days > 0 ? cfg->bgnbd_unit_days : 7;
}

/* Gaps between the kept play days, in days; returns their count. */
static unsigned gaps_of(const cx_profile_t *p, double gaps[CX_PLAY_DAYS_KEPT]) {
    unsigned n = 0;
    for (unsigned i = 1; i < p->n_play_days; i++)
        gaps[n++] = (double)(p->play_days[i] - p->play_days[i - 1]);
    return n;
}

bool cx_triggers_add_play_day(cx_profile_t *pr, int32_t day) {
    unsigned n = pr->n_play_days;
    for (unsigned i = 0; i < n; i++)
        if (pr->play_days[i] == day) return false;
    if (n == CX_PLAY_DAYS_KEPT && day < pr->play_days[0]) return false; /* older than the kept ones */
    pr->play_days_total++;
    if (n == CX_PLAY_DAYS_KEPT) {
        memmove(pr->play_days, pr->play_days + 1, (n - 1) * sizeof(int32_t));
        n--;
    }
    unsigned pos = n;
    while (pos > 0 && pr->play_days[pos - 1] > day)
        pos--;
    memmove(pr->play_days + pos + 1, pr->play_days + pos, (n - pos) * sizeof(int32_t));
    pr->play_days[pos] = day;
    pr->n_play_days = (uint8_t)(n + 1);
    return true;
}

bool cx_triggers_usual_gap(const cx_profile_t *p, double *gap_days) {
    double g[CX_PLAY_DAYS_KEPT];
    unsigned n = gaps_of(p, g);
    if (n == 0) return false;
    /* insertion sort: at most 9 gaps, on every play (qsort's indirect calls were 5% of the thread) */
    for (unsigned i = 1; i < n; i++) {
        double v = g[i];
        unsigned j = i;
        for (; j > 0 && g[j - 1] > v; j--)
            g[j] = g[j - 1];
        g[j] = v;
    }
    *gap_days = n % 2 ? g[n / 2] : (g[n / 2 - 1] + g[n / 2]) / 2.0;
    return true;
}

bool cx_triggers_gap_cv(const cx_profile_t *p, double *cv) {
    double g[CX_PLAY_DAYS_KEPT];
    unsigned n = gaps_of(p, g);
    if (n == 0) return false;
    double mean = 0, var = 0;
    for (unsigned i = 0; i < n; i++)
        mean += g[i];
    mean /= n;
    for (unsigned i = 0; i < n; i++)
        var += (g[i] - mean) * (g[i] - mean);
    var /= n;
    *cv = mean > 0 ? sqrt(var) / mean : 0.0; /* play days are distinct: mean >= 1 */
    return true;
}

int64_t cx_triggers_stop_due_ms(const cx_profile_t *p, const cx_config_t *cfg) {
    double gap;
    if (p->n_play_days == 0 || p->play_days_total < (uint32_t)cfg->inactivity_min_play_days ||
        !cx_triggers_usual_gap(p, &gap))
        return 0;
    /* the small epsilon keeps k x gap = 21.000000000000004 at 21 days */
    double span = ceil(cfg->inactivity_k * gap - 1e-9);
    int64_t days = span > cfg->inactivity_min_days ? (int64_t)span : cfg->inactivity_min_days;
    return day_start((int64_t)p->play_days[p->n_play_days - 1] + days);
}

/* ---------- ENGAGEMENT_DROP ---------- */

/* Whole weeks of history before the recent window of `day`, at most the baseline's 12. */
static int history_weeks(const cx_profile_t *p, int32_t day) {
    int64_t before = (int64_t)day - CX_TRIGGERS_RECENT_DAYS - p->first_tx_day;
    if (!p->has_tx || before < 0) return 0;
    return before / 7 > CX_TRIGGERS_BASELINE_WEEKS ? CX_TRIGGERS_BASELINE_WEEKS : (int)(before / 7);
}

static bool drop_rule(const cx_config_t *cfg, int h, uint32_t recent, uint32_t base) {
    if (h <= 0 || h < cfg->drop_min_history_weeks || recent == 0) return false;
    double rate = (double)base / h;
    return rate >= 1.0 && (double)recent < cfg->drop_fraction * 4.0 * rate;
}

/* Play days (buckets with a play) in [a, b]. */
static uint32_t play_days_in(const cx_profile_t *p, int64_t a, int64_t b) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_buckets; i++)
        if (p->buckets[i].day >= a && p->buckets[i].day <= b && p->buckets[i].play) n++;
    return n;
}

bool cx_triggers_drop_holds(const cx_profile_t *p, const cx_config_t *cfg, int32_t day) {
    int h = history_weeks(p, day);
    if (h <= 0) return false;
    int64_t rstart = (int64_t)day - CX_TRIGGERS_RECENT_DAYS;
    return drop_rule(cfg, h, play_days_in(p, rstart, (int64_t)day - 1), play_days_in(p, rstart - 7 * h, rstart - 1));
}

/* Bits set in x (portable SWAR: the x86-64 baseline has no POPCNT, and libgcc's call was slower). */
static inline uint32_t popcount64(uint64_t x) {
    x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0F0F0F0F0F0F0F0F);
    return (uint32_t)((x * UINT64_C(0x0101010101010101)) >> 56);
}

/* Set bits of `bits` in [a, b] (0 <= a; none when b < a): the end words masked, the words between
 * whole (the windows span two words at most, three for a 12-week baseline). */
static uint32_t bits_in(const uint64_t *bits, int64_t a, int64_t b) {
    if (b < a) return 0;
    int64_t wa = a >> 6, wb = b >> 6;
    uint64_t first = ~UINT64_C(0) << (a & 63), last = ~UINT64_C(0) >> (63 - (b & 63));
    if (wa == wb) return popcount64(bits[wa] & first & last);
    uint32_t n = popcount64(bits[wa] & first) + popcount64(bits[wb] & last);
    for (int64_t w = wa + 1; w < wb; w++)
        n += popcount64(bits[w]);
    return n;
}

static inline uint32_t bit_at(const uint64_t *bits, int64_t i) {
    return (uint32_t)(bits[i >> 6] >> (i & 63)) & 1u;
}

/* Index of the m-th (1-based) set bit of `bits` at or after index a; the caller knows it exists. */
static int64_t nth_bit_from(const uint64_t *bits, int64_t a, uint32_t m) {
    int64_t w = a >> 6;
    uint64_t x = bits[w] & (~UINT64_C(0) << (a & 63));
    for (;;) {
        uint32_t c = popcount64(x);
        if (c >= m) {
            for (; m > 1; m--)
                x &= x - 1;
            return w * 64 + __builtin_ctzll(x);
        }
        m -= c;
        x = bits[++w];
    }
}

/* The first day on which history_weeks counts h weeks (0 <= h <= the cap) of a profile with a
 * transaction. */
static int64_t history_day(const cx_profile_t *p, int h) {
    return (int64_t)p->first_tx_day + CX_TRIGGERS_RECENT_DAYS + 7 * (int64_t)h;
}

/* The first day after one with h weeks of history on which history_weeks counts h + 1 (never once
 * h is the baseline's cap). */
static int64_t next_week_day(const cx_profile_t *p, int h) {
    return p->has_tx && h < CX_TRIGGERS_BASELINE_WEEKS ? history_day(p, h + 1) : INT64_MAX;
}

int64_t cx_triggers_drop_due_ms(const cx_profile_t *p, const cx_config_t *cfg, int32_t from_day) {
    if (p->n_play_days == 0) return 0;
    int64_t last =
        (int64_t)p->play_days[p->n_play_days - 1] + CX_TRIGGERS_RECENT_DAYS; /* recent window still holds it */
    if (last < from_day) return 0;
    int64_t lo = (int64_t)from_day - CX_TRIGGERS_RECENT_DAYS - 7 * CX_TRIGGERS_BASELINE_WEEKS;
    int64_t span = last - lo;
    if (span > DROP_SPAN_MAX) { /* not reached with in-order events; stay correct anyway */
        for (int64_t d = from_day; d <= last; d++)
            if (cx_triggers_drop_holds(p, cfg, (int32_t)d)) return day_start(d);
        return 0;
    }
    /* the rule needs hmin whole weeks of history before the recent window: a history too short on
     * every day up to `last` needs no bitmap */
    const int hmin = cfg->drop_min_history_weeks > 1 ? cfg->drop_min_history_weeks : 1;
    if (!p->has_tx || hmin > CX_TRIGGERS_BASELINE_WEEKS || history_day(p, hmin) > last) return 0;
    /* The baseline holds at most 7h play days, so the rule needs recent < fraction x 4 x 7 (the same
     * products as drop_rule's, rounded the same way); (double)recent >= that <=> recent >= need
     * (recent <= 28, exact as a double). */
    const int64_t R = CX_TRIGGERS_RECENT_DAYS;
    const double need_d = ceil(cfg->drop_fraction * 4.0 * 7.0);
    if (need_d <= 0) return 0; /* every count is at or above the bound: the rule never holds */
    const uint32_t need = need_d > 64 ? 64 : (uint32_t)need_d;
    /* bit i: a play day at lo + i; counts are popcounts of bit ranges (8 words at most) */
    uint64_t bits[DROP_SPAN_MAX / 64 + 1];
    memset(bits, 0, sizeof bits);
    for (uint32_t k = p->n_buckets; k-- > 0;) { /* newest first: the days before lo end the walk */
        int64_t d = p->buckets[k].day;
        if (d < lo) break;
        uint64_t off = (uint64_t)(d - lo);
        if (off < (uint64_t)span && p->buckets[k].play) bits[off >> 6] |= UINT64_C(1) << (off & 63);
    }
    /* Day d's windows (indices from lo): recent [d - R, d - 1], baseline [d - R - 7h, d - R - 1]; both
     * slide by one day per step, h grows every 7 days up to its cap (history_weeks), and the baseline
     * is counted again when h changes or after days it was not kept for. A day with recent >= need
     * (after a run of daily plays), with no recent play, or with too little history costs only the
     * recent window's slide, and runs of such days are jumped over where their end is known. */
    int64_t top = -1; /* the last play day's index: no window after it gains a play */
    for (int w = DROP_SPAN_MAX / 64; w >= 0 && top < 0; w--)
        if (bits[w]) top = (int64_t)w * 64 + 63 - __builtin_clzll(bits[w]);
    int64_t i = from_day - lo; /* d - lo */
    uint32_t recent = bits_in(bits, i - R, i - 1), base = 0;
    int h = history_weeks(p, from_day), hb = 0; /* hb: the h `base` was counted for (0: not counted) */
    int64_t grow = next_week_day(p, h);
    for (int64_t d = from_day; d <= last; d++, i++) {
        if (d > from_day) recent += bit_at(bits, i - 1) - bit_at(bits, i - 1 - R);
        if (d == grow) {
            h++;
            grow = next_week_day(p, h);
        }
        if (h < hmin || recent == 0 || recent >= need) {
            hb = 0;
            /* Skip the days that cannot qualify either: until the history reaches hmin weeks (it
             * grows with the day alone), or, once no later window gains a play (i > top), until
             * enough of the recent window's oldest plays have left it (recent - need + 1 of them). */
            int64_t next = 0;
            if (h < hmin) {
                next = history_day(p, hmin);
            } else if (recent && i > top) {
                next = lo + nth_bit_from(bits, i - R, recent - need + 1) + 1 + R;
            }
            if (next > d + 1) {
                if (next > last) return 0;
                d = next - 1; /* the loop's step takes d to next, sliding the windows by one day */
                i = d - lo;
                recent = bits_in(bits, i - R, i - 1);
                h = history_weeks(p, (int32_t)d);
                grow = next_week_day(p, h);
            }
            continue;
        }
        if (h != hb) {
            base = bits_in(bits, i - R - 7 * h, i - R - 1);
            hb = h;
        } else
            base += bit_at(bits, i - R - 1) - bit_at(bits, i - R - 1 - 7 * h);
        if (drop_rule(cfg, h, recent, base)) return day_start(d);
    }
    return 0;
}

/* ---------- BG/NBD: P(alive), CLV, CHURN_RISK ---------- */

static double p_alive_days(const cx_profile_t *p, const cx_bgnbd_params_t *bg, int unit, int64_t day) {
    if (!p->has_tx || p->tx_days <= 1) return 1.0;
    double t_x = (double)(p->last_tx_day - p->first_tx_day);
    double T = (double)(day - p->first_tx_day);
    if (T < t_x) T = t_x;
    return cx_bgnbd_p_alive(bg, (double)(p->tx_days - 1), t_x / unit, T / unit);
}

double cx_triggers_p_alive(const cx_profile_t *p, const cx_bgnbd_params_t *bg, int unit_days, int32_t day) {
    return p_alive_days(p, bg, unit_days > 0 ? unit_days : 7, day);
}

int64_t cx_triggers_clv_minor(const cx_profile_t *p, const cx_config_t *cfg, const cx_bgnbd_params_t *bg,
                              const cx_gg_params_t *gg, int32_t day) {
    if (!p->has_tx) return 0;
    int unit = unit_of(cfg);
    int64_t x = p->tx_days - 1;
    double t_x = (double)(p->last_tx_day - p->first_tx_day);
    double T = (double)day - p->first_tx_day;
    if (T < t_x) T = t_x;
    double m = x > 0 ? (double)(p->revenue_total_minor - p->first_day_revenue_minor) / (double)x : 0.0;
    /* x > 0: the Gamma-Gamma posterior mean p(gamma + x m)/(p x + q - 1), also when m = 0 (repeat
     * transactions that were all plays inside a subscription pull the spend towards 0); only a
     * customer without repeat days gets the population mean */
    double spend = cx_gg_expected_spend(gg, (double)x, m);
    double n_h = cx_bgnbd_expected(bg, (double)x, t_x / unit, T / unit, (double)cfg->clv_horizon_days / unit);
    return (int64_t)(n_h * spend);
}

int64_t cx_triggers_churn_due_ms(const cx_profile_t *p, const cx_config_t *cfg, const cx_bgnbd_params_t *bg,
                                 int32_t from_day) {
    if (!p->has_tx || p->tx_days <= 1) return 0;
    int unit = unit_of(cfg);
    double thr = cfg->churn_p_alive;
    int64_t lo = from_day, hi = (int64_t)p->last_tx_day + CX_TRIGGERS_CHURN_HORIZON_DAYS;
    /* The closed-form inverse names the day and two evaluations confirm it: P falls monotonically
     * with the day, so P(g - 1) >= thr > P(g) with lo <= g - 1 and g <= hi is what the checks and the
     * search below find. Rounding can put the guess a day off; then they decide. */
    double T = cx_bgnbd_p_alive_T(bg, (double)(p->tx_days - 1), (double)(p->last_tx_day - p->first_tx_day) / unit, thr);
    double guess = floor((double)p->first_tx_day + T * unit) + 1.0; /* the first whole day past it */
    if (guess > (double)lo && guess <= (double)hi) {
        int64_t g = (int64_t)guess;
        if (p_alive_days(p, bg, unit, g) < thr && !(p_alive_days(p, bg, unit, g - 1) < thr)) return day_start(g);
    }
    if (p_alive_days(p, bg, unit, lo) < thr) return day_start(lo);
    if (hi <= lo || !(p_alive_days(p, bg, unit, hi) < thr)) return 0;
    while (hi - lo > 1) { /* invariant: P(lo) >= thr > P(hi) */
        int64_t mid = lo + (hi - lo) / 2;
        if (p_alive_days(p, bg, unit, mid) < thr)
            hi = mid;
        else
            lo = mid;
    }
    return day_start(hi);
}

/* ---------- arming and deciding ---------- */

int64_t *cx_triggers_due_field(cx_profile_t *p, cx_trigger_kind_t kind) {
    switch (kind) {
    case CX_TRIG_STOPPED_STREAMING: return &p->stop_due_ms;
    case CX_TRIG_ENGAGEMENT_DROP: return &p->drop_due_ms;
    default: return &p->churn_due_ms;
    }
}

void cx_triggers_clear_due(cx_profile_t *p, cx_trigger_kind_t kind) {
    *cx_triggers_due_field(p, kind) = 0;
    if (kind == CX_TRIG_ENGAGEMENT_DROP) p->drop_armed_first = 0; /* the next play searches again */
}

static bool set_due(cx_profile_t *p, cx_trigger_kind_t kind, int64_t due, int64_t wm_ms) {
    if (due && (due <= wm_ms || due == p->last_trigger_due_ms[kind])) due = 0;
    int64_t *f = cx_triggers_due_field(p, kind);
    if (*f == due) return false;
    *f = due;
    return true;
}

bool cx_triggers_arm(cx_profile_t *p, const cx_config_t *cfg, const cx_bgnbd_params_t *bg, int64_t wm_ms, bool play,
                     bool new_play_day) {
    int32_t from_day;
    if (wm_ms == INT64_MIN)
        from_day = p->has_tx ? p->last_tx_day + 1 : 0;
    else
        from_day = (int32_t)cx_day(wm_ms) + 1;
    bool known_cadence = p->play_days_total >= (uint32_t)cfg->inactivity_min_play_days;
    bool changed = false;
    if (play) {
        /* a play on a known play day: the dues stand (cx_triggers_arm in triggers.h); a
         * STOPPED_STREAMING due of 0 is computed again, as is an ENGAGEMENT_DROP due after it fired
         * (cx_triggers_clear_due) or its history's first day moved */
        if (new_play_day || !p->stop_due_ms)
            changed |= set_due(p, CX_TRIG_STOPPED_STREAMING, cx_triggers_stop_due_ms(p, cfg), wm_ms);
        if (new_play_day || p->drop_armed_first != p->first_tx_day + 1) {
            changed |= set_due(p, CX_TRIG_ENGAGEMENT_DROP,
                               known_cadence ? cx_triggers_drop_due_ms(p, cfg, from_day) : 0, wm_ms);
            /* without a watermark the search starts after the last transaction day, which a later
             * watermark may undercut: nothing is kept then */
            p->drop_armed_first = wm_ms == INT64_MIN ? 0 : p->first_tx_day + 1;
        }
    }
    changed |=
        set_due(p, CX_TRIG_CHURN_RISK, known_cadence ? 0 : cx_triggers_churn_due_ms(p, cfg, bg, from_day), wm_ms);
    return changed;
}

bool cx_triggers_eligible(const cx_profile_t *p, const cx_config_t *cfg, int64_t ts_ms) {
    for (int t = 0; t < CX_CT__COUNT; t++) {
        int64_t weeks = cfg->exclusion_weeks[t];
        if (weeks <= 0 || !(p->has_latest_by_type & (1u << t))) continue;
        if (ts_ms - p->latest_by_type[t].ts_ms < weeks * 7 * CX_DAY_MS) return false;
    }
    return true;
}

cx_action_t cx_triggers_action(const cx_profile_t *p, const cx_config_t *cfg) {
    double cv;
    if (p->n_play_days >= 8 && cx_triggers_gap_cv(p, &cv) && cv < cfg->trigger_regular_cv) return CX_ACT_LOGIN_REMINDER;
    if (p->m_score >= 4) return CX_ACT_WIN_BACK_OFFER;
    return CX_ACT_NEW_RELEASE;
}

const char *cx_triggers_top_genre(const cx_profile_t *p) {
    int best = -1;
    for (int i = 0; i < CX_GENRES_KEPT; i++) {
        uint32_t n = p->genre_count[i];
        if (!n) continue;
        if (best < 0 || n > p->genre_count[best] ||
            (n == p->genre_count[best] && strcmp(cx_sid_str(&p->genre[i]), cx_sid_str(&p->genre[best])) < 0))
            best = i;
    }
    return best < 0 ? NULL : cx_sid_str(&p->genre[best]);
}

/* The most recent contact (TEST send) of any kind, or NULL. */
static const cx_pcontact_t *last_contact(const cx_profile_t *p) {
    const cx_pcontact_t *c = p->n_contacts ? &p->contacts[p->n_contacts - 1] : NULL;
    for (int t = 0; t < CX_CT__COUNT; t++)
        if ((p->has_latest_by_type & (1u << t)) && (!c || p->latest_by_type[t].ts_ms > c->ts_ms))
            c = &p->latest_by_type[t];
    return c;
}

static bool condition_holds(const cx_profile_t *p, const cx_config_t *cfg, const cx_bgnbd_params_t *bg,
                            cx_trigger_kind_t kind, int64_t due_ms) {
    int32_t day = (int32_t)cx_day(due_ms);
    switch (kind) {
    case CX_TRIG_STOPPED_STREAMING: {
        int64_t stop = cx_triggers_stop_due_ms(p, cfg);
        return stop && stop <= due_ms;
    }
    case CX_TRIG_ENGAGEMENT_DROP: return cx_triggers_drop_holds(p, cfg, day);
    case CX_TRIG_CHURN_RISK: return p_alive_days(p, bg, unit_of(cfg), day) < cfg->churn_p_alive;
    default: return false;
    }
}

bool cx_triggers_decide(cx_profile_t *p, const cx_config_t *cfg, const cx_bgnbd_params_t *bg, cx_trigger_kind_t kind,
                        int64_t due_ms, const char *segment, cx_trigger_t *out) {
    if ((unsigned)kind >= CX_TRIG__COUNT || !condition_holds(p, cfg, bg, kind, due_ms)) return false;
    if (p->last_trigger_ts_ms && due_ms - p->last_trigger_ts_ms < (int64_t)cfg->trigger_cooldown_days * CX_DAY_MS)
        return false;
    int32_t day = (int32_t)cx_day(due_ms);
    memset(out, 0, sizeof *out);
    cx_sid_get(&p->customer_id, out->customer_id, sizeof out->customer_id);
    out->ts_ms = due_ms;
    snprintf(out->trigger_id, sizeof out->trigger_id, "%s:%s:%" PRId64, out->customer_id, cx_trigger_kind_names[kind],
             due_ms);
    out->kind = kind;
    if (p->n_play_days) {
        out->has_days_since_last_play = true;
        out->days_since_last_play = day - p->play_days[p->n_play_days - 1];
    } else if (p->has_play) {
        out->has_days_since_last_play = true;
        out->days_since_last_play = (int32_t)(day - cx_day(p->last_play_ts_ms));
    }
    out->has_usual_gap_days = cx_triggers_usual_gap(p, &out->usual_gap_days);
    if (p->has_tx) {
        out->has_p_alive = true;
        out->p_alive = p_alive_days(p, bg, unit_of(cfg), day);
    }
    out->segment = segment ? segment : "";
    out->suggested_action = cx_triggers_action(p, cfg);
    const char *g = cx_triggers_top_genre(p);
    if (g) {
        out->has_top_genre = true;
        snprintf(out->top_genre, sizeof out->top_genre, "%s", g);
    }
    out->eligible = cx_triggers_eligible(p, cfg, due_ms);
    const cx_pcontact_t *c = last_contact(p);
    if (c) {
        out->has_last_contact_campaign_id = true;
        cx_sid_get(&c->campaign_id, out->last_contact_campaign_id, sizeof out->last_contact_campaign_id);
    }
    p->last_trigger_ts_ms = due_ms;
    p->last_trigger_due_ms[kind] = due_ms;
    return true;
}
