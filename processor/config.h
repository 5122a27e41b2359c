/*
 * config.h — cxstream's configuration: every key declared once in a table (name, type, default,
 * bounds, help, field) in config.c, parsed from a Kafka-style properties file, the environment
 * (CXSTREAM_<KEY>) and --set, in that order of increasing precedence (DESIGN §3). The reference
 * docs/configuration.md is generated from the same table (cx_config_write_reference), and a unit
 * test checks the two agree.
 *
 * Precedence is the order of calls: cx_config_new() (built-in defaults), then
 * cx_config_load_file(), then cx_config_load_env(), then cx_config_set_kv() for each --set, then
 * cx_config_validate() for the checks that involve several keys. Each set is all-or-nothing: a
 * refused value leaves the previous one in place.
 *
 * Ownership: the cx_config_t owns every string and array it points to (topic names, currencies,
 * kafka pairs); they stay valid until the next set of the same key or cx_config_destroy(). The
 * pipeline treats a loaded config as read-only and may borrow segment names for its whole life.
 */
#ifndef CX_CONFIG_H
#define CX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cx.h"
#include "event.h"

#define CX_SEGMENT_NAME_MAX 47 /* bytes, without the NUL */
#define CX_SEGMENTS_MAX     16

/* One segment rule: a customer whose scores lie inside all three inclusive ranges matches. The
 * first matching rule of the ordered list wins (DESIGN §6). */
typedef struct cx_segment_rule {
    char name[CX_SEGMENT_NAME_MAX + 1];
    uint8_t rmin, rmax, fmin, fmax, mmin, mmax;
} cx_segment_rule_t;

/* A librdkafka property passed through: key without the "kafka." prefix. Both strings owned. */
typedef struct cx_kv {
    char *key;
    char *value;
} cx_kv_t;

typedef enum { CX_GUARANTEE_AT_LEAST_ONCE = 0, CX_GUARANTEE_EXACTLY_ONCE } cx_guarantee_t;
#define CX_THREADS_MAX 64 /* processing.threads */
typedef enum { CX_SCORING_FIXED = 0, CX_SCORING_QUANTILE } cx_scoring_t;
typedef enum { CX_LOG_FORMAT_TEXT = 0, CX_LOG_FORMAT_JSON } cx_log_format_t;

typedef struct cx_config {
    /* topics (DESIGN §4) */
    char *topic_play;
    char *topic_purchase;
    char *topic_email_send;
    char *topic_survey;
    char *topic_campaigns;
    char *topic_segment_changes;
    char *topic_disengagement_triggers;
    char *topic_campaign_responses;
    char *topic_campaign_kpis;
    char *topic_enriched;
    char *topic_dlq;
    char *topic_changelog;
    char *topic_partials;

    /* input, event time */
    int64_t input_max_idle_ms;
    int64_t input_max_buffered;
    int64_t input_buffer_kb;
    int64_t input_min_ts_ms;
    int64_t input_max_future_ms;
    int64_t watermark_lateness_ms;
    int64_t watermark_idle_advance_ms; /* 0 = off */
    char **currencies;                 /* NULL-free array of 3-letter codes; empty = any */
    size_t n_currencies;
    cx_guarantee_t guarantee;
    int32_t processing_threads; /* pipelines of `run`, each a group member (CX_THREADS_MAX at most) */
    int32_t input_partitions;   /* 0 = discover */
    int32_t replay_partitions;

    /* RFM (DESIGN §6) */
    int32_t retrieval_min_seconds;
    int32_t rfm_window_days;
    cx_scoring_t rfm_scoring;
    int32_t rfm_r_days[4]; /* ascending: R 5, 4, 3, 2 when recency <= r_days[i] */
    int64_t rfm_f_min[4];  /* descending: F 5, 4, 3, 2 when frequency >= f_min[i] */
    int64_t rfm_m_min[4];  /* descending: M 5, 4, 3, 2 when monetary >= m_min[i] */
    int32_t rfm_rescore_days;
    int64_t rfm_min_customers;
    cx_segment_rule_t segments[CX_SEGMENTS_MAX];
    size_t n_segments;

    /* voice of customer, campaigns, contacts */
    int32_t nps_window_days;
    int32_t campaign_wait_days;
    int64_t kpi_interval_ms;
    int64_t kpi_partials_interval_ms;      /* 0 = at each flush */
    int32_t exclusion_weeks[CX_CT__COUNT]; /* index = cx_campaign_type_t */
    int32_t contacts_max;

    /* disengagement */
    int32_t inactivity_min_days;
    double inactivity_k;
    int32_t inactivity_min_play_days;
    double drop_fraction;
    int32_t drop_min_history_weeks;
    double churn_p_alive;
    int32_t trigger_cooldown_days;
    double trigger_regular_cv;

    /* BG/NBD, Gamma-Gamma, CLV */
    double bgnbd_r, bgnbd_alpha, bgnbd_a, bgnbd_b;
    int32_t bgnbd_unit_days;
    double gammagamma_p, gammagamma_q, gammagamma_gamma;
    int32_t clv_horizon_days;

    /* state */
    int32_t dedup_per_customer;
    char *state_dir;
    int64_t state_block_cache_mb, state_write_buffer_mb;
    int64_t cache_max_customers;
    int64_t cache_max_decoded;
    int64_t commit_interval_ms;

    /* HTTP, Kafka, logs */
    int32_t http_port; /* 0 = off */
    char *http_bind;
    char *http_advertised; /* "" or host:port */
    char *group_id;
    char *bootstrap_servers;   /* kafka.bootstrap.servers, when set, wins: see cx_config_bootstrap_servers */
    char *schema_registry_url; /* "" = fixed schema ids */
    bool enriched_enabled;
    cx_log_level_t log_level;
    cx_log_format_t log_format;
    int64_t statistics_interval_ms; /* librdkafka statistics.interval.ms; 0 = off */

    /* kafka.* pass-through, in first-set order; a later set of the same key replaces the value in
     * place. Names are not validated here: rd_kafka_conf_set() does that when the conf is built. */
    cx_kv_t *kafka;
    size_t n_kafka;
} cx_config_t;

