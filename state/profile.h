/*
 * profile.h — the customer record kept in state, and its compact binary encoding.
 *
 * A profile holds what the rules need and nothing they can recompute: lifetime totals, sparse
 * day buckets for the trailing windows, the last play days, the current RFM scores and segment
 * (as of the partition's watermark), BG/NBD counters, NPS state, contact history, open campaign
 * sends and the customer's next timer. The encoding (version byte + varints, day numbers
 * delta-coded) keeps a typical customer well under 300 bytes in RocksDB.
 *
 * Ownership: cx_profile_t owns its bucket array (grown on demand) and its campaign block (contacts,
 * latest contact per type, open sends: 1.4 KB at full capacity, which most customers never use), both
 * freed by cx_profile_clear(), as are the heap strings of its ids longer than CX_SID_INLINE bytes
 * (cx_sid_t). `contacts`, `latest_by_type` and `sends` point into the campaign block, or are
 * NULL while it is absent (then n_contacts, has_latest_by_type and n_sends are 0): call
 * cx_profile_campaigns() before the first write to them. Everything else is inline and bounded.
 */
#ifndef CX_PROFILE_H
#define CX_PROFILE_H

#include <stddef.h>

#include "buf.h"
#include "cx.h"
#include "event.h"

#define CX_PROFILE_VERSION  5  /* 5: a near day delta in its bucket's varint; 1 to 4 are still read */
#define CX_PLAY_DAYS_KEPT   10 /* last play days kept for the usual-gap estimator */
#define CX_DEDUP_MAX        32 /* upper bound of dedup.per_customer */
#define CX_DEDUP_INLINE     8  /* of them in the struct (the default); the rest in dedup_more */
#define CX_CONTACTS_KEPT    8  /* last contacts kept, besides the latest per campaign type */
#define CX_OPEN_SENDS_MAX   8  /* open campaign sends kept per customer */
#define CX_GENRES_KEPT      4  /* genre counters for top_genre */
#define CX_TOUCHPOINTS_KEPT 4  /* last score per touchpoint */

/* One UTC day of activity inside the trailing windows, in 16 bytes: an active customer keeps ~30
 * of them, and the RFM scans read them all. Only whether the day had a play counts (the play days of
 * the triggers), so that is one bit beside the transaction count. */
#define CX_BUCKET_TX_MAX 0x7fffffffu /* tx saturates there */
typedef struct cx_bucket {
    int32_t day;          /* UTC day number */
    uint32_t tx : 31;     /* transactions: purchases + plays >= retrieval.min_seconds */
    uint32_t play : 1;    /* a play >= retrieval.min_seconds on this day (a play day) */
    int64_t amount_minor; /* purchase amounts */
} cx_bucket_t;
_Static_assert(sizeof(cx_bucket_t) == 16, "cx_bucket_t is 16 bytes");

/* An id of up to CX_ID_MAX bytes in 24 bytes: up to CX_SID_INLINE bytes inline, longer ones in a heap
 * string it owns. All-zero is the empty id and holds nothing; cx_sid_free() returns to it. A struct
 * copy would share the heap string: copy with cx_sid_dup(), move by memmove and zero the source.
 * Inline: the string, NUL-padded, b[23] == 0; heap: the pointer in b[0..7], b[23] == 1. */
#define CX_SID_INLINE 22
typedef struct cx_sid {
    char b[CX_SID_INLINE + 2];
} cx_sid_t;

static inline const char *cx_sid_str(const cx_sid_t *s) {
    if (!s->b[CX_SID_INLINE + 1]) return s->b;
    const char *h;
    memcpy(&h, s->b, sizeof h);
    return h;
}
static inline bool cx_sid_eq(const cx_sid_t *s, const char *v) {
    return strcmp(cx_sid_str(s), v) == 0;
}
/* Sets s to the n bytes at v (no NUL needed). CX_ERR_INVALID if n > CX_ID_MAX, CX_ERR_NOMEM; either
 * way s keeps its value. */
