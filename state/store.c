/*
 * store.c — RocksDB behind the small interface of store.h. Tuned for a write-back workload:
 * batched writes with an unsynced WAL (the changelog and committed offsets are the recovery path
 * after a machine crash),
 * bloom filters for point lookups of profiles, LZ4 compression (zstd at the bottommost level), a shared
 * block cache.
 */
#include "store.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cx_store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_env_t *env; /* in-memory env when no dir */
    rocksdb_cache_t *cache;
    rocksdb_block_based_table_options_t *topts;
    rocksdb_filterpolicy_t *filter; /* owned by topts once set */

    /* the write-behind writer (cx_store_write_async): started on the first asynchronous write */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool sync_init, writer_started, stop;
    bool hold;                 /* cx_store_hold: the writer leaves the batch in flight (tests) */
    cx_store_batch_t *pending; /* handed to the writer, not yet written */
    char *failed;              /* the first failed asynchronous write's message (sticky), malloc'd */
    double wait_s;             /* time spent in barriers waiting for the writer */
    uint64_t reads_behind;     /* point reads that did not wait for the write in flight */
    uint64_t scans_behind;     /* cx_store_scan_behind calls while a write was in flight */
    pthread_t writer;
};

/* A filter of the keys a batch puts or deletes (3 probes in 2^22 bits: ~1% false positives at
 * 300,000 keys): a read of a key the batch in flight cannot hold need not wait for it. */
#define BATCH_FILTER_BITS  (UINT32_C(1) << 22)
#define BATCH_FILTER_PROBE 3

/* A batch is written as a run of RocksDB write batches of about BATCH_CHUNK_BYTES each, in order.
 * One commit's batch (every dirty profile, ~60 MB at 138 k customers) written whole went into a
 * single memtable, which then grew to the batch's size whatever write_buffer_size said, and two of
 * them (the one being flushed and the next) were ~130 MB of peak RSS; in chunks the memtables keep
 * their configured size. The chunks past the first are freed when the batch is cleared, so the
 * batch holds memory only while a commit is built and written. */
#define BATCH_CHUNK_BYTES ((size_t)4 << 20)

struct cx_store_batch {
    rocksdb_writebatch_t **wb; /* [n], the last one filling */
    size_t n, cap;
    size_t last_bytes; /* keys and values put into wb[n - 1] */
    uint64_t *filter;  /* BATCH_FILTER_BITS bits; NULL (allocation failed): may hold any key */
};

/* Bit `i` of the BATCH_FILTER_PROBE probes of a key whose hash is h (double hashing). */
static uint32_t filter_bit(uint64_t h, uint32_t i) {
    return ((uint32_t)h + i * ((uint32_t)(h >> 32) | 1)) & (BATCH_FILTER_BITS - 1);
}

static void filter_add(cx_store_batch_t *b, const void *k, size_t kl) {
    if (!b->filter) return;
    uint64_t h = cx_hash_mem(k, kl);
    for (uint32_t i = 0; i < BATCH_FILTER_PROBE; i++) {
        uint32_t bit = filter_bit(h, i);
        b->filter[bit >> 6] |= UINT64_C(1) << (bit & 63);
    }
}

static bool filter_may_hold(const cx_store_batch_t *b, const void *k, size_t kl) {
    if (!b->filter) return true;
    uint64_t h = cx_hash_mem(k, kl);
    for (uint32_t i = 0; i < BATCH_FILTER_PROBE; i++) {
        uint32_t bit = filter_bit(h, i);
        if (!(b->filter[bit >> 6] & (UINT64_C(1) << (bit & 63)))) return false;
    }
    return true;
}

