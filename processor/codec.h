/*
 * codec.h — the records of DESIGN §5 as bytes: Avro in the Schema Registry wire format (0x00,
 * 4-byte big-endian schema id, Avro binary) for Kafka, and JSON lines for replay input and output
 * files. The .avsc files under schemas/ are compiled into the binary and loaded by cx_codec_new;
 * every decode applies the same validation (DLQ codes of cx.h) whichever format the bytes came in.
 *
 * Ownership and threads: a cx_codec_t owns its parsed schemas and reused Avro values; it is not
 * thread-safe (one per thread). Strings that a decoded event borrows (survey comment) point into
 * the codec and stay valid until the next decode call on the same codec. cx_campaign_t values
 * filled by the codec own their arrays (free with cx_campaign_clear). Encoders append to a
 * caller-owned cx_buf_t. The wire format of the input events and every encoded record is
 * read/written directly between bytes and the C structs (no avro-c value; cx_codec_new checks
 * those direct codecs against the .avsc and fails if they differ), so once warm (buffers at their
 * working size) neither allocates. The JSON path and Campaign decoding go through a reused avro-c
 * value, which allocates when a nullable string switches between null and a value and for arrays.
 */
#ifndef CX_CODEC_H
#define CX_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cx.h"
#include "event.h"

typedef enum cx_record_kind {
    CX_REC_PLAY = 1,
    CX_REC_PURCHASE = 2,
    CX_REC_EMAIL_SEND = 3,
    CX_REC_SURVEY = 4,
    CX_REC_CAMPAIGN = 5,
    CX_REC_SEGMENT_CHANGE = 10,
    CX_REC_TRIGGER = 11,
    CX_REC_RESPONSE = 12,
    CX_REC_KPI = 13,
    CX_REC_ENRICHED = 14,
    CX_REC_PROFILE = 15
} cx_record_kind_t; /* value = default schema id */
typedef struct cx_codec cx_codec_t;
cx_codec_t *cx_codec_new(char *errstr, size_t errstr_size); /* loads embedded schemas */
void cx_codec_destroy(cx_codec_t *c);
/* Override the schema id written/accepted for a record kind (schema registry). */
void cx_codec_set_schema_id(cx_codec_t *c, cx_record_kind_t kind, int32_t id);
int32_t cx_codec_schema_id(const cx_codec_t *c, cx_record_kind_t kind);
const char *cx_codec_schema_text(const cx_codec_t *c, cx_record_kind_t kind); /* .avsc as shipped */
cx_record_kind_t cx_codec_kind_of_event(cx_event_type_t t);

/* Wire format (0x00, 4-byte BE schema id, Avro binary) -> event. `expected` is the kind of the
 * topic the bytes came from; a schema id of another kind is UNKNOWN_SCHEMA. Returns CX_DLQ_NONE or
 * the reason, with a human detail naming the field ("score 11 outside 0..10").
 * Checks: framing (BAD_FRAMING: <5 bytes or magic != 0), schema id (UNKNOWN_SCHEMA), Avro decode
 * incl. trailing garbage and truncation (DECODE_ERROR), required strings present (MISSING_FIELD:
 * e.g. empty customer_id counts as BAD_ID not MISSING), ids (BAD_ID: customer_id/campaign_id via
 * cx_id_valid, event_id/title_id/survey_id/campaign_code via cx_token_valid, too long),
 * ranges (OUT_OF_RANGE: score 0..10, amount_minor >= 0, seconds_watched >= 0, currency not 3
 * upper-case letters, observation_days 0..3650, genre/device/touchpoint > 64 bytes). NOT timestamps
 * or currency allow-lists: see cx_codec_check_event. The event's borrowed fields (survey comment)
 * point into the codec and stay valid until the next decode call. No malloc per call once warm
 * (direct reader; the comment is copied into a reused codec buffer). */
cx_dlq_code_t cx_codec_decode_event(cx_codec_t *c, cx_record_kind_t expected, const void *buf, size_t len,
                                    cx_event_t *out, char *detail, size_t detail_size);
/* Campaign value -> out (out is cleared first, then owns its arrays). */
cx_dlq_code_t cx_codec_decode_campaign(cx_codec_t *c, const void *buf, size_t len, cx_campaign_t *out, char *detail,
                                       size_t detail_size);
/* Replay input: one JSON line {"event_type":"play"|...|"campaign", fields...} (DESIGN §3:
 * timestamps epoch ms, enums as symbol names, nullable fields may be absent or null). Same checks
 * and codes as the wire path (a line that is not JSON, or has an unknown event_type, is
 * DECODE_ERROR; a missing required field is MISSING_FIELD). Sets *is_campaign and fills `ev` or
 * `camp`. Implement by building the same avro value from the JSON and sharing the extraction code
 * with the wire path, so both paths apply identical rules. */
cx_dlq_code_t cx_codec_decode_json(cx_codec_t *c, const char *line, size_t len, cx_event_t *ev, cx_campaign_t *camp,
                                   bool *is_campaign, char *detail, size_t detail_size);
/* Checks that need configuration: ts < min_ts_ms, or (now_ms > 0) ts > now_ms + max_future_ms ->
 * BAD_TIMESTAMP; purchase currency not in currencies[0..n) when n > 0 -> UNKNOWN_CURRENCY. */
typedef struct cx_check_opts {
    int64_t min_ts_ms;
    int64_t max_future_ms;
    int64_t now_ms; /* 0: no future check (replay) */
    const char *const *currencies;
    size_t n_currencies;
} cx_check_opts_t;
cx_dlq_code_t cx_codec_check_event(const cx_event_t *ev, const cx_check_opts_t *o, char *detail, size_t detail_size);

typedef enum { CX_FMT_WIRE = 0, CX_FMT_JSON = 1 } cx_format_t;
/* Encode a record into `out` (appended; caller resets). rec points to: cx_event_t for the four
 * input kinds, cx_campaign_t, cx_segment_change_t, cx_trigger_t, cx_response_t, cx_kpi_t,
 * cx_enriched_t, cx_profile_out_t. JSON: one object, no newline, DESIGN §3 rules: Avro field names,
 * unions unwrapped (null or the value), enums as symbols, integers exact, doubles shortest
 * round-trip (cx_buf_json_double), fields in schema order. For the four input kinds the JSON form
 * starts with "event_type" so it is a valid replay line. Wire: 0x00 + BE id + Avro binary, written
 * straight from the struct. An enum value outside its C enum is CX_ERR_INVALID (out unchanged). */
cx_err_t cx_codec_encode(cx_codec_t *c, cx_record_kind_t kind, const void *rec, cx_format_t fmt, cx_buf_t *out);

/* For tests: the wire format written through avro-c's generic value and avro_value_write, the
 * reference that cx_codec_encode's direct encoders must equal byte for byte. Slow; not for the
 * hot path. */
cx_err_t cx_codec_encode_generic(cx_codec_t *c, cx_record_kind_t kind, const void *rec, cx_buf_t *out);

#endif
