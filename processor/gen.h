/*
 * gen.h — the synthetic, deterministic event generator behind `cxstream gen` and the demo.
 *
 * A population of customers with different habits (heavy streamers, weekly regulars, binge
 * watchers, occasional renters, subscribers, casual viewers; churners who stop and droppers who
 * slow down), a catalogue of titles, surveys, campaigns with test and control groups, and a share
 * of invalid records, each tagged with the DLQ code the processor must give it. The same options
 * and seed give the same records, byte for byte. Records come out in non-decreasing event time
 * (`ts_ms`), a campaign before its first send. The generator keeps its own tally of what it emitted
 * (the "truth", DESIGN §3 `--truth`) so tests can compare the processor's results with it.
 *
 * Ownership: cx_gen_new copies the options; the generator owns everything it hands out, and the
 * pointers in a cx_gen_record_t are borrowed until the next cx_gen_next or cx_gen_destroy.
 * Memory is O(customers) (about 250 bytes each) plus the campaign recipient lists; nothing is
 * allocated per record once warm.
 */
#ifndef CX_GEN_H
#define CX_GEN_H

#include <signal.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "buf.h"
#include "cx.h"
#include "event.h"

/* The form of cx_gen_record_t.raw. */
typedef enum cx_gen_raw {
    CX_GEN_RAW_WIRE = 0, /* Schema Registry wire format (0x00, BE schema id, Avro): for Kafka */
    CX_GEN_RAW_JSON = 1, /* one replay JSON line without the newline (DESIGN §3): for --output */
    CX_GEN_RAW_NONE = 2  /* no bytes (raw = NULL): the typed records only */
} cx_gen_raw_t;

typedef struct cx_gen_opts {
    uint64_t customers;   /* population size, >= 1 */
    int32_t days;         /* days of event time, 1..3650 */
    uint64_t seed;        /* same seed + options -> same records */
    double invalid_rate;  /* share of play/purchase/survey records made invalid, 0..1 */
    double control_share; /* share of each campaign's sample put in CONTROL, 0..1 */
    int64_t start_ts_ms;  /* first instant of the period (00:00 UTC of a day recommended) */
    cx_gen_raw_t raw;     /* form of `raw`; the kinds of invalid record depend on it (below) */
} cx_gen_opts_t;

/* customers 10000, days 90, seed 1, invalid_rate 0.01, control_share 0.1,
 * start 2025-01-06T00:00:00Z, raw WIRE. */
cx_gen_opts_t cx_gen_opts_default(void);
#define CX_GEN_DEFAULT_START_TS_MS INT64_C(1736121600000) /* 2025-01-06T00:00:00Z, a Monday */

/* One generated record.
 *
 * Invalid records replace a play, purchase or survey the customer would have made (email sends and
 * campaigns are never corrupted, so campaign recipients in the truth are exact). Kinds:
 *   WIRE: BAD_FRAMING (magic byte 1), UNKNOWN_SCHEMA (schema id 99), DECODE_ERROR (Avro cut short),
 *         BAD_ID, OUT_OF_RANGE, BAD_TIMESTAMP;
 *   JSON: DECODE_ERROR (line cut short), MISSING_FIELD (a required field null), BAD_ID,
 *         OUT_OF_RANGE, BAD_TIMESTAMP;
 *   NONE: as WIRE (only the tags and the typed damage are produced).
 * BAD_ID: customer_id with a space ("c000 0042"); OUT_OF_RANGE: survey score 11, purchase
 * amount_minor -amount, play seconds_watched -1; BAD_TIMESTAMP: ts in January 1970. For these
 * three `event` holds the damaged event; for the others it holds the intact one that was damaged
 * on the wire. `key` is always the intact customer id. */
typedef struct cx_gen_record {
    cx_event_type_t type;          /* CX_EV_CAMPAIGN for campaigns */
    const cx_event_t *event;       /* input events (valid or invalid); NULL for campaigns */
    const cx_campaign_t *campaign; /* campaigns; NULL otherwise */
    cx_dlq_code_t invalid;         /* CX_DLQ_NONE, or the code the processor must give it */
    const uint8_t *raw;            /* the value bytes to send as is (valid records too); NULL if
                                    * opts.raw == CX_GEN_RAW_NONE */
    size_t raw_len;
    const char *key; /* customer_id or campaign_id, NUL-terminated */
    int64_t ts_ms;   /* record time: event time (invalid ones: the slot's time, even
                                    * when the payload says 1970); campaigns: start_ts */
} cx_gen_record_t;

typedef struct cx_gen cx_gen_t;

/* NULL on bad options or failure (errstr names the option). With raw != NONE it loads the codec. */
cx_gen_t *cx_gen_new(const cx_gen_opts_t *o, char *errstr, size_t errstr_size);
void cx_gen_destroy(cx_gen_t *g);
/* 1 = *out filled, 0 = end of the stream, -1 = internal error (encoding failed; errstr of
 * cx_gen_error()). */
int cx_gen_next(cx_gen_t *g, cx_gen_record_t *out);
const char *cx_gen_error(const cx_gen_t *g);
/* Counts so far: valid input events, invalid records, campaign records. */
void cx_gen_counts(const cx_gen_t *g, uint64_t *valid, uint64_t *invalid, uint64_t *campaigns);

/* The truth JSON (one object, newline-terminated) for every record emitted so far (after the last
 * record it covers the whole stream). Counts cover valid records only. Format: docs/generator.md. */
cx_err_t cx_gen_write_truth(const cx_gen_t *g, FILE *out);

/* ---- Kafka ---- */

typedef struct cx_gen_topics {
    const char *play, *purchase, *email_send, *survey, *campaigns;
} cx_gen_topics_t;
cx_gen_topics_t cx_gen_topics_default(void); /* cx.play, cx.purchase, ... cx.campaigns */

/* Sets what cx_gen_produce needs on a producer configuration: partitioner=murmur2_random (the Java
 * client's partitioner, DESIGN §2), enable.idempotence=true (a retried request keeps its place: each
 * partition stays in event-time order) and a delivery report callback that counts failures. The caller
 * then creates the producer with rd_kafka_new(). */
cx_err_t cx_gen_conf_producer(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);

/* Generates the stream of `o` (raw is forced to WIRE) and produces every record to its topic
 * (invalid ones to the topic of their event type), keyed by customer_id (campaign_id for
 * campaigns), record timestamp = ts_ms. rate_per_s > 0 paces the records; *stop (may be NULL) ends
 * early. progress (may be NULL) is called every 10,000 records and at the end. Flushes at the end;
 * any failed delivery, or a producer not configured with cx_gen_conf_producer, is an error
 * (CX_ERR_KAFKA) naming the first failure. truth_out (may be NULL) receives the truth of what was
 * produced. topics NULL = defaults. */
cx_err_t cx_gen_produce(rd_kafka_t *producer, const cx_gen_opts_t *o, const cx_gen_topics_t *topics, double rate_per_s,
                        volatile sig_atomic_t *stop, void (*progress)(void *opaque, uint64_t sent), void *opaque,
                        FILE *truth_out, char *errstr, size_t errstr_size);

/* `cxstream gen ...` (argv[0] = "gen"). Exit code: 0, 1 runtime failure, 2 usage error. */
int cx_cmd_gen(int argc, char **argv);

#endif