cx_store_t *cx_store_open(const cx_store_opts_t *o, char *errstr, size_t errstr_size) {
    cx_store_t *s = calloc(1, sizeof *s);
    if (!s) {
        cx_seterr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    char *err = NULL;
    const char *dir = o && o->dir ? o->dir : "/cxstream-mem";
    if (pthread_mutex_init(&s->mu, NULL) == 0) {
        if (pthread_cond_init(&s->cv, NULL) == 0)
            s->sync_init = true;
        else
            pthread_mutex_destroy(&s->mu);
    }
    if (!s->sync_init) {
        cx_seterr(errstr, errstr_size, "cannot open state store: mutex initialisation failed");
        free(s);
        return NULL;
    }
    s->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->opts, 1);
    rocksdb_options_increase_parallelism(s->opts, 2);
    /* LZ4 where data is rewritten soon, zstd for the bottommost level, where most of it rests
     * (RocksDB's own advice): on the end-to-end data 303 -> 256 bytes per customer after compaction */
    rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
    rocksdb_options_set_bottommost_compression(s->opts, rocksdb_zstd_compression);
    rocksdb_options_set_write_buffer_size(s->opts, (size_t)((o && o->write_buffer_mb) ? o->write_buffer_mb : 32) << 20);
    /* first touches are mostly absent keys: a whole-key bloom filter in the memtable answers them
     * without a skip-list descent */
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->opts, 0.05);
    rocksdb_options_set_memtable_whole_key_filtering(s->opts, 1);
    rocksdb_options_set_max_open_files(s->opts, 512);
    s->topts = rocksdb_block_based_options_create();
    /* Few cache shards: one thread reads. RocksDB's default (64 shards of 1 MB for 64 MB) cannot hold
     * the filter block of an SST with ~1 M keys, so it was read from the file and checksummed on
     * every Get (23% of CPU at 1 M customers). Filters and indexes are also partitioned (4 KB pieces,
     * top level pinned), so no single cached block grows with the number of customers. */
    rocksdb_lru_cache_options_t *lo = rocksdb_lru_cache_options_create();
    rocksdb_lru_cache_options_set_capacity(lo, (size_t)((o && o->block_cache_mb) ? o->block_cache_mb : 64) << 20);
    rocksdb_lru_cache_options_set_num_shard_bits(lo, 2);
    s->cache = rocksdb_cache_create_lru_opts(lo);
    rocksdb_lru_cache_options_destroy(lo);
    rocksdb_block_based_options_set_block_cache(s->topts, s->cache);
    s->filter = rocksdb_filterpolicy_create_bloom_full(10);
    rocksdb_block_based_options_set_filter_policy(s->topts, s->filter);
    rocksdb_block_based_options_set_index_type(s->topts, rocksdb_block_based_table_index_type_two_level_index_search);
    rocksdb_block_based_options_set_partition_filters(s->topts, 1);
    rocksdb_block_based_options_set_metadata_block_size(s->topts, 4096);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->topts, 1);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(s->topts, 1);
    rocksdb_block_based_options_set_pin_top_level_index_and_filter(s->topts, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(s->topts, 1);
    rocksdb_options_set_block_based_table_factory(s->opts, s->topts);
    if (!o || !o->dir) {
        s->env = rocksdb_create_mem_env();
        rocksdb_options_set_env(s->opts, s->env);
    }
    /* Memtable inserts with a hint per key prefix (partition and key kind, 3 bytes): a flush writes
     * each prefix's keys in ascending order, and the hint's splice then repairs only the levels the
     * previous key does not bracket. Without it every insert searched the skip list from the top
     * (RocksDB's sequential splice gives up unless the bottom level brackets the key, and the memtable
     * holds other keys between any two of a batch): 56% of the core benchmark's instructions. Not in
     * the C API of RocksDB 7.8, hence the options string. */
    rocksdb_options_t *hinted = rocksdb_options_create();
    rocksdb_get_options_from_string(s->opts, "memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.3", hinted,
                                    &err);
    if (err) {
        cx_seterr(errstr, errstr_size, "cannot configure state store %s: %s", dir, err);
        rocksdb_free(err);
        rocksdb_options_destroy(hinted);
        cx_store_close(s);
        return NULL;
    }
    rocksdb_options_destroy(s->opts);
    s->opts = hinted;
    /* no perf_context counting (RocksDB's default counts into a thread-local struct on every
     * operation); the level is per thread, so cx_store_write sets it again for its thread */
    rocksdb_set_perf_level(1);
    s->db = rocksdb_open(s->opts, dir, &err);
    if (err) {
        cx_seterr(errstr, errstr_size, "cannot open state store %s: %s", dir, err);
        rocksdb_free(err);
        cx_store_close(s);
        return NULL;
    }
    s->ropts = rocksdb_readoptions_create();
    s->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wopts, o && o->sync);
    /* The WAL stays on (not synced): a kill -9 keeps every flushed batch. Turning it off was ~6%
     * faster in bench_core but lost the last flushes of a killed process and failed the
     * exactly-once system test's final-state check, so it is not worth it. */
    return s;
}

