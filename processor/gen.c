/*
 * gen.c — the synthetic generator (see gen.h): customers with habits, campaigns, invalid records.
 *
 * Every customer and every campaign is a "stream" with its own splitmix64 state, so what a customer
 * does never depends on how streams interleave. A customer's events are generated one active day
 * at a time into a small queue; campaign responses are pushed into the customer as pending events
 * when the send is emitted. An indexed binary heap of streams, keyed by (next ts, record rank,
 * stream id), yields the records in non-decreasing event time; the rank puts a campaign before its
 * sends and follows the merge tie-break of DESIGN §2 (email_send, purchase, play, survey). One
 * more splitmix64 state, advanced in emission order, decides which records become invalid. No
 * libm in the generation path: same seed and options give the same bytes on every machine.
 */
#include "gen.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

/* ---------------------------------------------------------------- PRNG */

static uint64_t sm64(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
static double rnd_u(uint64_t *s) {
    return (double)(sm64(s) >> 11) * 0x1.0p-53;
}
static uint32_t rnd_n(uint64_t *s, uint32_t n) {
    return n ? (uint32_t)(sm64(s) % n) : 0;
}
static bool rnd_p(uint64_t *s, double p) {
    return rnd_u(s) < p;
}
/* Independent stream states: seed and stream number mixed through splitmix64 twice. */
static uint64_t stream_seed(uint64_t seed, uint64_t kind, uint64_t idx) {
    uint64_t s = seed ^ (kind * UINT64_C(0xD6E8FEB86659FD93));
    uint64_t a = sm64(&s);
    s = a ^ (idx * UINT64_C(0x9E3779B97F4A7C15));
    return sm64(&s);
}

/* ---------------------------------------------------------------- model */

enum { ARCH_HEAVY, ARCH_REGULAR, ARCH_BINGE, ARCH_RENTER, ARCH_SUBSCRIBER, ARCH_CASUAL, ARCH__COUNT };
static const char *const arch_names[ARCH__COUNT] = {"heavy_streamer",    "regular_weekly", "binge_watcher",
                                                    "occasional_renter", "subscriber",     "casual"};
/* Cumulative shares of the population, in per-mille. */
static const uint32_t arch_cum_pm[ARCH__COUNT] = {220, 440, 580, 720, 920, 1000};
/* Mean survey score ×10 per archetype; churners and droppers answer 4.0 on average. */
static const int arch_score10[ARCH__COUNT] = {86, 82, 76, 70, 74, 65};

#define N_GENRES 10
static const char *const genres[N_GENRES] = {"drama",  "comedy",  "thriller", "documentary", "kids",
                                             "action", "romance", "horror",   "scifi",       "anime"};
#define N_TITLES  2000 /* title i has genre i % 10; id "t%04u" */
#define N_DEVICES 4
static const char *const devices[N_DEVICES] = {"tv", "mobile", "web", "tablet"};
#define N_TOUCH 4
static const char *const touchpoints[N_TOUCH] = {"general", "playback", "support", "billing"};
/* [touchpoint][sentiment: 0 negative, 1 neutral, 2 positive][language: 0 English, 1 Swedish] */
static const char *const comments[N_TOUCH][3][2] = {
    {{"not worth the price", "inte värt pengarna"},
     {"it is fine, nothing special", "helt okej, inget speciellt"},
     {"love the selection", "älskar utbudet"}},
    {{"buffering all the time", "förfärligt långsam uppspelning"},
     {"sometimes slow to start", "ibland seg uppstart"},
     {"crisp picture, no stutter", "skarp bild och inga avbrott"}},
    {{"support never answered", "kundtjänst svarade aldrig"},
     {"support was ok", "kundtjänsten var okej"},
     {"support fixed it in minutes", "kundtjänst löste det på några minuter"}},
    {{"charged twice this month", "dubbeldebiterad den här månaden"},
     {"billing is clear enough", "fakturan är tydlig nog"},
     {"fair price for what you get", "prisvärt för det man får"}},
};
static const int32_t rental_amounts[] = {299, 349, 399, 499, 599};
static const int32_t buy_amounts[] = {999, 1299, 1499, 1999};
static const int32_t sub_amounts[] = {999, 1199, 1499};
static const int32_t pkg_amounts[] = {199, 299, 499};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define CURRENCY "SEK"

#define HOUR_MS  INT64_C(3600000)
#define MIN_MS   INT64_C(60000)

/* Queued kinds of a customer's day. */
enum { Q_PLAY, Q_RENTAL, Q_SUB, Q_PKG, Q_SURVEY, Q_BROWSE };
static const uint8_t q_rank[] = {3, 2, 2, 2, 4, 3}; /* merge rank of the record each kind becomes */
#define AUX_NONE 0xFFFF

typedef struct qent {
    uint32_t off_ms; /* offset in the day */
    uint8_t kind;
    uint16_t aux; /* title index, or AUX_NONE */
} qent_t;

typedef struct pend {
    int64_t ts_ms;
    uint8_t camp;
    uint8_t action; /* 0 play of a promoted title, 1 purchase of one */
} pend_t;

#define QCAP  14
#define NPEND 2
enum { CF_CHURNER = 1, CF_DROPPER = 2, CF_PKG = 4 };

typedef struct cust {
    uint64_t rng;
    /* truth, valid records only */
    int64_t last_play_ts; /* -1: none */
    int64_t revenue_minor;
    uint32_t plays, plays_ret, purchases, surveys, email_sends;
    /* habits */
    int32_t churn_day, drop_day; /* day index in the period, -1 none */
    int32_t next_day;            /* next day to generate */
    int32_t q_day;               /* day of the queued events */
    int32_t special_day;         /* next burst / rental / renewal day */
    int32_t play_day;            /* next play day of a gap-paced habit, or a weekly regular's catch-up */
    int32_t pause_day;           /* first day of a holiday break, -1 none */
    uint8_t pause_len;           /* its length in days */
    int16_t survey_day[2];
    uint16_t sub_amount;
    uint8_t arch, flags, fav_genre[2], device, weekdays, hour, burst_left;
    uint8_t qn, qh, npend;
    qent_t q[QCAP];
    pend_t pend[NPEND];
} cust_t;

typedef struct gcamp {
    cx_campaign_t c; /* owns name and promoted ids */
    uint16_t promoted[5];
    uint64_t rng;
    double p_resp;
    uint64_t cursor; /* next customer to consider */
    uint64_t cur;    /* the pending recipient */
    cx_group_t cur_group;
    bool have_send, emitted;
    int64_t send_base_ts;
    /* truth */
    uint32_t *test, *control;
    size_t n_test, cap_test, n_control, cap_control;
    uint64_t responses_test;
} gcamp_t;

struct cx_gen {
    cx_gen_opts_t o;
    int64_t end_ts_ms;
    uint64_t n_cust;
    size_t n_camp;
    cust_t *cust;
    gcamp_t *camp;
    /* heap of streams: customers 0..n_cust-1, then campaigns */
    uint32_t *heap;
    size_t heap_n;
    uint32_t *hpos; /* per stream; UINT32_MAX = not in the heap */
    int64_t *key_ts;
    uint8_t *key_rank;
    uint64_t inv_rng;
    uint64_t seq; /* event ids */
    uint64_t n_valid, n_invalid, n_campaigns;
    uint64_t inv_counts[CX_DLQ__COUNT];
    cx_event_t ev;
    cx_codec_t *codec; /* NULL with CX_GEN_RAW_NONE */
    cx_buf_t raw;
    char key[CX_ID_MAX + 1];
    char err[256];
};

#define NOPOS UINT32_MAX

cx_gen_opts_t cx_gen_opts_default(void) {
    cx_gen_opts_t o = {.customers = 10000,
                       .days = 90,
                       .seed = 1,
                       .invalid_rate = 0.01,
                       .control_share = 0.1,
                       .start_ts_ms = CX_GEN_DEFAULT_START_TS_MS,
                       .raw = CX_GEN_RAW_WIRE};
    return o;
}

static void cust_id(char *out, size_t n, uint64_t idx) {
    snprintf(out, n, "c%07" PRIu64, idx);
}

/* ---------------------------------------------------------------- heap */

static bool key_less(const cx_gen_t *g, uint32_t a, uint32_t b) {
    if (g->key_ts[a] != g->key_ts[b]) return g->key_ts[a] < g->key_ts[b];
    if (g->key_rank[a] != g->key_rank[b]) return g->key_rank[a] < g->key_rank[b];
    return a < b;
}

static void heap_set(cx_gen_t *g, size_t i, uint32_t s) {
    g->heap[i] = s;
    g->hpos[s] = (uint32_t)i;
}

static void heap_up(cx_gen_t *g, size_t i) {
    uint32_t s = g->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!key_less(g, s, g->heap[p])) break;
        heap_set(g, i, g->heap[p]);
        i = p;
    }
    heap_set(g, i, s);
}