cx_err_t cx_sid_setn(cx_sid_t *s, const char *v, size_t n);
static inline cx_err_t cx_sid_set(cx_sid_t *s, const char *v) {
    return cx_sid_setn(s, v, strlen(v));
}
static inline cx_err_t cx_sid_dup(cx_sid_t *dst, const cx_sid_t *src) {
    return cx_sid_set(dst, cx_sid_str(src));
}
void cx_sid_free(cx_sid_t *s);
/* Copies the id into dst[cap] (NUL-terminated; cap > CX_ID_MAX never truncates). */
static inline void cx_sid_get(const cx_sid_t *s, char *dst, size_t cap) {
    const char *v = cx_sid_str(s);
    size_t n = strnlen(v, cap - 1);
    memcpy(dst, v, n);
    dst[n] = 0;
}

/* A contact (a TEST send) as the profile keeps it (cx_contact_t is the form records carry). */
typedef struct cx_pcontact {
    cx_sid_t campaign_id;
    int64_t ts_ms;
    uint8_t campaign_type; /* cx_campaign_type_t; CX_CT_OTHER while the campaign is unknown */
    uint8_t channel;       /* cx_channel_t */
    uint8_t group;         /* cx_group_t */
} cx_pcontact_t;
_Static_assert(sizeof(cx_pcontact_t) == 40, "cx_pcontact_t is 40 bytes");

typedef struct cx_open_send {
    cx_sid_t campaign_id;
    cx_sid_t send_event_id;
    cx_sid_t code; /* the send's own campaign_code */
    bool has_code;
    uint8_t group;     /* cx_group_t */
    uint8_t responded; /* CX_SEND_* bits (attribution.h): responded, hard, waiting, closed */
    int64_t ts_ms;
    int64_t end_ts_ms; /* window end (inclusive); 0 while the campaign is unknown */
} cx_open_send_t;

/* dst := src, the id copied (dst's old id freed). CX_ERR_NOMEM leaves dst as it was. */
cx_err_t cx_pcontact_copy(cx_pcontact_t *dst, const cx_pcontact_t *src);
/* Frees a send's ids and zeroes it. */
void cx_open_send_clear(cx_open_send_t *s);

typedef struct cx_touchpoint_score {
    cx_sid_t touchpoint;
    int8_t score;
    int64_t ts_ms;
} cx_touchpoint_score_t;

/* The campaign block: allocated on a customer's first contact or send (cx_profile_campaigns), in one
 * allocation with room for cap_contacts contacts and cap_sends sends after it, grown on demand
 * (cx_profile_camp_reserve): a customer with one open send holds 440 bytes instead of the 1.4 KB of
 * full arrays (5.3 KB and ~1.4 KB while ids were kept in 129-byte arrays). */
typedef struct cx_profile_camp {
    cx_pcontact_t latest_by_type[CX_CT__COUNT];
    uint8_t cap_contacts, cap_sends;
} cx_profile_camp_t;

/* Field order is for the CPU cache: what most events read and write comes first (lifetime totals,
 * day buckets, RFM, BG/NBD, play days, timers, campaign pointers), then the genre counters and the
 * duplicate ring, then the id (read when a record is emitted), then what few events touch (NPS,
 * touchpoints, acquisition). The cache's prefetch loads the first part and the id's first line. */