/* Waits (s->mu held) until the writer holds no batch; the time is counted in wait_s. */
static void drain_locked(cx_store_t *s) {
    if (!s->pending) return;
    double t0 = cx_mono_s();
    while (s->pending)
        pthread_cond_wait(&s->cv, &s->mu);
    s->wait_s += cx_mono_s() - t0;
}

/* drain_locked, then the sticky failure (s->mu held). */
static cx_err_t settle_locked(cx_store_t *s, char *errstr, size_t errstr_size) {
    drain_locked(s);
    if (!s->failed) return CX_OK;
    cx_seterr(errstr, errstr_size, "%s", s->failed);
    return CX_ERR_IO;
}

/* Every operation but the asynchronous write itself (and the reads that need not wait) starts here:
 * it sees the state after every write handed over before it, and fails once an asynchronous write
 * has failed. */
static cx_err_t barrier(cx_store_t *s, char *errstr, size_t errstr_size) {
    pthread_mutex_lock(&s->mu);
    cx_err_t rc = settle_locked(s, errstr, errstr_size);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Writes the chunks of b in order; NULL or RocksDB's error (rocksdb_free it). The chunks are not one
 * atomic write: a crash between two leaves a prefix of the batch written. The pipeline's batches
 * put the timer index keys before the profiles and the checkpoints last, and the changelog holds
 * the whole batch before it is written, so the restore at the next start (from the checkpoint
 * before) applies the rest (changelog.h). */
static char *batch_write(cx_store_t *s, cx_store_batch_t *b) {
    char *err = NULL;
    for (size_t i = 0; i < b->n && !err; i++)
        if (rocksdb_writebatch_count(b->wb[i])) rocksdb_write(s->db, s->wopts, b->wb[i], &err);
    return err;
}

static void *writer_main(void *arg) {
    cx_store_t *s = arg;
    rocksdb_set_perf_level(1); /* this thread's perf level (see cx_store_open) */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while ((!s->pending || s->hold) && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->pending) break; /* stop, nothing left */
        cx_store_batch_t *b = s->pending;
        pthread_mutex_unlock(&s->mu);
        char *err = batch_write(s, b);
        pthread_mutex_lock(&s->mu);
        if (err) {
            size_t n = strlen(err) + 32;
            if (!s->failed && (s->failed = malloc(n))) snprintf(s->failed, n, "state write failed: %s", err);
            rocksdb_free(err);
        }
        s->pending = NULL;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void cx_store_close(cx_store_t *s) {
    if (!s) return;
    if (s->writer_started) {
        pthread_mutex_lock(&s->mu);
        s->hold = false;
        pthread_cond_broadcast(&s->cv);
        drain_locked(s);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
    }
    free(s->failed);
    if (s->sync_init) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
    }
    if (s->db) rocksdb_close(s->db);
    if (s->ropts) rocksdb_readoptions_destroy(s->ropts);
    if (s->wopts) rocksdb_writeoptions_destroy(s->wopts);
    if (s->opts) rocksdb_options_destroy(s->opts);
    if (s->topts) rocksdb_block_based_options_destroy(s->topts); /* frees the filter policy too */
    if (s->cache) rocksdb_cache_destroy(s->cache);
    if (s->env) rocksdb_env_destroy(s->env);
    free(s);
}

cx_err_t cx_store_key(cx_buf_t *out, uint16_t part, char tag, const void *rest, size_t rest_len) {
    uint8_t head[3] = {(uint8_t)(part >> 8), (uint8_t)part, (uint8_t)tag};
    cx_buf_reset(out);
    cx_err_t e = cx_buf_append(out, head, 3);
    if (e == CX_OK && rest_len) e = cx_buf_append(out, rest, rest_len);
    return e;
}

cx_err_t cx_store_timer_key(cx_buf_t *out, uint16_t part, int64_t due_ms, const char *cid) {
    uint8_t d[8];
    uint64_t u = (uint64_t)due_ms ^ (UINT64_C(1) << 63);
    for (int i = 0; i < 8; i++)
        d[i] = (uint8_t)(u >> (56 - 8 * i));
    cx_err_t e = cx_store_key(out, part, CX_KEY_TIMER, d, 8);
    return e == CX_OK ? cx_buf_append(out, cid, strlen(cid)) : e;
}

int64_t cx_store_timer_key_due(const void *key) {
    const uint8_t *k = key;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | k[3 + i];
    return (int64_t)(u ^ (UINT64_C(1) << 63));
}

bool cx_store_timer_key_parse(const void *key, size_t len, uint16_t *part, int64_t *due_ms, const char **cid,
                              size_t *cid_len) {
    const uint8_t *k = key;
    if (len < 12 || k[2] != CX_KEY_TIMER) return false;
    *part = (uint16_t)((k[0] << 8) | k[1]);
    *due_ms = cx_store_timer_key_due(key);
    *cid = (const char *)k + 11;
    *cid_len = len - 11;
    return true;
}

cx_err_t cx_store_get(cx_store_t *s, const void *key, size_t klen, cx_buf_t *val, bool *found, char *errstr,
                      size_t errstr_size) {
    /* a key the write in flight does not touch reads the same before and after it: no wait */
    pthread_mutex_lock(&s->mu);
    cx_err_t rc = CX_OK;
    if (s->pending && !filter_may_hold(s->pending, key, klen)) {
        s->reads_behind++;
        if (s->failed) rc = settle_locked(s, errstr, errstr_size);
    } else
        rc = settle_locked(s, errstr, errstr_size);
    pthread_mutex_unlock(&s->mu);
    if (rc != CX_OK) return rc;
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get(s->db, s->ropts, key, klen, &vlen, &err);
    if (err) {
        cx_seterr(errstr, errstr_size, "state read failed: %s", err);
        rocksdb_free(err);
        return CX_ERR_IO;
    }
    *found = v != NULL;
    cx_buf_reset(val);
    cx_err_t e = CX_OK;
    if (v) {
        e = cx_buf_append(val, v, vlen);
        rocksdb_free(v);
    }
    return e;
}

cx_store_batch_t *cx_store_batch_new(void) {
    cx_store_batch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->cap = 16;
    if (!(b->wb = malloc(b->cap * sizeof *b->wb))) {
        free(b);
        return NULL;
    }
    b->wb[b->n++] = rocksdb_writebatch_create();
    b->filter = calloc(BATCH_FILTER_BITS / 64, sizeof *b->filter);
    return b;
}

void cx_store_batch_destroy(cx_store_batch_t *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n; i++)
        rocksdb_writebatch_destroy(b->wb[i]);
    free(b->wb);
    free(b->filter);
    free(b);
}

