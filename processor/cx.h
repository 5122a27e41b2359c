/*
 * cx.h — what every cxstream module shares: the error enum, the DLQ error codes, limits on ids,
 * and the logging macro. Nothing here allocates.
 */
#ifndef CX_H
#define CX_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CX_VERSION "0.1.0"

/* Errors returned by fallible functions. Where a human needs detail the function also fills a
 * caller-provided `char *errstr, size_t errstr_size` (librdkafka's manner). */
typedef enum cx_err {
    CX_OK = 0,
    CX_ERR_INVALID,   /* bad argument or bad input */
    CX_ERR_NOMEM,     /* allocation failed */
    CX_ERR_IO,        /* file or RocksDB I/O */
    CX_ERR_KAFKA,     /* librdkafka reported an error */
    CX_ERR_CONFIG,    /* configuration refused: exit 2 */
    CX_ERR_NOT_FOUND, /* looked-up thing absent (not an error for most callers) */
    CX_ERR_TIMEOUT,   /* a bounded wait ran out */
    CX_ERR_STATE,     /* local state unusable (corrupt, wrong version) */
    CX_ERR_FATAL      /* cannot go on: flush what is safe, exit 1 */
} cx_err_t;

const char *cx_err2str(cx_err_t err);

/* Record-level rejection reasons: the value of the `cx.error` DLQ header (DESIGN §4). The order
 * and names are a documented, fixed contract; append only. */
typedef enum cx_dlq_code {
    CX_DLQ_NONE = 0,
    CX_DLQ_BAD_FRAMING,      /* not 0x00 + 4-byte schema id + payload */
    CX_DLQ_UNKNOWN_SCHEMA,   /* schema id neither known nor resolvable, or wrong for the topic */
    CX_DLQ_DECODE_ERROR,     /* Avro (or JSON, in replay) does not decode */
    CX_DLQ_MISSING_FIELD,    /* a required field is absent or null */
    CX_DLQ_BAD_ID,           /* customer_id/campaign_id/event_id empty, too long or bad bytes */
    CX_DLQ_OUT_OF_RANGE,     /* score outside 0–10, negative amount or seconds, bad enum, ... */
    CX_DLQ_BAD_TIMESTAMP,    /* before input.min_ts or too far in the future */
    CX_DLQ_UNKNOWN_CURRENCY, /* currency not in currency.allowed (only when set) */
    CX_DLQ__COUNT
} cx_dlq_code_t;

const char *cx_dlq_code_name(cx_dlq_code_t code);

/* customer_id and campaign_id: 1–128 bytes of [A-Za-z0-9._:@-] (DESIGN §4). Other string
 * identifiers (event_id, title_id, survey_id, campaign_code, touchpoint, genre, device) are 1–128
 * bytes of any UTF-8 except control characters. */
#define CX_ID_MAX 128
bool cx_id_valid(const char *s, size_t len);
bool cx_token_valid(const char *s, size_t len);

#define CX_DAY_MS INT64_C(86400000)
/* UTC day number of a millisecond timestamp (floor, also for negative ts). */
static inline int64_t cx_day(int64_t ts_ms) {
    return ts_ms >= 0 ? ts_ms / CX_DAY_MS : -((-ts_ms + CX_DAY_MS - 1) / CX_DAY_MS);
}

/* Logging: one line per event, `level component key=value ...`. The macro tests the level before
 * evaluating its arguments (Redis serverLog). Library code logs only through this. */
typedef enum { CX_LOG_DEBUG = 0, CX_LOG_INFO, CX_LOG_WARN, CX_LOG_ERROR, CX_LOG_OFF } cx_log_level_t;
extern cx_log_level_t cx_log_min_level;
extern bool cx_log_json;
void cx_log_write(cx_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define cx_log(level, component, ...)                                                     \
    do {                                                                                  \
        if ((level) >= cx_log_min_level) cx_log_write((level), (component), __VA_ARGS__); \
    } while (0)

/* snprintf into errstr, tolerating errstr == NULL. */
void cx_seterr(char *errstr, size_t errstr_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Clocks: wall (epoch ms, for event-time checks against "now") and monotonic (ms or seconds,
 * for durations and deadlines). */
int64_t cx_wall_ms(void);
int64_t cx_mono_ms(void);
double cx_mono_s(void);

/* A fast hash of bytes for in-memory tables and filters, 8 bytes at a time (never persisted: the
 * event-id fingerprint stored in profiles is cx_hash64). */
static inline uint64_t cx_hash_mem(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ n, w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * UINT64_C(0xBF58476D1CE4E5B9);
        h ^= h >> 31;
    }
    if (n) {
        w = 0;
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)s[i] << (8 * i);
        h = (h ^ w) * UINT64_C(0x94D049BB133111EB);
        h ^= h >> 29;
    }
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    return h ^ (h >> 32);
}

/* Kafka's default partitioner (Java client murmur2; librdkafka `murmur2_random` for non-empty
 * keys): toPositive(murmur2(key)) % partitions. */
int32_t cx_murmur2_partition(const void *key, size_t len, int32_t partitions);

#endif
