/*
 * metrics.h — Prometheus text exposition (format 0.0.4) for cxstream: a writer for metric families
 * and samples with escaped labels, a fixed-bucket histogram, a parser for the per-partition
 * consumer lag in librdkafka's statistics JSON, and the collectors that turn the pipeline's and
 * the runner's counters into the `cxstream_*` families documented in docs/metrics.md. The names
 * live here and only here.
 *
 * Values are pulled at scrape time (the collectors read the counters the pipeline and the runner
 * keep anyway), so the hot path pays nothing for metrics beyond its own increments.
 *
 * Threading: nothing here locks. The collectors read the pipeline and runner: call them with the
 * runner lock held (cx_runner_lock), or from the thread that drives the pipeline.
 * Ownership: the writer borrows the caller's cx_buf_t and appends to it.
 */
#ifndef CX_METRICS_H
#define CX_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cx.h"

/* ---- histogram: fixed upper bounds, cumulative rendering ---- */

#define CX_HIST_BOUNDS_MAX 16

typedef struct cx_histogram {
    const double *bounds; /* ascending upper bounds (without +Inf); NULL: cx_histogram_seconds_bounds */
    size_t n_bounds;
    uint64_t counts[CX_HIST_BOUNDS_MAX + 1]; /* per bucket, not cumulative; last = above every bound */
    uint64_t count;
    double sum;
} cx_histogram_t;

/* Default bounds for latencies in seconds: 1 ms .. 60 s. A zeroed cx_histogram_t uses them. */
extern const double cx_histogram_seconds_bounds[];
extern const size_t cx_histogram_seconds_n;

void cx_histogram_observe(cx_histogram_t *h, double v);

/* ---- writer ---- */

typedef enum { CX_METRIC_COUNTER = 0, CX_METRIC_GAUGE, CX_METRIC_HISTOGRAM } cx_metric_type_t;

/* Writes `# HELP name help` and `# TYPE name type`. Each family once per exposition, before its
 * samples. */
cx_err_t cx_metrics_family(cx_buf_t *b, const char *name, cx_metric_type_t type, const char *help);
/* One sample line `name{k="v",...} value`. Labels are given as (key, value) string pairs ended by a
 * NULL key; values are escaped (\\, \", \n). Values: integral values below 2^53 are written
 * exactly, others in the shortest form that reads back exactly; NaN and infinities as NaN, +Inf, -Inf. */
cx_err_t cx_metrics_sample(cx_buf_t *b, const char *name, double value, ...);
/* Same for a counter that must stay exact beyond 2^53. */
cx_err_t cx_metrics_sample_u64(cx_buf_t *b, const char *name, uint64_t value, ...);
/* A whole histogram family's samples (name_bucket with le, name_sum, name_count), with one optional
 * extra label (label_key NULL for none). */
cx_err_t cx_metrics_histogram(cx_buf_t *b, const char *name, const cx_histogram_t *h, const char *label_key,
                              const char *label_value);

/* ---- librdkafka statistics ---- */

/* Calls cb(topic, partition, consumer_lag) for every partition with a known lag (>= 0) in a
 * librdkafka statistics JSON document (topics → partitions → consumer_lag; the internal partition
 * -1 is skipped). CX_ERR_INVALID if the document does not parse. */
cx_err_t cx_metrics_parse_lag(const char *json, size_t len,
                              void (*cb)(void *opaque, const char *topic, int32_t partition, int64_t lag),
                              void *opaque);

/* ---- the cxstream families ---- */

struct cx_pipeline;
struct cx_config;
struct cx_runner;

/* Pipeline families: events, duplicates, late events, timers, outputs by topic, flushes, cache,
 * customers per segment, watermark per owned partition. now_ms: wall clock for the watermark lag. */
cx_err_t cx_metrics_collect_pipeline(cx_buf_t *b, const struct cx_config *cfg, struct cx_pipeline *p, int64_t now_ms);
/* Changelog restore families (restored and restoring partitions, records, seconds, the current
 * restore's rate and remaining records) from the runner's restore status (runner.h). */
struct cx_runner_restore;
cx_err_t cx_metrics_collect_restore(cx_buf_t *b, const struct cx_runner_restore *rs);
/* Everything: cxstream_info, the runner's families (consumed, DLQ, produced, delivery errors,
 * commits and their latency, rebalances, partitions, consumer lag, state size, restore), then the
 * pipeline's. Call with the runner lock held. */
cx_err_t cx_metrics_collect_runner(cx_buf_t *b, const struct cx_config *cfg, struct cx_runner *r, int64_t now_ms);
/* The same for the runners of one process (`processing.threads`): one runner's exposition as is;
 * several: each one's families merged into one (HELP and TYPE once) with a `thread` label of the
 * runner's index on every sample. Call with every runner's lock held. */
cx_err_t cx_metrics_collect_runners(cx_buf_t *b, const struct cx_config *cfg, struct cx_runner *const *r, size_t n,
                                    int64_t now_ms);
/* Merges n expositions (as cx_metrics_family and the sample functions write them: a family is
 * its "# HELP" and "# TYPE" lines and the samples after them) into out: each family once, in order
 * of first appearance, with the samples of input k labelled <label>="<k>". */
cx_err_t cx_metrics_merge_labelled(cx_buf_t *out, const cx_buf_t *in, size_t n, const char *label);

#endif