/* Built-in defaults (the table's default texts, parsed by the same code as user values). NULL only
 * when out of memory. */
cx_config_t *cx_config_new(void);
void cx_config_destroy(cx_config_t *cfg); /* NULL ok */

/* Reads a properties file: key=value lines, `#` or `!` comment lines, blank lines, whitespace
 * around key and value trimmed, a line ending in an odd number of `\` continues on the next.
 * Errors name file:line. CX_ERR_CONFIG also when the file cannot be read. */
cx_err_t cx_config_load_file(cx_config_t *cfg, const char *path, char *errstr, size_t errstr_size);

/* Applies CXSTREAM_* variables of envp (NULL: the process environment): CXSTREAM_<KEY> with KEY
 * the key upper-cased and `.` → `_`; CXSTREAM_KAFKA_<NAME> → kafka.<name lower-cased, `_` → `.`>.
 * A CXSTREAM_ variable that matches no key is refused. */
cx_err_t cx_config_load_env(cx_config_t *cfg, char *const *envp, char *errstr, size_t errstr_size);

/* Sets one key from text. `source` says where the value came from for the error message
 * ("--set", "file cx.properties:12", "env CXSTREAM_X"); NULL for none. */
cx_err_t cx_config_set(cx_config_t *cfg, const char *key, const char *value, const char *source, char *errstr,
                       size_t errstr_size);
/* Same from "key=value" (whitespace around both trimmed). */
cx_err_t cx_config_set_kv(cx_config_t *cfg, const char *kv, const char *source, char *errstr, size_t errstr_size);

/* Checks across keys (each key's own bounds are checked when it is set): topic names distinct. */
cx_err_t cx_config_validate(const cx_config_t *cfg, char *errstr, size_t errstr_size);

/* Writes the markdown reference (preamble, then one table row per key: key, type, default, range,
 * description). docs/configuration.md is exactly this output; regenerate it with
 * tools/gen_config_doc.sh (runs test_config with CX_REGEN_DOCS=1). */
cx_err_t cx_config_write_reference(FILE *out);

/* Current effective value of `key` as text, written to buf (truncated to n), for logs and the
 * /metrics info line. kafka.<name> gives the pass-through value; values of kafka.* names that
 * contain "password", "secret" or "jaas" are masked as "***". NULL if the key is unknown or a
 * kafka.* name that is not set. */
const char *cx_config_get_text(const cx_config_t *cfg, const char *key, char *buf, size_t n);

/* The declared keys, in table order, for logging the effective configuration. */
size_t cx_config_key_count(void);
const char *cx_config_key_name(size_t i); /* NULL when i >= count */

/* Index of the first segment rule matching scores (r, f, m), each 1..5; -1 if a score is out of
 * range (a set map always covers all 125 combinations). */
int cx_config_segment_of(const cx_config_t *cfg, int r, int f, int m);

/* The pass-through value of a librdkafka property (name without "kafka."), or NULL. */
const char *cx_config_kafka_value(const cx_config_t *cfg, const char *name);
/* bootstrap.servers to use: kafka.bootstrap.servers if set, else bootstrap.servers. */
const char *cx_config_bootstrap_servers(const cx_config_t *cfg);
/* commit.interval_ms, or when it is 0 (the default) the guarantee's: at-least-once commits less
 * often (+41% end to end at 5 s on the 10 M-record benchmark; a crash replays up to one interval),
 * exactly-once every second (outputs become visible to read_committed readers at the commit). */
#define CX_COMMIT_MS_AT_LEAST_ONCE 5000
#define CX_COMMIT_MS_EXACTLY_ONCE  1000
int64_t cx_config_commit_interval_ms(const cx_config_t *cfg);
/* True when currency.allowed is empty or lists `code` (3 letters, NUL-terminated). */
bool cx_config_currency_allowed(const cx_config_t *cfg, const char *code);

/* One topic cxstream reads or writes (DESIGN §3). */
typedef struct cx_topic_use {
    const char *name;
    bool input;   /* one of the four input topics */
    bool global;  /* one partition (a table read whole by every instance), else partitioned like the inputs */
    bool compact; /* cleanup.policy=compact */
} cx_topic_use_t;
#define CX_TOPICS_MAX 16
/* Every topic of cfg, inputs first; returns how many were written to out. */
size_t cx_config_topics(const cx_config_t *cfg, cx_topic_use_t out[CX_TOPICS_MAX]);

#endif
