/*
 * kpi.h — campaign KPI arithmetic (DESIGN §6 "Campaign KPIs") and the partial aggregates they are
 * merged from (DESIGN §2 "Cross-partition aggregates").
 *
 * Each partition keeps, per campaign, absolute counts (cx_kpi_counts_t) of its own customers; the
 * KPI is the sum over all partitions (cx_kpi_counts_merge) turned into rates, lift and the
 * two-proportion z-test by cx_kpi_compute. Two encodings of a partial: a compact varint form for
 * RocksDB (store tag 'A', key rest "c" + campaign_id) and a small JSON object for the cx.partials
 * topic (key "campaign:<campaign_id>:<partition>"; watermarks under "wm::<partition>"), documented
 * in docs/topics.md.
 *
 * Ownership: plain values; encoders append to a caller-owned cx_buf_t.
 */
#ifndef CX_KPI_H
#define CX_KPI_H

#include "buf.h"
#include "codec.h"
#include "event.h"

/* Absolute counts of one campaign in one partition (or merged over partitions). */
typedef struct cx_kpi_counts {
    int64_t sent[CX_GROUP__COUNT];      /* distinct recipients by the group of their latest send */
    int64_t resp_any[CX_GROUP__COUNT];  /* recipients with >= 1 attributed response */
    int64_t resp_hard[CX_GROUP__COUNT]; /* recipients with >= 1 hard response */
    int64_t retrievals;                 /* test group: attributed plays */
    int64_t purchases;                  /* test group: attributed purchases */
    int64_t turnover_minor;             /* test group: attributed purchase amounts */
    int64_t max_end_ms;                 /* latest window-end due (or send wait expiry); 0: none */
} cx_kpi_counts_t;

/* acc += add (counts summed, max_end_ms maxed). */
void cx_kpi_counts_merge(cx_kpi_counts_t *acc, const cx_kpi_counts_t *add);

/* Two-sided two-proportion z-test with pooled proportion: x1 of n1 against x2 of n2. Returns
 * false (undefined) when n1 or n2 is 0 or the pooled proportion is 0 or 1; else *z and *p. */
bool cx_kpi_z_test(int64_t x1, int64_t n1, int64_t x2, int64_t n2, double *z, double *p);

/* Fills the KPI figures of `out` (campaign_id, ts_ms, as_of_ts_ms and closed are left alone):
 * sends, responders, retrievals, purchases, turnover, revenue per responder (turnover / test
 * responders, rounded down, 0 when none), response rates (any responders / sent, 0 when none
 * sent), lift ((rate_test − rate_control) / rate_control, null when the control rate is 0) and
 * its p-value (null when undefined). */
void cx_kpi_compute(const cx_kpi_counts_t *c, cx_kpi_t *out);

/* State encoding: version byte + svarints. decode returns false on corrupt input. */
cx_err_t cx_kpi_counts_encode(const cx_kpi_counts_t *c, cx_buf_t *out);
bool cx_kpi_counts_decode(const void *buf, size_t len, cx_kpi_counts_t *c);

/* cx.partials JSON: {"sent_test":..,"sent_control":..,"responders_test_any":..,
 * "responders_test_hard":..,"responders_control_any":..,"responders_control_hard":..,
 * "retrievals":..,"purchases":..,"turnover_minor":..,"max_window_end_ts":..}. */
cx_err_t cx_kpi_counts_json(const cx_kpi_counts_t *c, cx_buf_t *out);
bool cx_kpi_counts_from_json(const void *buf, size_t len, cx_kpi_counts_t *c);

/* The record handed to the sink for cx.partials (kind CX_REC_PARTIAL): key and raw value bytes.
 * A sink without a partials topic ignores it (replay merges partials in process). */
#define CX_REC_PARTIAL ((cx_record_kind_t)20)
typedef struct cx_partial_rec {
    const char *key;
    const uint8_t *value;
    size_t len;
} cx_partial_rec_t;

/* Splits a cx.partials key "<kind>:<id>:<partition>" (id may contain ':'; the partition is after
 * the last one). Returns false when malformed. kind/id point into key. */
bool cx_partial_key_parse(const char *key, size_t len, const char **kind, size_t *kind_len, const char **id,
                          size_t *id_len, int32_t *partition);

#endif
