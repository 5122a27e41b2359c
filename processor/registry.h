/*
 * registry.h — the Schema Registry client (DESIGN §4): with `schema.registry.url` set, the output
 * schemas are registered at start-up under `<topic>-value` (the .avsc text as shipped, so
 * `logicalType` survives) and the registry's ids are written; an input record whose schema id is
 * not the fixed one of its topic is resolved through the registry (GET /schemas/ids/<id>) and
 * accepted when the registry's schema equals ours as JSON (jansson's json_equal after parsing both:
 * whitespace and member order do not matter). Speaks the two documented Confluent REST calls over
 * libcurl (http:// and https://, user:password@ in the URL for basic auth).
 *
 * Lookups happen on the processing thread, at most once per id: an answer (ours, someone else's
 * schema) is cached for good (registry ids are immutable); a 404 is cached for 60 s and a transport
 * or server error for 5 s, and records carrying that id meanwhile go to the DLQ as UNKNOWN_SCHEMA
 * with the reason in the detail. Each lookup is bounded by the request timeout. The cache holds a
 * fixed number of ids (least recently used replaced).
 *
 * Ownership and threads: a cx_registry_t owns its curl handle, its copy of the URL and its parsed
 * copies of the input schemas; it is not thread-safe (one per processing thread). The codec passed
 * to the decode wrappers is borrowed for the call and left with its ids unchanged.
 */
#ifndef CX_REGISTRY_H
#define CX_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"
#include "cx.h"

typedef struct cx_registry cx_registry_t;

/* url: base URL ("http://host:8081", a trailing '/' is ignored). timeout_ms: per request, 0 = 5000.
 * codec: its input schemas (PlayEvent .. Campaign) are copied for the comparisons. No network here. */
cx_registry_t *cx_registry_new(const char *url, int timeout_ms, const cx_codec_t *codec, char *errstr,
                               size_t errstr_size);
void cx_registry_destroy(cx_registry_t *g);

/* POST /subjects/<subject>/versions with {"schema": text}; *id receives the registry's id.
 * CX_ERR_IO when the registry is unreachable or refuses (errstr names the URL and its message). */
cx_err_t cx_registry_register(cx_registry_t *g, const char *subject, const char *schema_text, int32_t *id, char *errstr,
                              size_t errstr_size);

/* Registers every output schema of cfg's output topics (SegmentChange, DisengagementTrigger,
 * CampaignResponse, CampaignKpi, EnrichedEvent when enriched.enabled) under `<topic>-value` and sets
 * the returned ids in codec (cx_codec_set_schema_id). Stops at the first failure (CX_ERR_IO). */
cx_err_t cx_registry_register_outputs(cx_registry_t *g, const cx_config_t *cfg, cx_codec_t *codec, char *errstr,
                                      size_t errstr_size);

/* The input record kind (CX_REC_PLAY .. CX_REC_CAMPAIGN) whose schema the registry holds under id.
 * CX_ERR_NOT_FOUND: the id is unknown to the registry, or its schema is none of ours; CX_ERR_IO:
 * the registry could not answer (now, or within the retry delay of an earlier failure). errstr
 * says which. Cached as described above. */
cx_err_t cx_registry_resolve(cx_registry_t *g, int32_t id, cx_record_kind_t *kind, char *errstr, size_t errstr_size);

/* cx_codec_decode_event / cx_codec_decode_campaign, except that a wire schema id other than the
 * codec's id for `expected` is resolved through the registry (g NULL: no registry, plain decode).
 * A resolved id of the expected kind decodes like the fixed one; otherwise UNKNOWN_SCHEMA with a
 * detail naming the id and the reason. */
cx_dlq_code_t cx_registry_decode_event(cx_registry_t *g, cx_codec_t *c, cx_record_kind_t expected, const void *buf,
                                       size_t len, cx_event_t *out, char *detail, size_t detail_size);
cx_dlq_code_t cx_registry_decode_campaign(cx_registry_t *g, cx_codec_t *c, const void *buf, size_t len,
                                          cx_campaign_t *out, char *detail, size_t detail_size);

/* Counters for /metrics and tests. */
typedef struct cx_registry_stats {
    uint64_t requests, failures, lookups, cache_hits;
} cx_registry_stats_t;
cx_registry_stats_t cx_registry_stats(const cx_registry_t *g);

#endif
