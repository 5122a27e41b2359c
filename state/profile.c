/*
 * profile.c — profile initialisation, sparse day buckets, dedup ring and the compact encoding.
 *
 * Encoding (version 3; version 2 wrote each day bucket as three varints, version 1 also lacked the
 * last field, index_due_ms; both are still read): a version byte, then the fields in declaration
 * order as varints (signed values zigzag), strings as length + bytes, optional groups behind a
 * presence bitmap. Day numbers of buckets and play days are delta-coded from the previous one;
 * timestamps that usually sit near last_tx_ts are stored as plain signed varints (ms since epoch
 * fits in 6 bytes).
 */
#include "profile.h"

#include <stdlib.h>
#include <string.h>

cx_err_t cx_profile_init_lean(cx_profile_t *p, const char *customer_id) {
    memset(p, 0, sizeof *p);
    p->segment = -1;
    return customer_id ? cx_sid_setn(&p->customer_id, customer_id, strnlen(customer_id, CX_ID_MAX)) : CX_OK;
}

cx_err_t cx_sid_setn(cx_sid_t *s, const char *v, size_t n) {
    if (n > CX_ID_MAX) return CX_ERR_INVALID;
    char in[sizeof s->b] = {0}, *h = NULL; /* read v before s changes: v may point into s */
    if (n <= CX_SID_INLINE)
        memcpy(in, v, n);
    else if (!(h = malloc(n + 1)))
        return CX_ERR_NOMEM;
    else {
        memcpy(h, v, n);
        h[n] = 0;
    }
    cx_sid_free(s);
    if (h) {
        memcpy(s->b, &h, sizeof h);
        s->b[CX_SID_INLINE + 1] = 1;
    } else
        memcpy(s->b, in, sizeof in);
    return CX_OK;
}

void cx_sid_free(cx_sid_t *s) {
    if (s->b[CX_SID_INLINE + 1]) {
        char *h;
        memcpy(&h, s->b, sizeof h);
        free(h);
    }
    memset(s, 0, sizeof *s);
}

cx_err_t cx_pcontact_copy(cx_pcontact_t *dst, const cx_pcontact_t *src) {
    if (dst == src) return CX_OK;
    cx_err_t rc = cx_sid_dup(&dst->campaign_id, &src->campaign_id);
    if (rc != CX_OK) return rc;
    dst->campaign_type = src->campaign_type;
    dst->channel = src->channel;
    dst->group = src->group;
    dst->ts_ms = src->ts_ms;
    return CX_OK;
}

void cx_open_send_clear(cx_open_send_t *s) {
    cx_sid_free(&s->campaign_id);
    cx_sid_free(&s->send_event_id);
    cx_sid_free(&s->code);
    memset(s, 0, sizeof *s);
}

/* The block is [cx_profile_camp_t][contacts: cap_contacts][sends: cap_sends] (all 8-byte aligned).
 * Every slot, live or not, is a valid value: a slot that is not live holds no heap id (zeroed), so the
 * block's ids are freed by walking its whole capacity (camp_free). */
static size_t camp_size(unsigned cap_contacts, unsigned cap_sends) {
    return sizeof(cx_profile_camp_t) + cap_contacts * sizeof(cx_pcontact_t) + cap_sends * sizeof(cx_open_send_t);
}

static void camp_point(cx_profile_t *p) {
    cx_profile_camp_t *c = p->camp;
    p->latest_by_type = c ? c->latest_by_type : NULL;
    p->contacts = c && c->cap_contacts ? (cx_pcontact_t *)(void *)(c + 1) : NULL;
    p->sends = c && c->cap_sends ? (cx_open_send_t *)(void *)((char *)(c + 1) + c->cap_contacts * sizeof(cx_pcontact_t))
                                 : NULL;
}

/* Calls f on every id of the block's capacity. */
static cx_err_t camp_each_sid(cx_profile_t *p, cx_err_t (*f)(cx_sid_t *)) {
    cx_err_t rc = CX_OK, r;
    for (int t = 0; t < CX_CT__COUNT; t++)
        if ((r = f(&p->latest_by_type[t].campaign_id)) != CX_OK) rc = r;
    for (unsigned i = 0; i < p->camp->cap_contacts; i++)
        if ((r = f(&p->contacts[i].campaign_id)) != CX_OK) rc = r;
    for (unsigned i = 0; i < p->camp->cap_sends; i++) {
        cx_open_send_t *o = &p->sends[i];
        if ((r = f(&o->campaign_id)) != CX_OK) rc = r;
        if ((r = f(&o->send_event_id)) != CX_OK) rc = r;
        if ((r = f(&o->code)) != CX_OK) rc = r;
    }
    return rc;
}

static cx_err_t sid_free_cb(cx_sid_t *s) {
    cx_sid_free(s);
    return CX_OK;
}

/* After a byte copy of another block: the heap ids become this block's own copies (an id that cannot
 * be copied is emptied; CX_ERR_NOMEM). */
static cx_err_t sid_own_cb(cx_sid_t *s) {
    cx_sid_t shared = *s;
    memset(s, 0, sizeof *s); /* s no longer refers to the other block's string; setting it frees nothing */
    return cx_sid_dup(s, &shared);
}

static void camp_free(cx_profile_t *p) {
    if (!p->camp) return;
    (void)camp_each_sid(p, sid_free_cb);
    free(p->camp);
    p->camp = NULL;
}