typedef struct cx_profile {
    /* lifetime */
    bool has_tx;
    bool has_play;
    int8_t r_score, f_score, m_score; /* RFM as of the watermark */
    int8_t segment;                   /* -1 until the first transaction */
    uint8_t n_play_days;
    uint8_t has_latest_by_type; /* bit per cx_campaign_type_t */
    int64_t first_tx_ts_ms, last_tx_ts_ms;
    int64_t last_play_ts_ms; /* any play, however short */
    int64_t purchases_total, revenue_total_minor, plays_total;

    /* trailing windows: sorted by day ascending, at most one bucket per day */
    cx_bucket_t *buckets;
    uint32_t n_buckets, cap_buckets;

    /* BG/NBD on transaction days */
    int32_t first_tx_day, last_tx_day;
    int64_t tx_days;                 /* distinct transaction days (x + 1) */
    int64_t first_day_revenue_minor; /* revenue on first_tx_day */
    int64_t tx_revenue_minor;        /* revenue on all transaction days */

    /* disengagement */
    int32_t play_days[CX_PLAY_DAYS_KEPT]; /* distinct retrieval-play days, ascending */
    uint32_t play_days_total;
    /* not stored: first_tx_day + 1 as of the last computation of drop_due_ms, 0 when none since the
     * profile was loaded (cx_triggers_arm: a play on a known play day keeps the pending due) */
    int32_t drop_armed_first;
    int64_t last_trigger_ts_ms;                  /* 0: none */
    int64_t last_trigger_due_ms[CX_TRIG__COUNT]; /* due time of the last trigger of each kind */

    /* timers: the customer's earliest due time (0: none); per kind below */
    int64_t timer_due_ms;
    /* due time of this customer's key in the store's timer index (0: none). Kept lazily: a due that
     * moves later leaves the key where it is (never later than timer_due_ms when both are set); the
     * key is consumed when the scan reaches it and re-put at the then current due (cache.h). */
    int64_t index_due_ms;
    int64_t rfm_due_ms;   /* next day on which R, F or M may change */
    int64_t stop_due_ms;  /* STOPPED_STREAMING */
    int64_t drop_due_ms;  /* ENGAGEMENT_DROP */
    int64_t churn_due_ms; /* CHURN_RISK re-check */
    int64_t nps_due_ms;   /* latest NPS score leaves the segment figures (voc.h); 0: not counted */

    /* CX economics: what this customer contributes to its segment's sums (voc.h) */
    int64_t voc_monetary_minor, voc_clv_minor;

    /* campaigns */
    cx_profile_camp_t *camp;       /* NULL until the first contact or send; owns the three arrays below */
    cx_pcontact_t *contacts;       /* in the camp allocation or NULL; [camp->cap_contacts], newest last */
    cx_pcontact_t *latest_by_type; /* camp->latest_by_type or NULL; [CX_CT__COUNT] */
    cx_open_send_t *sends;         /* in the camp allocation or NULL; [camp->cap_sends] */
    uint8_t n_contacts;
    uint8_t n_sends;
    bool newsletter_recipient;
    /* duplicates: fingerprints of the last accepted event ids, ring; entries CX_DEDUP_INLINE and up
     * (dedup.per_customer above it) in dedup_more. The counts here, in the campaign fields' padding */
    uint8_t n_dedup, dedup_next;

    /* genre counters (Space-Saving, slots filled in order; count 0: empty): the counts and the names'
     * fingerprints are hot (a play finds its genre without reading the names), the names cold. Set a
     * slot's name with cx_profile_set_genre(), which keeps its fingerprint. 32 bits: a genre new to
     * the customer matches one of its four with a chance of ~1e-9, and would take its counter. */
    uint32_t genre_fp[CX_GENRES_KEPT]; /* cx_profile_genre_fp of the name; not stored */
    uint32_t genre_count[CX_GENRES_KEPT];

    uint64_t dedup[CX_DEDUP_INLINE]; /* the ring's first entries */

    cx_sid_t customer_id;
    uint64_t *dedup_more; /* [CX_DEDUP_MAX - CX_DEDUP_INLINE] or NULL; owned */

    cx_sid_t genre[CX_GENRES_KEPT]; /* names of the genre counters above */

    /* voice of customer; the touchpoints out of line, as most customers answer no survey */
    bool has_nps;
    int8_t nps_last;
    uint8_t n_touchpoints;
    bool has_acquisition;
    cx_sid_t acquisition_campaign_id;
    int64_t nps_last_ts_ms;
    int64_t nps_count;
    cx_touchpoint_score_t *touchpoints; /* [CX_TOUCHPOINTS_KEPT] or NULL (cx_profile_touchpoints); owned */
} cx_profile_t;

/* The end of the part of a profile most events read (see the field order above): up to the duplicate
 * ring's entries in the struct (dedup.per_customer's default); the id's first line is read when a
 * record is emitted. */
#define CX_PROFILE_HOT_END (offsetof(cx_profile_t, dedup) + CX_DEDUP_INLINE * sizeof(uint64_t))

/* Zeroed, segment -1, with the campaign block allocated at full capacity (every field writable at
 * once; should the allocation fail, the block is absent and cx_profile_campaigns() reports it). */
void cx_profile_init(cx_profile_t *p, const char *customer_id);
/* The same without the campaign block (the cache's and the decoder's form). */
cx_err_t cx_profile_init_lean(cx_profile_t *p, const char *customer_id); /* CX_ERR_NOMEM: id not kept */
/* Allocates the (zeroed) campaign block unless present, without room for contacts or sends.
 * CX_ERR_NOMEM on failure. */
