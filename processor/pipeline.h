/*
 * pipeline.h — the life of an accepted event: route it to the customer's state and the rules,
 * fire event-time timers as the partition's watermark passes them, and hand every output record
 * to a sink. The same pipeline runs under `run` (Kafka in and out), `demo` and `replay` (files):
 * only the driver and the sink differ, so a replay of history gives the outputs of the live run.
 *
 * Driving contract, per partition, in the merged event-time order (DESIGN §2):
 *   1. cx_pipeline_advance(p, part, ev.ts - lateness, &more) until !more (fires due timers in
 *      bounded batches; flush between batches when cx_pipeline_needs_flush()),
 *   2. cx_pipeline_event(p, part, ev, input, offset),
 *   3. cx_pipeline_flush(p, part) when the cache is full or the commit interval has passed — in
 *      `run` only after every output produced so far has been acknowledged (at least once).
 * Record-level rejection (DLQ) happens before the pipeline, in the driver.
 *
 * Ownership: the pipeline borrows cfg, store and sink for its whole life; output records passed to
 * the sink are valid only during the call.
 */
#ifndef CX_PIPELINE_H
#define CX_PIPELINE_H

#include "cache.h"
#include "codec.h"
#include "config.h"
#include "event.h"
#include "store.h"

#define CX_INPUTS    4    /* input topics, indexed by cx_event_type_t (email_send .. survey) */
#define CX_PARTS_MAX 1024 /* partitions per input topic */

typedef struct cx_sink {
    void *opaque;
    /* One output record; key is the customer_id (campaign_id for KPIs). */
    cx_err_t (*emit)(void *opaque, cx_record_kind_t kind, const char *key, const void *rec);
} cx_sink_t;

typedef struct cx_pipeline_stats {
    uint64_t events;     /* accepted events applied */
    uint64_t duplicates; /* dropped as duplicates */
    uint64_t late;       /* applied with ts below the watermark */
    uint64_t timers_fired;
    uint64_t out[16]; /* records emitted, by cx_record_kind_t */
    uint64_t flushes;
    double write_wait_s; /* time waited for a flush written behind (reads of its keys, the next flush) */
} cx_pipeline_stats_t;

typedef struct cx_pipeline cx_pipeline_t;

cx_pipeline_t *cx_pipeline_new(const cx_config_t *cfg, cx_store_t *store, const cx_sink_t *sink, char *errstr,
                               size_t errstr_size);
void cx_pipeline_destroy(cx_pipeline_t *p);

/* Takes partition `part` and loads its metadata (watermark, segment counts) from the store.
 * next_offsets[i] receives the stored next offset of input i, or -1 when none is stored. */
cx_err_t cx_pipeline_assign(cx_pipeline_t *p, uint16_t part, int64_t next_offsets[CX_INPUTS], char *errstr,
                            size_t errstr_size);
/* Lets go of partition `part`; unflushed changes are discarded (flush first to keep them). */
void cx_pipeline_revoke(cx_pipeline_t *p, uint16_t part);
bool cx_pipeline_owns(const cx_pipeline_t *p, uint16_t part);

/* Raises the watermark of `part` to at least wm_ms and fires up to one batch of due timers;
 * *more is true when further timers are due. */
cx_err_t cx_pipeline_advance(cx_pipeline_t *p, uint16_t part, int64_t wm_ms, bool *more, char *errstr,
                             size_t errstr_size);
/* Applies an accepted event read at `offset` of input `input` (-1 offset: not from Kafka). */
cx_err_t cx_pipeline_event(cx_pipeline_t *p, uint16_t part, const cx_event_t *ev, int64_t offset, char *errstr,
                           size_t errstr_size);
/* A campaign record (c == NULL: tombstone for campaign_id). Global: not tied to a partition. */
cx_err_t cx_pipeline_campaign(cx_pipeline_t *p, const char *campaign_id, const cx_campaign_t *c, char *errstr,
                              size_t errstr_size);