cx_err_t cx_profile_campaigns(cx_profile_t *p) {
    if (p->camp) return CX_OK;
    if (!(p->camp = calloc(1, camp_size(0, 0)))) return CX_ERR_NOMEM;
    camp_point(p);
    return CX_OK;
}

cx_err_t cx_profile_camp_reserve(cx_profile_t *p, unsigned contacts, unsigned sends) {
    if (contacts > CX_CONTACTS_KEPT) contacts = CX_CONTACTS_KEPT;
    if (sends > CX_OPEN_SENDS_MAX) sends = CX_OPEN_SENDS_MAX;
    cx_err_t rc = cx_profile_campaigns(p);
    if (rc != CX_OK) return rc;
    unsigned oc = p->camp->cap_contacts, os = p->camp->cap_sends;
    if (contacts <= oc && sends <= os) return CX_OK;
    /* grow in steps of two (contacts usually fill up over time; open sends are few) */
    unsigned nc = contacts > oc ? (contacts + 1) & ~1u : oc, ns = sends > os ? (sends + 1) & ~1u : os;
    if (nc > CX_CONTACTS_KEPT) nc = CX_CONTACTS_KEPT;
    if (ns > CX_OPEN_SENDS_MAX) ns = CX_OPEN_SENDS_MAX;
    cx_profile_camp_t *c = realloc(p->camp, camp_size(nc, ns));
    if (!c) return CX_ERR_NOMEM;
    char *base = (char *)(c + 1);
    /* the sends move up by the contacts' growth; new room is zeroed */
    memmove(base + nc * sizeof(cx_pcontact_t), base + oc * sizeof(cx_pcontact_t), os * sizeof(cx_open_send_t));
    memset(base + oc * sizeof(cx_pcontact_t), 0, (nc - oc) * sizeof(cx_pcontact_t));
    memset(base + nc * sizeof(cx_pcontact_t) + os * sizeof(cx_open_send_t), 0, (ns - os) * sizeof(cx_open_send_t));
    c->cap_contacts = (uint8_t)nc;
    c->cap_sends = (uint8_t)ns;
    p->camp = c;
    camp_point(p);
    return CX_OK;
}

void cx_profile_init(cx_profile_t *p, const char *customer_id) {
    cx_profile_init_lean(p, customer_id);
    (void)cx_profile_camp_reserve(p, CX_CONTACTS_KEPT, CX_OPEN_SENDS_MAX);
}

/* Calls f on every id of the struct itself (not the campaign block's). */
static cx_err_t prof_each_sid(cx_profile_t *p, cx_err_t (*f)(cx_sid_t *)) {
    cx_err_t rc = f(&p->customer_id), r;
    for (int i = 0; i < CX_GENRES_KEPT; i++)
        if ((r = f(&p->genre[i])) != CX_OK) rc = r;
    for (int i = 0; p->touchpoints && i < CX_TOUCHPOINTS_KEPT; i++)
        if ((r = f(&p->touchpoints[i].touchpoint)) != CX_OK) rc = r;
    if ((r = f(&p->acquisition_campaign_id)) != CX_OK) rc = r;
    return rc;
}

void cx_profile_clear(cx_profile_t *p) {
    if (!p) return;
    free(p->buckets);
    free(p->dedup_more);
    camp_free(p);
    (void)prof_each_sid(p, sid_free_cb);
    free(p->touchpoints);
    (void)cx_profile_init_lean(p, NULL);
}

cx_err_t cx_profile_touchpoints(cx_profile_t *p) {
    if (!p->touchpoints && !(p->touchpoints = calloc(CX_TOUCHPOINTS_KEPT, sizeof *p->touchpoints))) return CX_ERR_NOMEM;
    return CX_OK;
}

cx_err_t cx_profile_set_genre(cx_profile_t *p, unsigned slot, const char *name) {
    cx_err_t rc = cx_sid_setn(&p->genre[slot], name, strnlen(name, CX_SHORT_MAX));
    if (rc != CX_OK) return rc;
    p->genre_fp[slot] = cx_profile_genre_fp(cx_sid_str(&p->genre[slot]));
    return CX_OK;
}

/* The duplicate ring's block beyond CX_DEDUP_INLINE, allocated once. */
static cx_err_t dedup_more_alloc(cx_profile_t *p) {
    if (!p->dedup_more && !(p->dedup_more = calloc(CX_DEDUP_MAX - CX_DEDUP_INLINE, sizeof *p->dedup_more)))
        return CX_ERR_NOMEM;
    return CX_OK;
}