void cx_store_batch_clear(cx_store_batch_t *b) {
    while (b->n > 1)
        rocksdb_writebatch_destroy(b->wb[--b->n]);
    rocksdb_writebatch_clear(b->wb[0]);
    b->last_bytes = 0;
    if (b->filter) memset(b->filter, 0, BATCH_FILTER_BITS / 8);
}

/* The chunk the next operation of kl + vl bytes goes into: a new one once the last is full (or the
 * last, however full, if the array cannot grow: the write is then only larger). */
static rocksdb_writebatch_t *batch_chunk(cx_store_batch_t *b, size_t bytes) {
    if (b->last_bytes >= BATCH_CHUNK_BYTES) {
        if (b->n == b->cap) {
            rocksdb_writebatch_t **a = realloc(b->wb, 2 * b->cap * sizeof *a);
            if (a) {
                b->wb = a;
                b->cap *= 2;
            }
        }
        if (b->n < b->cap) {
            b->wb[b->n++] = rocksdb_writebatch_create();
            b->last_bytes = 0;
        }
    }
    b->last_bytes += bytes;
    return b->wb[b->n - 1];
}

void cx_store_batch_put(cx_store_batch_t *b, const void *k, size_t kl, const void *v, size_t vl) {
    rocksdb_writebatch_put(batch_chunk(b, kl + vl), k, kl, v, vl);
    filter_add(b, k, kl);
}