bool cx_pipeline_needs_flush(const cx_pipeline_t *p);
/* Called by every flush with the complete batch, before it is written to RocksDB: the driver
 * mirrors it to the changelog, waits for the acknowledgements (or commits its transaction) and may
 * add keys of its own (the changelog checkpoint). An error aborts the write; the flushed entries
 * were already marked clean, so the driver must then drop every owned partition's unflushed state
 * (revoke + assign) before going on. NULL hook: write directly (replay, tests). */
typedef cx_err_t (*cx_flush_hook_t)(void *opaque, cx_store_batch_t *batch, char *errstr, size_t errstr_size);
void cx_pipeline_set_flush_hook(cx_pipeline_t *p, cx_flush_hook_t hook, void *opaque);
/* Writes the dirty state of `part` (all owned partitions when part < 0) with its next offsets and
 * metadata in one RocksDB batch. */
cx_err_t cx_pipeline_flush(cx_pipeline_t *p, int part, char *errstr, size_t errstr_size);
/* Write-behind (default off): cx_pipeline_flush hands its batch to the store's writer thread
 * (cx_store_write_async) and returns once the hook has succeeded, so events are processed while
 * RocksDB applies it; a read of a key it wrote, and the next flush, wait for it first (other reads
 * and the timer scans, which merge its index keys, do not). `run` turns it on:
 * its hook has already made the batch durable elsewhere (changelog acknowledged, or transaction
 * committed), so a crash before the write lands only means a longer changelog tail to restore. */
void cx_pipeline_set_write_behind(cx_pipeline_t *p, bool on);
/* Waits for the flush written behind, if any; CX_ERR_IO with the store's message if it failed. */
cx_err_t cx_pipeline_wait(cx_pipeline_t *p, char *errstr, size_t errstr_size);

int64_t cx_pipeline_watermark(const cx_pipeline_t *p, uint16_t part); /* INT64_MIN: none yet */
/* The stored next offsets after the last flush, per input (-1: none). */
void cx_pipeline_offsets(const cx_pipeline_t *p, uint16_t part, int64_t next_offsets[CX_INPUTS]);
/* A record of input `input` at `offset` was rejected (sent to the DLQ) by the driver: the next
 * offset stored at the following flush passes it, so it is neither stalled on nor sent again. */
void cx_pipeline_skip(cx_pipeline_t *p, uint16_t part, int input, int64_t offset);

/* Profile of a customer as of its partition's watermark. *found false if unknown. */
cx_err_t cx_pipeline_profile(cx_pipeline_t *p, uint16_t part, const char *cid, cx_profile_out_t *out, bool *found,
                             char *errstr, size_t errstr_size);
/* Every customer of `part` with an accepted event, in customer_id byte order (flushes first). */
cx_err_t cx_pipeline_each_profile(cx_pipeline_t *p, uint16_t part,
                                  void (*cb)(void *opaque, const cx_profile_out_t *prof), void *opaque, char *errstr,
                                  size_t errstr_size);

/* Customers per segment over owned partitions (counts[i] for segment rule i). */
void cx_pipeline_segment_counts(const cx_pipeline_t *p, int64_t *counts, size_t n);
cx_pipeline_stats_t cx_pipeline_stats(const cx_pipeline_t *p);
/* The campaign measurement state (campaigns.h): cx.partials input, KPI view, partition count. */
struct cx_campaigns *cx_pipeline_campaigns(cx_pipeline_t *p);
/* A hint that an event of customer cid (the record key) is near: cx_cache_prefetch. */
void cx_pipeline_prefetch(const cx_pipeline_t *p, const void *cid, size_t len, int stage);
/* The voice-of-customer and segment-economics aggregates (voc.h), for HTTP. */
struct cx_voc *cx_pipeline_voc(cx_pipeline_t *p);
cx_cache_stats_t cx_pipeline_cache_stats(const cx_pipeline_t *p);

#endif
