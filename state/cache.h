/*
 * cache.h — the write-back profile cache. A customer's many events between two flushes cost one
 * RocksDB read (on first touch) and one write (at flush). Clean entries are evicted in CLOCK order
 * (least recently used, approximately: a used entry gets a second chance) once more than
 * `max_entries` are held; dirty entries stay until the next flush, and
 * cx_cache_needs_flush() tells the pipeline when the dirty set alone has reached the bound (memory
 * is bounded by configuration, not by the number of customers).
 *
 * The cache also keeps, per entry, which timer key is present in RocksDB (prof.index_due_ms). A flush
 * writes the profile and, in the same batch, moves the timer key only when the due moved earlier or
 * no key is present: a due that moved later (every event of an active customer pushes it out) leaves
 * the key where it is, and the pipeline re-indexes the customer when its scan reaches that key. That
 * saves two of the three RocksDB writes of most flushed customers and keeps the index's deletions
 * behind the scan instead of in front of it.
 *
 * Two forms: at most `max_decoded` entries hold the decoded profile (576 B plus day buckets and
 * campaign block, ~2 KB for an active customer); the others hold the compact encoding RocksDB stores
 * (~200-450 B), decoded again on their next use. Memory is max_entries encodings plus max_decoded
 * decoded profiles, whatever the number of customers. A dirty entry may be encoded too: its
 * encoding is what the next flush writes.
 *
 * Ownership: entries are owned by the cache; a pointer returned by cx_cache_get() is valid until the
 * next call that may evict (cx_cache_get, cx_cache_flush, cx_cache_drop_partition), its `prof` until
 * the next cx_cache_trim or the entry's eviction.
 */
#ifndef CX_CACHE_H
#define CX_CACHE_H

#include "profile.h"
#include "store.h"

typedef struct cx_cache_entry {
    /* what a lookup compares, first: a chain walk touches one cache line per entry */
    uint64_t hash;
    struct cx_cache_entry *hnext;
    uint16_t part;
    uint16_t cid_len; /* strlen(cid) */
    bool dirty;
    bool in_store;    /* the profile key exists in RocksDB */
    bool ref;         /* used since it last reached the clean list's tail (evict) */
    bool hot_ref;     /* loaded since it last reached the decoded list's tail (cx_cache_trim) */
    int64_t heap_due; /* the pipeline's: due of this entry's earliest item in its timer heap (0: none) */
    struct cx_cache_entry *prev, *next;   /* clean list (CLOCK order) or dirty list */
    struct cx_cache_entry *dprev, *dnext; /* decoded list (CLOCK order), while prof is set */
    /* The profile, decoded (prof) or encoded (enc): at least one is set. Both are while a clean entry
     * is decoded from its encoding (dropping prof then costs no encode); a dirty decoded entry has no
     * enc, as it would be stale. Use cx_cache_load() before touching prof. */
    cx_profile_t *prof;
    uint8_t *enc;
    uint32_t enc_len;
    /* prof's timer fields as of its last encoding; read them with cx_cache_timer_due/index_due */
    int64_t enc_timer_due_ms, enc_index_due_ms;
    char cid[]; /* the customer id, NUL-terminated */
} cx_cache_entry_t;

typedef struct cx_cache cx_cache_t;

typedef struct cx_cache_stats {
    uint64_t hits, misses, loads_found, evictions, flushed;
    uint64_t decodes; /* encoded entries decoded again on use */
    uint64_t encodes; /* decoded entries encoded to stay within max_decoded */
    size_t entries, dirty, decoded;
    size_t encoded_bytes; /* held by encoded forms */
} cx_cache_stats_t;

/* At most max_entries clean entries (all entries, dirty ones until the next flush), of which at most
 * max_decoded (after cx_cache_trim) in decoded form; the others are held in the compact encoding
 * RocksDB stores (~200-450 B instead of ~2 KB). */
cx_cache_t *cx_cache_new(cx_store_t *store, size_t max_entries, size_t max_decoded);
void cx_cache_destroy(cx_cache_t *c);

/* Looks a customer up, loading from the store on a miss, and returns it decoded. With create, an
 * absent customer gets a fresh profile (not dirty until marked); without, *out is NULL and CX_OK. */
cx_err_t cx_cache_get(cx_cache_t *c, uint16_t part, const char *cid, bool create, cx_cache_entry_t **out, char *errstr,
                      size_t errstr_size);
/* The cached entry of a customer, or NULL, decoded or not; never reads the store and never evicts. */
cx_cache_entry_t *cx_cache_peek(cx_cache_t *c, uint16_t part, const char *cid);
/* A hint: starts loading what a get of cid will touch; stage 0 the hash slot, 1 the first entry of
 * its chain, 2 the entry's decoded profile, 3 that profile's latest bucket and campaign block. Each
 * stage reads what the one before it loaded; nothing changes. */
void cx_cache_prefetch(const cx_cache_t *c, const void *cid, size_t len, int stage);
/* Decodes e unless it is (CX_ERR_NOMEM, or CX_ERR_CORRUPT with errstr). e->prof is then valid until
 * the next cx_cache_trim or the entry's eviction. */
cx_err_t cx_cache_load(cx_cache_t *c, cx_cache_entry_t *e, char *errstr, size_t errstr_size);
/* Encodes decoded entries, least recently loaded first, down to max_decoded; call where no profile
 * pointer is held (a get or load never drops another entry's decoded form, so the profiles of one
 * event's work stay valid). */
cx_err_t cx_cache_trim(cx_cache_t *c);
void cx_cache_mark_dirty(cx_cache_t *c, cx_cache_entry_t *e);
bool cx_cache_needs_flush(const cx_cache_t *c);

static inline int64_t cx_cache_timer_due(const cx_cache_entry_t *e) {
    return e->prof ? e->prof->timer_due_ms : e->enc_timer_due_ms;
}
static inline int64_t cx_cache_index_due(const cx_cache_entry_t *e) {
    return e->prof ? e->prof->index_due_ms : e->enc_index_due_ms;
}

/* Called with every timer key a flush puts, in key order (partition, due, customer id). */
typedef cx_err_t (*cx_cache_put_cb)(void *opaque, uint16_t part, int64_t due, const void *key, size_t klen);

/* Writes every dirty entry of partition `part` (or all with part < 0) into `batch` — profile, timer
 * key changes — and marks them clean. The caller writes the batch. on_put (may be NULL) sees each
 * timer key put; an error it returns stops the flush. */
cx_err_t cx_cache_flush(cx_cache_t *c, int part, cx_store_batch_t *batch, cx_cache_put_cb on_put, void *opaque);
/* Forgets every entry of `part` (after a revoke, or to drop uncommitted changes). */
void cx_cache_drop_partition(cx_cache_t *c, int part);
/* Calls cb for every dirty entry of `part` (or all), decoded or not. */
void cx_cache_each_dirty(cx_cache_t *c, int part, void (*cb)(void *opaque, cx_cache_entry_t *e), void *opaque);
cx_cache_stats_t cx_cache_stats(const cx_cache_t *c);

#endif