void cx_store_batch_delete(cx_store_batch_t *b, const void *k, size_t kl) {
    rocksdb_writebatch_delete(batch_chunk(b, kl), k, kl);
    filter_add(b, k, kl);
}

size_t cx_store_batch_count(const cx_store_batch_t *b) {
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        n += (size_t)rocksdb_writebatch_count(b->wb[i]);
    return n;
}

size_t cx_store_batch_chunks(const cx_store_batch_t *b) {
    return b->n;
}

typedef struct batch_each {
    void (*cb)(void *opaque, const void *k, size_t kl, const void *v, size_t vl);
    void *opaque;
} batch_each_t;

static void batch_each_put(void *st, const char *k, size_t kl, const char *v, size_t vl) {
    batch_each_t *e = st;
    e->cb(e->opaque, k, kl, v ? v : "", vl);
}

static void batch_each_del(void *st, const char *k, size_t kl) {
    batch_each_t *e = st;
    e->cb(e->opaque, k, kl, NULL, 0);
}

void cx_store_batch_each(const cx_store_batch_t *b,
                         void (*cb)(void *opaque, const void *k, size_t kl, const void *v, size_t vl), void *opaque) {
    batch_each_t e = {cb, opaque};
    for (size_t i = 0; i < b->n; i++)
        rocksdb_writebatch_iterate(b->wb[i], &e, batch_each_put, batch_each_del);
}

cx_err_t cx_store_write(cx_store_t *s, cx_store_batch_t *b, char *errstr, size_t errstr_size) {
    cx_err_t rc = barrier(s, errstr, errstr_size);
    if (rc != CX_OK) return rc;
    rocksdb_set_perf_level(1); /* this thread's perf level (see cx_store_open) */
    char *err = batch_write(s, b);
    if (err) {
        cx_seterr(errstr, errstr_size, "state write failed: %s", err);
        rocksdb_free(err);
        return CX_ERR_IO;
    }
    return CX_OK;
}

