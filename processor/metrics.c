/*
 * metrics.c — Prometheus text rendering and the cxstream metric families (metrics.h). Every family
 * name, type and help text is written here; docs/metrics.md lists the same set.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "metrics.h"
#include "pipeline.h"
#include "runner.h"

const double cx_histogram_seconds_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                              0.5,   1,      2.5,   5,    10,    30,   60};
const size_t cx_histogram_seconds_n = sizeof cx_histogram_seconds_bounds / sizeof cx_histogram_seconds_bounds[0];

static const double *hist_bounds(const cx_histogram_t *h, size_t *n) {
    if (!h->bounds) {
        *n = cx_histogram_seconds_n;
        return cx_histogram_seconds_bounds;
    }
    *n = h->n_bounds < CX_HIST_BOUNDS_MAX ? h->n_bounds : CX_HIST_BOUNDS_MAX;
    return h->bounds;
}

void cx_histogram_observe(cx_histogram_t *h, double v) {
    size_t n, i = 0;
    const double *b = hist_bounds(h, &n);
    while (i < n && !(v <= b[i]))
        i++; /* NaN lands above every bound */
    h->counts[i]++;
    h->count++;
    if (!isnan(v)) h->sum += v;
}

/* ---------- writer ---------- */

static const char *type_name(cx_metric_type_t t) {
    switch (t) {
    case CX_METRIC_COUNTER: return "counter";
    case CX_METRIC_GAUGE: return "gauge";
    default: return "histogram";
    }
}

cx_err_t cx_metrics_family(cx_buf_t *b, const char *name, cx_metric_type_t type, const char *help) {
    cx_err_t rc = cx_buf_appendf(b, "# HELP %s ", name);
    /* HELP text escapes only backslash and newline */
    for (const char *s = help; rc == CX_OK && *s; s++) {
        if (*s == '\\')
            rc = cx_buf_append(b, "\\\\", 2);
        else if (*s == '\n')
            rc = cx_buf_append(b, "\\n", 2);
        else
            rc = cx_buf_putc(b, *s);
    }
    if (rc == CX_OK) rc = cx_buf_appendf(b, "\n# TYPE %s %s\n", name, type_name(type));
    return rc;
}

static cx_err_t put_labels(cx_buf_t *b, va_list ap) {
    cx_err_t rc = CX_OK;
    bool first = true;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        if (!v) v = "";
        rc = cx_buf_appendf(b, "%s%s=\"", first ? "{" : ",", k);
        first = false;
        for (const char *s = v; rc == CX_OK && *s; s++) {
            if (*s == '\\')
                rc = cx_buf_append(b, "\\\\", 2);
            else if (*s == '"')
                rc = cx_buf_append(b, "\\\"", 2);
            else if (*s == '\n')
                rc = cx_buf_append(b, "\\n", 2);
            else
                rc = cx_buf_putc(b, *s);
        }
        if (rc == CX_OK) rc = cx_buf_putc(b, '"');
        if (rc != CX_OK) return rc;
    }
    if (!first) rc = cx_buf_putc(b, '}');
    return rc;
}

