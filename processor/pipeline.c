/*
 * pipeline.c — one event's life: dedup → update profile → rules (RFM/segment, ...) → outputs;
 * and the timer wheel that makes silence visible: each customer has one earliest due time, kept
 * in a RocksDB index (flushed state) and an in-memory heap (changes since the last flush), fired in
 * (due, customer_id) order as the partition's watermark passes it.
 */
#include "pipeline.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgnbd.h"
#include "gammagamma.h"
#include "rfm.h"
#include "campaigns.h"
#include "triggers.h"
#include "sketch.h"
#include "voc.h"

#define TIMER_BATCH  4096 /* timers fired per cx_pipeline_advance call */
#define DB_TIMER_BUF 256  /* timer keys read from RocksDB per scan */
#define META_VERSION 1

typedef struct heap_item {
    int64_t due;
    uint64_t id8[2];     /* the customer id's first 16 bytes, big-endian: most ties (many customers share a
                          * midnight due) resolved without touching the entry */
    cx_cache_entry_t *e; /* dirty entry: not evicted before the next flush, which clears the heap */
} heap_item_t;

typedef struct db_timer {
    int64_t due;
    char cid[CX_ID_MAX + 1];
} db_timer_t;

typedef struct part {
    bool owned;
    int64_t wm;     /* watermark; INT64_MIN before the first event */
    int64_t max_ts; /* largest event ts seen */
    int64_t next_off[CX_INPUTS];
    int64_t seg_counts[CX_SEGMENTS_MAX];
    heap_item_t *heap;
    size_t heap_n, heap_cap;
    db_timer_t *db; /* buffered timer keys from RocksDB, ascending, from db_resume on; 2 x DB_TIMER_BUF */
    size_t db_n, db_pos;
    bool db_valid;      /* buffer reflects the store since the last flush */
    bool db_exhausted;  /* the last scan found no more keys */
    cx_buf_t db_resume; /* key to resume the scan after (exclusive) */
    int64_t db_floor;   /* while !db_valid: no index key is due before this (INT64_MIN: unknown) */
    cx_buf_t cursor;    /* the last index key consumed: where a new scan resumes (exclusive) */
    cx_buf_t dels;      /* index keys consumed since the last flush, which deletes them: [u8 len][key] */
    /* Write behind: the index keys the flush in flight puts, ascending, [u8 len][key]. While that write
     * is in flight, scans read the store without waiting and merge these (infl_live). */
    cx_buf_t infl;
    size_t infl_pos;         /* the first entry not yet merged (all before it are <= db_resume) */
    bool infl_live;          /* infl holds every key the flush in flight puts for this partition */
    int64_t next_rescore_ms; /* quantile scoring: next re-scoring instant (0: not yet known) */
    cx_kll_t *sk[3];         /* quantile scoring: this partition's R, F, M sketches at its last re-scoring */
} part_t;

typedef struct campaign_slot {
    cx_campaign_t c;
    bool used;
} campaign_slot_t;

struct cx_pipeline {
    const cx_config_t *cfg;
    cx_store_t *store;
    cx_sink_t sink;
    cx_cache_t *cache;
    cx_rfm_thresholds_t th;
    cx_bgnbd_params_t bg;
    cx_gg_params_t gg;
    part_t *parts[CX_PARTS_MAX];
    campaign_slot_t *campaigns;
    size_t n_campaigns, cap_campaigns;
    cx_store_batch_t *batch;
    cx_campaigns_t *camps; /* open sends, responses, KPI partials (campaigns.h) */
    cx_voc_t *voc;         /* NPS, comment terms and economics per segment/touchpoint (voc.h) */
    cx_buf_t key, val;
    int64_t min_put_due[CX_PARTS_MAX]; /* flush scratch: earliest timer key put, per partition */
    cx_pipeline_stats_t st;
    int32_t keep_days;          /* bucket horizon: max(rfm window, 16 weeks for ENGAGEMENT_DROP) */
    cx_flush_hook_t flush_hook; /* the driver's changelog / transaction step of a flush */
    void *flush_opaque;
    bool write_behind; /* cx_pipeline_set_write_behind */
};

/* ---------- small helpers ---------- */

static int64_t day_start(int64_t day) {
    return day * CX_DAY_MS;
}

static int32_t wm_day_of(const part_t *P, int64_t fallback_ts) {
    return (int32_t)cx_day(P->wm == INT64_MIN ? fallback_ts : P->wm);
}

static const char *segment_name(const cx_pipeline_t *p, int seg) {
    return seg >= 0 && (size_t)seg < p->cfg->n_segments ? p->cfg->segments[seg].name : NULL;
}

static cx_err_t emit(cx_pipeline_t *p, cx_record_kind_t kind, const char *key, const void *rec) {
    p->st.out[kind & 15]++;
    return p->sink.emit ? p->sink.emit(p->sink.opaque, kind, key, rec) : CX_OK;
}

static const cx_campaign_t *campaign_find(const cx_pipeline_t *p, const char *id) {
    for (size_t i = 0; i < p->n_campaigns; i++)
        if (p->campaigns[i].used && strcmp(p->campaigns[i].c.campaign_id, id) == 0) return &p->campaigns[i].c;
    return NULL;
}

static const cx_campaign_t *camp_lookup(void *opaque, const char *id) {
    return campaign_find(opaque, id);
}
static cx_err_t camp_emit(void *opaque, cx_record_kind_t kind, const char *key, const void *rec) {
    return emit(opaque, kind, key, rec);
}

/* ---------- heap of pending timers (changed since the last flush) ---------- */

static bool item_less(const heap_item_t *a, const heap_item_t *b) {
    if (a->due != b->due) return a->due < b->due;
    if (a->id8[0] != b->id8[0]) return a->id8[0] < b->id8[0];
    if (a->id8[1] != b->id8[1]) return a->id8[1] < b->id8[1];
    return strcmp(a->e->cid, b->e->cid) < 0;
}

/* Bytes [off, off + 8) of the id as a big-endian word, zero-padded past its end: comparing the words
 * of two ids in turn is strcmp's order as long as the words differ. */
static uint64_t id8_of(const cx_cache_entry_t *e, size_t off) {
    uint64_t v = 0;
    for (size_t i = off; i < off + 8; i++)
        v = (v << 8) | (i < e->cid_len ? (uint8_t)e->cid[i] : 0);
    return v;
}

/* Pushes are lazy, like the RocksDB index: an entry has at most one live item, at its earliest due;
 * a due that moves later keeps the item, which heap_top() moves on when it comes up. (One item per
 * due change made the heap grow with the events between flushes, and its ties compared ids in
 * scattered entries.) */
static cx_err_t heap_push(part_t *P, int64_t due, cx_cache_entry_t *e) {
    if (e->heap_due && e->heap_due <= due) return CX_OK;
    if (P->heap_n == P->heap_cap) {
        size_t cap = P->heap_cap ? P->heap_cap * 2 : 256;
        heap_item_t *h = realloc(P->heap, cap * sizeof *h);
        if (!h) return CX_ERR_NOMEM;
        P->heap = h;
        P->heap_cap = cap;
    }
    size_t i = P->heap_n++;
    P->heap[i] = (heap_item_t){due, {id8_of(e, 0), id8_of(e, 8)}, e};
    e->heap_due = due;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!item_less(&P->heap[i], &P->heap[up])) break;
        heap_item_t t = P->heap[i];
        P->heap[i] = P->heap[up];
        P->heap[up] = t;
        i = up;
    }
    return CX_OK;
}

/* Removes the top. Bottom-up (Floyd): the hole left at the root moves down along the smaller
 * children to a leaf, one comparison per level, and the last item moves up from there; the last item
 * belongs near the bottom, so that costs about half the comparisons of sifting it down from the root. */
static void heap_pop(part_t *P) {
    size_t n = --P->heap_n, i = 0;
    if (n == 0) return;
    heap_item_t *h = P->heap;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t m = l + 1 < n && item_less(&h[l + 1], &h[l]) ? l + 1 : l;
        h[i] = h[m];
        i = m;
    }
    heap_item_t last = h[n];
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!item_less(&last, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = last;
}

