/*
 * cache.c — hash table with chaining, a CLOCK list of clean entries and a list of dirty ones.
 */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

struct cx_cache {
    cx_store_t *store; /* borrowed */
    size_t max_entries;
    cx_cache_entry_t **table;
    size_t nbuckets; /* power of two */
    size_t n, ndirty;
    cx_cache_entry_t lru;   /* clean entries, sentinel: next = newest, prev = next to be considered */
    cx_cache_entry_t dirty; /* sentinel */
    cx_cache_entry_t *free_list;
    cx_buf_t key, val, enc;
    cx_cache_entry_t **sort, **tsort; /* flush order scratch, reused */
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

cx_cache_t *cx_cache_new(cx_store_t *store, size_t max_entries) {
    cx_cache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->store = store;
    c->max_entries = max_entries ? max_entries : 1;
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
    return c;
}

static void entry_free(cx_cache_entry_t *e) {
    cx_profile_clear(&e->prof);
    free(e);
}

void cx_cache_destroy(cx_cache_t *c) {
    if (!c) return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        cx_cache_entry_t *e = c->table[i];
        while (e) {
            cx_cache_entry_t *n = e->hnext;
            entry_free(e);
            e = n;
        }
    }
    while (c->free_list) {
        cx_cache_entry_t *n = c->free_list->hnext;
        free(c->free_list);
        c->free_list = n;
    }
    free(c->table);
    free(c->sort);
    free(c->tsort);
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
    cx_profile_clear(&e->prof);
    e->hnext = c->free_list;
    c->free_list = e;
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

cx_err_t cx_cache_get(cx_cache_t *c, uint16_t part, const char *cid, bool create, cx_cache_entry_t **out, char *errstr,
                      size_t errstr_size) {
    size_t len = strlen(cid);
    uint64_t h = cx_hash64(cid, len);
    *out = NULL;
    for (cx_cache_entry_t *e = c->table[h & (c->nbuckets - 1)]; e; e = e->hnext) {
        if (e->hash == h && e->cid_len == len && e->part == part && memcmp(e->prof.customer_id, cid, len) == 0) {
            c->st.hits++;
            e->ref = true; /* a hit costs no list surgery (four neighbours' cache lines); see evict() */
            *out = e;
            return CX_OK;
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
    cx_cache_entry_t *e = c->free_list;
    if (e)
        c->free_list = e->hnext;
    else if (!(e = malloc(sizeof *e)))
        return CX_ERR_NOMEM;
    memset(e, 0, sizeof *e);
    cx_profile_init_lean(&e->prof, cid);
    if (found) {
        rc = cx_profile_decode(&e->prof, cid, c->val.data, c->val.len, errstr, errstr_size);
        if (rc != CX_OK) {
            e->hnext = c->free_list;
            c->free_list = e;
            return rc;
        }
        e->in_store = true;
        c->st.loads_found++;
    }
    e->part = part;
    e->hash = h;
    e->cid_len = (uint16_t)strlen(e->prof.customer_id);
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
    uint64_t h = cx_hash64(cid, len);
    for (cx_cache_entry_t *e = c->table[h & (c->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->cid_len == len && e->part == part && memcmp(e->prof.customer_id, cid, len) == 0)
            return e;
    return NULL;
}

void cx_cache_mark_dirty(cx_cache_t *c, cx_cache_entry_t *e) {
    if (e->dirty) return;
    list_unlink(e);
    list_push_front(&c->dirty, e);
    e->dirty = true;
    c->ndirty++;
}

bool cx_cache_needs_flush(const cx_cache_t *c) {
    return c->ndirty >= c->max_entries;
}

/* Keys in RocksDB order: partition, then (timer keys) due, then customer id. */
static int cmp_timer(int64_t da, int64_t db, const cx_cache_entry_t *x, const cx_cache_entry_t *y) {
    if (x->part != y->part) return x->part < y->part ? -1 : 1;
    if (da != db) return da < db ? -1 : 1;
    return strcmp(x->prof.customer_id, y->prof.customer_id);
}
static int cmp_entry(const void *a, const void *b) { /* profile keys: no due */
    return cmp_timer(0, 0, *(cx_cache_entry_t *const *)a, *(cx_cache_entry_t *const *)b);
}
static int cmp_index_due(const void *a, const void *b) {
    const cx_cache_entry_t *x = *(cx_cache_entry_t *const *)a, *y = *(cx_cache_entry_t *const *)b;
    return cmp_timer(x->prof.index_due_ms, y->prof.index_due_ms, x, y);
}
static int cmp_timer_due(const void *a, const void *b) {
    const cx_cache_entry_t *x = *(cx_cache_entry_t *const *)a, *y = *(cx_cache_entry_t *const *)b;
    return cmp_timer(x->prof.timer_due_ms, y->prof.timer_due_ms, x, y);
}

/* the key moves only when it is absent or later than the due (see cache.h) */
static bool timer_moves(const cx_profile_t *pr) {
    return pr->timer_due_ms && (!pr->index_due_ms || pr->timer_due_ms < pr->index_due_ms);
}

static cx_err_t flush_profile(cx_cache_t *c, cx_cache_entry_t *e, cx_store_batch_t *batch) {
    cx_profile_t *pr = &e->prof;
    cx_err_t rc;
    cx_buf_reset(&c->enc);
    if ((rc = cx_profile_encode(pr, &c->enc)) == CX_OK)
        rc = cx_store_key(&c->key, e->part, CX_KEY_PROFILE, pr->customer_id, strlen(pr->customer_id));
    if (rc != CX_OK) return rc;
    cx_store_batch_put(batch, c->key.data, c->key.len, c->enc.data, c->enc.len);
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
cx_err_t cx_cache_flush(cx_cache_t *c, int part, cx_store_batch_t *batch, int64_t *min_put_due, size_t n_parts) {
    size_t n = 0;
    for (cx_cache_entry_t *e = c->dirty.next; e != &c->dirty; e = e->next)
        if (part < 0 || e->part == part) n++;
    if (n > c->sort_cap) {
        cx_cache_entry_t **a = realloc(c->sort, n * sizeof *a);
        if (!a) return CX_ERR_NOMEM;
        c->sort = a;
        if (!(a = realloc(c->tsort, n * sizeof *a))) return CX_ERR_NOMEM;
        c->tsort = a;
        c->sort_cap = n;
    }
    size_t k = 0, nt = 0;
    for (cx_cache_entry_t *e = c->dirty.next; e != &c->dirty; e = e->next)
        if (part < 0 || e->part == part) c->sort[k++] = e;
    if (n > 1) qsort(c->sort, n, sizeof *c->sort, cmp_entry); /* qsort(NULL, 0) is undefined */
    for (size_t i = 0; i < n; i++)
        if (timer_moves(&c->sort[i]->prof)) c->tsort[nt++] = c->sort[i];
    cx_err_t rc = CX_OK;
    if (nt > 1) qsort(c->tsort, nt, sizeof *c->tsort, cmp_index_due);
    for (size_t i = 0; i < nt && rc == CX_OK; i++) {
        const cx_profile_t *pr = &c->tsort[i]->prof;
        if (pr->index_due_ms &&
            (rc = cx_store_timer_key(&c->key, c->tsort[i]->part, pr->index_due_ms, pr->customer_id)) == CX_OK)
            cx_store_batch_delete(batch, c->key.data, c->key.len);
    }
    if (nt > 1) qsort(c->tsort, nt, sizeof *c->tsort, cmp_timer_due);
    for (size_t i = 0; i < nt && rc == CX_OK; i++) {
        cx_cache_entry_t *e = c->tsort[i];
        cx_profile_t *pr = &e->prof;
        if ((rc = cx_store_timer_key(&c->key, e->part, pr->timer_due_ms, pr->customer_id)) != CX_OK) break;
        cx_store_batch_put(batch, c->key.data, c->key.len, "", 0);
        pr->index_due_ms = pr->timer_due_ms; /* before the profile is encoded: it records the index */
        if (min_put_due && e->part < n_parts && pr->timer_due_ms < min_put_due[e->part])
            min_put_due[e->part] = pr->timer_due_ms;
    }
    for (size_t i = 0; i < n && rc == CX_OK; i++)
        rc = flush_profile(c, c->sort[i], batch);
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
    return s;
}
