/*
 * voc.h — the voice-of-customer and CX-economics aggregates of one instance (DESIGN §1, §6, §7;
 * docs/voc.md): per partition, NPS counts per segment (each customer's latest score inside the
 * trailing nps.window_days, counted in the segment the customer is in now) and per touchpoint
 * (every response inside the window, kept as per-day count buckets), comment terms per
 * (segment|touchpoint, detractor|promoter) in Space-Saving summaries, and per-segment sums for
 * the economics table (monetary and CLV of the customers in the segment, triggers fired, TEST
 * sends and the sends that got a response).
 *
 * Driving (by pipeline.c, for a customer of partition `part`): cx_voc_survey for a survey event
 * (it also updates the profile's NPS fields: nps_last, nps_count, nps_due_ms, touchpoints);
 * cx_voc_rescored after every RFM re-scoring (pr->segment is the new segment, prev the old);
 * cx_voc_nps_expire and cx_voc_windows_before/_after from the customer's timer; cx_voc_trigger
 * when a trigger fires; cx_voc_watermark whenever the partition's watermark rises; cx_voc_flush inside the
 * pipeline's flush batch (store tag 'A', keys "vs" and "vt…"); _assign / _revoke with the
 * partition. Every call that changes a customer's contribution must be followed by the pipeline's
 * update_timer (nps_due_ms is one of the timer kinds).
 *
 * Memory per owned partition is bounded: CX_SEGMENTS_MAX segments, CX_VOC_TOUCHPOINTS_MAX
 * touchpoints (later names are pooled under "other") with nps.window_days + a few day buckets each,
 * and at most 2 × (CX_SEGMENTS_MAX + CX_VOC_TOUCHPOINTS_MAX) summaries of CX_VOC_TOPK_M terms,
 * allocated on first use. Nothing on the event path allocates except a summary's or a
 * touchpoint's first use.
 *
 * Queries (HTTP) sum or merge over the owned partitions. Ownership: cfg is borrowed for the
 * object's life; the store for the duration of each assign.
 */
#ifndef CX_VOC_H
#define CX_VOC_H

#include "config.h"
#include "event.h"
#include "nps.h"
#include "profile.h"
#include "sketch.h"
#include "store.h"

#define CX_VOC_TOUCHPOINTS_MAX 16 /* tracked touchpoints per partition, "other" included */
#define CX_VOC_TOPK_M          64 /* Space-Saving capacity per (key, category) */
#define CX_VOC_OTHER           "other"

enum { CX_VOC_DETRACTORS = 0, CX_VOC_PROMOTERS = 1 }; /* comment-term categories */
enum { CX_VOC_BY_SEGMENT = 0, CX_VOC_BY_TOUCHPOINT = 1 };

typedef struct cx_voc cx_voc_t;

cx_voc_t *cx_voc_new(const cx_config_t *cfg, char *errstr, size_t errstr_size);
void cx_voc_destroy(cx_voc_t *v);

/* Takes `part`: its aggregates are (re)loaded from the store (store may be NULL: empty). */
cx_err_t cx_voc_assign(cx_voc_t *v, cx_store_t *store, uint16_t part, char *errstr, size_t errstr_size);
/* Lets go of `part`: its in-memory aggregates are dropped (the flushed ones stay in the store). */
void cx_voc_revoke(cx_voc_t *v, uint16_t part);
/* The partition's watermark rose (the touchpoint window and late surveys are judged by it). */
void cx_voc_watermark(cx_voc_t *v, uint16_t part, int64_t wm_ms);

/* A survey response of customer pr at ts_ms: updates pr's NPS fields (latest score by event time,
 * count, per-touchpoint last score, nps_due_ms = 00:00 UTC of day(ts) + window while the latest
 * score is inside the window, else 0) and the partition's counts and comment terms. */
cx_err_t cx_voc_survey(cx_voc_t *v, uint16_t part, cx_profile_t *pr, const cx_survey_t *s, int64_t ts_ms);
/* pr was re-scored: pr->segment is its segment now, prev the one before (-1: none). Moves the
 * customer's counted NPS score from prev to the new segment and replaces its monetary and CLV
 * contribution (kept in pr->voc_monetary_minor, pr->voc_clv_minor). */
void cx_voc_rescored(cx_voc_t *v, uint16_t part, cx_profile_t *pr, int prev, int64_t monetary_minor, int64_t clv_minor);
/* The customer's timer fired at `due`: a latest score whose window ended leaves its segment. */
void cx_voc_nps_expire(cx_voc_t *v, uint16_t part, cx_profile_t *pr, int64_t due);
/* A DisengagementTrigger was emitted for a customer of segment `seg` (-1: none). */
void cx_voc_trigger(cx_voc_t *v, uint16_t part, int seg);
/* Campaign response rate per segment: TEST send windows that closed while the customer was in the
 * segment, and how many of them had at least one attributed response. The pipeline takes a
 * snapshot of the TEST sends whose window may end at `due` before cx_campaigns_timer runs
 * (cx_voc_windows_before) and reports those that are gone after it (cx_voc_windows_after). A send
 * replaced by a repeated send of the same campaign is not a closed window. */
typedef struct cx_voc_windows {
    unsigned n;
    struct {
        char send_event_id[CX_ID_MAX + 1];
        bool responded;
    } s[CX_OPEN_SENDS_MAX];
} cx_voc_windows_t;
void cx_voc_windows_before(const cx_profile_t *pr, int64_t due, cx_voc_windows_t *w);
void cx_voc_windows_after(cx_voc_t *v, uint16_t part, const cx_profile_t *pr, const cx_voc_windows_t *w);

/* Writes the changed aggregates of `part` (all owned when part < 0) into batch. */
cx_err_t cx_voc_flush(cx_voc_t *v, int part, cx_store_batch_t *batch);

/* ---------- queries: sums over the owned partitions ---------- */

typedef struct cx_voc_segment {
    cx_nps_counts_t nps;        /* latest scores inside the window of the segment's customers */
    int64_t monetary_minor_sum; /* of the segment's customers, each as of its last re-scoring */
    int64_t clv_minor_sum;
    int64_t triggers;   /* DisengagementTriggers fired in the segment (cumulative) */
    int64_t sends_test; /* TEST send windows closed in the segment (cumulative) */
    int64_t responders; /* of those, windows with at least one attributed response */
} cx_voc_segment_t;

/* out[i] for segment rule i, i < n (zeroed beyond the configured segments). */
void cx_voc_segments(const cx_voc_t *v, cx_voc_segment_t *out, size_t n);

typedef struct cx_voc_touchpoint {
    char name[CX_SHORT_MAX + 1];
    cx_nps_counts_t nps; /* every response inside the window (as of each partition's watermark) */
} cx_voc_touchpoint_t;

/* Touchpoints over the owned partitions, merged by name, sorted by name; returns how many were
 * written (at most cap). */
size_t cx_voc_touchpoints(const cx_voc_t *v, cx_voc_touchpoint_t *out, size_t cap);

/* Top comment terms of a segment (by rule name) or touchpoint and category, merged over the owned
 * partitions: up to n items (count desc, term asc) into out, *n_out of them; *total = weight
 * added (terms counted). *found false for an unknown segment name (a touchpoint without terms is
 * found, with no items). Allocates a temporary summary: for queries, not the event path. */
cx_err_t cx_voc_themes(const cx_voc_t *v, int by, const char *name, int category, cx_topk_item_t *out, size_t n,
                       size_t *n_out, uint64_t *total, bool *found);

#endif
