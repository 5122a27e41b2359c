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
 * Ownership: entries are owned by the cache; a pointer returned by cx_cache_get() is valid until the
 * next call that may evict (cx_cache_get, cx_cache_flush, cx_cache_drop_partition).
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
    uint16_t cid_len; /* strlen(prof.customer_id) */
    bool dirty;
    bool in_store;    /* the profile key exists in RocksDB */
    bool ref;         /* used since it last reached the clean list's tail (evict) */
    int64_t heap_due; /* the pipeline's: due of this entry's earliest item in its timer heap (0: none) */
    struct cx_cache_entry *prev, *next; /* clean list (CLOCK order) or dirty list */
    cx_profile_t prof;
} cx_cache_entry_t;

typedef struct cx_cache cx_cache_t;

typedef struct cx_cache_stats {
    uint64_t hits, misses, loads_found, evictions, flushed;
    size_t entries, dirty;
} cx_cache_stats_t;

cx_cache_t *cx_cache_new(cx_store_t *store, size_t max_entries);
void cx_cache_destroy(cx_cache_t *c);

/* Looks a customer up, loading from the store on a miss. With create, an absent customer gets a
 * fresh profile (not dirty until marked); without, *out is NULL and CX_OK. */
cx_err_t cx_cache_get(cx_cache_t *c, uint16_t part, const char *cid, bool create, cx_cache_entry_t **out, char *errstr,
                      size_t errstr_size);
/* The cached entry of a customer, or NULL; never reads the store and never evicts. */
cx_cache_entry_t *cx_cache_peek(cx_cache_t *c, uint16_t part, const char *cid);
void cx_cache_mark_dirty(cx_cache_t *c, cx_cache_entry_t *e);
bool cx_cache_needs_flush(const cx_cache_t *c);

/* Writes every dirty entry of partition `part` (or all with part < 0) into `batch` — profile, timer
 * key changes — and marks them clean. The caller writes the batch. When min_put_due is given (an
 * array of n_parts, filled by the caller with INT64_MAX), it lowers min_put_due[p] to the earliest due
 * of a timer key put for partition p. */
cx_err_t cx_cache_flush(cx_cache_t *c, int part, cx_store_batch_t *batch, int64_t *min_put_due, size_t n_parts);
/* Forgets every entry of `part` (after a revoke, or to drop uncommitted changes). */
void cx_cache_drop_partition(cx_cache_t *c, int part);
/* Calls cb for every dirty entry of `part` (or all), e.g. to write the changelog. */
void cx_cache_each_dirty(cx_cache_t *c, int part, void (*cb)(void *opaque, cx_cache_entry_t *e), void *opaque);
cx_cache_stats_t cx_cache_stats(const cx_cache_t *c);

#endif