static cx_err_t scan_range(cx_store_t *s, const void *from, size_t fl, const void *to, size_t tl, cx_store_scan_cb cb,
                           void *opaque, char *errstr, size_t errstr_size) {
    cx_err_t rc = CX_OK;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, to, tl);
    rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);
    for (rocksdb_iter_seek(it, from, fl); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (!cb(opaque, k, kl, v, vl)) break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err) {
        cx_seterr(errstr, errstr_size, "state scan failed: %s", err);
        rocksdb_free(err);
        rc = CX_ERR_IO;
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

cx_err_t cx_store_scan(cx_store_t *s, const void *from, size_t fl, const void *to, size_t tl, cx_store_scan_cb cb,
                       void *opaque, char *errstr, size_t errstr_size) {
    cx_err_t rc = barrier(s, errstr, errstr_size);
    return rc == CX_OK ? scan_range(s, from, fl, to, tl, cb, opaque, errstr, errstr_size) : rc;
}

cx_err_t cx_store_scan_behind(cx_store_t *s, const void *from, size_t fl, const void *to, size_t tl,
                              cx_store_scan_cb cb, void *opaque, char *errstr, size_t errstr_size) {
    pthread_mutex_lock(&s->mu);
    cx_err_t rc = CX_OK;
    if (s->failed) rc = settle_locked(s, errstr, errstr_size);
    if (s->pending) s->scans_behind++;
    pthread_mutex_unlock(&s->mu);
    return rc == CX_OK ? scan_range(s, from, fl, to, tl, cb, opaque, errstr, errstr_size) : rc;
}

bool cx_store_writing(cx_store_t *s) {
    pthread_mutex_lock(&s->mu);
    bool w = s->pending != NULL;
    pthread_mutex_unlock(&s->mu);
    return w;
}

cx_err_t cx_store_scan_tag(cx_store_t *s, uint16_t part, char tag, cx_store_scan_cb cb, void *opaque, char *errstr,
                           size_t errstr_size) {
    uint8_t from[3] = {(uint8_t)(part >> 8), (uint8_t)part, (uint8_t)tag};
    uint8_t to[3] = {(uint8_t)(part >> 8), (uint8_t)part, (uint8_t)(tag + 1)};
    return cx_store_scan(s, from, 3, to, 3, cb, opaque, errstr, errstr_size);
}

cx_err_t cx_store_drop_partition(cx_store_t *s, uint16_t part, char *errstr, size_t errstr_size) {
    cx_err_t rc = barrier(s, errstr, errstr_size);
    if (rc != CX_OK) return rc;
    uint8_t from[2] = {(uint8_t)(part >> 8), (uint8_t)part};
    uint8_t to[3] = {(uint8_t)(part >> 8), (uint8_t)part, 0xFF};
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range(wb, (const char *)from, 2, (const char *)to, 3);
    char *err = NULL;
    rocksdb_write(s->db, s->wopts, wb, &err);
    rocksdb_writebatch_destroy(wb);
    if (err) {
        cx_seterr(errstr, errstr_size, "dropping partition %u failed: %s", part, err);
        rocksdb_free(err);
        return CX_ERR_IO;
    }
    return CX_OK;
}

uint64_t cx_store_memtable_bytes(cx_store_t *s) {
    uint64_t mem = 0;
    rocksdb_property_int(s->db, "rocksdb.cur-size-all-mem-tables", &mem);
    return mem;
}

uint64_t cx_store_size_bytes(cx_store_t *s) {
    uint64_t sst = 0;
    rocksdb_property_int(s->db, "rocksdb.total-sst-files-size", &sst);
    return sst + cx_store_memtable_bytes(s);
}

uint64_t cx_store_block_cache_bytes(cx_store_t *s) {
    return rocksdb_cache_get_usage(s->cache);
}

void cx_store_compact(cx_store_t *s) {
    char e[8];
    (void)barrier(s, e, sizeof e);
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *err = NULL;
    rocksdb_flush(s->db, fo, &err);
    if (err) rocksdb_free(err);
    rocksdb_flushoptions_destroy(fo);
    /* a single file moved to the last level keeps its old compression: rewrite it */
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
    rocksdb_compact_range_opt(s->db, co, NULL, 0, NULL, 0);
    rocksdb_compactoptions_destroy(co);
}

cx_err_t cx_store_write_async(cx_store_t *s, cx_store_batch_t *b, char *errstr, size_t errstr_size) {
    pthread_mutex_lock(&s->mu);
    cx_err_t rc = settle_locked(s, errstr, errstr_size);
    if (rc != CX_OK) {
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    if (!s->writer_started) {
        if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
            pthread_mutex_unlock(&s->mu);
            return cx_store_write(s, b, errstr, errstr_size); /* no thread: written now */
        }
        s->writer_started = true;
    }
    s->pending = b;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return CX_OK;
}

cx_err_t cx_store_wait(cx_store_t *s, char *errstr, size_t errstr_size) {
    return barrier(s, errstr, errstr_size);
}

void cx_store_hold(cx_store_t *s, bool hold) {
    pthread_mutex_lock(&s->mu);
    s->hold = hold;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void cx_store_behind_counts(cx_store_t *s, uint64_t *reads, uint64_t *scans) {
    pthread_mutex_lock(&s->mu);
    *reads = s->reads_behind;
    *scans = s->scans_behind;
    pthread_mutex_unlock(&s->mu);
}

double cx_store_wait_seconds(cx_store_t *s) {
    pthread_mutex_lock(&s->mu);
    double w = s->wait_s;
    pthread_mutex_unlock(&s->mu);
    return w;
}