static void heap_down(cx_gen_t *g, size_t i) {
    uint32_t s = g->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        uint32_t best = s;
        if (l < g->heap_n && key_less(g, g->heap[l], best)) m = l, best = g->heap[l];
        if (l + 1 < g->heap_n && key_less(g, g->heap[l + 1], best)) m = l + 1, best = g->heap[l + 1];
        if (m == i) break;
        heap_set(g, i, best);
        i = m;
    }
    heap_set(g, i, s);
}

static void heap_remove(cx_gen_t *g, uint32_t s) {
    size_t i = g->hpos[s];
    g->hpos[s] = NOPOS;
    g->heap_n--;
    if (i == g->heap_n) return;
    uint32_t moved = g->heap[g->heap_n];
    heap_set(g, i, moved);
    heap_down(g, i);
    heap_up(g, g->hpos[moved]);
}

/* Re-keys stream s after its next record changed: ts INT64_MAX removes it. */
static void heap_update(cx_gen_t *g, uint32_t s, int64_t ts, uint8_t rank) {
    g->key_ts[s] = ts;
    g->key_rank[s] = rank;
    if (ts == INT64_MAX) {
        if (g->hpos[s] != NOPOS) heap_remove(g, s);
        return;
    }
    if (g->hpos[s] == NOPOS) {
        heap_set(g, g->heap_n++, s);
        heap_up(g, g->heap_n - 1);
        return;
    }
    size_t i = g->hpos[s];
    heap_up(g, i);
    heap_down(g, g->hpos[s]);
}

/* ---------------------------------------------------------------- customers */

static int weekday(const cx_gen_t *g, int32_t d) { /* 0 = Monday */
    int64_t day = cx_day(g->o.start_ts_ms) + d;
    return (int)(((day + 3) % 7 + 7) % 7);
}

static void q_push(cust_t *c, uint32_t off_ms, uint8_t kind, uint16_t aux) {
    if (c->qn >= QCAP) return; /* a very full day loses its last events: deterministic */
    if (off_ms >= (uint32_t)CX_DAY_MS) off_ms = (uint32_t)CX_DAY_MS - 1;
    size_t i = c->qn++;
    while (i > 0 && c->q[i - 1].off_ms > off_ms) {
        c->q[i] = c->q[i - 1];
        i--;
    }
    c->q[i] = (qent_t){off_ms, kind, aux};
}

static uint32_t hm(int h, int m) {
    return (uint32_t)(h * HOUR_MS + m * MIN_MS);
}

/* Plays a session of n plays starting at off, each 40..140 minutes after the previous one. One
 * session in five starts with a short browse (a trailer, a title sampled and left: under 120 s, so
 * not a retrieval) a few minutes before the real play: browsing comes on top of watching, it never
 * replaces it. */
static void q_session(cust_t *c, uint32_t off, int n) {
    if (rnd_p(&c->rng, 0.2)) q_push(c, off - (uint32_t)((2 + rnd_n(&c->rng, 14)) * MIN_MS), Q_BROWSE, AUX_NONE);
    for (int i = 0; i < n; i++) {
        q_push(c, off, Q_PLAY, AUX_NONE);
        off += (uint32_t)((40 + rnd_n(&c->rng, 101)) * MIN_MS) + rnd_n(&c->rng, 60000);
    }
}

/* Whether day d lies in c's holiday break. */
static bool in_pause(const cust_t *c, int32_t d) {
    return c->pause_day >= 0 && d >= c->pause_day && d < c->pause_day + c->pause_len;
}

/* Fills c's queue with the events of day d (may be none). Habits that are paced by gaps keep the
 * next play day in play_day; a day inside a holiday break has no plays, rentals or responses (a
 * subscription still renews: billing does not take holidays) and the habit resumes after it. */