/* Shortest %g form that reads back to the same double (0.1, not 0.10000000000000001). */
static void fmt_double(char *out, size_t n, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

static cx_err_t put_value(cx_buf_t *b, double v) {
    if (isnan(v)) return cx_buf_append(b, " NaN\n", 5);
    if (isinf(v)) return v > 0 ? cx_buf_append(b, " +Inf\n", 6) : cx_buf_append(b, " -Inf\n", 6);
    if (v == floor(v) && fabs(v) < 9007199254740992.0) return cx_buf_appendf(b, " %.0f\n", v);
    char tmp[40];
    fmt_double(tmp, sizeof tmp, v);
    return cx_buf_appendf(b, " %s\n", tmp);
}

cx_err_t cx_metrics_sample(cx_buf_t *b, const char *name, double value, ...) {
    cx_err_t rc = cx_buf_append(b, name, strlen(name));
    va_list ap;
    va_start(ap, value);
    if (rc == CX_OK) rc = put_labels(b, ap);
    va_end(ap);
    return rc == CX_OK ? put_value(b, value) : rc;
}

cx_err_t cx_metrics_sample_u64(cx_buf_t *b, const char *name, uint64_t value, ...) {
    cx_err_t rc = cx_buf_append(b, name, strlen(name));
    va_list ap;
    va_start(ap, value);
    if (rc == CX_OK) rc = put_labels(b, ap);
    va_end(ap);
    return rc == CX_OK ? cx_buf_appendf(b, " %" PRIu64 "\n", value) : rc;
}

cx_err_t cx_metrics_histogram(cx_buf_t *b, const char *name, const cx_histogram_t *h, const char *label_key,
                              const char *label_value) {
    char bname[160], le[40];
    size_t n;
    const double *bd = hist_bounds(h, &n);
    uint64_t cum = 0;
    cx_err_t rc = CX_OK;
    snprintf(bname, sizeof bname, "%s_bucket", name);
    for (size_t i = 0; i <= n && rc == CX_OK; i++) {
        cum += h->counts[i];
        if (i < n)
            fmt_double(le, sizeof le, bd[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        rc = label_key ? cx_metrics_sample_u64(b, bname, cum, label_key, label_value, "le", le, (char *)NULL)
                       : cx_metrics_sample_u64(b, bname, cum, "le", le, (char *)NULL);
    }
    snprintf(bname, sizeof bname, "%s_sum", name);
    if (rc == CX_OK)
        rc = label_key ? cx_metrics_sample(b, bname, h->sum, label_key, label_value, (char *)NULL)
                       : cx_metrics_sample(b, bname, h->sum, (char *)NULL);
    snprintf(bname, sizeof bname, "%s_count", name);
    if (rc == CX_OK)
        rc = label_key ? cx_metrics_sample_u64(b, bname, h->count, label_key, label_value, (char *)NULL)
                       : cx_metrics_sample_u64(b, bname, h->count, (char *)NULL);
    return rc;
}

/* ---------- librdkafka statistics ---------- */

cx_err_t cx_metrics_parse_lag(const char *json, size_t len,
                              void (*cb)(void *opaque, const char *topic, int32_t partition, int64_t lag),
                              void *opaque) {
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return CX_ERR_INVALID;
    }
    json_t *topics = json_object_get(root, "topics");
    const char *tname;
    json_t *t;
    if (json_is_object(topics)) {
        json_object_foreach(topics, tname, t) {
            json_t *parts = json_object_get(t, "partitions");
            const char *pname;
            json_t *pv;
            if (!json_is_object(parts)) continue;
            json_object_foreach(parts, pname, pv) {
                json_t *jp = json_object_get(pv, "partition");
                json_t *jl = json_object_get(pv, "consumer_lag");
                if (!json_is_integer(jp) || !json_is_integer(jl)) continue;
                json_int_t p = json_integer_value(jp), lag = json_integer_value(jl);
                if (p < 0 || p > INT32_MAX || lag < 0) continue; /* -1: internal UA partition / unknown lag */
                cb(opaque, tname, (int32_t)p, (int64_t)lag);
            }
        }
    }
    json_decref(root);
    return CX_OK;
}

/* ---------- the cxstream families ---------- */

static const char *kind_label(cx_record_kind_t k) {
    switch (k) {
    case CX_REC_SEGMENT_CHANGE: return "segment_change";
    case CX_REC_TRIGGER: return "disengagement_trigger";
    case CX_REC_RESPONSE: return "campaign_response";
    case CX_REC_KPI: return "campaign_kpi";
    case CX_REC_ENRICHED: return "enriched";
    case CX_REC_PROFILE: return "profile";
    default: return NULL;
    }
}

static const char *topic_of_kind(const cx_config_t *cfg, cx_record_kind_t k) {
    switch (k) {
    case CX_REC_SEGMENT_CHANGE: return cfg->topic_segment_changes;
    case CX_REC_TRIGGER: return cfg->topic_disengagement_triggers;
    case CX_REC_RESPONSE: return cfg->topic_campaign_responses;
    case CX_REC_KPI: return cfg->topic_campaign_kpis;
    case CX_REC_ENRICHED: return cfg->topic_enriched;
    default: return NULL;
    }
}

static const cx_record_kind_t out_kinds[] = {CX_REC_SEGMENT_CHANGE, CX_REC_TRIGGER, CX_REC_RESPONSE, CX_REC_KPI,
                                             CX_REC_ENRICHED};
#define N_OUT_KINDS (sizeof out_kinds / sizeof out_kinds[0])

#define TRY(x)                              \
    do {                                    \
        if ((rc = (x)) != CX_OK) return rc; \
    } while (0)

cx_err_t cx_metrics_collect_pipeline(cx_buf_t *b, const cx_config_t *cfg, cx_pipeline_t *p, int64_t now_ms) {
    cx_err_t rc;
    cx_pipeline_stats_t st = cx_pipeline_stats(p);
    cx_cache_stats_t cs = cx_pipeline_cache_stats(p);
    char part[16];

    TRY(cx_metrics_family(b, "cxstream_events_total", CX_METRIC_COUNTER, "Accepted input events applied to state."));
    TRY(cx_metrics_sample_u64(b, "cxstream_events_total", st.events, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_duplicates_total", CX_METRIC_COUNTER,
                          "Input events dropped as duplicates of an event_id already seen."));
    TRY(cx_metrics_sample_u64(b, "cxstream_duplicates_total", st.duplicates, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_late_events_total", CX_METRIC_COUNTER,
                          "Events applied with a timestamp below their partition's watermark."));
    TRY(cx_metrics_sample_u64(b, "cxstream_late_events_total", st.late, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_timers_fired_total", CX_METRIC_COUNTER, "Event-time timers fired."));
    TRY(cx_metrics_sample_u64(b, "cxstream_timers_fired_total", st.timers_fired, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_records_emitted_total", CX_METRIC_COUNTER,
                          "Output records decided by the pipeline, by record kind."));
    for (size_t i = 0; i < N_OUT_KINDS; i++)
        TRY(cx_metrics_sample_u64(b, "cxstream_records_emitted_total", st.out[out_kinds[i]], "record",
                                  kind_label(out_kinds[i]), (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_state_flushes_total", CX_METRIC_COUNTER,
                          "State flushes (dirty profiles, timers and offsets in one RocksDB batch)."));
    TRY(cx_metrics_sample_u64(b, "cxstream_state_flushes_total", st.flushes, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_state_write_wait_seconds_total", CX_METRIC_COUNTER,
                          "Time the pipeline thread waited for a flush being written behind to land in RocksDB "
                          "(before a read of a key it wrote, or the next flush)."));
    TRY(cx_metrics_sample(b, "cxstream_state_write_wait_seconds_total", st.write_wait_s, (char *)NULL));

    TRY(cx_metrics_family(b, "cxstream_cache_hits_total", CX_METRIC_COUNTER, "Profile cache hits."));
    TRY(cx_metrics_sample_u64(b, "cxstream_cache_hits_total", cs.hits, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_cache_misses_total", CX_METRIC_COUNTER,
                          "Profile cache misses (loaded from RocksDB or new)."));
    TRY(cx_metrics_sample_u64(b, "cxstream_cache_misses_total", cs.misses, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_cache_hit_ratio", CX_METRIC_GAUGE,
                          "Cache hits / lookups since start (NaN before the first lookup)."));
    uint64_t lookups = cs.hits + cs.misses;
    TRY(cx_metrics_sample(b, "cxstream_cache_hit_ratio", lookups ? (double)cs.hits / (double)lookups : NAN,
                          (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_cache_entries", CX_METRIC_GAUGE, "Profiles held in the write-back cache."));
    TRY(cx_metrics_sample(b, "cxstream_cache_entries", (double)cs.entries, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_cache_dirty_entries", CX_METRIC_GAUGE,
                          "Cached profiles changed since the last flush."));
    TRY(cx_metrics_sample(b, "cxstream_cache_dirty_entries", (double)cs.dirty, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_cache_decoded_entries", CX_METRIC_GAUGE,
                          "Cached profiles held decoded (at most cache.max_decoded after each event)."));
    TRY(cx_metrics_sample(b, "cxstream_cache_decoded_entries", (double)cs.decoded, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_cache_encoded_bytes", CX_METRIC_GAUGE,
                          "Bytes of the compact encodings held by the other cached profiles."));
    TRY(cx_metrics_sample(b, "cxstream_cache_encoded_bytes", (double)cs.encoded_bytes, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_cache_decodes_total", CX_METRIC_COUNTER,
                          "Cached profiles decoded again from their compact encoding on use."));
    TRY(cx_metrics_sample_u64(b, "cxstream_cache_decodes_total", cs.decodes, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_cache_encodes_total", CX_METRIC_COUNTER,
                          "Decoded profiles encoded to stay within cache.max_decoded."));
    TRY(cx_metrics_sample_u64(b, "cxstream_cache_encodes_total", cs.encodes, (char *)NULL));

    int64_t counts[CX_SEGMENTS_MAX];
    cx_pipeline_segment_counts(p, counts, CX_SEGMENTS_MAX);
    TRY(cx_metrics_family(b, "cxstream_segment_customers", CX_METRIC_GAUGE,
                          "Customers per RFM segment over the partitions owned by this instance."));
    for (size_t s = 0; s < cfg->n_segments && s < CX_SEGMENTS_MAX; s++)
        TRY(cx_metrics_sample(b, "cxstream_segment_customers", (double)counts[s], "segment", cfg->segments[s].name,
                              (char *)NULL));

    TRY(cx_metrics_family(b, "cxstream_watermark_timestamp_seconds", CX_METRIC_GAUGE,
                          "Event-time watermark per owned partition (Unix seconds)."));
    for (int i = 0; i < CX_PARTS_MAX; i++) {
        if (!cx_pipeline_owns(p, (uint16_t)i)) continue;
        int64_t wm = cx_pipeline_watermark(p, (uint16_t)i);
        if (wm == INT64_MIN) continue;
        snprintf(part, sizeof part, "%d", i);
        TRY(cx_metrics_sample(b, "cxstream_watermark_timestamp_seconds", (double)wm / 1000.0, "partition", part,
                              (char *)NULL));
    }
    TRY(cx_metrics_family(b, "cxstream_watermark_lag_seconds", CX_METRIC_GAUGE,
                          "Wall clock minus the event-time watermark, per owned partition."));
    for (int i = 0; i < CX_PARTS_MAX; i++) {
        if (!cx_pipeline_owns(p, (uint16_t)i)) continue;
        int64_t wm = cx_pipeline_watermark(p, (uint16_t)i);
        if (wm == INT64_MIN) continue;
        snprintf(part, sizeof part, "%d", i);
        TRY(cx_metrics_sample(b, "cxstream_watermark_lag_seconds", (double)(now_ms - wm) / 1000.0, "partition", part,
                              (char *)NULL));
    }
    return CX_OK;
}

cx_err_t cx_metrics_collect_restore(cx_buf_t *b, const cx_runner_restore_t *rs) {
    cx_err_t rc;
    /* the partition being read counts as of its latest progress report (about every 50,000 records) */
    const cx_restore_progress_t *cur = &rs->current;
    uint64_t records = rs->records_total + (rs->active ? cur->records : 0);
    double seconds = rs->seconds_total + (rs->active ? cur->seconds : 0);
    double rate = rs->active && cur->seconds > 0 ? (double)cur->records / cur->seconds : 0;
    int64_t remaining = rs->active && cur->end >= 0 && cur->position < cur->end ? cur->end - cur->position : 0;
    TRY(cx_metrics_family(b, "cxstream_restoring_partitions", CX_METRIC_GAUGE,
                          "Partitions of the current assignment not yet restored from the changelog (the one "
                          "being read included)."));
    TRY(cx_metrics_sample(b, "cxstream_restoring_partitions", rs->pending > 0 ? rs->pending : 0, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_restored_partitions_total", CX_METRIC_COUNTER,
                          "Partitions restored from the changelog (tail or full) since start."));
    TRY(cx_metrics_sample_u64(b, "cxstream_restored_partitions_total", rs->partitions_restored, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_restore_records_total", CX_METRIC_COUNTER,
                          "Changelog records applied to local state by restores since start."));
    TRY(cx_metrics_sample_u64(b, "cxstream_restore_records_total", records, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_restore_seconds_total", CX_METRIC_COUNTER,
                          "Time spent restoring partitions from the changelog since start."));
    TRY(cx_metrics_sample(b, "cxstream_restore_seconds_total", seconds, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_restore_records_per_second", CX_METRIC_GAUGE,
                          "Records per second of the restore in progress (0 when none)."));
    TRY(cx_metrics_sample(b, "cxstream_restore_records_per_second", rate, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_restore_remaining_records", CX_METRIC_GAUGE,
                          "Changelog offsets left to read by the restore in progress (0 when none)."));
    TRY(cx_metrics_sample(b, "cxstream_restore_remaining_records", (double)remaining, (char *)NULL));
    return CX_OK;
}

cx_err_t cx_metrics_collect_runner(cx_buf_t *b, const cx_config_t *cfg, cx_runner_t *r, int64_t now_ms) {
    cx_err_t rc;
    bool started = cx_runner_started(r);
    TRY(cx_metrics_family(b, "cxstream_info", CX_METRIC_GAUGE, "Build information (always 1)."));
    TRY(cx_metrics_sample(b, "cxstream_info", 1, "version", CX_VERSION, "group_id", cfg->group_id, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_started", CX_METRIC_GAUGE,
                          "1 once the campaign table is read and the group joined, else 0."));
    TRY(cx_metrics_sample(b, "cxstream_started", started ? 1 : 0, (char *)NULL));
    if (!started) return CX_OK; /* the runner's state is not ours to read before start */

    cx_runner_stats_t st = cx_runner_stats(r);
    int32_t np = cx_runner_partition_count(r);
    char part[16];

    TRY(cx_metrics_family(b, "cxstream_records_consumed_total", CX_METRIC_COUNTER,
                          "Records read from the input topics and the campaign table, by topic."));
    for (int i = 0; i < CX_INPUTS; i++)
        TRY(cx_metrics_sample_u64(b, "cxstream_records_consumed_total", st.consumed_in[i], "topic",
                                  cx_runner_input_topic(r, i), (char *)NULL));
    TRY(cx_metrics_sample_u64(b, "cxstream_records_consumed_total", st.campaigns, "topic", cfg->topic_campaigns,
                              (char *)NULL));

    TRY(cx_metrics_family(b, "cxstream_dlq_records_total", CX_METRIC_COUNTER,
                          "Input records rejected to the dead-letter topic, by reason (cx.error)."));
    for (int c = 1; c < CX_DLQ__COUNT; c++)
        TRY(cx_metrics_sample_u64(b, "cxstream_dlq_records_total", st.dlq[c], "reason",
                                  cx_dlq_code_name((cx_dlq_code_t)c), (char *)NULL));

    TRY(cx_metrics_family(b, "cxstream_records_produced_total", CX_METRIC_COUNTER,
                          "Records handed to the producer, by output topic."));
    uint64_t dlq_total = 0;
    for (int c = 1; c < CX_DLQ__COUNT; c++)
        dlq_total += st.dlq[c];
    for (size_t i = 0; i < N_OUT_KINDS; i++)
        TRY(cx_metrics_sample_u64(b, "cxstream_records_produced_total", st.produced_kind[out_kinds[i]], "topic",
                                  topic_of_kind(cfg, out_kinds[i]), (char *)NULL));
    TRY(cx_metrics_sample_u64(b, "cxstream_records_produced_total", dlq_total, "topic", cfg->topic_dlq, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_delivery_errors_total", CX_METRIC_COUNTER,
                          "Produced records the broker did not acknowledge."));
    TRY(cx_metrics_sample_u64(b, "cxstream_delivery_errors_total", st.delivery_errors, (char *)NULL));

    TRY(cx_metrics_family(b, "cxstream_commits_total", CX_METRIC_COUNTER,
                          "Commit cycles (outputs acknowledged, state flushed, offsets committed)."));
    TRY(cx_metrics_sample_u64(b, "cxstream_commits_total", st.commits, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_idle_commits_total", CX_METRIC_COUNTER,
                          "Commit cycles made before the interval's end because the input went quiet."));
    TRY(cx_metrics_sample_u64(b, "cxstream_idle_commits_total", st.idle_commits, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_commit_duration_seconds", CX_METRIC_HISTOGRAM,
                          "Duration of a commit cycle: producer flush, state flush, offset commit."));
    TRY(cx_metrics_histogram(b, "cxstream_commit_duration_seconds", &st.commit_seconds, NULL, NULL));

    TRY(cx_metrics_family(b, "cxstream_partials_foreign_total", CX_METRIC_COUNTER,
                          "cx.partials records written by another group.id, skipped."));
    TRY(cx_metrics_sample_u64(b, "cxstream_partials_foreign_total", st.partials_foreign, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_rebalances_total", CX_METRIC_COUNTER,
                          "Consumer group rebalance callbacks (assign and revoke)."));
    TRY(cx_metrics_sample_u64(b, "cxstream_rebalances_total", st.rebalances, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_assigned_partitions", CX_METRIC_GAUGE,
                          "Input partitions (of each input topic) owned by this instance."));
    TRY(cx_metrics_sample(b, "cxstream_assigned_partitions", st.partitions, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_input_paused_partitions", CX_METRIC_GAUGE,
                          "Input topic partitions paused because input.max_buffered_records of them wait for "
                          "the event-time merge (another input of the same partition is behind)."));
    TRY(cx_metrics_sample(b, "cxstream_input_paused_partitions", st.paused_inputs, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_input_wait_seconds_total", CX_METRIC_COUNTER,
                          "Time the pipeline thread waited for the consumer to deliver a record (idle when "
                          "caught up; with consumer lag, the fetching is the bound)."));
    TRY(cx_metrics_sample(b, "cxstream_input_wait_seconds_total", st.input_wait_s, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_input_buffered_bytes", CX_METRIC_GAUGE,
                          "Bytes of input records copied out of the consumer, waiting for the event-time merge."));
    TRY(cx_metrics_sample_u64(b, "cxstream_input_buffered_bytes", st.input_buffered_bytes, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_fetcher_wakes_total", CX_METRIC_COUNTER,
                          "ListOffsets requests made to wake the consumer's fetcher while the merge waited for "
                          "records the broker has."));
    TRY(cx_metrics_sample_u64(b, "cxstream_fetcher_wakes_total", st.fetcher_wakes, (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_input_partitions", CX_METRIC_GAUGE, "Partitions per input topic."));
    TRY(cx_metrics_sample(b, "cxstream_input_partitions", np, (char *)NULL));

    TRY(cx_metrics_family(b, "cxstream_consumer_lag_records", CX_METRIC_GAUGE,
                          "Records behind the high watermark per owned input partition (librdkafka statistics "
                          "consumer_lag: high watermark minus committed offset)."));
    cx_pipeline_t *pl = cx_runner_pipeline(r);
    for (int32_t p = 0; p < np; p++) {
        if (!cx_pipeline_owns(pl, (uint16_t)p)) continue;
        snprintf(part, sizeof part, "%d", p);
        for (int i = 0; i < CX_INPUTS; i++) {
            int64_t lag = cx_runner_partition_lag(r, p, i);
            if (lag < 0) continue;
            TRY(cx_metrics_sample(b, "cxstream_consumer_lag_records", (double)lag, "topic", cx_runner_input_topic(r, i),
                                  "partition", part, (char *)NULL));
        }
    }
    TRY(cx_metrics_family(b, "cxstream_state_size_bytes", CX_METRIC_GAUGE,
                          "Approximate size of the local RocksDB state (SST files and memtables)."));
    TRY(cx_metrics_sample(b, "cxstream_state_size_bytes", (double)cx_store_size_bytes(cx_runner_store(r)),
                          (char *)NULL));
    TRY(cx_metrics_family(b, "cxstream_state_memory_bytes", CX_METRIC_GAUGE,
                          "Memory RocksDB holds: memtables (state.write_buffer_mb, up to two) and block cache."));
    TRY(cx_metrics_sample(b, "cxstream_state_memory_bytes", (double)cx_store_memtable_bytes(cx_runner_store(r)), "part",
                          "memtables", (char *)NULL));
    TRY(cx_metrics_sample(b, "cxstream_state_memory_bytes", (double)cx_store_block_cache_bytes(cx_runner_store(r)),
                          "part", "block_cache", (char *)NULL));
    cx_runner_restore_t rs = cx_runner_restore_status(r);
    TRY(cx_metrics_collect_restore(b, &rs));
    return cx_metrics_collect_pipeline(b, cfg, pl, now_ms);
}

/* ---------- several runners: one exposition with a thread label ---------- */

typedef struct fam_block {
    const char *name; /* in its buffer, not NUL-terminated */
    size_t name_len;
    const char *head; /* the # HELP and # TYPE lines */
    size_t head_len;
    const char *samples;
    size_t samples_len;
    size_t input;
} fam_block_t;

/* The name after "# HELP " at line; 0 when line is not a HELP line. */
static size_t help_name(const char *line, size_t len, const char **name) {
    if (len < 8 || memcmp(line, "# HELP ", 7) != 0) return 0;
    const char *sp = memchr(line + 7, ' ', len - 7);
    *name = line + 7;
    return sp ? (size_t)(sp - (line + 7)) : len - 7;
}

/* Splits one exposition into family blocks, appended to *blocks. */
static cx_err_t split_families(const cx_buf_t *in, size_t input, fam_block_t **blocks, size_t *n, size_t *cap) {
    const char *p = (const char *)in->data, *end = p + in->len;
    fam_block_t *cur = NULL;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        const char *name;
        size_t nlen = help_name(p, (size_t)(next - p), &name);
        if (nlen) {
            if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 64;
                fam_block_t *b = realloc(*blocks, c * sizeof *b);
                if (!b) return CX_ERR_NOMEM;
                *blocks = b;
                *cap = c;
            }
            cur = &(*blocks)[(*n)++];
            *cur = (fam_block_t){.name = name,
                                 .name_len = nlen,
                                 .head = p,
                                 .head_len = (size_t)(next - p),
                                 .samples = next,
                                 .input = input};
        } else if (cur && cur->samples_len == 0 && p[0] == '#') {
            cur->head_len += (size_t)(next - p); /* the TYPE line */
            cur->samples = next;
        } else if (cur) {
            cur->samples_len = (size_t)(next - cur->samples);
        } else {
            return CX_ERR_INVALID; /* a sample before any family */
        }
        p = next;
    }
    return CX_OK;
}

/* The sample lines of one block with label="input" first among each sample's labels. */
static cx_err_t put_labelled(cx_buf_t *out, const fam_block_t *f, const char *label) {
    const char *p = f->samples, *end = f->samples + f->samples_len;
    cx_err_t rc = CX_OK;
    while (p < end && rc == CX_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        size_t nm = strcspn(p, "{ \n");
        if (p + nm > next) nm = (size_t)(next - p);
        const char *rest = p + nm;
        bool has = *rest == '{', empty = has && rest[1] == '}';
        rest += empty ? 2 : has ? 1 : 0;
        rc = cx_buf_append(out, p, nm);
        if (rc == CX_OK) rc = cx_buf_appendf(out, "{%s=\"%zu\"%s", label, f->input, has && !empty ? "," : "}");
        if (rc == CX_OK) rc = cx_buf_append(out, rest, (size_t)(next - rest));
        p = next;
    }
    return rc;
}

cx_err_t cx_metrics_merge_labelled(cx_buf_t *out, const cx_buf_t *in, size_t n, const char *label) {
    fam_block_t *blocks = NULL;
    size_t nb = 0, cap = 0;
    cx_err_t rc = CX_OK;
    bool *done = NULL;
    for (size_t i = 0; i < n && rc == CX_OK; i++)
        rc = split_families(&in[i], i, &blocks, &nb, &cap);
    if (rc == CX_OK && nb && !(done = calloc(nb, sizeof *done))) rc = CX_ERR_NOMEM;
    for (size_t i = 0; i < nb && rc == CX_OK; i++) {
        if (done[i]) continue;
        rc = cx_buf_append(out, blocks[i].head, blocks[i].head_len);
        for (size_t j = i; j < nb && rc == CX_OK; j++) {
            if (done[j] || blocks[j].name_len != blocks[i].name_len ||
                memcmp(blocks[j].name, blocks[i].name, blocks[i].name_len) != 0)
                continue;
            done[j] = true;
            rc = put_labelled(out, &blocks[j], label);
        }
    }
    free(done);
    free(blocks);
    return rc;
}

cx_err_t cx_metrics_collect_runners(cx_buf_t *b, const cx_config_t *cfg, cx_runner_t *const *r, size_t n,
                                    int64_t now_ms) {
    if (n == 1) return cx_metrics_collect_runner(b, cfg, r[0], now_ms);
    cx_buf_t *each = calloc(n, sizeof *each);
    if (!each) return CX_ERR_NOMEM;
    cx_err_t rc = CX_OK;
    for (size_t i = 0; i < n && rc == CX_OK; i++)
        rc = cx_metrics_collect_runner(&each[i], cfg, r[i], now_ms);
    if (rc == CX_OK) rc = cx_metrics_merge_labelled(b, each, n, "thread");
    for (size_t i = 0; i < n; i++)
        cx_buf_free(&each[i]);
    free(each);
    return rc;
}
