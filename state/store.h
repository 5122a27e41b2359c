/*
 * store.h — the RocksDB state store. One database per instance; every key begins with the
 * partition number (2 bytes, big-endian), so a partition's state is one contiguous key range that
 * can be dropped or restored as a unit. Under the partition:
 *   'P' customer_id            -> profile (profile.h encoding)
 *   'T' due(8, BE) customer_id -> ""  (timer index, ordered by due time)
 *   'O' input index (1 byte)   -> next offset to consume (8 bytes LE)
 *   'M' name                   -> partition metadata (watermark, changelog checkpoint, ...)
 *   'A' aggregate key          -> partial aggregate (cross-partition KPIs)
 * All writes go through a batch so a flush is atomic: state, timers and offsets together.
 *
 * Threads: one thread uses a store (its pipeline's); the store's own writer thread applies
 * asynchronous writes behind it. The metrics getters may be called from any thread.
 *
 * Ownership: the store owns its RocksDB handles; cx_store_batch_t is owned by its creator;
 * values returned through cx_buf_t are copies the caller owns.
 */
#ifndef CX_STORE_H
#define CX_STORE_H

#include "buf.h"
#include "cx.h"

typedef struct cx_store cx_store_t;
typedef struct cx_store_batch cx_store_batch_t;

typedef struct cx_store_opts {
    const char *dir;        /* NULL: in-memory (replay, tests) */
    size_t block_cache_mb;  /* default 64 */
    size_t write_buffer_mb; /* memtable size (up to two are held); default 32 */
    bool sync;              /* fsync each flush (default false: the changelog is the backup) */
} cx_store_opts_t;

cx_store_t *cx_store_open(const cx_store_opts_t *o, char *errstr, size_t errstr_size);
void cx_store_close(cx_store_t *s);

enum { CX_KEY_PROFILE = 'P', CX_KEY_TIMER = 'T', CX_KEY_OFFSET = 'O', CX_KEY_META = 'M', CX_KEY_AGG = 'A' };

/* Builds a key [part][tag][rest] into out (reset first). */
cx_err_t cx_store_key(cx_buf_t *out, uint16_t part, char tag, const void *rest, size_t rest_len);
/* Timer key: [part]['T'][due BE, sign-flipped][customer_id]. */
cx_err_t cx_store_timer_key(cx_buf_t *out, uint16_t part, int64_t due_ms, const char *cid);
/* The due time of a timer key of at least 11 bytes (part, tag, due; the id may be absent). */
int64_t cx_store_timer_key_due(const void *key);
/* Splits a timer key; false if it is not one. cid points into key (length *cid_len). */
bool cx_store_timer_key_parse(const void *key, size_t len, uint16_t *part, int64_t *due_ms, const char **cid,
                              size_t *cid_len);

/* Point read: *found false and CX_OK when absent. */
cx_err_t cx_store_get(cx_store_t *s, const void *key, size_t klen, cx_buf_t *val, bool *found, char *errstr,
                      size_t errstr_size);

cx_store_batch_t *cx_store_batch_new(void);
void cx_store_batch_destroy(cx_store_batch_t *b);
void cx_store_batch_clear(cx_store_batch_t *b);
void cx_store_batch_put(cx_store_batch_t *b, const void *k, size_t kl, const void *v, size_t vl);
void cx_store_batch_delete(cx_store_batch_t *b, const void *k, size_t kl);
size_t cx_store_batch_count(const cx_store_batch_t *b);
/* RocksDB write batches the batch is held and written as (~4 MB each; 1 when empty). */
size_t cx_store_batch_chunks(const cx_store_batch_t *b);
/* Visits every operation of a batch in order (put: v non-NULL; delete: v NULL, vl 0), e.g. to
 * mirror a flush to the changelog. Pointers are valid during the call only. */
void cx_store_batch_each(const cx_store_batch_t *b,
                         void (*cb)(void *opaque, const void *k, size_t kl, const void *v, size_t vl), void *opaque);
/* Writes the batch: in chunks of a few MB, in order, each atomic but not the whole (a crash may leave
 * a prefix written; callers put what marks a batch complete, e.g. a checkpoint, last). */
cx_err_t cx_store_write(cx_store_t *s, cx_store_batch_t *b, char *errstr, size_t errstr_size);

/* Write-behind: hands the batch to the store's writer thread (started on first use) and returns at
 * once, so the caller goes on while RocksDB applies it. The batch belongs to the store until
 * cx_store_wait() returns; one write is in flight at a time (a second waits for the first). Every
 * other operation of the store (reads, scans, writes, drops, close) waits for the write in flight
 * first, so the caller always reads its own writes; but a point read of a key the batch neither puts
 * nor deletes (the batch keeps a filter of its keys) reads at once, as it reads the same either way,
 * and cx_store_scan_behind does not wait. A failed asynchronous write is sticky: that call and every
 * later operation but close fail with its message (CX_ERR_IO). */
cx_err_t cx_store_write_async(cx_store_t *s, cx_store_batch_t *b, char *errstr, size_t errstr_size);
/* Waits for the write in flight; CX_ERR_IO with its message if an asynchronous write failed. */
cx_err_t cx_store_wait(cx_store_t *s, char *errstr, size_t errstr_size);
/* Seconds callers have spent waiting for the writer (any thread may call this). */
double cx_store_wait_seconds(cx_store_t *s);
/* Whether a write is in flight (handed to the writer and not yet applied). */
bool cx_store_writing(cx_store_t *s);
/* Point reads that did not wait for a write in flight, and cx_store_scan_behind calls made while one
 * was in flight. */
void cx_store_behind_counts(cx_store_t *s, uint64_t *reads, uint64_t *scans);
/* For tests: while held, the writer leaves the batch in flight (close releases it). */
void cx_store_hold(cx_store_t *s, bool hold);

/* Iterates keys in [from, to) in order; cb returns false to stop. */
typedef bool (*cx_store_scan_cb)(void *opaque, const void *k, size_t kl, const void *v, size_t vl);
cx_err_t cx_store_scan(cx_store_t *s, const void *from, size_t fl, const void *to, size_t tl, cx_store_scan_cb cb,
                       void *opaque, char *errstr, size_t errstr_size);
/* cx_store_scan without waiting for the write in flight: the scan sees the store either wholly
 * before or wholly after that write. For a caller that merges the batch's own keys itself. */
cx_err_t cx_store_scan_behind(cx_store_t *s, const void *from, size_t fl, const void *to, size_t tl,
                              cx_store_scan_cb cb, void *opaque, char *errstr, size_t errstr_size);
/* Scans every key of `part` with tag `tag`. */
cx_err_t cx_store_scan_tag(cx_store_t *s, uint16_t part, char tag, cx_store_scan_cb cb, void *opaque, char *errstr,
                           size_t errstr_size);

/* Deletes every key of a partition (DeleteRange). */
cx_err_t cx_store_drop_partition(cx_store_t *s, uint16_t part, char *errstr, size_t errstr_size);

/* Approximate bytes on disk / in memtables, for metrics. */
uint64_t cx_store_size_bytes(cx_store_t *s);
/* Memory RocksDB holds now: memtables (active and immutable) and block cache usage. */
uint64_t cx_store_memtable_bytes(cx_store_t *s);
uint64_t cx_store_block_cache_bytes(cx_store_t *s);
/* Forces memtables to SST files and compacts everything, the bottommost level rewritten (benchmarks
 * measure bytes per customer). */
void cx_store_compact(cx_store_t *s);

#endif