static void gen_day(const cx_gen_t *g, cust_t *c, int32_t d) {
    uint64_t *r = &c->rng;
    bool dropped = (c->flags & CF_DROPPER) && d >= c->drop_day;
    bool paused = in_pause(c, d);
    c->qn = 0;
    c->qh = 0;
    c->q_day = d;
    switch (c->arch) {
    case ARCH_HEAVY:
        if (paused) break;
        if (dropped) { /* a fifth of the rate, still a rhythm: a session every 3..9 days */
            if (d >= c->play_day) {
                q_session(c, hm(18, 0) + rnd_n(r, (uint32_t)(150 * MIN_MS)), 1 + (int)rnd_n(r, 2));
                c->play_day = d + 3 + (int32_t)rnd_n(r, 7);
            }
        } else if (rnd_p(r, 0.8)) {
            q_session(c, hm(18, 0) + rnd_n(r, (uint32_t)(150 * MIN_MS)), 1 + (int)rnd_n(r, 3));
        }
        break;
    case ARCH_REGULAR: {
        if (paused) break;
        uint32_t off = hm(c->hour, 0) - (uint32_t)(20 * MIN_MS) + rnd_n(r, (uint32_t)(40 * MIN_MS));
        if (dropped) { /* the routine breaks: a session every 9..13 days */
            if (d >= c->play_day) {
                q_session(c, off, 1);
                c->play_day = d + 9 + (int32_t)rnd_n(r, 5);
            }
        } else if ((c->weekdays >> weekday(g, d)) & 1) {
            if (rnd_p(r, 0.95))
                q_session(c, off, rnd_p(r, 0.2) ? 2 : 1);
            else if (rnd_p(r, 0.8))
                c->play_day = d + 1 + (int32_t)rnd_n(r, 3); /* catch up in 1..3 days */
        } else if (d == c->play_day) {
            q_session(c, off, 1);
        }
        break;
    }
    case ARCH_BINGE:
        if (paused) break;
        if (c->burst_left == 0 && d >= c->special_day) {
            c->burst_left = (uint8_t)(2 + rnd_n(r, 3));
            c->special_day = d + c->burst_left + 3 + (int32_t)rnd_n(r, 7); /* then 3..9 days off */
        }
        if (c->burst_left > 0) {
            c->burst_left--;
            q_session(c, hm(13, 0) + rnd_n(r, (uint32_t)(240 * MIN_MS)), 3 + (int)rnd_n(r, 5));
        }
        break;
    case ARCH_RENTER:
        if (paused) break;
        if (d >= c->special_day) {
            uint32_t off = hm(19, 0) + rnd_n(r, (uint32_t)(180 * MIN_MS));
            uint16_t t = (uint16_t)(rnd_n(r, 200) * N_GENRES + c->fav_genre[rnd_n(r, 2)]);
            q_push(c, off, Q_RENTAL, t);
            q_push(c, off + (uint32_t)((5 + rnd_n(r, 26)) * MIN_MS), Q_PLAY, t);
            if (rnd_p(r, 0.3)) q_session(c, off + (uint32_t)(150 * MIN_MS), 1); /* and something from the catalogue */
            c->special_day = d + 14 + (int32_t)rnd_n(r, 22);
        }
        break;
    case ARCH_SUBSCRIBER:
        if (d == c->special_day) {
            q_push(c, hm(2, 0) + rnd_n(r, (uint32_t)HOUR_MS), Q_SUB, AUX_NONE);
            c->special_day += 30;
            if ((c->flags & CF_PKG) && rnd_p(r, 0.3))
                q_push(c, hm(20, 0) + rnd_n(r, (uint32_t)(120 * MIN_MS)), Q_PKG, AUX_NONE);
        }
        if (!paused && d >= c->play_day) { /* a few evenings a week: every 1..4 days */
            q_session(c, hm(19, 0) + rnd_n(r, (uint32_t)(180 * MIN_MS)), 1 + (int)rnd_n(r, 2));
            c->play_day = d + 1 + (int32_t)rnd_n(r, 4);
        }
        break;
    default: /* casual: back every 10..29 days, one play in five a rental */
        if (d >= c->play_day) {
            uint32_t off = hm(10, 0) + rnd_n(r, (uint32_t)(11 * HOUR_MS));
            if (rnd_p(r, 0.2)) {
                uint16_t t = (uint16_t)rnd_n(r, N_TITLES);
                q_push(c, off, Q_RENTAL, t);
                q_push(c, off + (uint32_t)(10 * MIN_MS), Q_PLAY, t);
            } else {
                q_session(c, off, 1);
            }
            c->play_day = d + 10 + (int32_t)rnd_n(r, 20);
        }
        break;
    }
    if (paused) return;
    for (int i = 0; i < 2; i++)
        if (c->survey_day[i] == d) q_push(c, hm(9, 0) + rnd_n(r, (uint32_t)(12 * HOUR_MS)), Q_SURVEY, AUX_NONE);
}

/* Days on which c is still active end at the period end or the churn day. */
static int32_t cust_last_day(const cx_gen_t *g, const cust_t *c) {
    return (c->flags & CF_CHURNER) ? c->churn_day : g->o.days;
}

static void cust_rekey(cx_gen_t *g, uint64_t idx) {
    cust_t *c = &g->cust[idx];
    int32_t stop = cust_last_day(g, c);
    while (c->qh >= c->qn && c->next_day < stop)
        gen_day(g, c, c->next_day++);
    int64_t ts = INT64_MAX;
    uint8_t rank = 0;
    if (c->qh < c->qn) {
        ts = g->o.start_ts_ms + (int64_t)c->q_day * CX_DAY_MS + c->q[c->qh].off_ms;
        rank = q_rank[c->q[c->qh].kind];
    }
    for (int i = 0; i < c->npend; i++) {
        uint8_t pr = c->pend[i].action ? 2 : 3;
        if (c->pend[i].ts_ms < ts || (c->pend[i].ts_ms == ts && pr < rank)) ts = c->pend[i].ts_ms, rank = pr;
    }
    heap_update(g, (uint32_t)idx, ts, rank);
}