cx_err_t cx_profile_copy(cx_profile_t *dst, const cx_profile_t *src) {
    *dst = *src;
    /* the duplicate ring's overflow first: without it dst keeps the ring's part in the struct */
    cx_err_t more = CX_OK;
    dst->dedup_more = NULL;
    if (src->dedup_more) {
        if (dedup_more_alloc(dst) == CX_OK)
            memcpy(dst->dedup_more, src->dedup_more, (CX_DEDUP_MAX - CX_DEDUP_INLINE) * sizeof *dst->dedup_more);
        else if (dst->n_dedup > CX_DEDUP_INLINE) {
            dst->n_dedup = CX_DEDUP_INLINE;
            dst->dedup_next = 0;
            more = CX_ERR_NOMEM;
        }
    }
    /* the touchpoints' block before the ids, so that its ids become dst's own with the others */
    dst->touchpoints = NULL;
    if (src->touchpoints) {
        if (cx_profile_touchpoints(dst) == CX_OK)
            memcpy(dst->touchpoints, src->touchpoints, CX_TOUCHPOINTS_KEPT * sizeof *dst->touchpoints);
        else {
            dst->n_touchpoints = 0;
            more = CX_ERR_NOMEM;
        }
    }
    /* the struct's ids first: until they are dst's own, dst shares src's heap strings */
    if (prof_each_sid(dst, sid_own_cb) != CX_OK) {
        dst->camp = NULL;
        camp_point(dst);
        dst->n_contacts = dst->n_sends = dst->has_latest_by_type = 0;
        dst->buckets = NULL;
        dst->n_buckets = dst->cap_buckets = 0;
        return CX_ERR_NOMEM;
    }
    dst->buckets = NULL;
    dst->cap_buckets = 0;
    dst->camp = NULL;
    if (src->camp) {
        size_t sz = camp_size(src->camp->cap_contacts, src->camp->cap_sends);
        if (!(dst->camp = malloc(sz))) {
            camp_point(dst);
            dst->n_contacts = dst->n_sends = dst->has_latest_by_type = 0;
            dst->n_buckets = 0;
            return CX_ERR_NOMEM;
        }
        memcpy(dst->camp, src->camp, sz);
    }
    camp_point(dst);
    if (dst->camp && camp_each_sid(dst, sid_own_cb) != CX_OK) {
        dst->n_buckets = 0;
        return CX_ERR_NOMEM;
    }
    if (src->n_buckets) {
        dst->buckets = malloc(src->n_buckets * sizeof(cx_bucket_t));
        if (!dst->buckets) {
            dst->n_buckets = 0;
            return CX_ERR_NOMEM;
        }
        memcpy(dst->buckets, src->buckets, src->n_buckets * sizeof(cx_bucket_t));
        dst->cap_buckets = src->n_buckets;
    }
    return more;
}

uint64_t cx_hash64(const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    /* final avalanche (splitmix64) so low bits are usable for hash tables */
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;
    return h;
}

cx_bucket_t *cx_profile_bucket(cx_profile_t *p, int32_t day) {
    /* common case: today or a new latest day */
    uint32_t n = p->n_buckets;
    if (n && p->buckets[n - 1].day == day) return &p->buckets[n - 1];
    uint32_t pos = n;
    if (n && p->buckets[n - 1].day > day) {
        uint32_t lo = 0, hi = n;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (p->buckets[mid].day < day)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < n && p->buckets[lo].day == day) return &p->buckets[lo];
        pos = lo;
    }
    if (n == p->cap_buckets) {
        /* doubling up to 16, then 8 at a time: an active customer holds 30-90 days, and doubling
         * left a third of its array unused (a realloc usually extends in place) */
        uint32_t cap = p->cap_buckets < 16 ? (p->cap_buckets ? p->cap_buckets * 2 : 4) : p->cap_buckets + 8;
        cx_bucket_t *b = realloc(p->buckets, cap * sizeof *b);
        if (!b) return NULL;
        p->buckets = b;
        p->cap_buckets = cap;
    }
    memmove(&p->buckets[pos + 1], &p->buckets[pos], (n - pos) * sizeof(cx_bucket_t));
    memset(&p->buckets[pos], 0, sizeof(cx_bucket_t));
    p->buckets[pos].day = day;
    p->n_buckets = n + 1;
    return &p->buckets[pos];
}

void cx_profile_prune_buckets(cx_profile_t *p, int32_t min_day) {
    uint32_t k = 0;
    while (k < p->n_buckets && p->buckets[k].day < min_day)
        k++;
    if (!k) return;
    memmove(p->buckets, p->buckets + k, (p->n_buckets - k) * sizeof(cx_bucket_t));
    p->n_buckets -= k;
}

bool cx_profile_dedup_seen(const cx_profile_t *p, uint64_t fp) {
    for (unsigned i = 0; i < p->n_dedup; i++)
        if (*cx_profile_dedup_at(p, i) == fp) return true;
    return false;
}

cx_err_t cx_profile_dedup_add(cx_profile_t *p, uint64_t fp, unsigned keep) {
    if (keep > CX_DEDUP_MAX) keep = CX_DEDUP_MAX;
    if (keep == 0) return CX_OK;
    unsigned slot = p->n_dedup < keep ? p->n_dedup : p->dedup_next % keep;
    if (slot >= CX_DEDUP_INLINE && dedup_more_alloc(p) != CX_OK) return CX_ERR_NOMEM;
    *cx_profile_dedup_at(p, slot) = fp;
    if (p->n_dedup < keep) {
        p->n_dedup++;
        p->dedup_next = p->n_dedup % keep;
    } else {
        p->dedup_next = (uint8_t)((p->dedup_next + 1) % keep);
        p->n_dedup = (uint8_t)keep;
    }
    return CX_OK;
}

/* ---- encoding ---- */

/* The encoder writes through a cursor into room reserved once for the worst case (encode_bound):
 * a profile is ~200 varints, and a capacity check and length store per varint cost as much as the
 * varints themselves. */
