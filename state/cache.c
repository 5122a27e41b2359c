/*
 * cache.c — hash table with chaining, a CLOCK list of clean entries and a list of dirty ones.
 */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

/* An entry with its RocksDB key order in three words, so that sorting a flush's entries compares
 * mostly integers that sit in the array instead of chasing each entry (the sorts were ~5% of a flush
 * at 1 M customers, nearly all of it cache misses); equal words fall back to the ids. */
typedef struct sort_item {
    uint64_t a, b, c;
    cx_cache_entry_t *e;
} sort_item_t;

struct cx_cache {
    cx_store_t *store; /* borrowed */
    size_t max_entries, max_decoded;
    cx_cache_entry_t **table;
    size_t nbuckets; /* power of two */
    size_t n, ndirty, ndecoded;
    cx_cache_entry_t lru;     /* clean entries, sentinel: next = newest, prev = next to be considered */
    cx_cache_entry_t dirty;   /* sentinel */
    cx_cache_entry_t decoded; /* entries with prof, sentinel (dnext/dprev) */
    cx_profile_t *free_profs; /* spare profile structs, chained through their buckets field */
    size_t n_free_profs;
    cx_buf_t key, val, enc;
    cx_profile_t tmp;                  /* an encoded dirty entry's profile while a flush moves its timer key */
    sort_item_t *sort, *tsort, *merge; /* flush order scratch, reused (merge: sort_items' other half) */
    size_t sort_cap;
    cx_cache_stats_t st;
};

static void list_init(cx_cache_entry_t *s) {
    s->prev = s->next = s;
}
static void list_unlink(cx_cache_entry_t *e) {
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
}
static void list_push_front(cx_cache_entry_t *s, cx_cache_entry_t *e) {
    e->next = s->next;
    e->prev = s;
    s->next->prev = e;
    s->next = e;
}
static void dlist_unlink(cx_cache_entry_t *e) {
    e->dprev->dnext = e->dnext;
    e->dnext->dprev = e->dprev;
    e->dprev = e->dnext = NULL;
}
static void dlist_push_front(cx_cache_entry_t *s, cx_cache_entry_t *e) {
    e->dnext = s->dnext;
    e->dprev = s;
    s->dnext->dprev = e;
    s->dnext = e;
}

cx_cache_t *cx_cache_new(cx_store_t *store, size_t max_entries, size_t max_decoded) {
    cx_cache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->store = store;
    c->max_entries = max_entries ? max_entries : 1;
    c->max_decoded = max_decoded ? max_decoded : 1;
    /* load factor <= 1 while at most max_entries are held (a flush is due at max_entries dirty) */
    c->nbuckets = 1024;
    while (c->nbuckets < c->max_entries)
        c->nbuckets <<= 1;
    c->table = calloc(c->nbuckets, sizeof *c->table);
    if (!c->table) {
        free(c);
        return NULL;
    }
    list_init(&c->lru);
    list_init(&c->dirty);
    c->decoded.dprev = c->decoded.dnext = &c->decoded;
    cx_profile_init_lean(&c->tmp, NULL);
    return c;
}

/* A profile struct for customer cid, as cx_profile_init_lean leaves it. */
static cx_profile_t *prof_alloc(cx_cache_t *c, const char *cid) {
    cx_profile_t *pr = c->free_profs;
    if (pr) {
        c->free_profs = (cx_profile_t *)(void *)pr->buckets;
        c->n_free_profs--;
    } else if (!(pr = aligned_alloc(64, (sizeof *pr + 63) & ~(size_t)63))) /* the hot part in the fewest lines */
        return NULL;
    if (cx_profile_init_lean(pr, cid) != CX_OK) { /* an id longer than CX_SID_INLINE, no memory for it */
        free(pr);
        return NULL;
    }
    return pr;
}

/* Keeps a few spare structs (a trim frees as many as the next loads take). */
static void prof_free(cx_cache_t *c, cx_profile_t *pr) {
    cx_profile_clear(pr);
    if (c->n_free_profs >= 64) {
        free(pr);
        return;
    }
    pr->buckets = (cx_bucket_t *)(void *)c->free_profs;
    c->free_profs = pr;
    c->n_free_profs++;
}

/* Drops the decoded form (the entry must hold a current encoding, or be about to be freed). */
static void drop_prof(cx_cache_t *c, cx_cache_entry_t *e) {
    if (!e->prof) return;
    dlist_unlink(e);
    c->ndecoded--;
    prof_free(c, e->prof);
    e->prof = NULL;
}