static void cust_init(cx_gen_t *g, uint64_t idx) {
    cust_t *c = &g->cust[idx];
    memset(c, 0, sizeof *c);
    c->rng = stream_seed(g->o.seed, 1, idx);
    uint64_t *r = &c->rng;
    uint32_t a = rnd_n(r, 1000);
    c->arch = 0;
    while (a >= arch_cum_pm[c->arch])
        c->arch++;
    c->last_play_ts = -1;
    c->churn_day = c->drop_day = c->pause_day = c->play_day = -1;
    c->survey_day[0] = c->survey_day[1] = -1;
    c->fav_genre[0] = (uint8_t)rnd_n(r, N_GENRES);
    c->fav_genre[1] = (uint8_t)rnd_n(r, N_GENRES);
    c->device = (uint8_t)rnd_n(r, N_DEVICES);
    c->hour = (uint8_t)(18 + rnd_n(r, 4));
    c->weekdays = (uint8_t)(1u << rnd_n(r, 7));
    if (rnd_p(r, 0.3)) c->weekdays |= (uint8_t)(1u << rnd_n(r, 7));
    int32_t days = g->o.days;
    if (c->arch == ARCH_HEAVY || c->arch == ARCH_REGULAR) {
        double u = rnd_u(r);
        if (u < 0.15 && days >= 2) {
            /* churn inside the period: between 30% and 75% of it */
            int32_t lo = days * 3 / 10, hi = days * 3 / 4;
            if (lo < 1) lo = 1;
            if (hi < lo) hi = lo;
            c->flags |= CF_CHURNER;
            c->churn_day = lo + (int32_t)rnd_n(r, (uint32_t)(hi - lo + 1));
        } else if (u < 0.25 && days >= 2) {
            int32_t lo = days * 55 / 100, hi = days * 4 / 5;
            if (lo < 1) lo = 1;
            if (hi < lo) hi = lo;
            c->flags |= CF_DROPPER;
            c->drop_day = lo + (int32_t)rnd_n(r, (uint32_t)(hi - lo + 1));
        }
    }
    if (c->flags & CF_DROPPER) c->play_day = c->drop_day + (int32_t)rnd_n(r, 4);
    switch (c->arch) {
    case ARCH_BINGE: c->special_day = (int32_t)rnd_n(r, 14); break;
    case ARCH_RENTER: c->special_day = (int32_t)rnd_n(r, 21); break;
    case ARCH_SUBSCRIBER:
        c->special_day = (int32_t)rnd_n(r, 30);
        c->play_day = (int32_t)rnd_n(r, 4);
        c->sub_amount = (uint16_t)sub_amounts[rnd_n(r, NELEM(sub_amounts))];
        if (rnd_p(r, 0.4)) c->flags |= CF_PKG;
        break;
    case ARCH_CASUAL: c->play_day = (int32_t)rnd_n(r, 20); break;
    default: break;
    }
    /* A holiday: 3% of the frequent viewers who neither churn nor drop take one break of 14..27
     * days somewhere in the period (recorded in the truth as a pause). Casual viewers and renters
     * have gaps that long anyway. */
    if (c->arch != ARCH_RENTER && c->arch != ARCH_CASUAL && !(c->flags & (CF_CHURNER | CF_DROPPER)) && rnd_p(r, 0.03)) {
        c->pause_len = (uint8_t)(14 + rnd_n(r, 14));
        c->pause_day = (int32_t)rnd_n(r, (uint32_t)days);
    }
    if (rnd_p(r, 0.05)) {
        c->survey_day[0] = (int16_t)rnd_n(r, (uint32_t)days);
        if (rnd_p(r, 0.4)) c->survey_day[1] = (int16_t)rnd_n(r, (uint32_t)days);
    }
}

/* ---------------------------------------------------------------- campaigns */

static const cx_campaign_type_t camp_types[4] = {CX_CT_NEWSLETTER, CX_CT_CROSS_SELL, CX_CT_WIN_BACK, CX_CT_ONBOARDING};
static const char *const camp_slugs[CX_CT__COUNT] = {"newsletter", "win_back", "cross_sell", "onboarding", "other"};
static const char *const camp_names[CX_CT__COUNT] = {"Newsletter", "Win-back offer", "Cross-sell", "Welcome onboarding",
                                                     "Other"};
/* Audience: the chance that a customer of each archetype (heavy, regular, binge, renter,
 * subscriber, casual) is in a campaign's sample, by campaign type. Win-back and onboarding go to
 * the less active, cross-sell to the buyers, so their natural response rate leaves room for lift. */
static const double camp_share[CX_CT__COUNT][ARCH__COUNT] = {
    {0.40, 0.40, 0.40, 0.40, 0.40, 0.40}, /* NEWSLETTER */
    {0.02, 0.05, 0.10, 0.40, 0.05, 0.60}, /* WIN_BACK */
    {0.05, 0.05, 0.30, 0.50, 0.50, 0.10}, /* CROSS_SELL */
    {0.00, 0.00, 0.05, 0.30, 0.05, 0.50}, /* ONBOARDING */
    {0.10, 0.10, 0.10, 0.10, 0.10, 0.10}, /* OTHER */
};
/* Chance that a test-group member makes a planned (hard) response inside the window. */
static const double camp_p_resp[CX_CT__COUNT] = {0.20, 0.35, 0.30, 0.30, 0.10};

static cx_err_t camp_init(cx_gen_t *g, size_t k) {
    gcamp_t *cp = &g->camp[k];
    cx_campaign_t *c = &cp->c;
    memset(cp, 0, sizeof *cp);
    cp->rng = stream_seed(g->o.seed, 2, k);
    uint64_t *r = &cp->rng;
    c->type = camp_types[k % 4];
    snprintf(c->campaign_id, sizeof c->campaign_id, "cmp%zu-%s", k + 1, camp_slugs[c->type]);
    char name[96];
    snprintf(name, sizeof name, "%s %zu", camp_names[c->type], k + 1);
    if (!(c->name = strdup(name))) return CX_ERR_NOMEM;
    c->observation_days = 7 + (int32_t)rnd_n(r, 24);
    int32_t span = g->o.days - c->observation_days - 1;
    int32_t start_day = span > 0 ? (int32_t)((span * (2 * (int64_t)k + 1)) / (2 * (int64_t)g->n_camp)) : 0;
    c->start_ts_ms = g->o.start_ts_ms + start_day * CX_DAY_MS + 9 * HOUR_MS;
    c->end_ts_ms = c->start_ts_ms + 7 * CX_DAY_MS;
    c->has_campaign_code = true;
    snprintf(c->campaign_code, sizeof c->campaign_code, "CC%zu-%s", k + 1, cx_campaign_type_names[c->type]);
    size_t np = 3 + rnd_n(r, 3);
    if (!(c->promoted_title_ids = calloc(np, sizeof(char *)))) return CX_ERR_NOMEM;
    uint32_t genre = rnd_n(r, N_GENRES);
    for (size_t i = 0; i < np; i++) {
        cp->promoted[i] = (uint16_t)(rnd_n(r, 40) * N_GENRES + genre); /* popular titles of one genre */
        char t[16];
        snprintf(t, sizeof t, "t%04u", cp->promoted[i]);
        if (!(c->promoted_title_ids[i] = strdup(t))) return CX_ERR_NOMEM;
        c->n_promoted = i + 1;
    }
    cp->p_resp = camp_p_resp[c->type];
    cp->send_base_ts = c->start_ts_ms + MIN_MS;
    return CX_OK;
}

/* Finds the next recipient of campaign k, if any. */
static void camp_advance(cx_gen_t *g, gcamp_t *cp) {
    cp->have_send = false;
    while (cp->cursor < g->n_cust) {
        uint64_t i = cp->cursor++;
        if (!rnd_p(&cp->rng, camp_share[cp->c.type][g->cust[i].arch])) continue;
        cp->cur = i;
        cp->cur_group = rnd_p(&cp->rng, g->o.control_share) ? CX_GROUP_CONTROL : CX_GROUP_TEST;
        cp->have_send = true;
        return;
    }
}

static int64_t camp_send_ts(const cx_gen_t *g, const gcamp_t *cp) {
    return cp->send_base_ts + (int64_t)((cp->cur * (uint64_t)HOUR_MS) / g->n_cust);
}

static void camp_rekey(cx_gen_t *g, size_t k) {
    gcamp_t *cp = &g->camp[k];
    uint32_t s = (uint32_t)(g->n_cust + k);
    if (!cp->emitted)
        heap_update(g, s, cp->c.start_ts_ms, 0);
    else if (cp->have_send)
        heap_update(g, s, camp_send_ts(g, cp), 1);
    else
        heap_update(g, s, INT64_MAX, 0);
}