static inline uint8_t *put_uv(uint8_t *d, uint64_t v) {
    for (; v >= 0x80; v >>= 7)
        *d++ = (uint8_t)(v | 0x80);
    *d++ = (uint8_t)v;
    return d;
}
static inline uint8_t *put_sv(uint8_t *d, int64_t v) {
    return put_uv(d, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
static uint8_t *put_str(uint8_t *d, const char *s) {
    size_t n = strlen(s);
    d = put_uv(d, n);
    memcpy(d, s, n);
    return d + n;
}
#define PUTU(v)   (d = put_uv(d, (uint64_t)(v)))
#define PUTS(v)   (d = put_sv(d, (int64_t)(v)))
#define PUTSTR(s) (d = put_str(d, (s)))

/* A time as its difference from the profile's base time, modulo 2^64 so that any pair round-trips
 * (version 4; versions 1 to 3 wrote times whole, which is the same as a base of 0). */
static inline uint8_t *put_ts(uint8_t *d, int64_t t, int64_t base) {
    return put_sv(d, (int64_t)((uint64_t)t - (uint64_t)base));
}
#define PUTTS(t) (d = put_ts(d, (t), base))

static uint8_t *put_contact(uint8_t *d, const cx_pcontact_t *c, int64_t base) {
    PUTSTR(cx_sid_str(&c->campaign_id));
    PUTU(c->campaign_type | (c->channel << 3) | (c->group << 6));
    PUTTS(c->ts_ms);
    return d;
}

static bool contact_eq(const cx_pcontact_t *a, const cx_pcontact_t *b) {
    return a->ts_ms == b->ts_ms && a->campaign_type == b->campaign_type && a->channel == b->channel &&
           a->group == b->group && strcmp(cx_sid_str(&a->campaign_id), cx_sid_str(&b->campaign_id)) == 0;
}

/* Version 4 writes a latest contact per type, and a send's campaign and time, as 1 + the index of the
 * kept contact that holds the same (0: written out): nearly always one does. */
static unsigned contact_ref(const cx_profile_t *p, const cx_pcontact_t *c) {
    for (unsigned i = 0; i < p->n_contacts; i++)
        if (contact_eq(&p->contacts[i], c)) return i + 1;
    return 0;
}
static unsigned send_ref(const cx_profile_t *p, const cx_open_send_t *s) {
    for (unsigned i = 0; i < p->n_contacts; i++)
        if (p->contacts[i].ts_ms == s->ts_ms &&
            strcmp(cx_sid_str(&p->contacts[i].campaign_id), cx_sid_str(&s->campaign_id)) == 0)
            return i + 1;
    return 0;
}

/* At least the encoding's length: 10 bytes per varint, strings at their array sizes. */
static size_t encode_bound(const cx_profile_t *p) {
    enum { V = 10 };
    return 64 * V + (size_t)p->n_buckets * 4 * V + CX_PLAY_DAYS_KEPT * V + CX_TRIG__COUNT * V +
           CX_GENRES_KEPT * (CX_ID_MAX + 1 + 2 * V) + CX_TOUCHPOINTS_KEPT * (CX_ID_MAX + 1 + 3 * V) + CX_ID_MAX + 1 +
           V + ((size_t)p->n_contacts + CX_CT__COUNT) * (CX_ID_MAX + 1 + 4 * V) +
           (size_t)p->n_sends * (3 * (CX_ID_MAX + 1) + 9 * V) + (size_t)p->n_dedup * 8;
}

enum {
    F_TX = 1 << 0,
    F_PLAY = 1 << 1,
    F_NPS = 1 << 2,
    F_ACQ = 1 << 3,
    F_NEWSLETTER = 1 << 4,
};

/* Version 4's presence bits of the times most profiles leave at 0 (one varint before the ones set):
 * the trigger group after the play days, the due group at the end (bits 0-4: rfm, stop, drop, churn
 * and nps due; T_TIMER: timer_due_ms is written, as it is not cx_profile_earliest_due; T_INDEX:
 * index_due_ms is written, as it is not timer_due_ms). */
enum { T_TIMER = 1 << 5, T_INDEX = 1 << 6 };
/* Version 4's bits of a send beside its group (bit 0) and responded (bits 1-4, attribution.h). */
enum { S_CODE = 1 << 5, S_END = 1 << 6 };

cx_err_t cx_profile_encode_as(const cx_profile_t *p, cx_buf_t *out, int version) {
    if (version < 3 || version > CX_PROFILE_VERSION) return CX_ERR_INVALID;
    size_t bound = encode_bound(p);
    cx_err_t e = cx_buf_reserve(out, bound + 1);
    if (e != CX_OK) return e;
    uint8_t *d = out->data + out->len;
    bool v4 = version >= 4;
    unsigned flags = (p->has_tx ? F_TX : 0) | (p->has_play ? F_PLAY : 0) | (p->has_nps ? F_NPS : 0) |
                     (p->has_acquisition ? F_ACQ : 0) | (p->newsletter_recipient ? F_NEWSLETTER : 0);
    PUTU(version);
    PUTU(flags);
    /* the base: the latest transaction or play (most times lie days from it) */
    int64_t base = 0;
    if (v4) {
        if (p->has_tx) base = p->last_tx_ts_ms;
        if (p->has_play && (!p->has_tx || p->last_play_ts_ms > base)) base = p->last_play_ts_ms;
        PUTS(base);
    }
    if (p->has_tx) {
        PUTTS(p->first_tx_ts_ms);
        if (v4)
            PUTTS(p->last_tx_ts_ms);
        else
            PUTS(p->last_tx_ts_ms - p->first_tx_ts_ms);
        PUTS(p->first_tx_day);
        PUTS(p->last_tx_day - p->first_tx_day);
        PUTU(p->tx_days);
        PUTS(p->first_day_revenue_minor);
        PUTS(p->tx_revenue_minor);
    }
    if (p->has_play) PUTTS(p->last_play_ts_ms);
    PUTU(p->purchases_total);
    PUTS(p->revenue_total_minor);
    PUTU(p->plays_total);
    PUTU(p->n_buckets);
    int32_t prev = 0;
    for (uint32_t i = 0; i < p->n_buckets; i++) {
        const cx_bucket_t *b = &p->buckets[i];
        int64_t delta = (int64_t)b->day - prev;
        prev = b->day;
        /* tx, the play bit and whether an amount follows in one varint: a day of plays only is two
         * bytes (version 2 wrote tx, the transactions that were not plays and the amount); version
         * 5 adds the day delta when 1-7 (0: it follows), so such a day is one byte */
        uint64_t v = ((uint64_t)b->tx << 2) | ((uint64_t)b->play << 1) | (b->amount_minor != 0);
        if (version >= 5) {
            bool near = delta >= 1 && delta <= 7;
            PUTU(v << 3 | (near ? (uint64_t)delta : 0));
            if (!near) PUTS(delta);
        } else {
            PUTS(delta);
            PUTU(v);
        }
        if (b->amount_minor) PUTS(b->amount_minor);
    }
    PUTU((unsigned)(p->r_score) | ((unsigned)p->f_score << 3) | ((unsigned)p->m_score << 6));
    PUTS(p->segment);
    PUTU(p->n_play_days);
    prev = 0;
    for (unsigned i = 0; i < p->n_play_days; i++) {
        PUTS(p->play_days[i] - prev);
        prev = p->play_days[i];
    }
    PUTU(p->play_days_total);
    if (v4) { /* bit 0 the last trigger's time, bit 1 + k trigger kind k's last due */
        unsigned set = p->last_trigger_ts_ms != 0;
        for (int k = 0; k < CX_TRIG__COUNT; k++)
            set |= (unsigned)(p->last_trigger_due_ms[k] != 0) << (1 + k);
        PUTU(set);
        if (p->last_trigger_ts_ms) PUTTS(p->last_trigger_ts_ms);
        for (int k = 0; k < CX_TRIG__COUNT; k++)
            if (p->last_trigger_due_ms[k]) PUTTS(p->last_trigger_due_ms[k]);
    } else {
        PUTS(p->last_trigger_ts_ms);
        for (int k = 0; k < CX_TRIG__COUNT; k++)
            PUTS(p->last_trigger_due_ms[k]);
    }
    unsigned ng = 0;
    while (ng < CX_GENRES_KEPT && p->genre_count[ng])
        ng++;
    PUTU(ng);
    for (unsigned i = 0; i < ng; i++) {
        PUTSTR(cx_sid_str(&p->genre[i]));
        PUTU(p->genre_count[i]);
    }
    if (p->has_nps) {
        PUTU(p->nps_last);
        PUTTS(p->nps_last_ts_ms);
        PUTU(p->nps_count);
    }
    PUTU(p->n_touchpoints);
    for (unsigned i = 0; i < p->n_touchpoints; i++) {
        PUTSTR(cx_sid_str(&p->touchpoints[i].touchpoint));
        PUTU(p->touchpoints[i].score);
        PUTTS(p->touchpoints[i].ts_ms);
    }
    if (p->has_acquisition) PUTSTR(cx_sid_str(&p->acquisition_campaign_id));
    PUTU(p->n_contacts);
    for (unsigned i = 0; i < p->n_contacts; i++)
        d = put_contact(d, &p->contacts[i], base);
    PUTU(p->has_latest_by_type);
    for (int t = 0; t < CX_CT__COUNT; t++) {
        if (!(p->has_latest_by_type & (1u << t))) continue;
        unsigned ref = v4 ? contact_ref(p, &p->latest_by_type[t]) : 0;
        if (v4) PUTU(ref);
        if (!ref) d = put_contact(d, &p->latest_by_type[t], base);
    }
    PUTU(p->n_sends);
    for (unsigned i = 0; i < p->n_sends; i++) {
        const cx_open_send_t *s = &p->sends[i];
        if (v4) {
            unsigned ref = send_ref(p, s);
            PUTU(ref);
            if (!ref) {
                PUTSTR(cx_sid_str(&s->campaign_id));
                PUTTS(s->ts_ms);
            }
            PUTSTR(cx_sid_str(&s->send_event_id));
            PUTU(s->group | (s->responded << 1) | (s->has_code ? S_CODE : 0) | (s->end_ts_ms ? S_END : 0));
            if (s->has_code) PUTSTR(cx_sid_str(&s->code));
            if (s->end_ts_ms) PUTTS(s->end_ts_ms);
            continue;
        }
        PUTSTR(cx_sid_str(&s->campaign_id));
        PUTSTR(cx_sid_str(&s->send_event_id));
        PUTU(s->has_code);
        if (s->has_code) PUTSTR(cx_sid_str(&s->code));
        PUTS(s->ts_ms);
        PUTS(s->end_ts_ms);
        PUTU(s->group | (s->responded << 1));
    }
    PUTU(p->n_dedup);
    PUTU(p->dedup_next);
    for (unsigned i = 0; i < p->n_dedup; i++) {
        uint64_t fp = *cx_profile_dedup_at(p, i);
        memcpy(d, &fp, 8);
        d += 8;
    }
    if (v4) {
        const int64_t due[] = {p->rfm_due_ms, p->stop_due_ms, p->drop_due_ms, p->churn_due_ms, p->nps_due_ms};
        unsigned set = (p->timer_due_ms != cx_profile_earliest_due(p) ? T_TIMER : 0) |
                       (p->index_due_ms != p->timer_due_ms ? T_INDEX : 0);
        for (unsigned k = 0; k < sizeof due / sizeof due[0]; k++)
            set |= due[k] ? 1u << k : 0;
        PUTU(set);
        for (unsigned k = 0; k < sizeof due / sizeof due[0]; k++)
            if (due[k]) PUTTS(due[k]);
        if (set & T_TIMER) PUTTS(p->timer_due_ms);
        if (set & T_INDEX) PUTTS(p->index_due_ms);
    } else {
        PUTS(p->timer_due_ms);
        PUTS(p->rfm_due_ms);
        PUTS(p->stop_due_ms);
        PUTS(p->drop_due_ms);
        PUTS(p->churn_due_ms);
        PUTS(p->nps_due_ms);
    }
    PUTS(p->voc_monetary_minor);
    PUTS(p->voc_clv_minor);
    if (!v4) PUTS(p->index_due_ms);
    out->len = (size_t)(d - out->data);
    *d = 0; /* NUL-terminated, as cx_buf_append leaves it */
    return CX_OK;
}

cx_err_t cx_profile_encode(const cx_profile_t *p, cx_buf_t *out) {
    return cx_profile_encode_as(p, out, CX_PROFILE_VERSION);
}

/* ---- decoding ---- */

typedef struct rd {
    const uint8_t *p;
    size_t n;
    bool bad;
    bool nomem; /* with bad: an id could not be allocated */
} rd_t;

static inline __attribute__((always_inline)) uint64_t getu(rd_t *r) {
    uint64_t v = 0;
    if (r->bad) return 0;
    size_t k = cx_get_uvarint(r->p, r->n, &v);
    if (!k) {
        r->bad = true;
        return 0;
    }
    r->p += k;
    r->n -= k;
    return v;
}

static inline __attribute__((always_inline)) int64_t gets(rd_t *r) {
    uint64_t u = getu(r); /* zigzag, as cx_get_svarint */
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* base + a signed varint delta, refused (r->bad) unless delta and sum fit: corrupt input must not
 * overflow, and the encoder's differences of decoded values must not either. */
static int64_t get_delta(rd_t *r, int64_t base, int64_t lo, int64_t hi) {
    int64_t d = gets(r), v;
    if (r->bad || d < lo || d > hi || __builtin_add_overflow(base, d, &v) || v < lo || v > hi) {
        r->bad = true;
        return base;
    }
    return v;
}
#define GET_DAY(r, base) ((int32_t)get_delta((r), (base), INT32_MIN, INT32_MAX))

/* A time written by put_ts (modulo 2^64, so any value is one). */
static int64_t get_ts(rd_t *r, int64_t base) {
    return (int64_t)((uint64_t)base + (uint64_t)gets(r));
}

static void getsid(rd_t *r, cx_sid_t *s) {
    uint64_t n = getu(r);
    if (r->bad || n > CX_ID_MAX || n > r->n) {
        r->bad = true;
        return;
    }
    if (cx_sid_setn(s, (const char *)r->p, (size_t)n) != CX_OK) {
        r->bad = r->nomem = true;
        return;
    }
    r->p += n;
    r->n -= n;
}

static void get_contact(rd_t *r, cx_pcontact_t *c, int64_t base) {
    getsid(r, &c->campaign_id);
    uint64_t packed = getu(r);
    c->campaign_type = (cx_campaign_type_t)(packed & 7);
    c->channel = (cx_channel_t)((packed >> 3) & 7);
    c->group = (cx_group_t)((packed >> 6) & 1);
    if (c->campaign_type >= CX_CT__COUNT || c->channel >= CX_CH__COUNT) r->bad = true;
    c->ts_ms = get_ts(r, base);
}

/* Version 4's reference to kept contact ref - 1 (0: none, NULL), refused beyond the kept ones. */
static const cx_pcontact_t *get_ref(rd_t *r, const cx_profile_t *p) {
    uint64_t ref = getu(r);
    if (ref > p->n_contacts) r->bad = true;
    return r->bad || !ref ? NULL : &p->contacts[ref - 1];
}

/* The campaign block with room for a non-empty section; false (p cleared) if it cannot be allocated. */
static bool camp_need(cx_profile_t *p, const rd_t *r, unsigned contacts, unsigned sends) {
    if (r->bad || cx_profile_camp_reserve(p, contacts, sends) == CX_OK) return true;
    cx_profile_clear(p);
    return false;
}

cx_err_t cx_profile_decode(cx_profile_t *p, const char *customer_id, const void *buf, size_t len, char *errstr,
                           size_t errstr_size) {
    cx_profile_clear(p);
    if (cx_profile_init_lean(p, customer_id) != CX_OK) {
        cx_seterr(errstr, errstr_size, "profile %s: out of memory for its id", customer_id);
        return CX_ERR_NOMEM;
    }
    rd_t r = {buf, len, false, false};
    uint64_t version = getu(&r);
    if (version < 1 || version > CX_PROFILE_VERSION) {
        cx_seterr(errstr, errstr_size, "profile %s: unknown encoding version %llu", customer_id,
                  (unsigned long long)version);
        return CX_ERR_STATE;
    }
    bool v4 = version >= 4;
    unsigned flags = (unsigned)getu(&r);
    int64_t base = v4 ? gets(&r) : 0; /* times before version 4 are whole: base 0 */
    p->has_tx = flags & F_TX;
    p->has_play = flags & F_PLAY;
    p->has_nps = flags & F_NPS;
    p->has_acquisition = flags & F_ACQ;
    p->newsletter_recipient = flags & F_NEWSLETTER;
    if (p->has_tx) {
        p->first_tx_ts_ms = get_ts(&r, base);
        p->last_tx_ts_ms = v4 ? get_ts(&r, base) : get_delta(&r, p->first_tx_ts_ms, INT64_MIN, INT64_MAX);
        p->first_tx_day = GET_DAY(&r, 0);
        p->last_tx_day = GET_DAY(&r, p->first_tx_day);
        p->tx_days = (int64_t)getu(&r);
        p->first_day_revenue_minor = gets(&r);
        p->tx_revenue_minor = gets(&r);
    }
    if (p->has_play) p->last_play_ts_ms = get_ts(&r, base);
    p->purchases_total = (int64_t)getu(&r);
    p->revenue_total_minor = gets(&r);
    p->plays_total = (int64_t)getu(&r);
    uint64_t nb = getu(&r);
    if (nb > r.n) r.bad = true; /* each bucket takes at least one byte */
    if (!r.bad && nb) {
        p->buckets = malloc(nb * sizeof(cx_bucket_t));
        if (!p->buckets) return CX_ERR_NOMEM;
        p->cap_buckets = (uint32_t)nb;
        int32_t prev = 0;
        for (uint64_t i = 0; i < nb && !r.bad; i++) {
            cx_bucket_t *b = &p->buckets[i];
            uint64_t v = 0, tx;
            bool play;
            if (version >= 5) { /* (tx << 2 | play << 1 | amount follows) << 3 | delta 1-7 (0: it follows) */
                v = getu(&r);
                int32_t near = (int32_t)(v & 7);
                if (!near)
                    b->day = GET_DAY(&r, prev);
                else if (prev > INT32_MAX - near)
                    r.bad = true, b->day = prev;
                else
                    b->day = prev + near;
                v >>= 3;
            } else {
                b->day = GET_DAY(&r, prev);
                if (version >= 3) v = getu(&r); /* tx << 2 | play << 1 | amount follows */
            }
            prev = b->day;
            if (version >= 3) {
                tx = v >> 2;
                play = (v >> 1) & 1;
                if (play && !tx) r.bad = true; /* a play day counts the play */
                b->amount_minor = v & 1 ? gets(&r) : 0;
            } else { /* tx, the transactions that were not plays (the day had a play iff fewer), amount */
                tx = getu(&r);
                uint64_t nonplay = getu(&r);
                if (nonplay > tx) r.bad = true;
                play = nonplay < tx;
                b->amount_minor = gets(&r);
            }
            if (tx > CX_BUCKET_TX_MAX) r.bad = true;
            b->tx = (uint32_t)tx & CX_BUCKET_TX_MAX;
            b->play = play;
            p->n_buckets = (uint32_t)i + 1;
        }
    }
    uint64_t rfm = getu(&r);
    p->r_score = rfm & 7;
    p->f_score = (rfm >> 3) & 7;
    p->m_score = (rfm >> 6) & 7;
    p->segment = (int8_t)gets(&r);
    uint64_t npd = getu(&r);
    if (npd > CX_PLAY_DAYS_KEPT)
        r.bad = true;
    else
        p->n_play_days = (uint8_t)npd;
    int32_t prev = 0;
    for (unsigned i = 0; i < p->n_play_days && !r.bad; i++) {
        p->play_days[i] = GET_DAY(&r, prev);
        prev = p->play_days[i];
    }
    p->play_days_total = (uint32_t)getu(&r);
    /* version 4: which are set, then those (bit 0 the last trigger's time, bit 1 + k kind k's due) */
    uint64_t trig = v4 ? getu(&r) : ~UINT64_C(0);
    if (v4 && trig >> (1 + CX_TRIG__COUNT)) r.bad = true;
    p->last_trigger_ts_ms = trig & 1 ? get_ts(&r, base) : 0;
    for (int k = 0; k < CX_TRIG__COUNT; k++)
        p->last_trigger_due_ms[k] = trig >> (1 + k) & 1 ? get_ts(&r, base) : 0;
    uint64_t ng = getu(&r);
    if (ng > CX_GENRES_KEPT) r.bad = true;
    for (unsigned i = 0; i < ng && !r.bad; i++) {
        getsid(&r, &p->genre[i]);
        p->genre_fp[i] = cx_profile_genre_fp(cx_sid_str(&p->genre[i]));
        p->genre_count[i] = (uint32_t)getu(&r);
    }
    if (p->has_nps) {
        p->nps_last = (int8_t)getu(&r);
        p->nps_last_ts_ms = get_ts(&r, base);
        p->nps_count = (int64_t)getu(&r);
    }
    uint64_t ntp = getu(&r);
    if (ntp > CX_TOUCHPOINTS_KEPT)
        r.bad = true;
    else if (ntp) {
        if (cx_profile_touchpoints(p) != CX_OK) return CX_ERR_NOMEM;
        p->n_touchpoints = (uint8_t)ntp;
    }
    for (unsigned i = 0; i < p->n_touchpoints && !r.bad; i++) {
        getsid(&r, &p->touchpoints[i].touchpoint);
        p->touchpoints[i].score = (int8_t)getu(&r);
        p->touchpoints[i].ts_ms = get_ts(&r, base);
    }
    if (p->has_acquisition) getsid(&r, &p->acquisition_campaign_id);
    uint64_t nc = getu(&r);
    if (nc > CX_CONTACTS_KEPT)
        r.bad = true;
    else if (nc && !camp_need(p, &r, (unsigned)nc, 0))
        return CX_ERR_NOMEM;
    else
        p->n_contacts = (uint8_t)nc;
    for (unsigned i = 0; i < p->n_contacts && !r.bad; i++)
        get_contact(&r, &p->contacts[i], base);
    uint64_t lbt = getu(&r);
    if (lbt && !r.bad && !camp_need(p, &r, 0, 0)) return CX_ERR_NOMEM;
    if (!r.bad) p->has_latest_by_type = (uint8_t)lbt;
    if (lbt >> CX_CT__COUNT) r.bad = true;
    for (int t = 0; t < CX_CT__COUNT && !r.bad; t++) {
        if (!(p->has_latest_by_type & (1u << t))) continue;
        const cx_pcontact_t *same = v4 ? get_ref(&r, p) : NULL;
        if (!same)
            get_contact(&r, &p->latest_by_type[t], base);
        else if (cx_pcontact_copy(&p->latest_by_type[t], same) != CX_OK)
            r.bad = r.nomem = true;
    }
    uint64_t ns = getu(&r);
    if (ns > CX_OPEN_SENDS_MAX)
        r.bad = true;
    else if (ns && !camp_need(p, &r, 0, (unsigned)ns))
        return CX_ERR_NOMEM;
    else
        p->n_sends = (uint8_t)ns;
    for (unsigned i = 0; i < p->n_sends && !r.bad; i++) {
        cx_open_send_t *s = &p->sends[i];
        if (v4) { /* the campaign and time as a kept contact's, or written; the id; bits; code; end */
            const cx_pcontact_t *same = get_ref(&r, p);
            if (same) {
                if (cx_sid_dup(&s->campaign_id, &same->campaign_id) != CX_OK) r.bad = r.nomem = true;
                s->ts_ms = same->ts_ms;
            } else {
                getsid(&r, &s->campaign_id);
                s->ts_ms = get_ts(&r, base);
            }
            getsid(&r, &s->send_event_id);
            uint64_t g = getu(&r);
            if (g >> 7) r.bad = true;
            s->group = g & 1;
            s->responded = (uint8_t)(g >> 1 & 15);
            s->has_code = g & S_CODE;
            if (s->has_code) getsid(&r, &s->code);
            s->end_ts_ms = g & S_END ? get_ts(&r, base) : 0;
            continue;
        }
        getsid(&r, &s->campaign_id);
        getsid(&r, &s->send_event_id);
        s->has_code = getu(&r) != 0;
        if (s->has_code) getsid(&r, &s->code);
        s->ts_ms = gets(&r);
        s->end_ts_ms = gets(&r);
        uint64_t g = getu(&r);
        s->group = g & 1;
        s->responded = (uint8_t)(g >> 1);
    }
    uint64_t nd = getu(&r);
    uint64_t dn = getu(&r);
    if (nd > CX_DEDUP_MAX || dn > CX_DEDUP_MAX || r.n < nd * 8) r.bad = true;
    if (!r.bad) {
        if (nd > CX_DEDUP_INLINE && dedup_more_alloc(p) != CX_OK) return CX_ERR_NOMEM;
        size_t in = nd < CX_DEDUP_INLINE ? nd : CX_DEDUP_INLINE;
        p->n_dedup = (uint8_t)nd;
        p->dedup_next = (uint8_t)dn;
        memcpy(p->dedup, r.p, in * 8);
        if (nd > in) memcpy(p->dedup_more, r.p + in * 8, (nd - in) * 8);
        r.p += nd * 8;
        r.n -= nd * 8;
    }
    if (v4) { /* which dues are set, then those; timer and index only where not implied */
        uint64_t set = getu(&r);
        if (set >> 7) r.bad = true;
        int64_t *due[] = {&p->rfm_due_ms, &p->stop_due_ms, &p->drop_due_ms, &p->churn_due_ms, &p->nps_due_ms};
        for (unsigned k = 0; k < sizeof due / sizeof due[0]; k++)
            *due[k] = set >> k & 1 ? get_ts(&r, base) : 0;
        p->timer_due_ms = set & T_TIMER ? get_ts(&r, base) : cx_profile_earliest_due(p);
        p->index_due_ms = set & T_INDEX ? get_ts(&r, base) : p->timer_due_ms;
    } else {
        p->timer_due_ms = gets(&r);
        p->rfm_due_ms = gets(&r);
        p->stop_due_ms = gets(&r);
        p->drop_due_ms = gets(&r);
        p->churn_due_ms = gets(&r);
        p->nps_due_ms = gets(&r);
    }
    p->voc_monetary_minor = gets(&r);
    p->voc_clv_minor = gets(&r);
    /* version 1 had no index_due_ms: its index key was exactly at timer_due_ms */
    if (!v4) p->index_due_ms = version == 1 ? p->timer_due_ms : gets(&r);
    if (r.nomem) {
        cx_seterr(errstr, errstr_size, "profile %s: out of memory for its campaign ids", customer_id);
        cx_profile_clear(p);
        return CX_ERR_NOMEM;
    }
    if (r.bad || r.n != 0) {
        cx_seterr(errstr, errstr_size, "profile %s: corrupt encoding (%zu bytes)", customer_id, len);
        cx_profile_clear(p);
        return CX_ERR_STATE;
    }
    return CX_OK;
}