cx_err_t cx_profile_campaigns(cx_profile_t *p);
/* Room for at least `contacts` contacts and `sends` sends (capped at CX_CONTACTS_KEPT and
 * CX_OPEN_SENDS_MAX), allocating or growing the block; pointers into contacts/sends are invalid
 * afterwards. CX_ERR_NOMEM on failure (the block is unchanged). */
cx_err_t cx_profile_camp_reserve(cx_profile_t *p, unsigned contacts, unsigned sends);
/* Allocates the (zeroed) touchpoint block unless present. CX_ERR_NOMEM on failure. */
cx_err_t cx_profile_touchpoints(cx_profile_t *p);
void cx_profile_clear(cx_profile_t *p); /* frees buckets and the campaign block; lean afterwards */
/* Deep copy; dst must hold nothing (cleared, or from cx_profile_init_lean: cx_profile_init's campaign
 * block would leak). CX_ERR_NOMEM: dst holds part of src, its own; clear it. */
cx_err_t cx_profile_copy(cx_profile_t *dst, const cx_profile_t *src);
/* Names genre counter `slot` (truncated to CX_SHORT_MAX bytes) and sets its fingerprint; the count is
 * the caller's. */
cx_err_t cx_profile_set_genre(cx_profile_t *p, unsigned slot, const char *name); /* CX_ERR_NOMEM: unchanged */
/* The fingerprint cx_profile_t.genre_fp holds for a genre name. */
static inline uint32_t cx_profile_genre_fp(const char *name) {
    return (uint32_t)cx_hash_mem(name, strlen(name));
}

/* Compact encoding (customer_id is the key, not repeated in the value), in CX_PROFILE_VERSION. */
cx_err_t cx_profile_encode(const cx_profile_t *p, cx_buf_t *out);
/* The same in `version` 3 to CX_PROFILE_VERSION (CX_ERR_INVALID otherwise): tests write the older
 * forms the decoder still reads. */
cx_err_t cx_profile_encode_as(const cx_profile_t *p, cx_buf_t *out, int version);
/* The customer's earliest due time (0: none): the per-kind dues and the open sends' window ends.
 * timer_due_ms holds it once the pipeline has updated the timer (version 4 writes it only when not). */
static inline int64_t cx_profile_earliest_due(const cx_profile_t *p) {
    int64_t kinds[] = {p->rfm_due_ms, p->stop_due_ms, p->drop_due_ms, p->churn_due_ms, p->nps_due_ms};
    int64_t due = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i] && (!due || kinds[i] < due)) due = kinds[i];
    for (unsigned i = 0; i < p->n_sends; i++)
        if (p->sends[i].end_ts_ms && (!due || p->sends[i].end_ts_ms < due)) due = p->sends[i].end_ts_ms;
    return due;
}

/* Decodes into p (cleared first, customer_id set from `customer_id`). CX_ERR_STATE on corrupt or
 * unknown-version input, with detail in errstr. */
cx_err_t cx_profile_decode(cx_profile_t *p, const char *customer_id, const void *buf, size_t len, char *errstr,
                           size_t errstr_size);

/* The bucket for `day`, created if absent (kept sorted). NULL on allocation failure. */
cx_bucket_t *cx_profile_bucket(cx_profile_t *p, int32_t day);
/* Drops buckets with day < min_day. */
void cx_profile_prune_buckets(cx_profile_t *p, int32_t min_day);

/* Dedup: true if `fp` is among the remembered fingerprints; cx_profile_dedup_add remembers it in a
 * ring of `keep` entries (CX_ERR_NOMEM, nothing changed, when a ring beyond CX_DEDUP_INLINE cannot
 * get its memory). */
bool cx_profile_dedup_seen(const cx_profile_t *p, uint64_t fp);
/* Entry i of the duplicate ring (i < n_dedup, so dedup_more exists when i >= CX_DEDUP_INLINE). */
static inline uint64_t *cx_profile_dedup_at(const cx_profile_t *p, unsigned i) {
    return i < CX_DEDUP_INLINE ? (uint64_t *)&p->dedup[i] : &p->dedup_more[i - CX_DEDUP_INLINE];
}
cx_err_t cx_profile_dedup_add(cx_profile_t *p, uint64_t fp, unsigned keep);

/* 64-bit FNV-1a of bytes: the event-id fingerprint kept in profiles (in-memory tables use cx_hash_mem). */
uint64_t cx_hash64(const void *data, size_t len);

#endif