static cx_err_t push_id(uint32_t **v, size_t *n, size_t *cap, uint32_t id) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        uint32_t *p = realloc(*v, nc * sizeof *p);
        if (!p) return CX_ERR_NOMEM;
        *v = p;
        *cap = nc;
    }
    (*v)[(*n)++] = id;
    return CX_OK;
}

/* ---------------------------------------------------------------- new / destroy */

cx_gen_t *cx_gen_new(const cx_gen_opts_t *o, char *errstr, size_t errstr_size) {
    if (!o) {
        cx_seterr(errstr, errstr_size, "gen: no options");
        return NULL;
    }
    if (o->customers < 1 || o->customers > UINT64_C(100000000)) {
        cx_seterr(errstr, errstr_size, "customers must be 1..100000000 (got %" PRIu64 ")", o->customers);
        return NULL;
    }
    if (o->days < 1 || o->days > 3650) {
        cx_seterr(errstr, errstr_size, "days must be 1..3650 (got %" PRId32 ")", o->days);
        return NULL;
    }
    if (!(o->invalid_rate >= 0.0 && o->invalid_rate <= 1.0)) {
        cx_seterr(errstr, errstr_size, "invalid-rate must be 0..1 (got %g)", o->invalid_rate);
        return NULL;
    }
    if (!(o->control_share >= 0.0 && o->control_share <= 1.0)) {
        cx_seterr(errstr, errstr_size, "control-share must be 0..1 (got %g)", o->control_share);
        return NULL;
    }
    if (o->start_ts_ms < INT64_C(631152000000) || o->start_ts_ms > INT64_C(32503680000000)) {
        cx_seterr(errstr, errstr_size, "start_ts_ms must be between 1990 and 3000 (got %" PRId64 ")", o->start_ts_ms);
        return NULL;
    }
    if ((unsigned)o->raw > CX_GEN_RAW_NONE) {
        cx_seterr(errstr, errstr_size, "gen: unknown raw format %d", (int)o->raw);
        return NULL;
    }
    cx_gen_t *g = calloc(1, sizeof *g);
    if (!g) goto nomem;
    g->o = *o;
    g->n_cust = o->customers;
    g->end_ts_ms = o->start_ts_ms + (int64_t)o->days * CX_DAY_MS;
    g->n_camp = (size_t)(o->days / 15);
    if (g->n_camp < 2) g->n_camp = 2;
    if (g->n_camp > 8) g->n_camp = 8;
    g->inv_rng = stream_seed(o->seed, 3, 0);
    size_t n_streams = (size_t)g->n_cust + g->n_camp;
    g->cust = calloc((size_t)g->n_cust, sizeof *g->cust);
    g->camp = calloc(g->n_camp, sizeof *g->camp);
    g->heap = calloc(n_streams, sizeof *g->heap);
    g->hpos = malloc(n_streams * sizeof *g->hpos);
    g->key_ts = calloc(n_streams, sizeof *g->key_ts);
    g->key_rank = calloc(n_streams, sizeof *g->key_rank);
    if (!g->cust || !g->camp || !g->heap || !g->hpos || !g->key_ts || !g->key_rank) goto nomem;
    for (size_t i = 0; i < n_streams; i++)
        g->hpos[i] = NOPOS;
    if (o->raw != CX_GEN_RAW_NONE && !(g->codec = cx_codec_new(errstr, errstr_size))) {
        cx_gen_destroy(g);
        return NULL;
    }
    for (uint64_t i = 0; i < g->n_cust; i++) {
        cust_init(g, i);
        cust_rekey(g, i);
    }
    for (size_t k = 0; k < g->n_camp; k++) {
        if (camp_init(g, k) != CX_OK) goto nomem;
        camp_advance(g, &g->camp[k]);
        camp_rekey(g, k);
    }
    return g;
nomem:
    cx_seterr(errstr, errstr_size, "gen: out of memory for %" PRIu64 " customers", o->customers);
    cx_gen_destroy(g);
    return NULL;
}

void cx_gen_destroy(cx_gen_t *g) {
    if (!g) return;
    if (g->camp)
        for (size_t k = 0; k < g->n_camp; k++) {
            cx_campaign_clear(&g->camp[k].c);
            free(g->camp[k].test);
            free(g->camp[k].control);
        }
    free(g->camp);
    free(g->cust);
    free(g->heap);
    free(g->hpos);
    free(g->key_ts);
    free(g->key_rank);
    cx_codec_destroy(g->codec);
    cx_buf_free(&g->raw);
    free(g);
}

const char *cx_gen_error(const cx_gen_t *g) {
    return g ? g->err : "no generator";
}

void cx_gen_counts(const cx_gen_t *g, uint64_t *valid, uint64_t *invalid, uint64_t *campaigns) {
    if (valid) *valid = g->n_valid;
    if (invalid) *invalid = g->n_invalid;
    if (campaigns) *campaigns = g->n_campaigns;
}

/* ---------------------------------------------------------------- records */

static void ev_begin(cx_gen_t *g, cx_event_type_t type, uint64_t cidx, int64_t ts) {
    cx_event_t *e = &g->ev;
    e->type = type;
    snprintf(e->event_id, sizeof e->event_id, "g%" PRIu64 "-%" PRIu64, g->o.seed, g->seq++);
    cust_id(e->customer_id, sizeof e->customer_id, cidx);
    e->ts_ms = ts;
    e->has_campaign_code = false;
    e->campaign_code[0] = 0;
    memset(&e->u, 0, sizeof e->u);
}

/* A play of title (AUX_NONE: one of the customer's tastes); a browse is under 120 s, any other play
 * 300..7,199 s. */
static void fill_play(cust_t *c, cx_event_t *e, uint16_t title, bool browse) {
    uint64_t *r = &c->rng;
    if (title == AUX_NONE) {
        uint32_t genre = rnd_p(r, 0.7) ? c->fav_genre[0] : rnd_p(r, 0.6) ? c->fav_genre[1] : rnd_n(r, N_GENRES);
        uint32_t k = rnd_n(r, 200);
        k = (k * rnd_n(r, 201)) / 200; /* skew towards the popular (low) ranks */
        title = (uint16_t)(k * N_GENRES + genre);
    }
    cx_play_t *p = &e->u.play;
    snprintf(p->title_id, sizeof p->title_id, "t%04u", title);
    p->has_genre = !rnd_p(r, 0.02);
    if (p->has_genre) snprintf(p->genre, sizeof p->genre, "%s", genres[title % N_GENRES]);
    if (browse)
        p->seconds_watched = 5 + (int32_t)rnd_n(r, 115);
    else
        p->seconds_watched = 300 + (int32_t)rnd_n(r, 6900);
    double u = rnd_u(r);
    p->has_device = u >= 0.05;
    if (p->has_device) snprintf(p->device, sizeof p->device, "%s", devices[u < 0.75 ? c->device : rnd_n(r, N_DEVICES)]);
}