/* Top of the heap: an item superseded by an earlier push for its entry is dropped; an item whose
 * entry's due moved later is moved to that due; a due now gone drops it. */
static cx_err_t heap_top(part_t *P, heap_item_t **out) {
    *out = NULL;
    while (P->heap_n) {
        heap_item_t top = P->heap[0];
        cx_cache_entry_t *e = top.e;
        if (e->heap_due != top.due) { /* superseded */
            heap_pop(P);
            continue;
        }
        int64_t tdue = cx_cache_timer_due(e); /* e may be encoded (cx_cache_trim) */
        if (tdue == top.due) {
            *out = &P->heap[0];
            return CX_OK;
        }
        heap_pop(P);
        e->heap_due = 0;
        if (tdue > top.due) {
            cx_err_t rc = heap_push(P, tdue, e);
            if (rc != CX_OK) return rc;
        }
    }
    return CX_OK;
}

/* ---------- timers in RocksDB ---------- */

static void infl_reset(part_t *P) {
    cx_buf_reset(&P->infl);
    P->infl_pos = 0;
    P->infl_live = false;
}

/* Orders two index keys as RocksDB does (bytewise, a prefix first). */
static int key_cmp(const void *a, size_t al, const void *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Fills t from an index key; false when it is not one this pipeline could have written. */
static bool timer_from_key(db_timer_t *t, const void *k, size_t kl) {
    uint16_t part;
    const char *cid;
    size_t cl;
    if (!cx_store_timer_key_parse(k, kl, &part, &t->due, &cid, &cl) || cl > CX_ID_MAX) return false;
    memcpy(t->cid, cid, cl);
    t->cid[cl] = 0;
    return true;
}

typedef struct scan_ctx {
    db_timer_t *out; /* DB_TIMER_BUF entries */
    size_t n;
    const cx_buf_t *resume; /* exclusive start (the scan seeks to it inclusively) */
    cx_buf_t *last;         /* the last key scanned */
} scan_ctx_t;

static bool scan_cb(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    scan_ctx_t *s = opaque;
    if (s->resume->len && s->n == 0 && key_cmp(k, kl, s->resume->data, s->resume->len) <= 0) return true;
    if (!timer_from_key(&s->out[s->n], k, kl)) return true;
    s->n++;
    cx_buf_reset(s->last);
    cx_buf_append(s->last, k, kl);
    return s->n < DB_TIMER_BUF;
}

/* The next in-flight key after P->infl_pos, or NULL. */
static const uint8_t *infl_at(const part_t *P, size_t off, size_t *kl) {
    if (off >= P->infl.len) return NULL;
    *kl = P->infl.data[off];
    return P->infl.data + off + 1;
}

/* Merges the store's keys db[0..n) (read while the write was in flight: with or without its keys)
 * with the in-flight keys after db_resume into P->db[0..), at most DB_TIMER_BUF, dropping
 * duplicates. `full`: the store has keys after db[n-1], so in-flight keys after it wait for the next
 * scan. Leaves db_resume at the last key taken. */
static cx_err_t merge_infl(part_t *P, uint16_t part, const db_timer_t *db, size_t n, bool full, cx_buf_t *key) {
    size_t kl, i = 0, out = 0;
    const uint8_t *k;
    while ((k = infl_at(P, P->infl_pos, &kl)) && P->db_resume.len &&
           key_cmp(k, kl, P->db_resume.data, P->db_resume.len) <= 0)
        P->infl_pos += 1 + kl;
    cx_err_t rc = CX_OK;
    while (out < DB_TIMER_BUF && rc == CX_OK) {
        k = infl_at(P, P->infl_pos, &kl);
        int c = -1; /* in-flight key vs store key: <0 take in-flight, >0 take store, 0 take one */
        if (i < n) {
            if ((rc = cx_store_timer_key(key, part, db[i].due, db[i].cid)) != CX_OK) break;
            c = k ? key_cmp(k, kl, key->data, key->len) : 1;
        } else if (!k || full)
            break;
        if (c <= 0) {
            P->infl_pos += 1 + kl;
            if (c == 0) i++;
            if (!timer_from_key(&P->db[out], k, kl)) continue; /* not this pipeline's (as scan_cb) */
            cx_buf_reset(&P->db_resume);
            rc = cx_buf_append(&P->db_resume, k, kl);
        } else {
            P->db[out] = db[i++];
            cx_buf_reset(&P->db_resume);
            rc = cx_buf_append(&P->db_resume, key->data, key->len);
        }
        out++;
    }
    P->db_n = out;
    return rc;
}

/* The next buffered RocksDB timer, refilling the buffer from the store when it runs dry. */
static cx_err_t db_head(cx_pipeline_t *p, uint16_t part, db_timer_t **out, char *errstr, size_t n) {
    part_t *P = p->parts[part];
    *out = NULL;
    if (!P->db && !(P->db = malloc(2 * DB_TIMER_BUF * sizeof *P->db))) return CX_ERR_NOMEM;
    if (!P->db_valid) {
        /* Nothing in the index is due yet: no scan. After a flush this keeps the store (still
         * writing that flush behind) out of the way until the watermark reaches the earliest key. */
        if (P->db_floor > P->wm) return CX_OK;
        P->db_n = P->db_pos = 0;
        P->db_exhausted = false;
        cx_buf_reset(&P->db_resume);
        if (P->cursor.len && cx_buf_append(&P->db_resume, P->cursor.data, P->cursor.len) != CX_OK) return CX_ERR_NOMEM;
        P->db_valid = true;
    }
    if (P->db_pos < P->db_n) {
        *out = &P->db[P->db_pos];
        return CX_OK;
    }
    if (P->db_exhausted || !p->store) return CX_OK;
    /* while the flush's write is in flight, read the store as it is and add that flush's keys */
    bool behind = P->infl_live && cx_store_writing(p->store);
    if (!behind && P->infl_live) infl_reset(P); /* landed: the store has them */
    P->db_n = P->db_pos = 0;
    uint8_t lo[3] = {(uint8_t)(part >> 8), (uint8_t)part, CX_KEY_TIMER};
    uint8_t to[3] = {(uint8_t)(part >> 8), (uint8_t)part, CX_KEY_TIMER + 1};
    /* the scan records its last key in p->key, so db_resume stays put while it is the start */
    const void *from = P->db_resume.len ? (const void *)P->db_resume.data : lo;
    size_t fl = P->db_resume.len ? P->db_resume.len : sizeof lo;
    scan_ctx_t s = {behind ? P->db + DB_TIMER_BUF : P->db, 0, &P->db_resume, &p->key};
    cx_err_t rc = behind ? cx_store_scan_behind(p->store, from, fl, to, 3, scan_cb, &s, errstr, n)
                         : cx_store_scan(p->store, from, fl, to, 3, scan_cb, &s, errstr, n);
    if (rc == CX_OK) {
        if (behind)
            rc = merge_infl(P, part, s.out, s.n, s.n == DB_TIMER_BUF, &p->key);
        else if ((P->db_n = s.n) > 0) {
            cx_buf_reset(&P->db_resume);
            rc = cx_buf_append(&P->db_resume, p->key.data, p->key.len);
        }
    }
    if (rc != CX_OK) {
        if (rc == CX_ERR_NOMEM) cx_seterr(errstr, n, "timer scan: out of memory");
        return rc;
    }
    if (P->db_n == 0)
        P->db_exhausted = true;
    else
        *out = &P->db[0];
    return CX_OK;
}

/* Recomputes the customer's earliest due time from the per-kind ones. */
static cx_err_t update_timer(cx_pipeline_t *p, part_t *P, cx_cache_entry_t *e) {
    cx_profile_t *pr = e->prof;
    int64_t due = cx_profile_earliest_due(pr);
    if (due == pr->timer_due_ms) return CX_OK;
    pr->timer_due_ms = due;
    cx_cache_mark_dirty(p->cache, e);
    return due ? heap_push(P, due, e) : CX_OK;
}

/* ---------- rules ---------- */

/* What caused a re-score, as the SegmentChange's `cause` names it: an event's id, or a prefix and a
 * time ("timer:<due ts>", "rescore:<ts>"). Written only when a change is emitted: most re-scores emit
 * nothing, and formatting with snprintf cost ~20% of the core's instructions. */
typedef struct {
    const char *id;     /* the event id, or NULL */
    const char *prefix; /* "timer:" or "rescore:" when id is NULL */
    int64_t ts;
} cause_t;

/* Copies the NUL-terminated src into dst of `size` bytes from `at`, truncated; returns the new length. */
static size_t put_str(char *dst, size_t size, size_t at, const char *src) {
    while (*src && at + 1 < size)
        dst[at++] = *src++;
    dst[at] = '\0';
    return at;
}

static void cause_write(char *dst, size_t size, const cause_t *c) {
    if (c->id) {
        put_str(dst, size, 0, c->id);
        return;
    }
    char digits[24];
    size_t n = sizeof digits - 1;
    uint64_t v = c->ts < 0 ? 0 - (uint64_t)c->ts : (uint64_t)c->ts;
    digits[n] = '\0';
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (c->ts < 0) digits[--n] = '-';
    put_str(dst, size, put_str(dst, size, 0, c->prefix), digits + n);
}

/* Re-scores R, F, M as of `day`; emits a SegmentChange when the segment moves. */
static cx_err_t rescore(cx_pipeline_t *p, part_t *P, cx_cache_entry_t *e, int32_t day, int64_t ts,
                        const cause_t *cause) {
    cx_profile_t *pr = e->prof;
    if (!pr->has_tx) return CX_OK;
    cx_rfm_t r;
    cx_rfm_compute(pr, &p->th, day, &r);
    int seg = cx_config_segment_of(p->cfg, r.r, r.f, r.m);
    int prev = pr->segment;
    if (r.r != pr->r_score || r.f != pr->f_score || r.m != pr->m_score || seg != prev) {
        pr->r_score = (int8_t)r.r;
        pr->f_score = (int8_t)r.f;
        pr->m_score = (int8_t)r.m;
        pr->segment = (int8_t)seg;
        cx_cache_mark_dirty(p->cache, e);
    }
    int64_t clv = cx_triggers_clv_minor(pr, p->cfg, &p->bg, &p->gg, day);
    cx_voc_rescored(p->voc, e->part, pr, prev, r.monetary_minor, clv);
    int32_t next = cx_rfm_next_change_day(pr, &p->th, day, &r);
    pr->rfm_due_ms = next == INT32_MAX ? 0 : day_start(next);
    if (seg == prev) return CX_OK;
    if (prev >= 0 && prev < CX_SEGMENTS_MAX) P->seg_counts[prev]--;
    if (seg >= 0 && seg < CX_SEGMENTS_MAX) P->seg_counts[seg]++;
    cx_segment_change_t sc;
    memset(&sc, 0, sizeof sc);
    cx_sid_get(&pr->customer_id, sc.customer_id, sizeof sc.customer_id);
    sc.ts_ms = ts;
    sc.previous_segment = segment_name(p, prev);
    sc.segment = segment_name(p, seg);
    sc.r_score = r.r;
    sc.f_score = r.f;
    sc.m_score = r.m;
    sc.recency_days = r.recency_days;
    sc.frequency = r.frequency;
    sc.monetary_minor = r.monetary_minor;
    cause_write(sc.cause, sizeof sc.cause, cause);
    sc.has_p_alive = sc.has_clv_minor = true;
    sc.p_alive = cx_triggers_p_alive(pr, &p->bg, p->cfg->bgnbd_unit_days, day);
    sc.clv_minor = clv;
    return emit(p, CX_REC_SEGMENT_CHANGE, cx_sid_str(&pr->customer_id), &sc);
}

/* Fires every timer kind of one customer due at `due`. */
static cx_err_t fire(cx_pipeline_t *p, part_t *P, cx_cache_entry_t *e, int64_t due) {
    cx_profile_t *pr = e->prof;
    const cause_t cause = {.prefix = "timer:", .ts = due};
    int32_t day = (int32_t)cx_day(due);
    cx_err_t rc = CX_OK;
    p->st.timers_fired++;
    cx_cache_mark_dirty(p->cache, e);
    if (pr->rfm_due_ms && pr->rfm_due_ms <= due) {
        pr->rfm_due_ms = 0;
        rc = rescore(p, P, e, day, due, &cause);
    }
    /* disengagement triggers, in the order STOPPED_STREAMING, ENGAGEMENT_DROP, CHURN_RISK */
    for (int k = 0; k < CX_TRIG__COUNT && rc == CX_OK; k++) {
        int64_t kdue = *cx_triggers_due_field(pr, (cx_trigger_kind_t)k);
        if (!kdue || kdue > due) continue;
        cx_triggers_clear_due(pr, (cx_trigger_kind_t)k);
        cx_trigger_t t;
        if (cx_triggers_decide(pr, p->cfg, &p->bg, (cx_trigger_kind_t)k, due, segment_name(p, pr->segment), &t)) {
            rc = emit(p, CX_REC_TRIGGER, cx_sid_str(&pr->customer_id), &t);
            cx_voc_trigger(p->voc, e->part, pr->segment);
        }
    }
    cx_voc_nps_expire(p->voc, e->part, pr, due); /* the latest score's window ended */
    cx_voc_windows_t closing;                    /* response rate per segment: windows that end now */
    cx_voc_windows_before(pr, due, &closing);
    if (rc == CX_OK) rc = cx_campaigns_timer(p->camps, e->part, pr, due); /* window ends, waits */
    if (rc == CX_OK) cx_voc_windows_after(p->voc, e->part, pr, &closing);
    if (rc == CX_OK) rc = update_timer(p, P, e);
    return rc;
}

/* ---------- public API ---------- */

cx_pipeline_t *cx_pipeline_new(const cx_config_t *cfg, cx_store_t *store, const cx_sink_t *sink, char *errstr,
                               size_t errstr_size) {
    cx_pipeline_t *p = calloc(1, sizeof *p);
    if (!p) goto nomem;
    p->cfg = cfg;
    p->store = store;
    if (sink) p->sink = *sink;
    p->cache = cx_cache_new(store, cfg->cache_max_customers > 0 ? (size_t)cfg->cache_max_customers : 1,
                            cfg->cache_max_decoded > 0 ? (size_t)cfg->cache_max_decoded : 1);
    p->batch = cx_store_batch_new();
    if (!p->cache || !p->batch) goto nomem;
    cx_rfm_thresholds_from_config(cfg, &p->th);
    p->bg = (cx_bgnbd_params_t){cfg->bgnbd_r, cfg->bgnbd_alpha, cfg->bgnbd_a, cfg->bgnbd_b};
    p->gg = (cx_gg_params_t){cfg->gammagamma_p, cfg->gammagamma_q, cfg->gammagamma_gamma};
    p->keep_days = cfg->rfm_window_days > 112 ? cfg->rfm_window_days : 112;
    cx_sink_t csink = {p, camp_emit};
    if (!(p->camps = cx_campaigns_new(cfg, camp_lookup, p, &csink, errstr, errstr_size))) goto nomem;
    if (!(p->voc = cx_voc_new(cfg, errstr, errstr_size))) goto nomem;
    return p;
nomem:
    cx_seterr(errstr, errstr_size, "out of memory creating the pipeline");
    cx_pipeline_destroy(p);
    return NULL;
}

static void part_free(part_t *P) {
    if (!P) return;
    for (int i = 0; i < 3; i++)
        cx_kll_destroy(P->sk[i]);
    free(P->heap);
    free(P->db);
    cx_buf_free(&P->db_resume);
    cx_buf_free(&P->cursor);
    cx_buf_free(&P->dels);
    cx_buf_free(&P->infl);
    free(P);
}

void cx_pipeline_destroy(cx_pipeline_t *p) {
    if (!p) return;
    char err[8];
    (void)cx_pipeline_wait(p, err, sizeof err); /* p->batch may be the writer's until then */
    for (int i = 0; i < CX_PARTS_MAX; i++)
        part_free(p->parts[i]);
    for (size_t i = 0; i < p->n_campaigns; i++)
        cx_campaign_clear(&p->campaigns[i].c);
    free(p->campaigns);
    cx_campaigns_destroy(p->camps);
    cx_voc_destroy(p->voc);
    cx_cache_destroy(p->cache);
    cx_store_batch_destroy(p->batch);
    cx_buf_free(&p->key);
    cx_buf_free(&p->val);
    free(p);
}

static cx_err_t meta_encode(const cx_pipeline_t *p, const part_t *P, cx_buf_t *out) {
    cx_err_t e = cx_buf_put_uvarint(out, META_VERSION);
    if (!e) e = cx_buf_put_svarint(out, P->wm);
    if (!e) e = cx_buf_put_svarint(out, P->max_ts);
    for (int i = 0; i < CX_INPUTS && !e; i++)
        e = cx_buf_put_svarint(out, P->next_off[i]);
    if (!e) e = cx_buf_put_uvarint(out, p->cfg->n_segments);
    for (size_t i = 0; i < p->cfg->n_segments && !e; i++)
        e = cx_buf_put_svarint(out, P->seg_counts[i]);
    return e;
}

static bool meta_decode(part_t *P, const uint8_t *b, size_t n, size_t n_segments) {
    int64_t v;
    uint64_t u;
    size_t k;
#define GETS(dst)                                          \
    do {                                                   \
        if (!(k = cx_get_svarint(b, n, &v))) return false; \
        b += k;                                            \
        n -= k;                                            \
        (dst) = v;                                         \
    } while (0)
    if (!(k = cx_get_uvarint(b, n, &u)) || u != META_VERSION) return false;
    b += k;
    n -= k;
    GETS(P->wm);
    GETS(P->max_ts);
    for (int i = 0; i < CX_INPUTS; i++)
        GETS(P->next_off[i]);
    if (!(k = cx_get_uvarint(b, n, &u))) return false;
    b += k;
    n -= k;
    for (uint64_t i = 0; i < u; i++) {
        int64_t c;
        GETS(c);
        /* a changed segment map invalidates stored counts: keep them only when the map size agrees */
        if (u == n_segments && i < CX_SEGMENTS_MAX) P->seg_counts[i] = c;
    }
#undef GETS
    return n == 0;
}

cx_err_t cx_pipeline_assign(cx_pipeline_t *p, uint16_t part, int64_t next_offsets[CX_INPUTS], char *errstr,
                            size_t errstr_size) {
    if (part >= CX_PARTS_MAX) {
        cx_seterr(errstr, errstr_size, "partition %u above the supported %d", part, CX_PARTS_MAX);
        return CX_ERR_INVALID;
    }
    part_t *P = p->parts[part];
    if (!P) {
        if (!(P = calloc(1, sizeof *P))) return CX_ERR_NOMEM;
        p->parts[part] = P;
    } else {
        P->heap_n = 0;
        P->db_valid = false;
        cx_buf_reset(&P->cursor);
        cx_buf_reset(&P->dels);
        infl_reset(P);
        memset(P->seg_counts, 0, sizeof P->seg_counts);
    }
    P->owned = true;
    P->db_floor = INT64_MIN; /* scan the index at the first timer check */
    P->wm = INT64_MIN;
    P->max_ts = INT64_MIN;
    for (int i = 0; i < CX_INPUTS; i++)
        P->next_off[i] = -1;
    if (p->store) {
        bool found = false;
        cx_err_t rc = cx_store_key(&p->key, part, CX_KEY_META, "p", 1);
        if (rc == CX_OK) rc = cx_store_get(p->store, p->key.data, p->key.len, &p->val, &found, errstr, errstr_size);
        if (rc != CX_OK) return rc;
        if (found && !meta_decode(P, p->val.data, p->val.len, p->cfg->n_segments)) {
            cx_seterr(errstr, errstr_size, "partition %u: stored metadata is corrupt", part);
            return CX_ERR_STATE;
        }
    }
    cx_err_t crc = cx_campaigns_assign(p->camps, p->store, part, P->wm, errstr, errstr_size);
    if (crc != CX_OK) return crc;
    if ((crc = cx_voc_assign(p->voc, p->store, part, errstr, errstr_size)) != CX_OK) return crc;
    cx_voc_watermark(p->voc, part, P->wm);
    if (next_offsets) memcpy(next_offsets, P->next_off, sizeof P->next_off);
    return CX_OK;
}

void cx_pipeline_revoke(cx_pipeline_t *p, uint16_t part) {
    if (part >= CX_PARTS_MAX || !p->parts[part]) return;
    cx_cache_drop_partition(p->cache, part);
    part_t *P = p->parts[part];
    P->owned = false;
    cx_campaigns_revoke(p->camps, part);
    cx_voc_revoke(p->voc, part);
    P->heap_n = 0;
    P->db_valid = false;
    cx_buf_reset(&P->cursor);
    cx_buf_reset(&P->dels);
    infl_reset(P);
}

bool cx_pipeline_owns(const cx_pipeline_t *p, uint16_t part) {
    return part < CX_PARTS_MAX && p->parts[part] && p->parts[part]->owned;
}

static part_t *owned_part(cx_pipeline_t *p, uint16_t part, char *errstr, size_t errstr_size) {
    if (!cx_pipeline_owns(p, part)) {
        cx_seterr(errstr, errstr_size, "partition %u is not assigned", part);
        return NULL;
    }
    return p->parts[part];
}

static cx_err_t rescore_partition(cx_pipeline_t *p, uint16_t part, int64_t at_ms, char *errstr, size_t errstr_size);

cx_err_t cx_pipeline_advance(cx_pipeline_t *p, uint16_t part, int64_t wm_ms, bool *more, char *errstr,
                             size_t errstr_size) {
    part_t *P = owned_part(p, part, errstr, errstr_size);
    if (!P) return CX_ERR_INVALID;
    if (wm_ms > P->wm) P->wm = wm_ms;
    cx_campaigns_watermark(p->camps, part, P->wm);
    cx_voc_watermark(p->voc, part, P->wm);
    *more = false;
    if (P->wm == INT64_MIN) return CX_OK;
    for (int fired = 0;; fired++) {
        heap_item_t *h;
        cx_err_t rc = cx_cache_trim(p->cache); /* no profile held between two timers */
        if (rc == CX_OK) rc = heap_top(P, &h);
        if (rc != CX_OK) return rc;
        db_timer_t *d = NULL;
        rc = db_head(p, part, &d, errstr, errstr_size);
        if (rc != CX_OK) return rc;
        int64_t hdue = h ? h->due : INT64_MAX, ddue = d ? d->due : INT64_MAX;
        int64_t due = hdue < ddue ? hdue : ddue;
        if (p->cfg->rfm_scoring == CX_SCORING_QUANTILE) {
            int64_t every = (int64_t)p->cfg->rfm_rescore_days;
            if (!P->next_rescore_ms) P->next_rescore_ms = day_start((cx_day(P->wm) / every + 1) * every);
            if (P->next_rescore_ms <= due && P->next_rescore_ms <= P->wm) {
                /* partition-wide re-scoring takes its place in due order, before customer timers
                 * due at the same instant */
                int64_t at = P->next_rescore_ms;
                P->next_rescore_ms = at + every * CX_DAY_MS;
                if ((rc = rescore_partition(p, part, at, errstr, errstr_size)) != CX_OK) return rc;
                continue;
            }
        }
        if (due > P->wm) return cx_campaigns_tick(p->camps); /* KPI records now due */
        if (fired >= TIMER_BATCH) {
            *more = true;
            return CX_OK;
        }
        cx_cache_entry_t *e;
        bool use_heap = hdue < ddue || (hdue == ddue && strcmp(h->e->cid, d->cid) <= 0);
        if (use_heap) {
            e = h->e;
            heap_pop(P);
            e->heap_due = 0;
            if ((rc = cx_cache_load(p->cache, e, errstr, errstr_size)) != CX_OK) return rc;
        } else {
            /* the key is consumed whatever it finds: the next flush deletes it, and a customer whose
             * due moved on (the key was kept lazily, cache.h) is re-indexed at that due */
            P->db_pos++;
            if ((rc = cx_store_timer_key(&P->cursor, part, due, d->cid)) != CX_OK) return rc;
            uint8_t kl = (uint8_t)P->cursor.len;
            if ((rc = cx_buf_append(&P->dels, &kl, 1)) != CX_OK ||
                (rc = cx_buf_append(&P->dels, P->cursor.data, P->cursor.len)) != CX_OK)
                return rc;
            rc = cx_cache_get(p->cache, part, d->cid, false, &e, errstr, errstr_size);
            if (rc != CX_OK) return rc;
            if (!e || e->prof->index_due_ms != due) continue; /* an orphan key */
            e->prof->index_due_ms = 0;
            cx_cache_mark_dirty(p->cache, e);
            if (e->prof->timer_due_ms != due) { /* kept lazily: the due is later, or none */
                if (e->prof->timer_due_ms && (rc = heap_push(P, e->prof->timer_due_ms, e)) != CX_OK) return rc;
                continue;
            }
        }
        if ((rc = fire(p, P, e, due)) != CX_OK) return rc;
    }
}

static cx_err_t count_genre(cx_profile_t *pr, const char *genre) {
    uint32_t fp = cx_profile_genre_fp(genre);
    int free_slot = -1, min_slot = 0;
    for (int i = 0; i < CX_GENRES_KEPT; i++) {
        if (pr->genre_count[i] && pr->genre_fp[i] == fp) {
            pr->genre_count[i]++;
            return CX_OK;
        }
        if (!pr->genre_count[i] && free_slot < 0) free_slot = i;
        if (pr->genre_count[i] < pr->genre_count[min_slot]) min_slot = i;
    }
    /* Space-Saving with 4 counters: replace the smallest, inheriting its count */
    int slot = free_slot >= 0 ? free_slot : min_slot;
    cx_err_t rc = cx_profile_set_genre(pr, (unsigned)slot, genre);
    if (rc == CX_OK) pr->genre_count[slot]++;
    return rc;
}

static cx_err_t add_contact(cx_profile_t *pr, const cx_event_t *ev, const cx_campaign_t *camp) {
    cx_err_t rc = cx_profile_camp_reserve(pr, pr->n_contacts + 1u, 0);
    if (rc != CX_OK) return rc;
    cx_pcontact_t c;
    memset(&c, 0, sizeof c);
    if ((rc = cx_sid_set(&c.campaign_id, ev->u.email_send.campaign_id)) != CX_OK) return rc;
    c.campaign_type = camp ? camp->type : CX_CT_OTHER;
    c.channel = ev->u.email_send.channel;
    c.group = ev->u.email_send.group;
    c.ts_ms = ev->ts_ms;
    cx_pcontact_t *latest = &pr->latest_by_type[c.campaign_type];
    if ((!(pr->has_latest_by_type & (1u << c.campaign_type)) || latest->ts_ms <= c.ts_ms) &&
        (rc = cx_pcontact_copy(latest, &c)) != CX_OK) {
        cx_sid_free(&c.campaign_id);
        return rc;
    }
    pr->has_latest_by_type |= (uint8_t)(1u << c.campaign_type);
    if (pr->n_contacts == CX_CONTACTS_KEPT) { /* the oldest leaves; its slot's id with it */
        cx_sid_free(&pr->contacts[0].campaign_id);
        memmove(pr->contacts, pr->contacts + 1, (CX_CONTACTS_KEPT - 1) * sizeof c);
        pr->n_contacts--;
    }
    pr->contacts[pr->n_contacts++] = c; /* c's id moves into the slot (the slot's old bytes were moved or empty) */
    return CX_OK;
}

static void fill_enriched(const cx_pipeline_t *p, const cx_profile_t *pr, const cx_event_t *ev, int32_t day,
                          cx_enriched_t *en) {
    memset(en, 0, sizeof *en);
    en->event = ev;
    if (pr->segment >= 0) {
        en->has_segment = true;
        en->segment = segment_name(p, pr->segment);
        en->r_score = pr->r_score;
        en->f_score = pr->f_score;
        en->m_score = pr->m_score;
    }
    if (pr->has_nps) {
        en->has_nps_last = true;
        en->nps_last = pr->nps_last;
    }
    if (pr->has_tx) {
        int unit = p->cfg->bgnbd_unit_days > 0 ? p->cfg->bgnbd_unit_days : 7;
        en->has_p_alive = true;
        en->p_alive =
            cx_bgnbd_p_alive(&p->bg, (double)(pr->tx_days - 1), (double)(pr->last_tx_day - pr->first_tx_day) / unit,
                             (double)(day - pr->first_tx_day) / unit);
    }
    if (pr->has_acquisition) {
        en->has_acquisition_campaign_id = true;
        cx_sid_get(&pr->acquisition_campaign_id, en->acquisition_campaign_id, sizeof en->acquisition_campaign_id);
    }
    en->newsletter_recipient = pr->newsletter_recipient;
}

cx_err_t cx_pipeline_event(cx_pipeline_t *p, uint16_t part, const cx_event_t *ev, int64_t offset, char *errstr,
                           size_t errstr_size) {
    part_t *P = owned_part(p, part, errstr, errstr_size);
    if (!P) return CX_ERR_INVALID;
    const cx_config_t *cfg = p->cfg;
    cx_err_t rc;
    /* the driver normally advanced already; fire anything still due so order holds regardless */
    for (bool more = true; more;)
        if ((rc = cx_pipeline_advance(p, part, ev->ts_ms - cfg->watermark_lateness_ms, &more, errstr, errstr_size)) !=
            CX_OK)
            return rc;
    if (offset >= 0 && (unsigned)ev->type < CX_INPUTS) P->next_off[ev->type] = offset + 1;
    if (ev->ts_ms > P->max_ts) P->max_ts = ev->ts_ms;
    cx_cache_entry_t *e;
    if ((rc = cx_cache_trim(p->cache)) != CX_OK ||
        (rc = cx_cache_get(p->cache, part, ev->customer_id, true, &e, errstr, errstr_size)) != CX_OK)
        return rc;
    cx_profile_t *pr = e->prof;
    uint64_t fp = cx_hash64(ev->event_id, strlen(ev->event_id));
    if (cx_profile_dedup_seen(pr, fp)) {
        p->st.duplicates++;
        return CX_OK;
    }
    if ((rc = cx_profile_dedup_add(pr, fp, (unsigned)cfg->dedup_per_customer)) != CX_OK) {
        cx_seterr(errstr, errstr_size, "customer %s: no memory for its duplicate ring", ev->customer_id);
        return rc;
    }
    cx_cache_mark_dirty(p->cache, e);
    p->st.events++;
    if (ev->ts_ms < P->wm) p->st.late++;
    int32_t day = wm_day_of(P, ev->ts_ms);
    bool tx = false, first_tx = !pr->has_tx, new_play_day = true;
    char resp_campaign[CX_ID_MAX + 1] = "";
    switch (ev->type) {
    case CX_EV_PLAY: {
        const cx_play_t *pl = &ev->u.play;
        pr->plays_total++;
        if (!pr->has_play || ev->ts_ms > pr->last_play_ts_ms) pr->last_play_ts_ms = ev->ts_ms;
        pr->has_play = true;
        if (pl->seconds_watched >= cfg->retrieval_min_seconds) {
            tx = true;
            if ((rc = cx_rfm_add_transaction(pr, ev->ts_ms, 0, true, day, p->keep_days, &new_play_day)) != CX_OK)
                return rc;
            if (cx_triggers_add_play_day(pr, (int32_t)cx_day(ev->ts_ms))) new_play_day = true;
            if (pl->has_genre && (rc = count_genre(pr, pl->genre)) != CX_OK) return rc;
        }
        break;
    }
    case CX_EV_PURCHASE:
        pr->purchases_total++;
        pr->revenue_total_minor += ev->u.purchase.amount_minor;
        tx = true;
        if ((rc = cx_rfm_add_transaction(pr, ev->ts_ms, ev->u.purchase.amount_minor, false, day, p->keep_days, NULL)))
            return rc;
        break;
    case CX_EV_EMAIL_SEND: {
        const cx_campaign_t *camp = campaign_find(p, ev->u.email_send.campaign_id);
        if ((rc = cx_campaigns_send(p->camps, part, pr, ev)) != CX_OK) return rc;
        if (ev->u.email_send.group == CX_GROUP_TEST) {
            if ((rc = add_contact(pr, ev, camp)) != CX_OK) return rc; /* grows the lazily allocated block */
            if (camp && camp->type == CX_CT_NEWSLETTER) pr->newsletter_recipient = true;
        }
        break;
    }
    case CX_EV_SURVEY: /* NPS fields of the profile and the per-segment/touchpoint figures */
        if ((rc = cx_voc_survey(p->voc, part, pr, &ev->u.survey, ev->ts_ms)) != CX_OK) return rc;
        break;
    default: break;
    }
    if (tx && (rc = cx_campaigns_transaction(p->camps, part, pr, ev, first_tx, resp_campaign)) != CX_OK) return rc;
    if (tx && (rc = rescore(p, P, e, day, ev->ts_ms, &(cause_t){.id = ev->event_id})) != CX_OK) return rc;
    if (tx) cx_triggers_arm(pr, cfg, &p->bg, P->wm, ev->type == CX_EV_PLAY, new_play_day);
    if ((rc = update_timer(p, P, e)) != CX_OK) return rc;
    if (cfg->enriched_enabled) {
        cx_enriched_t en;
        fill_enriched(p, pr, ev, day, &en);
        if (resp_campaign[0]) {
            en.has_response_campaign_id = true;
            memcpy(en.response_campaign_id, resp_campaign, sizeof en.response_campaign_id);
        }
        if ((rc = emit(p, CX_REC_ENRICHED, cx_sid_str(&pr->customer_id), &en)) != CX_OK) return rc;
    }
    return CX_OK;
}

cx_err_t cx_pipeline_campaign(cx_pipeline_t *p, const char *campaign_id, const cx_campaign_t *c, char *errstr,
                              size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    campaign_slot_t *slot = NULL, *free_slot = NULL;
    cx_campaigns_campaign_changed(p->camps);
    for (size_t i = 0; i < p->n_campaigns; i++) {
        if (p->campaigns[i].used && strcmp(p->campaigns[i].c.campaign_id, campaign_id) == 0)
            slot = &p->campaigns[i];
        else if (!p->campaigns[i].used && !free_slot)
            free_slot = &p->campaigns[i];
    }
    if (!c) {
        if (slot) {
            cx_campaign_clear(&slot->c);
            slot->used = false;
        }
        return CX_OK;
    }
    if (!slot) slot = free_slot;
    if (!slot) {
        if (p->n_campaigns == p->cap_campaigns) {
            size_t cap = p->cap_campaigns ? p->cap_campaigns * 2 : 16;
            campaign_slot_t *a = realloc(p->campaigns, cap * sizeof *a);
            if (!a) return CX_ERR_NOMEM;
            p->campaigns = a;
            p->cap_campaigns = cap;
        }
        slot = &p->campaigns[p->n_campaigns++];
        memset(slot, 0, sizeof *slot);
    }
    cx_campaign_clear(&slot->c);
    slot->used = false;
    cx_err_t rc = cx_campaign_copy(&slot->c, c);
    if (rc == CX_OK) slot->used = true;
    return rc;
}

bool cx_pipeline_needs_flush(const cx_pipeline_t *p) {
    return cx_cache_needs_flush(p->cache);
}

void cx_pipeline_set_flush_hook(cx_pipeline_t *p, cx_flush_hook_t hook, void *opaque) {
    p->flush_hook = hook;
    p->flush_opaque = opaque;
}

void cx_pipeline_set_write_behind(cx_pipeline_t *p, bool on) {
    p->write_behind = on;
}

cx_err_t cx_pipeline_wait(cx_pipeline_t *p, char *errstr, size_t errstr_size) {
    return p->store ? cx_store_wait(p->store, errstr, errstr_size) : CX_OK;
}

/* cx_cache_flush's on_put: the earliest key put per partition, and under write-behind every key */
static cx_err_t flush_put(void *opaque, uint16_t part, int64_t due, const void *key, size_t klen) {
    cx_pipeline_t *p = opaque;
    if (part >= CX_PARTS_MAX) return CX_OK;
    if (due < p->min_put_due[part]) p->min_put_due[part] = due;
    part_t *P = p->parts[part];
    if (!p->write_behind || !P || klen > UINT8_MAX) return CX_OK;
    uint8_t kl = (uint8_t)klen;
    cx_err_t rc = cx_buf_append(&P->infl, &kl, 1);
    return rc == CX_OK ? cx_buf_append(&P->infl, key, klen) : rc;
}

cx_err_t cx_pipeline_flush(cx_pipeline_t *p, int part, char *errstr, size_t errstr_size) {
    /* the batch may still be the store's (written behind): wait for it before reusing it */
    cx_err_t rc = cx_pipeline_wait(p, errstr, errstr_size);
    if (rc != CX_OK) return rc;
    cx_store_batch_clear(p->batch);
    for (int i = 0; i < CX_PARTS_MAX; i++) {
        part_t *P = p->parts[i];
        p->min_put_due[i] = INT64_MAX;
        if (P) infl_reset(P); /* the write they were in has landed */
        if (!P || !P->owned || (part >= 0 && part != i)) continue;
        /* the heap is cleared below: its entries (dirty until now, so alive) forget their items */
        for (size_t k = 0; k < P->heap_n; k++)
            P->heap[k].e->heap_due = 0;
        /* consumed index keys first: a key re-put by the cache below must survive */
        for (size_t o = 0; o < P->dels.len; o += 1 + P->dels.data[o])
            cx_store_batch_delete(p->batch, P->dels.data + o + 1, P->dels.data[o]);
        cx_buf_reset(&P->dels);
    }
    rc = cx_cache_flush(p->cache, part, p->batch, flush_put, p);
    if (rc == CX_OK) rc = cx_campaigns_flush(p->camps, part, p->batch); /* KPI partials, same batch */
    if (rc == CX_OK) rc = cx_voc_flush(p->voc, part, p->batch);         /* NPS, terms, economics */
    for (int i = 0; i < CX_PARTS_MAX && rc == CX_OK; i++) {
        part_t *P = p->parts[i];
        if (!P || !P->owned || (part >= 0 && part != i)) continue;
        cx_buf_reset(&p->val);
        if ((rc = meta_encode(p, P, &p->val)) != CX_OK) break;
        if ((rc = cx_store_key(&p->key, (uint16_t)i, CX_KEY_META, "p", 1)) != CX_OK) break;
        cx_store_batch_put(p->batch, p->key.data, p->key.len, p->val.data, p->val.len);
        P->heap_n = 0; /* pending timers are now in the store's index */
        /* and the index changed: the scan resumes after the cursor, or earlier. Until it does, no
         * key is due before the floor: the earliest unconsumed key known before (the buffer's next,
         * or any key after the last one scanned), and the earliest put now. */
        int64_t known = P->db_floor;
        if (P->db_valid) {
            if (P->db_pos < P->db_n)
                known = P->db[P->db_pos].due;
            else if (P->db_exhausted)
                known = INT64_MAX;
            else
                known = P->db_resume.len >= 11 ? cx_store_timer_key_due(P->db_resume.data) : INT64_MIN;
        }
        P->db_floor = p->min_put_due[i] < known ? p->min_put_due[i] : known;
        P->db_valid = false;
        P->infl_live = p->write_behind;
        if (p->min_put_due[i] != INT64_MAX && P->cursor.len &&
            p->min_put_due[i] <= cx_store_timer_key_due(P->cursor.data) &&
            (rc = cx_store_timer_key(&P->cursor, (uint16_t)i, p->min_put_due[i], "")) != CX_OK)
            break;
    }
    if (rc != CX_OK)
        cx_seterr(errstr, errstr_size, "flush: %s", cx_err2str(rc));
    else if (p->flush_hook)
        rc = p->flush_hook(p->flush_opaque, p->batch, errstr, errstr_size);
    if (rc == CX_OK && p->store)
        rc = p->write_behind ? cx_store_write_async(p->store, p->batch, errstr, errstr_size)
                             : cx_store_write(p->store, p->batch, errstr, errstr_size);
    if (rc == CX_OK) p->st.flushes++;
    return rc;
}

void cx_pipeline_prefetch(const cx_pipeline_t *p, const void *cid, size_t len, int stage) {
    cx_cache_prefetch(p->cache, cid, len, stage);
}

int64_t cx_pipeline_watermark(const cx_pipeline_t *p, uint16_t part) {
    return cx_pipeline_owns(p, part) ? p->parts[part]->wm : INT64_MIN;
}

void cx_pipeline_skip(cx_pipeline_t *p, uint16_t part, int input, int64_t offset) {
    if (!cx_pipeline_owns(p, part) || input < 0 || input >= CX_INPUTS || offset < 0) return;
    if (offset + 1 > p->parts[part]->next_off[input]) p->parts[part]->next_off[input] = offset + 1;
}

void cx_pipeline_offsets(const cx_pipeline_t *p, uint16_t part, int64_t next_offsets[CX_INPUTS]) {
    for (int i = 0; i < CX_INPUTS; i++)
        next_offsets[i] = cx_pipeline_owns(p, part) ? p->parts[part]->next_off[i] : -1;
}
/* The record form of a kept contact. */
static void contact_out(cx_contact_t *o, const cx_pcontact_t *c) {
    memset(o, 0, sizeof *o);
    cx_sid_get(&c->campaign_id, o->campaign_id, sizeof o->campaign_id);
    o->campaign_type = c->campaign_type;
    o->channel = c->channel;
    o->group = c->group;
    o->ts_ms = c->ts_ms;
}

static void profile_out(const cx_pipeline_t *p, const part_t *P, const cx_profile_t *pr, cx_profile_out_t *o) {
    memset(o, 0, sizeof *o);
    cx_sid_get(&pr->customer_id, o->customer_id, sizeof o->customer_id);
    int32_t day = (int32_t)cx_day(P->wm == INT64_MIN ? (pr->has_tx ? pr->last_tx_ts_ms : 0) : P->wm);
    o->has_tx = pr->has_tx;
    if (pr->has_tx) {
        cx_rfm_t r;
        cx_rfm_compute(pr, &p->th, day, &r);
        o->first_transaction_ts = pr->first_tx_ts_ms;
        o->last_transaction_ts = pr->last_tx_ts_ms;
        o->recency_days = r.recency_days;
        o->frequency = r.frequency;
        o->monetary_minor = r.monetary_minor;
        o->r_score = pr->r_score;
        o->f_score = pr->f_score;
        o->m_score = pr->m_score;
        o->segment = segment_name(p, pr->segment);
        int unit = p->cfg->bgnbd_unit_days > 0 ? p->cfg->bgnbd_unit_days : 7;
        int64_t x = pr->tx_days - 1;
        int32_t T = day - pr->first_tx_day;
        if (T < 0) T = 0;
        o->bgnbd_x = x;
        o->bgnbd_t_x_days = pr->last_tx_day - pr->first_tx_day;
        o->bgnbd_T_days = T;
        o->repeat_revenue_minor = pr->revenue_total_minor - pr->first_day_revenue_minor;
        double tx = (double)o->bgnbd_t_x_days / unit, Tu = (double)T / unit;
        o->has_p_alive = true;
        o->p_alive = cx_bgnbd_p_alive(&p->bg, (double)x, tx, Tu);
        o->expected_transactions_90d = cx_bgnbd_expected(&p->bg, (double)x, tx, Tu, 90.0 / unit);
        o->clv_minor = cx_triggers_clv_minor(pr, p->cfg, &p->bg, &p->gg, day);
    }
    o->has_last_play_ts = pr->has_play;
    o->last_play_ts = pr->last_play_ts_ms;
    o->purchases_total = pr->purchases_total;
    o->revenue_total_minor = pr->revenue_total_minor;
    o->plays_total = pr->plays_total;
    o->has_nps_last = pr->has_nps;
    o->nps_last = pr->nps_last;
    o->nps_count = pr->nps_count;
    o->has_acquisition_campaign_id = pr->has_acquisition;
    cx_sid_get(&pr->acquisition_campaign_id, o->acquisition_campaign_id, sizeof o->acquisition_campaign_id);
    o->newsletter_recipient = pr->newsletter_recipient;
    for (unsigned i = 0; i < pr->n_contacts; i++)
        contact_out(&o->contacts[o->n_contacts++], &pr->contacts[i]);
    for (int t = 0; t < CX_CT__COUNT; t++) {
        if (!(pr->has_latest_by_type & (1u << t))) continue;
        const cx_pcontact_t *c = &pr->latest_by_type[t];
        bool dup = false;
        for (unsigned i = 0; i < pr->n_contacts; i++)
            if (pr->contacts[i].ts_ms == c->ts_ms &&
                cx_sid_eq(&pr->contacts[i].campaign_id, cx_sid_str(&c->campaign_id)))
                dup = true;
        if (!dup) contact_out(&o->contacts[o->n_contacts++], c);
    }
}

cx_err_t cx_pipeline_profile(cx_pipeline_t *p, uint16_t part, const char *cid, cx_profile_out_t *out, bool *found,
                             char *errstr, size_t errstr_size) {
    part_t *P = owned_part(p, part, errstr, errstr_size);
    *found = false;
    if (!P) return CX_ERR_INVALID;
    cx_cache_entry_t *e;
    cx_err_t rc = cx_cache_get(p->cache, part, cid, false, &e, errstr, errstr_size);
    if (rc != CX_OK || !e) return rc;
    *found = true;
    profile_out(p, P, e->prof, out);
    return CX_OK;
}

typedef struct each_ctx {
    cx_pipeline_t *p;
    part_t *P;
    void (*cb)(void *, const cx_profile_out_t *);
    void *opaque;
    cx_profile_t prof;
    cx_profile_out_t out;
    cx_err_t rc;
    char *errstr;
    size_t errstr_size;
} each_ctx_t;

static bool each_cb(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    each_ctx_t *c = opaque;
    char cid[CX_ID_MAX + 1];
    if (kl < 4 || kl - 3 > CX_ID_MAX) return true;
    memcpy(cid, (const char *)k + 3, kl - 3);
    cid[kl - 3] = 0;
    c->rc = cx_profile_decode(&c->prof, cid, v, vl, c->errstr, c->errstr_size);
    if (c->rc != CX_OK) return false;
    profile_out(c->p, c->P, &c->prof, &c->out);
    c->cb(c->opaque, &c->out);
    return true;
}

cx_err_t cx_pipeline_each_profile(cx_pipeline_t *p, uint16_t part, void (*cb)(void *, const cx_profile_out_t *),
                                  void *opaque, char *errstr, size_t errstr_size) {
    part_t *P = owned_part(p, part, errstr, errstr_size);
    if (!P) return CX_ERR_INVALID;
    cx_err_t rc = cx_pipeline_flush(p, part, errstr, errstr_size);
    if (rc != CX_OK) return rc;
    each_ctx_t c = {.p = p, .P = P, .cb = cb, .opaque = opaque, .errstr = errstr, .errstr_size = errstr_size};
    cx_profile_init_lean(&c.prof, NULL);
    rc = cx_store_scan_tag(p->store, part, CX_KEY_PROFILE, each_cb, &c, errstr, errstr_size);
    cx_profile_clear(&c.prof);
    return rc != CX_OK ? rc : c.rc;
}

void cx_pipeline_segment_counts(const cx_pipeline_t *p, int64_t *counts, size_t n) {
    memset(counts, 0, n * sizeof *counts);
    for (int i = 0; i < CX_PARTS_MAX; i++) {
        const part_t *P = p->parts[i];
        if (!P || !P->owned) continue;
        for (size_t s = 0; s < n && s < CX_SEGMENTS_MAX; s++)
            counts[s] += P->seg_counts[s];
    }
}

cx_pipeline_stats_t cx_pipeline_stats(const cx_pipeline_t *p) {
    cx_pipeline_stats_t st = p->st;
    st.write_wait_s = p->store ? cx_store_wait_seconds(p->store) : 0;
    return st;
}
struct cx_campaigns *cx_pipeline_campaigns(cx_pipeline_t *p) {
    return p->camps;
}
struct cx_voc *cx_pipeline_voc(cx_pipeline_t *p) {
    return p->voc;
}
cx_cache_stats_t cx_pipeline_cache_stats(const cx_pipeline_t *p) {
    return cx_cache_stats(p->cache);
}

/* ---------- quantile scoring (rfm.scoring=quantile) ----------
 *
 * At every rfm.rescore_days boundary of a partition's event time, the partition rebuilds its R, F
 * and M sketches from every customer as of that instant, merges them with the latest sketches of
 * the other owned partitions, and — once the merged base has rfm.min_customers — derives quintile
 * thresholds and re-scores every customer of the partition, emitting the changes with cause
 * `rescore:<ts>`. Customers are visited in customer_id order: the store's scan merged with the
 * customers that exist only in the cache (new since the last flush), so the outputs do not depend on
 * when flushes happened. */

typedef struct rescore_ctx {
    cx_pipeline_t *p;
    part_t *P;
    uint16_t part;
    int32_t day;
    int64_t at_ms;
    bool pass2;   /* false: build sketches; true: re-score */
    char **fresh; /* ids only in the cache, sorted */
    size_t n_fresh, i_fresh;
    cx_profile_t tmp;
    cx_err_t rc;
    char *errstr;
    size_t errstr_size;
    cause_t cause;
} rescore_ctx_t;

static void rescore_visit(rescore_ctx_t *c, const char *cid, const cx_profile_t *stored) {
    if (c->rc != CX_OK || (c->rc = cx_cache_trim(c->p->cache)) != CX_OK) return;
    cx_cache_entry_t *e = cx_cache_peek(c->p->cache, c->part, cid); /* newer than the store's copy */
    if (e) {
        if ((c->rc = cx_cache_load(c->p->cache, e, c->errstr, c->errstr_size)) != CX_OK) return;
    } else if (c->pass2 || !stored) {
        if ((c->rc = cx_cache_get(c->p->cache, c->part, cid, false, &e, c->errstr, c->errstr_size)) != CX_OK || !e)
            return;
    }
    if (c->pass2) {
        c->rc = rescore(c->p, c->P, e, c->day, c->at_ms, &c->cause);
        if (c->rc == CX_OK) c->rc = update_timer(c->p, c->P, e);
        return;
    }
    const cx_profile_t *pr = e ? e->prof : stored;
    if (!pr->has_tx) return;
    cx_rfm_t r;
    cx_rfm_compute(pr, &c->p->th, c->day, &r);
    cx_kll_add(c->P->sk[0], (double)r.recency_days);
    cx_kll_add(c->P->sk[1], (double)r.frequency);
    cx_kll_add(c->P->sk[2], (double)r.monetary_minor);
}

/* visits fresh ids that sort before `upto` (NULL: all remaining) */
static void rescore_fresh_until(rescore_ctx_t *c, const char *upto) {
    while (c->i_fresh < c->n_fresh && (!upto || strcmp(c->fresh[c->i_fresh], upto) < 0))
        rescore_visit(c, c->fresh[c->i_fresh++], NULL);
}

static bool rescore_scan_cb(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    rescore_ctx_t *c = opaque;
    char cid[CX_ID_MAX + 1];
    if (kl < 4 || kl - 3 > CX_ID_MAX) return true;
    memcpy(cid, (const char *)k + 3, kl - 3);
    cid[kl - 3] = 0;
    rescore_fresh_until(c, cid);
    const cx_profile_t *stored = NULL;
    if (!c->pass2) {
        c->rc = cx_profile_decode(&c->tmp, cid, v, vl, c->errstr, c->errstr_size);
        stored = &c->tmp;
    }
    if (c->rc == CX_OK) rescore_visit(c, cid, stored);
    return c->rc == CX_OK;
}

typedef struct fresh_list {
    char **ids;
    size_t n, cap;
    uint16_t part;
    bool nomem;
} fresh_list_t;

static void collect_fresh(void *opaque, cx_cache_entry_t *e) {
    fresh_list_t *f = opaque;
    if (e->in_store || e->part != f->part || f->nomem) return;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        char **a = realloc(f->ids, cap * sizeof *a);
        if (!a) {
            f->nomem = true;
            return;
        }
        f->ids = a;
        f->cap = cap;
    }
    if (!(f->ids[f->n] = strdup(e->cid)))
        f->nomem = true;
    else
        f->n++;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static cx_err_t rescore_pass(rescore_ctx_t *c) {
    c->i_fresh = 0;
    c->rc = CX_OK;
    cx_err_t rc = CX_OK;
    if (c->p->store)
        rc = cx_store_scan_tag(c->p->store, c->part, CX_KEY_PROFILE, rescore_scan_cb, c, c->errstr, c->errstr_size);
    if (rc == CX_OK && c->rc == CX_OK) rescore_fresh_until(c, NULL);
    return rc != CX_OK ? rc : c->rc;
}

static cx_err_t rescore_partition(cx_pipeline_t *p, uint16_t part, int64_t at_ms, char *errstr, size_t errstr_size) {
    part_t *P = p->parts[part];
    for (int i = 0; i < 3; i++) {
        if (!P->sk[i] && !(P->sk[i] = cx_kll_new(0))) return CX_ERR_NOMEM;
        cx_kll_reset(P->sk[i]);
    }
    fresh_list_t f = {.part = part};
    cx_cache_each_dirty(p->cache, part, collect_fresh, &f);
    cx_err_t rc = f.nomem ? CX_ERR_NOMEM : CX_OK;
    if (rc == CX_OK && f.n > 1) qsort(f.ids, f.n, sizeof *f.ids, cmp_str);
    rescore_ctx_t c = {.p = p,
                       .P = P,
                       .part = part,
                       .day = (int32_t)cx_day(at_ms),
                       .at_ms = at_ms,
                       .fresh = f.ids,
                       .n_fresh = f.n,
                       .errstr = errstr,
                       .errstr_size = errstr_size};
    c.cause = (cause_t){.prefix = "rescore:", .ts = at_ms};
    cx_profile_init_lean(&c.tmp, NULL);
    if (rc == CX_OK) rc = rescore_pass(&c);
    cx_kll_t *merged[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3 && rc == CX_OK; i++) {
        if (!(merged[i] = cx_kll_new(0))) rc = CX_ERR_NOMEM;
        for (int q = 0; q < CX_PARTS_MAX && rc == CX_OK; q++)
            if (p->parts[q] && p->parts[q]->owned && p->parts[q]->sk[i])
                rc = cx_kll_merge(merged[i], p->parts[q]->sk[i]);
    }
    if (rc == CX_OK && cx_kll_count(merged[0]) >= (uint64_t)p->cfg->rfm_min_customers) {
        static const double qs[4] = {0.2, 0.4, 0.6, 0.8};
        double rq[4], fq[4], mq[4];
        rc = cx_kll_quantiles(merged[0], qs, 4, rq);
        if (rc == CX_OK) rc = cx_kll_quantiles(merged[1], qs, 4, fq);
        if (rc == CX_OK) rc = cx_kll_quantiles(merged[2], qs, 4, mq);
        if (rc == CX_OK) {
            /* R: lower recency is better (R=5 up to the 20th percentile); F, M: higher is better */
            for (int i = 0; i < 4; i++) {
                p->th.r_days[i] = (int32_t)rq[i];
                p->th.f_min[i] = (int64_t)fq[3 - i];
                p->th.m_min[i] = (int64_t)mq[3 - i];
            }
            cx_log(CX_LOG_DEBUG, "rfm",
                   "rescore partition=%u at=%" PRId64 " customers=%" PRIu64 " r_days=%d,%d,%d,%d f_min=%" PRId64
                   ",%" PRId64 ",%" PRId64 ",%" PRId64,
                   part, at_ms, cx_kll_count(merged[0]), p->th.r_days[0], p->th.r_days[1], p->th.r_days[2],
                   p->th.r_days[3], p->th.f_min[0], p->th.f_min[1], p->th.f_min[2], p->th.f_min[3]);
            c.pass2 = true;
            rc = rescore_pass(&c);
        }
    }
    for (int i = 0; i < 3; i++)
        cx_kll_destroy(merged[i]);
    for (size_t i = 0; i < f.n; i++)
        free(f.ids[i]);
    free(f.ids);
    cx_profile_clear(&c.tmp);
    return rc;
}