static void drop_enc(cx_cache_t *c, cx_cache_entry_t *e) {
    c->st.encoded_bytes -= e->enc_len;
    free(e->enc);
    e->enc = NULL;
    e->enc_len = 0;
}

/* Replaces e's encoding with pr's (e's own decoded profile, or another form of it). */
static cx_err_t set_enc(cx_cache_t *c, cx_cache_entry_t *e, const cx_profile_t *pr) {
    cx_buf_reset(&c->enc);
    cx_err_t rc = cx_profile_encode(pr, &c->enc);
    if (rc != CX_OK) return rc;
    uint8_t *b = malloc(c->enc.len ? c->enc.len : 1);
    if (!b) return CX_ERR_NOMEM;
    memcpy(b, c->enc.data, c->enc.len);
    drop_enc(c, e);
    e->enc = b;
    e->enc_len = (uint32_t)c->enc.len;
    e->enc_timer_due_ms = pr->timer_due_ms;
    e->enc_index_due_ms = pr->index_due_ms;
    c->st.encoded_bytes += c->enc.len;
    return CX_OK;
}

/* e holds pr from now on, as the most recently loaded of the decoded entries. */
static void attach_prof(cx_cache_t *c, cx_cache_entry_t *e, cx_profile_t *pr) {
    e->prof = pr;
    e->hot_ref = true;
    dlist_push_front(&c->decoded, e);
    c->ndecoded++;
}

static void entry_free(cx_cache_t *c, cx_cache_entry_t *e) {
    drop_prof(c, e);
    drop_enc(c, e);
    free(e);
}

void cx_cache_destroy(cx_cache_t *c) {
    if (!c) return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        cx_cache_entry_t *e = c->table[i];
        while (e) {
            cx_cache_entry_t *n = e->hnext;
            entry_free(c, e);
            e = n;
        }
    }
    while (c->free_profs) {
        cx_profile_t *n = (cx_profile_t *)(void *)c->free_profs->buckets;
        free(c->free_profs);
        c->free_profs = n;
    }
    cx_profile_clear(&c->tmp);
    free(c->table);
    free(c->sort);
    free(c->tsort);
    free(c->merge);
    cx_buf_free(&c->key);
    cx_buf_free(&c->val);
    cx_buf_free(&c->enc);
    free(c);
}