static void fill_purchase(cx_event_t *e, cx_purchase_kind_t kind, int32_t amount, uint16_t title) {
    cx_purchase_t *p = &e->u.purchase;
    p->kind = kind;
    p->amount_minor = amount;
    memcpy(p->currency, CURRENCY, 4);
    p->has_title_id = title != AUX_NONE;
    if (p->has_title_id) snprintf(p->title_id, sizeof p->title_id, "t%04u", title);
}

static void fill_survey(cust_t *c, cx_event_t *e) {
    uint64_t *r = &c->rng;
    cx_survey_t *s = &e->u.survey;
    double u = rnd_u(r);
    int tp = u < 0.4 ? 0 : u < 0.7 ? 1 : u < 0.85 ? 2 : 3;
    snprintf(s->touchpoint, sizeof s->touchpoint, "%s", touchpoints[tp]);
    snprintf(s->survey_id, sizeof s->survey_id, "nps-%s", touchpoints[tp]);
    int mean10 = (c->flags & (CF_CHURNER | CF_DROPPER)) ? 40 : arch_score10[c->arch];
    /* Irwin-Hall noise: four uniforms, sd about 1.7 points */
    int64_t noise = 0;
    for (int i = 0; i < 4; i++)
        noise += (int64_t)rnd_n(r, 2001) - 1000;
    /* in hundredths of a point: mean10 is in tenths, noise in thousandths (scaled by 1.5) */
    int64_t score100 = (int64_t)mean10 * 10 + (noise * 3) / 20;
    int32_t score = score100 < 0 ? 0 : (int32_t)((score100 + 50) / 100);
    if (score > 10) score = 10;
    s->score = score;
    s->has_comment = !rnd_p(r, 0.35);
    if (s->has_comment) {
        int sent = score >= 9 ? 2 : score >= 7 ? 1 : 0;
        s->comment = comments[tp][sent][rnd_n(r, 2)];
        s->comment_len = strlen(s->comment);
    } else {
        s->comment = NULL;
        s->comment_len = 0;
    }
}

/* Possibly turns the event in g->ev into an invalid record; returns its code. */
static cx_dlq_code_t maybe_corrupt(cx_gen_t *g) {
    if (g->o.invalid_rate <= 0.0 || !rnd_p(&g->inv_rng, g->o.invalid_rate)) return CX_DLQ_NONE;
    static const cx_dlq_code_t wire[] = {CX_DLQ_BAD_FRAMING, CX_DLQ_UNKNOWN_SCHEMA, CX_DLQ_DECODE_ERROR,
                                         CX_DLQ_BAD_ID,      CX_DLQ_OUT_OF_RANGE,   CX_DLQ_BAD_TIMESTAMP};
    static const cx_dlq_code_t json[] = {CX_DLQ_DECODE_ERROR, CX_DLQ_MISSING_FIELD, CX_DLQ_BAD_ID, CX_DLQ_OUT_OF_RANGE,
                                         CX_DLQ_BAD_TIMESTAMP};
    cx_dlq_code_t code =
        g->o.raw == CX_GEN_RAW_JSON ? json[rnd_n(&g->inv_rng, NELEM(json))] : wire[rnd_n(&g->inv_rng, NELEM(wire))];
    cx_event_t *e = &g->ev;
    switch (code) {
    case CX_DLQ_BAD_ID: {
        /* "c0000042" -> "c000 0042" (ids are short: room for one more byte) */
        size_t n = strlen(e->customer_id);
        if (n >= 5 && n < CX_ID_MAX) {
            memmove(e->customer_id + 5, e->customer_id + 4, n - 4 + 1);
            e->customer_id[4] = ' ';
        }
        break;
    }
    case CX_DLQ_OUT_OF_RANGE:
        if (e->type == CX_EV_SURVEY)
            e->u.survey.score = 11;
        else if (e->type == CX_EV_PURCHASE)
            e->u.purchase.amount_minor = -e->u.purchase.amount_minor;
        else
            e->u.play.seconds_watched = -1;
        break;
    case CX_DLQ_BAD_TIMESTAMP: e->ts_ms = e->ts_ms % (30 * CX_DAY_MS); break;
    default: break; /* damaged on the wire */
    }
    return code;
}

static void count_valid(cx_gen_t *g, cust_t *c, const cx_event_t *e) {
    g->n_valid++;
    switch (e->type) {
    case CX_EV_PLAY:
        c->plays++;
        if (e->u.play.seconds_watched >= 120) c->plays_ret++;
        c->last_play_ts = e->ts_ms;
        break;
    case CX_EV_PURCHASE:
        c->purchases++;
        c->revenue_minor += e->u.purchase.amount_minor;
        break;
    case CX_EV_SURVEY: c->surveys++; break;
    case CX_EV_EMAIL_SEND: c->email_sends++; break;
    default: break;
    }
}

/* A renter's campaign response play (a promoted title) is their rental of this cycle, a casual
 * viewer's is their coming back: the habit's next visit is drawn again from the response day, as gen_day would after a visit
 * of its own. The next visit already queued (a later day, none of it emitted) is dropped and its day
 * generated again. Other archetypes watch on top of their habit. */
static void response_resets_habit(cx_gen_t *g, cust_t *c, int64_t ts) {
    if (c->arch != ARCH_RENTER && c->arch != ARCH_CASUAL) return;
    int32_t d = (int32_t)((ts - g->o.start_ts_ms) / CX_DAY_MS);
    if (c->qh == 0 && c->qn > 0 && c->q_day > d) {
        c->next_day = c->q_day;
        c->qn = 0;
    }
    if (c->arch == ARCH_RENTER)
        c->special_day = d + 14 + (int32_t)rnd_n(&c->rng, 22);
    else
        c->play_day = d + 10 + (int32_t)rnd_n(&c->rng, 20);
}

/* Builds the next event of customer idx into g->ev (type etc.); returns the campaign index of a
 * response (its hard response), or -1. */
