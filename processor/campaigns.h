/*
 * campaigns.h — campaign measurement in the pipeline: a customer's open sends (windows, the wait
 * for an unknown campaign, close), attribution of transactions to them with CampaignResponse
 * records, the per-partition KPI partial counts kept in state ('A' keys, written in the flush
 * batch) and published to cx.partials, and the merged CampaignKpi records (DESIGN §2, §6).
 *
 * Driving (by pipeline.c): cx_campaigns_send / _transaction / _timer for one customer's events and
 * window-end timers; _watermark whenever a partition's watermark rises, then _tick, which produces
 * the KPI records that are due (every kpi.interval_ms of event time while a campaign changes, and
 * the final closed one); _flush inside cx_pipeline_flush. In `run` the cx.partials consumer feeds
 * other partitions' partials and watermarks through _apply_partial.
 *
 * A send whose campaign is unknown waits: its end_ts_ms is the wait expiry
 * (s + campaign.wait_days days + 1). The wait is resolved at the customer's next send, transaction
 * or timer (the expiry timer at the latest): if the campaign is known by then the send is counted
 * and gets its window end, otherwise it is dropped. Responses while a send waits are not attributed
 * to it. The KPI entry of a waiting send's campaign stays open until the expiry has passed.
 *
 * Ownership: the lookup function and sink are borrowed for the object's life; cfg too.
 */
#ifndef CX_CAMPAIGNS_H
#define CX_CAMPAIGNS_H

#include "config.h"
#include "event.h"
#include "kpi.h"
#include "pipeline.h"
#include "profile.h"
#include "store.h"

typedef const cx_campaign_t *(*cx_campaign_lookup_fn)(void *opaque, const char *campaign_id);

typedef struct cx_campaigns cx_campaigns_t;

cx_campaigns_t *cx_campaigns_new(const cx_config_t *cfg, cx_campaign_lookup_fn lookup, void *lookup_opaque,
                                 const cx_sink_t *sink, char *errstr, size_t errstr_size);
void cx_campaigns_destroy(cx_campaigns_t *k);

/* P, the input partition count that decides a campaign's KPI owner (murmur2(id) mod P) and whose
 * watermarks must all pass before a campaign closes. 0 (default): highest assigned partition + 1,
 * right for replay, which assigns every partition. */
void cx_campaigns_set_partitions(cx_campaigns_t *k, int32_t partitions);

/* Takes `part`: its partial counts are (re)loaded from the store (store may be NULL) and its
 * watermark is wm_ms, the one stored with them (INT64_MIN: none), even where another instance
 * published a later one. The next flush of `part` publishes that watermark before any partial, so
 * readers never pair the previous owner's later watermark with this owner's counts, which may be
 * behind it (at-least-once: a killed owner's last partials may be in cx.partials without its last
 * state in the changelog). */
cx_err_t cx_campaigns_assign(cx_campaigns_t *k, cx_store_t *store, uint16_t part, int64_t wm_ms, char *errstr,
                             size_t errstr_size);
/* Lets go of `part`: its counts fall back to the last flushed (= published) ones. */
void cx_campaigns_revoke(cx_campaigns_t *k, uint16_t part);
void cx_campaigns_watermark(cx_campaigns_t *k, uint16_t part, int64_t wm_ms);
/* A campaign record arrived, changed or was deleted. */
void cx_campaigns_campaign_changed(cx_campaigns_t *k);

/* An email_send for customer pr (TEST or CONTROL): opens or restarts the send's window. */
cx_err_t cx_campaigns_send(cx_campaigns_t *k, uint16_t part, cx_profile_t *pr, const cx_event_t *ev);
/* A transaction (purchase, or play >= retrieval.min_seconds). first_tx: it is the customer's first
 * transaction. attributed_campaign_id (CX_ID_MAX + 1 bytes) receives the campaign it was
 * attributed to, or "" (a CampaignResponse is emitted when attributed). */
cx_err_t cx_campaigns_transaction(cx_campaigns_t *k, uint16_t part, cx_profile_t *pr, const cx_event_t *ev,
                                  bool first_tx, char *attributed_campaign_id);
/* The customer's timer fired at `due`: resolves waiting sends, closes windows that ended. */
cx_err_t cx_campaigns_timer(cx_campaigns_t *k, uint16_t part, cx_profile_t *pr, int64_t due);

/* Produces the KPI records that are due as of the merged watermark (min over the P partitions). */
cx_err_t cx_campaigns_tick(cx_campaigns_t *k);
/* Writes the changed partials of `part` (every owned partition when part < 0) into batch and
 * publishes them, with the partitions' watermarks, as CX_REC_PARTIAL records. */
cx_err_t cx_campaigns_flush(cx_campaigns_t *k, int part, cx_store_batch_t *batch);
/* A cx.partials record from the global consumer ("campaign:<id>:<p>" or "wm::<p>"); partials of
 * owned partitions are ignored (local state is newer). The latest record of a key wins, watermarks
 * too (one may go back when its partition changes owner). value NULL: tombstone, ignored. */
cx_err_t cx_campaigns_apply_partial(cx_campaigns_t *k, const char *key, size_t klen, const void *value, size_t vlen);
/* The merged KPI of a campaign as of now (for HTTP); false when no partial is known. */
bool cx_campaigns_kpi(cx_campaigns_t *k, const char *campaign_id, cx_kpi_t *out);
/* Calls fn with the merged KPI (as cx_campaigns_kpi gives it) of every campaign with a known
 * partial, in campaign_id order; returns the first result of fn that is not CX_OK (and stops).
 * Allocates a sorted index for the call: for HTTP, not for the event path. kpi is valid during fn. */
typedef cx_err_t (*cx_campaigns_kpi_fn)(void *opaque, const cx_kpi_t *kpi);
cx_err_t cx_campaigns_each_kpi(cx_campaigns_t *k, cx_campaigns_kpi_fn fn, void *opaque);

#endif