static void table_remove(cx_cache_t *c, cx_cache_entry_t *e) {
    cx_cache_entry_t **pp = &c->table[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    c->n--;
}

static void entry_release(cx_cache_t *c, cx_cache_entry_t *e) {
    table_remove(c, e);
    list_unlink(e);
    if (e->dirty) c->ndirty--;
    entry_free(c, e);
}

/* Evicts clean entries down to max_entries, CLOCK style: the entry at the tail goes unless it was
 * used since it got there, in which case it gets a second chance at the front. Never `keep` (the
 * entry a get is about to return: when every other entry is dirty it is the only clean one). */
static void evict(cx_cache_t *c, const cx_cache_entry_t *keep) {
    while (c->n > c->max_entries && c->lru.prev != &c->lru && c->lru.prev != keep) {
        cx_cache_entry_t *v = c->lru.prev;
        if (v->ref) {
            v->ref = false;
            list_unlink(v);
            list_push_front(&c->lru, v);
            continue;
        }
        entry_release(c, v);
        c->st.evictions++;
    }
}

static bool entry_is(const cx_cache_entry_t *e, uint64_t h, uint16_t part, const char *cid, size_t len) {
    return e->hash == h && e->cid_len == len && e->part == part && memcmp(e->cid, cid, len) == 0;
}

cx_err_t cx_cache_load(cx_cache_t *c, cx_cache_entry_t *e, char *errstr, size_t errstr_size) {
    e->hot_ref = true;
    if (e->prof) return CX_OK;
    cx_profile_t *pr = prof_alloc(c, e->cid);
    if (!pr) return CX_ERR_NOMEM;
    cx_err_t rc = cx_profile_decode(pr, e->cid, e->enc, e->enc_len, errstr, errstr_size);
    if (rc != CX_OK) {
        prof_free(c, pr);
        return rc;
    }
    attach_prof(c, e, pr);
    c->st.decodes++;
    if (e->dirty) drop_enc(c, e); /* it is about to change: the next flush or trim encodes it */
    return CX_OK;
}

/* The next victims of a trim are the decoded list's tail: a full cache trims about one entry per
 * event, and each victim is a profile not used for a while, so encoding it waits on memory. Their
 * loads start a trim or two ahead, in stages as in cx_cache_prefetch: the entry two places from the
 * tail, the profile of the one before it (its entry arrived since), the day buckets and campaign
 * block of the tail (its profile arrived since). */
static void prefetch_victims(const cx_cache_t *c) {
    const cx_cache_entry_t *t1 = c->decoded.dprev;
    if (t1 == &c->decoded) return;
    if (t1->prof) {
        const cx_profile_t *pr = t1->prof;
        if (pr->n_buckets) __builtin_prefetch(pr->buckets);
        if (pr->camp) __builtin_prefetch(pr->camp);
    }
    const cx_cache_entry_t *t2 = t1->dprev;
    if (t2 == &c->decoded) return;
    if (t2->prof) {
        const char *b = (const char *)t2->prof;
        for (size_t o = 0; o < sizeof(cx_profile_t); o += 64)
            __builtin_prefetch(b + o);
    }
    if (t2->dprev != &c->decoded) __builtin_prefetch(t2->dprev);
}

cx_err_t cx_cache_trim(cx_cache_t *c) {
    bool trimmed = false;
    while (c->ndecoded > c->max_decoded) {
        cx_cache_entry_t *v = c->decoded.dprev;
        if (v->hot_ref) {
            v->hot_ref = false;
            dlist_unlink(v);
            dlist_push_front(&c->decoded, v);
            continue;
        }
        if (!v->enc) {
            cx_err_t rc = set_enc(c, v, v->prof);
            if (rc != CX_OK) return rc;
            c->st.encodes++;
        }
        drop_prof(c, v);
        trimmed = true;
    }
    if (trimmed) prefetch_victims(c);
    return CX_OK;
}

cx_err_t cx_cache_get(cx_cache_t *c, uint16_t part, const char *cid, bool create, cx_cache_entry_t **out, char *errstr,
                      size_t errstr_size) {
    size_t len = strlen(cid);
    *out = NULL;
    if (len > CX_ID_MAX) {
        cx_seterr(errstr, errstr_size, "customer id of %zu bytes, longer than %d", len, CX_ID_MAX);
        return CX_ERR_INVALID;
    }
    uint64_t h = cx_hash_mem(cid, len);
    for (cx_cache_entry_t *e = c->table[h & (c->nbuckets - 1)]; e; e = e->hnext) {
        if (entry_is(e, h, part, cid, len)) {
            c->st.hits++;
            e->ref = true; /* a hit costs no list surgery (four neighbours' cache lines); see evict() */
            cx_err_t rc = cx_cache_load(c, e, errstr, errstr_size);
            if (rc == CX_OK) *out = e;
            return rc;
        }
    }
    c->st.misses++;
    cx_err_t rc = cx_store_key(&c->key, part, CX_KEY_PROFILE, cid, len);
    if (rc != CX_OK) return rc;
    bool found = false;
    if (c->store &&
        (rc = cx_store_get(c->store, c->key.data, c->key.len, &c->val, &found, errstr, errstr_size)) != CX_OK)
        return rc;
    if (!found && !create) return CX_OK;
    cx_cache_entry_t *e = calloc(1, sizeof *e + len + 1);
    cx_profile_t *pr = prof_alloc(c, cid);
    if (!e || !pr) {
        free(e);
        if (pr) prof_free(c, pr);
        return CX_ERR_NOMEM;
    }
    memcpy(e->cid, cid, len + 1);
    if (found) {
        rc = cx_profile_decode(pr, cid, c->val.data, c->val.len, errstr, errstr_size);
        if (rc != CX_OK) {
            prof_free(c, pr);
            free(e);
            return rc;
        }
        e->in_store = true;
        c->st.loads_found++;
    }
    attach_prof(c, e, pr);
    e->part = part;
    e->hash = h;
    e->cid_len = (uint16_t)len;
    e->hnext = c->table[h & (c->nbuckets - 1)];
    c->table[h & (c->nbuckets - 1)] = e;
    c->n++;
    list_push_front(&c->lru, e);
    evict(c, e);
    *out = e;
    return CX_OK;
}

cx_cache_entry_t *cx_cache_peek(cx_cache_t *c, uint16_t part, const char *cid) {
    size_t len = strlen(cid);
    uint64_t h = cx_hash_mem(cid, len);
    for (cx_cache_entry_t *e = c->table[h & (c->nbuckets - 1)]; e; e = e->hnext)
        if (entry_is(e, h, part, cid, len)) return e;
    return NULL;
}

void cx_cache_mark_dirty(cx_cache_t *c, cx_cache_entry_t *e) {
    if (e->dirty) return;
    list_unlink(e);
    list_push_front(&c->dirty, e);
    e->dirty = true;
    c->ndirty++;
    if (e->enc && e->prof) drop_enc(c, e); /* about to change */
}

bool cx_cache_needs_flush(const cx_cache_t *c) {
    return c->ndirty >= c->max_entries;
}

/* n bytes of id (NUL-padded) from offset off, big-endian: the order of strcmp over those bytes */
static uint64_t id_word(const cx_cache_entry_t *e, size_t off, size_t n) {
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w = (w << 8) | (off + i < e->cid_len ? (uint8_t)e->cid[off + i] : 0);
    return w;
}

/* Profile keys: partition, then customer id. */
static sort_item_t profile_item(cx_cache_entry_t *e) {
    return (sort_item_t){((uint64_t)e->part << 48) | id_word(e, 0, 6), id_word(e, 6, 8), id_word(e, 14, 8), e};
}

/* Timer keys: partition, due, customer id; false when due is outside [0, 2^47) (sort_timers then
 * compares the entries themselves). */
static bool timer_item(cx_cache_entry_t *e, int64_t due, sort_item_t *out) {
    if (due < 0 || due >= (INT64_C(1) << 47)) return false;
    *out = (sort_item_t){((uint64_t)e->part << 47) | (uint64_t)due, id_word(e, 0, 8), id_word(e, 8, 8), e};
    return true;
}

static inline bool item_before(const sort_item_t *x, const sort_item_t *y) {
    if (x->a != y->a) return x->a < y->a;
    if (x->b != y->b) return x->b < y->b;
    if (x->c != y->c) return x->c < y->c;
    return strcmp(x->e->cid, y->e->cid) < 0;
}

/* Sorts a[0..n) in item_before's order with tmp (n items) as the other buffer: runs of 16 by
 * insertion, then merged bottom-up, the comparison inlined. glibc's qsort called it through a pointer
 * and allocated an n-item buffer at every call, a fresh mapping page-faulted in at every flush. */
static void sort_items(sort_item_t *a, sort_item_t *tmp, size_t n) {
    enum { RUN = 16 };
    for (size_t lo = 0; lo < n; lo += RUN) {
        size_t hi = n - lo > RUN ? lo + RUN : n;
        for (size_t i = lo + 1; i < hi; i++) {
            sort_item_t x = a[i];
            size_t j = i;
            for (; j > lo && item_before(&x, &a[j - 1]); j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
    }
    sort_item_t *src = a, *dst = tmp;
    for (size_t w = RUN; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = n - lo > w ? lo + w : n, hi = n - mid > w ? mid + w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = item_before(&src[j], &src[i]) ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        sort_item_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

/* The same order from the entries, for dues the words cannot hold. */
static int cmp_timer(int64_t da, int64_t db, const cx_cache_entry_t *x, const cx_cache_entry_t *y) {
    if (x->part != y->part) return x->part < y->part ? -1 : 1;
    if (da != db) return da < db ? -1 : 1;
    return strcmp(x->cid, y->cid);
}
static int cmp_index_due(const void *a, const void *b) {
    const cx_cache_entry_t *x = ((const sort_item_t *)a)->e, *y = ((const sort_item_t *)b)->e;
    return cmp_timer(cx_cache_index_due(x), cx_cache_index_due(y), x, y);
}
static int cmp_timer_due(const void *a, const void *b) {
    const cx_cache_entry_t *x = ((const sort_item_t *)a)->e, *y = ((const sort_item_t *)b)->e;
    return cmp_timer(cx_cache_timer_due(x), cx_cache_timer_due(y), x, y);
}

/* The sorted entries are scattered in memory: while item i is worked on, start loading the entry
 * 16 places on and the profile's first line and timer fields of the one 8 places on, which by then
 * has its entry loaded; each loop of a flush reads both. */
static void prefetch_ahead(const sort_item_t *a, size_t n, size_t i) {
    if (i + 16 < n) __builtin_prefetch(a[i + 16].e);
    if (i + 8 < n) {
        const cx_cache_entry_t *e = a[i + 8].e;
        if (e->prof) {
            __builtin_prefetch(e->prof);
            __builtin_prefetch(&e->prof->timer_due_ms);
        }
    }
}

/* Sorts t[0..n) by (partition, due(e), id), due being the index due or the timer due. */
static void sort_timers(sort_item_t *t, sort_item_t *tmp, size_t n, bool index) {
    bool words = true;
    for (size_t i = 0; i < n && words; i++) {
        prefetch_ahead(t, n, i);
        words = timer_item(t[i].e, index ? cx_cache_index_due(t[i].e) : cx_cache_timer_due(t[i].e), &t[i]);
    }
    if (words)
        sort_items(t, tmp, n);
    else if (n > 1) /* qsort(NULL, 0) is undefined */
        qsort(t, n, sizeof *t, index ? cmp_index_due : cmp_timer_due);
}

/* the key moves only when it is absent or later than the due (see cache.h) */
static bool timer_moves(const cx_cache_entry_t *e) {
    int64_t t = cx_cache_timer_due(e), i = cx_cache_index_due(e);
    return t && (!i || t < i);
}

/* index_due_ms = timer_due_ms, in whichever form e holds (an encoding is decoded, changed and
 * encoded again: only the entries whose key moves pay that). */
static cx_err_t set_index_due(cx_cache_t *c, cx_cache_entry_t *e) {
    if (e->prof) {
        e->prof->index_due_ms = e->prof->timer_due_ms;
        return CX_OK;
    }
    cx_err_t rc = cx_profile_decode(&c->tmp, e->cid, e->enc, e->enc_len, NULL, 0);
    if (rc != CX_OK) return rc;
    c->tmp.index_due_ms = c->tmp.timer_due_ms;
    return set_enc(c, e, &c->tmp);
}

/* Starts loading every cache line of a decoded profile (a hint; nothing is read). */
static void prefetch_profile(const cx_profile_t *pr) {
    const char *b = (const char *)pr;
    for (size_t o = 0; o < sizeof *pr; o += 64)
        __builtin_prefetch(b + o);
}

/* The lines an event reads: the profile's hot part and its id's first line (profile.h). Loading all
 * 23 lines for every record 4 records ahead kept ~90 loads in flight, more than the core tracks. */
static void prefetch_profile_hot(const cx_profile_t *pr) {
    const char *b = (const char *)pr;
    for (size_t o = 0; o < CX_PROFILE_HOT_END; o += 64)
        __builtin_prefetch(b + o);
    __builtin_prefetch(&pr->customer_id);
}

static cx_err_t flush_profile(cx_cache_t *c, cx_cache_entry_t *e, cx_store_batch_t *batch) {
    cx_err_t rc = cx_store_key(&c->key, e->part, CX_KEY_PROFILE, e->cid, e->cid_len);
    if (rc != CX_OK) return rc;
    if (e->prof) { /* a dirty decoded entry has no encoding (cx_cache_load) */
        cx_buf_reset(&c->enc);
        if ((rc = cx_profile_encode(e->prof, &c->enc)) != CX_OK) return rc;
        cx_store_batch_put(batch, c->key.data, c->key.len, c->enc.data, c->enc.len);
    } else
        cx_store_batch_put(batch, c->key.data, c->key.len, e->enc, e->enc_len);
    e->in_store = true;
    e->dirty = false;
    c->ndirty--;
    c->st.flushed++;
    list_unlink(e);
    list_push_front(&c->lru, e);
    return CX_OK;
}

/* Dirty entries go into the batch in key order, in three sorted runs (the index keys that move away,
 * the index keys that move in, then the profiles): RocksDB's memtable inserts (the largest cost of a flush)
 * are much cheaper in order than at random, as each insert starts from the previous one's place. */
cx_err_t cx_cache_flush(cx_cache_t *c, int part, cx_store_batch_t *batch, cx_cache_put_cb on_put, void *opaque) {
    size_t n = 0;
    if (part < 0)
        n = c->ndirty;
    else
        for (cx_cache_entry_t *e = c->dirty.next; e != &c->dirty; e = e->next)
            if (e->part == part) n++;
    if (n > c->sort_cap) {
        sort_item_t *a = realloc(c->sort, n * sizeof *a);
        if (!a) return CX_ERR_NOMEM;
        c->sort = a;
        if (!(a = realloc(c->tsort, n * sizeof *a))) return CX_ERR_NOMEM;
        c->tsort = a;
        if (!(a = realloc(c->merge, n * sizeof *a))) return CX_ERR_NOMEM;
        c->merge = a;
        c->sort_cap = n;
    }
    size_t k = 0, nt = 0;
    for (cx_cache_entry_t *e = c->dirty.next; e != &c->dirty; e = e->next)
        if (part < 0 || e->part == part) c->sort[k++] = profile_item(e);
    sort_items(c->sort, c->merge, n);
    for (size_t i = 0; i < n; i++) {
        prefetch_ahead(c->sort, n, i);
        if (timer_moves(c->sort[i].e)) c->tsort[nt++].e = c->sort[i].e;
    }
    cx_err_t rc = CX_OK;
    sort_timers(c->tsort, c->merge, nt, true);
    for (size_t i = 0; i < nt && rc == CX_OK; i++) {
        const cx_cache_entry_t *e = c->tsort[i].e;
        prefetch_ahead(c->tsort, nt, i);
        int64_t due = cx_cache_index_due(e);
        if (due && (rc = cx_store_timer_key(&c->key, e->part, due, e->cid)) == CX_OK)
            cx_store_batch_delete(batch, c->key.data, c->key.len);
    }
    sort_timers(c->tsort, c->merge, nt, false);
    for (size_t i = 0; i < nt && rc == CX_OK; i++) {
        cx_cache_entry_t *e = c->tsort[i].e;
        prefetch_ahead(c->tsort, nt, i);
        int64_t due = cx_cache_timer_due(e);
        if ((rc = cx_store_timer_key(&c->key, e->part, due, e->cid)) != CX_OK) break;
        cx_store_batch_put(batch, c->key.data, c->key.len, "", 0);
        /* before the profile is encoded: it records the index */
        if ((rc = set_index_due(c, e)) != CX_OK) break;
        if (on_put) rc = on_put(opaque, e->part, due, c->key.data, c->key.len);
    }
    for (size_t i = 0; i < n && rc == CX_OK; i++) {
        if (i + 4 < n && c->sort[i + 4].e->prof) prefetch_profile(c->sort[i + 4].e->prof);
        prefetch_ahead(c->sort, n, i);
        rc = flush_profile(c, c->sort[i].e, batch);
    }
    if (rc != CX_OK) return rc;
    evict(c, NULL);
    return CX_OK;
}

void cx_cache_drop_partition(cx_cache_t *c, int part) {
    for (size_t i = 0; i < c->nbuckets; i++) {
        cx_cache_entry_t *e = c->table[i];
        while (e) {
            cx_cache_entry_t *n = e->hnext;
            if (part < 0 || e->part == part) entry_release(c, e);
            e = n;
        }
    }
}

void cx_cache_each_dirty(cx_cache_t *c, int part, void (*cb)(void *opaque, cx_cache_entry_t *e), void *opaque) {
    for (cx_cache_entry_t *e = c->dirty.next; e != &c->dirty; e = e->next)
        if (part < 0 || e->part == part) cb(opaque, e);
}

cx_cache_stats_t cx_cache_stats(const cx_cache_t *c) {
    cx_cache_stats_t s = c->st;
    s.entries = c->n;
    s.dirty = c->ndirty;
    s.decoded = c->ndecoded;
    return s;
}

void cx_cache_prefetch(const cx_cache_t *c, const void *cid, size_t len, int stage) {
    if (len > CX_ID_MAX) return;
    uint64_t h = cx_hash_mem(cid, len);
    cx_cache_entry_t *const *slot = &c->table[h & (c->nbuckets - 1)];
    if (stage == 0) {
        __builtin_prefetch(slot);
        return;
    }
    if (stage == 1) {
        const cx_cache_entry_t *e = *slot;
        if (e) { /* what stage 2 reads of the chain's first entry: its hash, prof and id (2-3 lines) */
            __builtin_prefetch(e);
            __builtin_prefetch(&e->prof);
            __builtin_prefetch(e->cid + len);
        }
        return;
    }
    for (const cx_cache_entry_t *e = *slot; e; e = e->hnext) {
        if (e->hash != h || e->cid_len != len || memcmp(e->cid, cid, len) != 0) continue;
        const cx_profile_t *pr = e->prof;
        if (!pr) { /* held encoded: the record's lookup decodes it */
            if (stage == 2 && e->enc)
                for (uint32_t o = 0; o < e->enc_len; o += 64)
                    __builtin_prefetch(e->enc + o);
            return;
        }
        if (stage == 2)
            prefetch_profile_hot(pr);
        else if (pr->n_buckets) {
            __builtin_prefetch(&pr->buckets[pr->n_buckets - 1]);
            if (pr->camp) __builtin_prefetch(pr->camp);
            if (pr->sends) __builtin_prefetch(pr->sends);
        }
        return;
    }
}