static int cust_emit(cx_gen_t *g, uint64_t idx) {
    cust_t *c = &g->cust[idx];
    int64_t ts = g->key_ts[idx];
    /* a pending response due now and of the key's rank goes first, else the queue head */
    for (int i = 0; i < c->npend; i++) {
        pend_t p = c->pend[i];
        uint8_t pr = p.action ? 2 : 3;
        if (p.ts_ms != ts || pr != g->key_rank[idx]) continue;
        memmove(&c->pend[i], &c->pend[i + 1], (size_t)(c->npend - i - 1) * sizeof *c->pend);
        c->npend--;
        gcamp_t *cp = &g->camp[p.camp];
        uint16_t title = cp->promoted[rnd_n(&c->rng, (uint32_t)cp->c.n_promoted)];
        if (p.action == 0) response_resets_habit(g, c, ts);
        if (p.action == 0) {
            ev_begin(g, CX_EV_PLAY, idx, ts);
            fill_play(c, &g->ev, title, false);
            if (rnd_p(&c->rng, 0.5)) {
                g->ev.has_campaign_code = true;
                memcpy(g->ev.campaign_code, cp->c.campaign_code, sizeof g->ev.campaign_code);
            }
        } else {
            ev_begin(g, CX_EV_PURCHASE, idx, ts);
            bool buy = rnd_p(&c->rng, 0.3);
            fill_purchase(&g->ev, buy ? CX_PK_PURCHASE : CX_PK_RENTAL,
                          buy ? buy_amounts[rnd_n(&c->rng, NELEM(buy_amounts))]
                              : rental_amounts[rnd_n(&c->rng, NELEM(rental_amounts))],
                          title);
            g->ev.has_campaign_code = true;
            memcpy(g->ev.campaign_code, cp->c.campaign_code, sizeof g->ev.campaign_code);
        }
        return p.camp;
    }
    qent_t q = c->q[c->qh++];
    switch (q.kind) {
    case Q_PLAY:
    case Q_BROWSE:
        ev_begin(g, CX_EV_PLAY, idx, ts);
        fill_play(c, &g->ev, q.aux, q.kind == Q_BROWSE);
        break;
    case Q_RENTAL: {
        ev_begin(g, CX_EV_PURCHASE, idx, ts);
        bool buy = rnd_p(&c->rng, 0.25);
        fill_purchase(&g->ev, buy ? CX_PK_PURCHASE : CX_PK_RENTAL,
                      buy ? buy_amounts[rnd_n(&c->rng, NELEM(buy_amounts))]
                          : rental_amounts[rnd_n(&c->rng, NELEM(rental_amounts))],
                      q.aux);
        break;
    }
    case Q_SUB:
        ev_begin(g, CX_EV_PURCHASE, idx, ts);
        fill_purchase(&g->ev, CX_PK_SUBSCRIPTION, c->sub_amount, AUX_NONE);
        break;
    case Q_PKG:
        ev_begin(g, CX_EV_PURCHASE, idx, ts);
        fill_purchase(&g->ev, CX_PK_PACKAGE_EXTENSION, pkg_amounts[rnd_n(&c->rng, NELEM(pkg_amounts))], AUX_NONE);
        break;
    default:
        ev_begin(g, CX_EV_SURVEY, idx, ts);
        fill_survey(c, &g->ev);
        break;
    }
    return -1;
}

/* The send to cp->cur: records it and, for the test group, maybe plans a response. */
static cx_err_t camp_emit_send(cx_gen_t *g, size_t k, int64_t ts) {
    gcamp_t *cp = &g->camp[k];
    uint64_t idx = cp->cur;
    ev_begin(g, CX_EV_EMAIL_SEND, idx, ts);
    cx_email_send_t *s = &g->ev.u.email_send;
    memcpy(s->campaign_id, cp->c.campaign_id, sizeof s->campaign_id);
    s->group = cp->cur_group;
    s->channel = CX_CH_EMAIL;
    g->ev.has_campaign_code = true;
    memcpy(g->ev.campaign_code, cp->c.campaign_code, sizeof g->ev.campaign_code);
    cx_err_t err = cp->cur_group == CX_GROUP_TEST
                       ? push_id(&cp->test, &cp->n_test, &cp->cap_test, (uint32_t)idx)
                       : push_id(&cp->control, &cp->n_control, &cp->cap_control, (uint32_t)idx);
    if (err != CX_OK) return err;
    count_valid(g, &g->cust[idx], &g->ev);
    /* Decided on the campaign's own stream, so the customer's habits do not shift. Control members
     * behave as usual: lift comes only from these planned responses. */
    bool respond = cp->cur_group == CX_GROUP_TEST && rnd_p(&cp->rng, cp->p_resp);
    int64_t delay = 30 * MIN_MS + (int64_t)(rnd_u(&cp->rng) * 0.6 * (double)cp->c.observation_days * (double)CX_DAY_MS);
    uint8_t action = rnd_p(&cp->rng, 0.4) ? 1 : 0;
    cust_t *c = &g->cust[idx];
    int64_t rts = ts + delay;
    int64_t stop_ts = g->o.start_ts_ms + (int64_t)cust_last_day(g, c) * CX_DAY_MS;
    bool away = in_pause(c, (int32_t)((rts - g->o.start_ts_ms) / CX_DAY_MS)); /* on holiday: no response */
    if (respond && !away && c->npend < NPEND && rts < stop_ts && rts < g->end_ts_ms) {
        c->pend[c->npend++] = (pend_t){rts, (uint8_t)k, action};
        cust_rekey(g, idx);
    }
    return CX_OK;
}

/* Removes the top-level member `"ts":<number>` of a replay JSON line (a required field absent). */
static void json_drop_ts(cx_buf_t *b) {
    char *p = memmem(b->data, b->len, ",\"ts\":", 6);
    if (!p) return;
    char *q = p + 6;
    char *end = (char *)b->data + b->len;
    while (q < end && ((*q >= '0' && *q <= '9') || *q == '-'))
        q++;
    memmove(p, q, (size_t)(end - q));
    b->len -= (size_t)(q - p);
    b->data[b->len] = 0;
}

/* The bytes of out's record in the chosen form, damaged as its tag says. */
static cx_err_t encode_raw(cx_gen_t *g, cx_gen_record_t *out) {
    if (!g->codec) return CX_OK;
    cx_format_t fmt = g->o.raw == CX_GEN_RAW_JSON ? CX_FMT_JSON : CX_FMT_WIRE;
    cx_buf_t *b = &g->raw;
    cx_buf_reset(b);
    cx_err_t err = out->campaign ? cx_codec_encode(g->codec, CX_REC_CAMPAIGN, out->campaign, fmt, b)
                                 : cx_codec_encode(g->codec, cx_codec_kind_of_event(out->type), out->event, fmt, b);
    if (err != CX_OK) {
        snprintf(g->err, sizeof g->err, "gen: encoding %s failed: %s", cx_event_type_name(out->type), cx_err2str(err));
        return err;
    }
    if (fmt == CX_FMT_WIRE && b->len < 7) {
        snprintf(g->err, sizeof g->err, "gen: encoded %s is too short (%zu bytes)", cx_event_type_name(out->type),
                 b->len);
        return CX_ERR_INVALID;
    }
    switch (out->invalid) {
    case CX_DLQ_BAD_FRAMING: b->data[0] = 1; break;
    case CX_DLQ_UNKNOWN_SCHEMA: /* schema id 99: known to no one */
        b->data[1] = b->data[2] = b->data[3] = 0;
        b->data[4] = 99;
        break;
    case CX_DLQ_DECODE_ERROR: /* cut short: Avro runs out of bytes, JSON is unterminated */
        b->len = fmt == CX_FMT_WIRE ? 5 + (b->len - 5) / 2 : b->len / 2;
        break;
    case CX_DLQ_MISSING_FIELD: json_drop_ts(b); break;
    default: break;
    }
    out->raw = b->data;
    out->raw_len = b->len;
    return CX_OK;
}

