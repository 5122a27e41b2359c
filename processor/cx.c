/*
 * cx.c — error strings, DLQ code names, id checks, enum symbol tables and the log writer.
 */
#include "cx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"

cx_log_level_t cx_log_min_level = CX_LOG_INFO;
bool cx_log_json = false;

const char *cx_err2str(cx_err_t err) {
    switch (err) {
    case CX_OK: return "success";
    case CX_ERR_INVALID: return "invalid argument or input";
    case CX_ERR_NOMEM: return "out of memory";
    case CX_ERR_IO: return "I/O error";
    case CX_ERR_KAFKA: return "Kafka error";
    case CX_ERR_CONFIG: return "configuration error";
    case CX_ERR_NOT_FOUND: return "not found";
    case CX_ERR_TIMEOUT: return "timed out";
    case CX_ERR_STATE: return "local state unusable";
    case CX_ERR_FATAL: return "fatal error";
    }
    return "unknown error";
}

static const char *const dlq_names[CX_DLQ__COUNT] = {
    "NONE",   "BAD_FRAMING",  "UNKNOWN_SCHEMA", "DECODE_ERROR",     "MISSING_FIELD",
    "BAD_ID", "OUT_OF_RANGE", "BAD_TIMESTAMP",  "UNKNOWN_CURRENCY",
};

const char *cx_dlq_code_name(cx_dlq_code_t code) {
    return (unsigned)code < CX_DLQ__COUNT ? dlq_names[code] : "UNKNOWN";
}

/* The bytes of an id, [A-Za-z0-9._:@-], by byte value (128-255: 0): one load per byte instead of a
 * chain of range tests (an id is checked on every event). */
static const uint8_t id_byte_ok[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, /* 0x50 */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, /* 0x70 */
};

bool cx_id_valid(const char *s, size_t len) {
    if (len < 1 || len > CX_ID_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if (!id_byte_ok[(unsigned char)s[i]]) return false;
    return true;
}

/* Whether a word holds a control character: a byte below 0x20 or equal to 0x7F. Both tests are the
 * exact "any byte" forms: (x - n*ones) & ~x & highs for "a byte below n" (n <= 128; a borrow only
 * flags a byte above one that truly is below n) and the zero-byte test of x ^ 0x7F..7F. */
static inline bool ctrl_in64(uint64_t w) {
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    uint64_t del = w ^ (0x7F * ones);
    return ((((w - 0x20 * ones) & ~w) | ((del - ones) & ~del)) & highs) != 0;
}

/* Words at a time (checked on every event); the last word overlaps the one before it, so no byte
 * loop is left but for strings under 4 bytes (4-7 bytes: two overlapping halves of one word). */
bool cx_token_valid(const char *s, size_t len) {
    if (len < 1 || len > CX_ID_MAX) return false;
    if (len >= 8) {
        uint64_t w;
        for (size_t i = 0; i + 8 < len; i += 8) {
            memcpy(&w, s + i, 8);
            if (ctrl_in64(w)) return false;
        }
        memcpy(&w, s + len - 8, 8);
        return !ctrl_in64(w);
    }
    if (len >= 4) { /* the first and the last 4 bytes (overlapping) as one word */
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + len - 4, 4);
        return !ctrl_in64((uint64_t)a << 32 | b);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F) return false;
    }
    return true;
}

const char *const cx_purchase_kind_names[CX_PK__COUNT] = {"RENTAL", "PURCHASE", "SUBSCRIPTION", "PACKAGE_EXTENSION"};
const char *const cx_group_names[CX_GROUP__COUNT] = {"TEST", "CONTROL"};
const char *const cx_channel_names[CX_CH__COUNT] = {"EMAIL", "SMS", "PUSH", "IN_APP", "POST"};
const char *const cx_campaign_type_names[CX_CT__COUNT] = {"NEWSLETTER", "WIN_BACK", "CROSS_SELL", "ONBOARDING",
                                                          "OTHER"};
const char *const cx_trigger_kind_names[CX_TRIG__COUNT] = {"STOPPED_STREAMING", "ENGAGEMENT_DROP", "CHURN_RISK"};
const char *const cx_action_names[CX_ACT__COUNT] = {"LOGIN_REMINDER", "NEW_RELEASE", "WIN_BACK_OFFER"};

static const char *const event_type_names[CX_EV__COUNT] = {"email_send", "purchase", "play", "survey", "campaign"};

const char *cx_event_type_name(cx_event_type_t t) {
    return (unsigned)t < CX_EV__COUNT ? event_type_names[t] : "unknown";
}

int cx_event_type_from_name(const char *name) {
    return cx_enum_lookup(event_type_names, CX_EV__COUNT, name);
}

int cx_enum_lookup(const char *const *names, int n, const char *name) {
    if (!name) return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

void cx_seterr(char *errstr, size_t errstr_size, const char *fmt, ...) {
    if (!errstr || !errstr_size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void cx_log_write(cx_log_level_t level, const char *component, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    if (cx_log_json) {
        /* msg is "key=value ..." text; carried whole as "msg" so no parser is needed. */
        fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"", when,
                ts.tv_nsec / 1000000, level_names[level], component);
        for (const char *p = msg; *p; p++) {
            if (*p == '"' || *p == '\\') fputc('\\', stderr);
            if ((unsigned char)*p < 0x20)
                fprintf(stderr, "\\u%04x", *p);
            else
                fputc(*p, stderr);
        }
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s.%03ldZ %s %s %s\n", when, ts.tv_nsec / 1000000, level_names[level], component, msg);
    }
}

void cx_campaign_clear(cx_campaign_t *c) {
    if (!c) return;
    free(c->name);
    for (size_t i = 0; i < c->n_promoted; i++)
        free(c->promoted_title_ids[i]);
    free(c->promoted_title_ids);
    memset(c, 0, sizeof *c);
}

cx_err_t cx_campaign_copy(cx_campaign_t *dst, const cx_campaign_t *src) {
    *dst = *src;
    dst->name = NULL;
    dst->promoted_title_ids = NULL;
    dst->n_promoted = 0;
    if (src->name && !(dst->name = strdup(src->name))) goto nomem;
    if (src->n_promoted) {
        dst->promoted_title_ids = calloc(src->n_promoted, sizeof(char *));
        if (!dst->promoted_title_ids) goto nomem;
        for (size_t i = 0; i < src->n_promoted; i++) {
            if (!(dst->promoted_title_ids[i] = strdup(src->promoted_title_ids[i]))) goto nomem;
            dst->n_promoted = i + 1;
        }
    }
    return CX_OK;
nomem:
    cx_campaign_clear(dst);
    return CX_ERR_NOMEM;
}

int32_t cx_murmur2_partition(const void *key, size_t len, int32_t partitions) {
    const uint8_t *data = key;
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t n4 = len / 4;
    for (size_t i = 0; i < n4; i++) {
        const uint8_t *d = data + i * 4;
        uint32_t k = (uint32_t)d[0] | ((uint32_t)d[1] << 8) | ((uint32_t)d[2] << 16) | ((uint32_t)d[3] << 24);
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    const uint8_t *tail = data + (len & ~(size_t)3);
    switch (len % 4) {
    case 3: h ^= (uint32_t)tail[2] << 16; /* fall through */
    case 2: h ^= (uint32_t)tail[1] << 8;  /* fall through */
    case 1: h ^= tail[0]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return partitions > 0 ? (int32_t)((h & 0x7fffffff) % (uint32_t)partitions) : 0;
}

int64_t cx_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cx_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double cx_mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
