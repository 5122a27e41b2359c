/*
 * runner.h — the Kafka driver of the pipeline (`cxstream run`, and the demo): group membership
 * with the range assignor, per-partition merge of the four input topics by event time, decode and
 * DLQ, outputs through an idempotent producer, and the commit protocol. at_least_once: flush batch
 * built → mirrored to cx.changelog → outputs and changelog acknowledged → state, offsets and the
 * changelog checkpoint written to RocksDB in one batch → offsets committed. exactly_once: the
 * outputs, the changelog and the consumed offsets (send_offsets_to_transaction) commit in one Kafka
 * transaction, and only then is the RocksDB batch written. A failed cycle (delivery error, aborted
 * or fenced transaction) drops the unflushed state of every owned partition and seeks back to the
 * stored offsets; a failed RocksDB write is fatal (exit 1, nothing committed). On assignment a
 * partition is first restored from the changelog (the tail after its local checkpoint, or all).
 *
 * One thread drives everything (librdkafka has its own I/O threads), so the pipeline needs no locks
 * of its own. Readers on other threads (the HTTP server) take cx_runner_lock(): a recursive mutex
 * that cx_runner_poll holds while it processes a batch (not while it waits for records), and that
 * the rebalance and statistics callbacks and cx_runner_close hold too.
 * Ownership: the runner borrows cfg for its whole life and owns every Kafka handle, the store, the
 * codec and the pipeline.
 */
#ifndef CX_RUNNER_H
#define CX_RUNNER_H

#include <librdkafka/rdkafka.h>
#include <signal.h>

#include "changelog.h"
#include "config.h"
#include "metrics.h"
#include "pipeline.h"

typedef struct cx_runner cx_runner_t;

typedef struct cx_runner_stats {
    uint64_t consumed;           /* input records read */
    uint64_t dlq[CX_DLQ__COUNT]; /* rejected, by reason */
    uint64_t produced, delivery_errors;
    uint64_t commits, rebalances;
    uint64_t idle_commits;            /* commit cycles made before the interval's end: the input went quiet */
    uint64_t campaigns;               /* campaign records applied */
    int partitions;                   /* owned partitions */
    int paused_inputs;                /* input topic partitions paused: their FIFO is full */
    double last_commit_s;             /* duration of the last commit cycle */
    double input_wait_s;              /* time cx_runner_poll waited for the consumer to deliver a record */
    uint64_t fetcher_wakes;           /* ListOffsets requests made to wake librdkafka's fetcher (run.c) */
    size_t input_buffered_bytes;      /* held by the merge's input queues (recq.h) */
    uint64_t consumed_in[CX_INPUTS];  /* input records read, by cx_event_type_t */
    uint64_t produced_kind[16];       /* output records produced, by cx_record_kind_t (DLQ: dlq[]) */
    cx_histogram_t commit_seconds;    /* commit cycle durations */
    uint64_t changelog_records;       /* records produced to the changelog */
    uint64_t recoveries;              /* failed commit cycles recovered from (state dropped, offsets sought back) */
    uint64_t txn_commits, txn_aborts; /* exactly_once */
    uint64_t partials_foreign;        /* cx.partials records of another group.id, skipped */
} cx_runner_stats_t;

/* Changelog restore (changelog.h) of the partitions of the current assignment. */
typedef struct cx_runner_restore {
    bool active; /* a partition is being restored now: `current` */
    int pending; /* partitions of the assignment not restored yet (active included) */
    cx_restore_progress_t current;
    uint64_t partitions_restored; /* since start */
    uint64_t records_total;
    double seconds_total;
} cx_runner_restore_t;

typedef struct cx_runner_opts {
    bool create_topics; /* admin API: create missing output/internal topics (not on the mock) */
    /* when set and *stop becomes non-zero, cx_runner_start gives up its waits for the cluster
     * within about half a second (CX_ERR_TIMEOUT, "stopped by a signal") */
    const volatile sig_atomic_t *stop;
} cx_runner_opts_t;

cx_runner_t *cx_runner_new(const cx_config_t *cfg, const cx_runner_opts_t *o, char *errstr, size_t errstr_size);
void cx_runner_destroy(cx_runner_t *r);
/* Checks the input topics (same partition count), creates missing topics, reads cx.campaigns to
 * its end and joins the group. CX_ERR_CONFIG for a contract violation (exit 2). */
cx_err_t cx_runner_start(cx_runner_t *r, char *errstr, size_t errstr_size);
/* One turn of the loop: consume up to a batch, process what the merge allows, commit when due. */
cx_err_t cx_runner_poll(cx_runner_t *r, int timeout_ms, char *errstr, size_t errstr_size);
/* Final commit cycle and leaving the group (SIGTERM path). */
cx_err_t cx_runner_close(cx_runner_t *r, char *errstr, size_t errstr_size);
cx_runner_stats_t cx_runner_stats(const cx_runner_t *r);
cx_pipeline_t *cx_runner_pipeline(cx_runner_t *r);
/* Consumer lag summed over owned input partitions (from cached watermarks), -1 unknown. */
int64_t cx_runner_lag(cx_runner_t *r);

/* ---- for readers on other threads (HTTP). Stop those readers before cx_runner_destroy. ---- */
void cx_runner_lock(cx_runner_t *r);
void cx_runner_unlock(cx_runner_t *r);
/* Like cx_runner_lock, giving up after timeout_ms; false when the lock was not taken. */
bool cx_runner_lock_timed(cx_runner_t *r, int timeout_ms);
/* Any thread, no lock: cx_runner_start has succeeded (campaign table read, subscribed) and
 * cx_runner_close has not run. Until then the accessors below must not be called. */
bool cx_runner_started(cx_runner_t *r);
/* Any thread, no lock: CLOCK_MONOTONIC ms at which the latest poll returned from its wait (0: none). */
int64_t cx_runner_heartbeat_ms(cx_runner_t *r);
/* With the lock held, once started: */
int32_t cx_runner_partition_count(const cx_runner_t *r);            /* input partitions per topic */
const char *cx_runner_input_topic(const cx_runner_t *r, int input); /* by cx_event_type_t */
/* Consumer lag of input `input`, partition p, from the latest librdkafka statistics; -1 unknown. */
int64_t cx_runner_partition_lag(const cx_runner_t *r, int32_t p, int input);
cx_store_t *cx_runner_store(cx_runner_t *r);
/* With the lock: restore status (/readyz, /metrics). The lock is free while a restore reads. */
cx_runner_restore_t cx_runner_restore_status(const cx_runner_t *r);
/* Any thread (the map has its own lock), once started: the advertised HTTP address of the owner of
 * input partition p from cx.partials owner records (owners.h); false when unknown. */
bool cx_runner_owner(cx_runner_t *r, int32_t p, char *addr, size_t addr_size);
/* Any thread: an HTTP server answers for this runner (cx_http_start_runner calls it), so the
 * runner publishes owner records with its advertised address; without it, none are published. */
void cx_runner_http_serving(cx_runner_t *r);

#endif