int cx_gen_next(cx_gen_t *g, cx_gen_record_t *out) {
    memset(out, 0, sizeof *out);
    if (g->heap_n == 0) return 0;
    uint32_t s = g->heap[0];
    int64_t ts = g->key_ts[s];
    out->ts_ms = ts;
    if (s >= g->n_cust) {
        size_t k = s - g->n_cust;
        gcamp_t *cp = &g->camp[k];
        if (!cp->emitted) {
            cp->emitted = true;
            g->n_campaigns++;
            out->type = CX_EV_CAMPAIGN;
            out->campaign = &cp->c;
            out->key = cp->c.campaign_id;
        } else {
            if (camp_emit_send(g, k, ts) != CX_OK) {
                snprintf(g->err, sizeof g->err, "gen: out of memory");
                return -1;
            }
            out->type = CX_EV_EMAIL_SEND;
            out->event = &g->ev;
            cust_id(g->key, sizeof g->key, cp->cur);
            out->key = g->key;
            camp_advance(g, cp);
        }
        camp_rekey(g, k);
    } else {
        cust_t *c = &g->cust[s];
        int camp = cust_emit(g, s);
        cust_rekey(g, s);
        cust_id(g->key, sizeof g->key, s);
        out->key = g->key;
        out->type = g->ev.type;
        out->event = &g->ev;
        out->invalid = maybe_corrupt(g);
        if (out->invalid != CX_DLQ_NONE) {
            g->n_invalid++;
            g->inv_counts[out->invalid]++;
        } else {
            count_valid(g, c, &g->ev);
            if (camp >= 0) g->camp[camp].responses_test++;
        }
    }
    if (encode_raw(g, out) != CX_OK) return -1;
    return 1;
}

/* ---------------------------------------------------------------- truth */

static void fmt_day(char *out, size_t n, int64_t day) {
    /* civil date from days since 1970-01-01 (H. Hinnant's algorithm) */
    int64_t z = day + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    snprintf(out, n, "%04" PRId64 "-%02" PRId64 "-%02" PRId64, y, m, d);
}

static void put_day(FILE *f, const char *name, const cx_gen_t *g, int32_t d) {
    if (d < 0) {
        fprintf(f, ",\"%s_day\":null,\"%s_ts\":null", name, name);
        return;
    }
    int64_t ts = g->o.start_ts_ms + (int64_t)d * CX_DAY_MS;
    char buf[48];
    fmt_day(buf, sizeof buf, cx_day(ts));
    fprintf(f, ",\"%s_day\":\"%s\",\"%s_ts\":%" PRId64, name, buf, name, ts);
}

static void put_ids(FILE *f, const uint32_t *v, size_t n) {
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        cust_id(id, sizeof id, v[i]);
        fprintf(f, "%s\"%s\"", i ? "," : "", id);
    }
    fputc(']', f);
}

cx_err_t cx_gen_write_truth(const cx_gen_t *g, FILE *f) {
    if (!g || !f) return CX_ERR_INVALID;
    fprintf(f,
            "{\"seed\":%" PRIu64 ",\"options\":{\"customers\":%" PRIu64 ",\"days\":%" PRId32 ",\"start_ts\":%" PRId64
            ",\"invalid_rate\":%.17g,\"control_share\":%.17g,\"format\":\"%s\"}",
            g->o.seed, g->o.customers, g->o.days, g->o.start_ts_ms, g->o.invalid_rate, g->o.control_share,
            g->o.raw == CX_GEN_RAW_JSON ? "json" : "wire");
    fputs(",\"customers\":{", f);
    for (uint64_t i = 0; i < g->n_cust; i++) {
        const cust_t *c = &g->cust[i];
        char id[32];
        cust_id(id, sizeof id, i);
        fprintf(f,
                "%s\n\"%s\":{\"plays\":%" PRIu32 ",\"plays_retrieval\":%" PRIu32 ",\"purchases\":%" PRIu32
                ",\"revenue_minor\":%" PRId64 ",\"surveys\":%" PRIu32 ",\"email_sends\":%" PRIu32
                ",\"archetype\":\"%s\"",
                i ? "," : "", id, c->plays, c->plays_ret, c->purchases, c->revenue_minor, c->surveys, c->email_sends,
                arch_names[c->arch]);
        put_day(f, "churn", g, c->churn_day);
        put_day(f, "drop", g, c->drop_day);
        put_day(f, "pause", g, c->pause_day);
        put_day(f, "pause_end", g, c->pause_day < 0 ? -1 : c->pause_day + c->pause_len);
        if (c->last_play_ts >= 0)
            fprintf(f, ",\"last_play_ts\":%" PRId64 "}", c->last_play_ts);
        else
            fputs(",\"last_play_ts\":null}", f);
    }
    fputs("},\n\"campaigns\":{", f);
    bool first = true;
    for (size_t k = 0; k < g->n_camp; k++) {
        const gcamp_t *cp = &g->camp[k];
        if (!cp->emitted) continue;
        fprintf(f,
                "%s\n\"%s\":{\"type\":\"%s\",\"campaign_code\":\"%s\",\"start_ts\":%" PRId64 ",\"end_ts\":%" PRId64
                ",\"observation_days\":%" PRId32 ",\"test_responses\":%" PRIu64 ",\"test\":",
                first ? "" : ",", cp->c.campaign_id, cx_campaign_type_names[cp->c.type], cp->c.campaign_code,
                cp->c.start_ts_ms, cp->c.end_ts_ms, cp->c.observation_days, cp->responses_test);
        put_ids(f, cp->test, cp->n_test);
        fputs(",\"control\":", f);
        put_ids(f, cp->control, cp->n_control);
        fputc('}', f);
        first = false;
    }
    fputs("},\n\"invalid\":{", f);
    for (int code = 1; code < CX_DLQ__COUNT; code++)
        fprintf(f, "%s\"%s\":%" PRIu64, code > 1 ? "," : "", cx_dlq_code_name((cx_dlq_code_t)code),
                g->inv_counts[code]);
    fprintf(f, "},\"events_valid\":%" PRIu64 ",\"events_invalid\":%" PRIu64 ",\"campaign_records\":%" PRIu64 "}\n",
            g->n_valid, g->n_invalid, g->n_campaigns);
    return ferror(f) ? CX_ERR_IO : CX_OK;
}
