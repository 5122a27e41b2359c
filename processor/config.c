/*
 * config.c — the configuration table and its parsers. Every key is declared once in cfg_keys[]
 * (name, type, default text, bounds, help, field offset), as Fluent Bit's config_map[] and Redis's
 * static_configs[] do; defaults are applied by parsing the default text with the same code as user
 * values, so the table, the struct's initial state and the generated reference cannot disagree.
 * Sources (file, environment, --set) all end in cx_config_set(), which parses into temporaries and
 * commits only on success, and names key, source and reason when it refuses.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

typedef enum {
    CFG_STRING,     /* char * */
    CFG_TOPIC,      /* char *, a valid Kafka topic name */
    CFG_INT32,      /* int32_t */
    CFG_INT64,      /* int64_t */
    CFG_TS,         /* int64_t epoch ms; also ISO-8601 UTC text */
    CFG_DOUBLE,     /* double */
    CFG_BOOL,       /* bool */
    CFG_ENUM,       /* an enum stored as int: index into enum_names */
    CFG_CURRENCIES, /* char **currencies + n_currencies */
    CFG_R_DAYS,     /* int32_t[4], strictly ascending */
    CFG_MIN4,       /* int64_t[4], strictly descending */
    CFG_SEGMENTS    /* segments[] + n_segments */
} cfg_type_t;

/* flags */
#define CFG_NONEMPTY 0x1  /* strings: must not be empty */
#define CFG_NO_MAX   0x2  /* numbers: no upper bound */
#define CFG_MIN_EXCL 0x4  /* numbers: min itself is refused (> min) */
#define CFG_HOSTPORT 0x8  /* strings: empty or host:port */
#define CFG_URL      0x10 /* strings: empty or http(s)://... */

typedef struct cfg_key {
    const char *name;
    cfg_type_t type;
    const char *def; /* default, as text: parsed by cx_config_set() at cx_config_new() */
    double min, max; /* inclusive bounds of numbers and list elements */
    int flags;
    const char *const *enum_names;
    int n_enum;
    size_t off;
    const char *help;
} cfg_key_t;

static const char *const guarantee_names[] = {"at_least_once", "exactly_once"};
static const char *const scoring_names[] = {"fixed", "quantile"};
static const char *const log_level_names[] = {"debug", "info", "warn", "error"};
static const char *const log_format_names[] = {"text", "json"};

_Static_assert(sizeof(cx_guarantee_t) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(cx_scoring_t) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(cx_log_level_t) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(cx_log_format_t) == sizeof(int), "enums are stored as int");

#define OFF(f) offsetof(cx_config_t, f)
#define DAY_MS 86400000.0
#define TOPIC(key, field, def, help) \
    { key, CFG_TOPIC, def, 0, 0, CFG_NONEMPTY, NULL, 0, OFF(field), help }
#define STR(key, field, def, flags, help) \
    { key, CFG_STRING, def, 0, 0, flags, NULL, 0, OFF(field), help }
#define I32(key, field, def, lo, hi, help) \
    { key, CFG_INT32, def, lo, hi, 0, NULL, 0, OFF(field), help }
#define I64(key, field, def, lo, hi, flags, help) \
    { key, CFG_INT64, def, lo, hi, flags, NULL, 0, OFF(field), help }
#define DBL(key, field, def, lo, hi, flags, help) \
    { key, CFG_DOUBLE, def, lo, hi, flags, NULL, 0, OFF(field), help }
#define ENUM(key, field, def, names, help) \
    { key, CFG_ENUM, def, 0, 0, 0, names, (int)(sizeof(names) / sizeof(names[0])), OFF(field), help }
#define EXCL(type, def)                                                       \
    I32("exclusion.weeks." #type, exclusion_weeks[CX_CT_##type], def, 0, 520, \
        "Weeks after a contact by a campaign of type " #type " during which a trigger is not `eligible`.")

static const cfg_key_t cfg_keys[] = {
    TOPIC("topic.play", topic_play, "cx.play", "Input: PlayEvent."),
    TOPIC("topic.purchase", topic_purchase, "cx.purchase", "Input: PurchaseEvent."),
    TOPIC("topic.email_send", topic_email_send, "cx.email_send", "Input: EmailSendEvent."),
    TOPIC("topic.survey", topic_survey, "cx.survey", "Input: SurveyEvent."),
    TOPIC("topic.campaigns", topic_campaigns, "cx.campaigns",
          "Input, compacted, read in full by every instance: Campaign."),
    TOPIC("topic.segment_changes", topic_segment_changes, "cx.segment_changes", "Output: SegmentChange."),
    TOPIC("topic.disengagement_triggers", topic_disengagement_triggers, "cx.disengagement_triggers",
          "Output: DisengagementTrigger."),
    TOPIC("topic.campaign_responses", topic_campaign_responses, "cx.campaign_responses", "Output: CampaignResponse."),
    TOPIC("topic.campaign_kpis", topic_campaign_kpis, "cx.campaign_kpis", "Output, compacted: CampaignKpi."),
    TOPIC("topic.enriched", topic_enriched, "cx.enriched", "Output: EnrichedEvent (see `enriched.enabled`)."),
    TOPIC("topic.dlq", topic_dlq, "cx.dlq", "Output: rejected input records with `cx.error*` headers."),
    TOPIC("topic.changelog", topic_changelog, "cx.changelog",
          "Internal, compacted, partitioned like the input: state and offsets."),
    TOPIC("topic.partials", topic_partials, "cx.partials",
          "Internal, compacted, global: per-partition partial aggregates and watermarks."),
    I64("input.max_idle_ms", input_max_idle_ms, "100", 0, 3600000, 0,
        "How long the event-time merge waits for an input partition that is at its end (Kafka Streams' "
        "`max.task.idle.ms`)."),
    I64("input.max_buffered_records", input_max_buffered, "20000", 4, 10000000, 0,
        "Records buffered per input partition ahead of the event-time merge; a partition that holds this "
        "many while the merge waits for another input of its partition (or `input.buffer_kb` is full) is "
        "paused until it drains to a quarter (bounds memory while one input lags)."),
    I64("input.buffer_kb", input_buffer_kb, "8192", 64, 1048576, 0,
        "Input records copied out of the consumer ahead of the event-time merge, in KB per instance "
        "(split among `processing.threads`); each poll takes what librdkafka has queued up to this. "
        "Larger costs cache misses; smaller makes more, shorter rounds."),
    {"input.min_ts", CFG_TS, "1990-01-01T00:00:00Z", 0, 0, CFG_NO_MAX, NULL, 0, OFF(input_min_ts_ms),
     "Events with an earlier `ts` go to the DLQ (BAD_TIMESTAMP). Epoch milliseconds or ISO-8601 UTC "
     "(`YYYY-MM-DD[THH:MM[:SS[.mmm]]Z]`)."},
    I64("input.max_future_ms", input_max_future_ms, "86400000", 0, 365 * DAY_MS, 0,
        "In `run`, events more than this past wall clock go to the DLQ (BAD_TIMESTAMP)."),
    I64("watermark.lateness_ms", watermark_lateness_ms, "0", 0, 30 * DAY_MS, 0,
        "The watermark trails the largest merged `ts` by this much."),
    I64("watermark.idle_advance_ms", watermark_idle_advance_ms, "0", 0, 30 * DAY_MS, 0,
        "0 = off. Otherwise wall clock advances the watermark of a partition that received nothing for "
        "this long (never in replay)."),
    {"currency.allowed", CFG_CURRENCIES, "", 0, 0, 0, NULL, 0, OFF(currencies),
     "Comma-separated ISO 4217 codes (three upper-case letters). Empty: any currency. Otherwise "
     "purchases in other currencies go to the DLQ (UNKNOWN_CURRENCY)."},
    ENUM("processing.guarantee", guarantee, "at_least_once", guarantee_names,
         "`exactly_once` uses Kafka transactions for outputs, changelog, partials and offsets."),
    I32("processing.threads", processing_threads, "1", 1, CX_THREADS_MAX,
        "Pipelines of `cxstream run`, each on its own thread and a member of the group with its own share "
        "of the partitions, producer, state (`state.dir`/thread-K when above 1) and an equal share of "
        "`cache.max_customers`, `cache.max_decoded`, `state.block_cache_mb` and `state.write_buffer_mb`, "
        "so the instance's memory stays bounded by those (like Kafka Streams' `num.stream.threads`)."),
    I32("input.partitions", input_partitions, "0", 0, 100000, "Input partition count P; 0 = discover from the broker."),
    I32("replay.partitions", replay_partitions, "1", 1, 1024,
        "Partitions simulated by `replay` (by murmur2 of the key); `--partitions` overrides."),
    I32("retrieval.min_seconds", retrieval_min_seconds, "120", 0, 86400,
        "A play of at least this many seconds is a transaction (a retrieval) and a play day."),
    I32("rfm.window_days", rfm_window_days, "365", 1, 3660, "Trailing window of frequency and monetary value."),
    ENUM("rfm.scoring", rfm_scoring, "fixed", scoring_names,
         "`fixed`: thresholds below; `quantile`: quintiles over the customer base."),
    {"rfm.r_days", CFG_R_DAYS, "7,30,90,180", 0, 36600, 0, NULL, 0, OFF(rfm_r_days),
     "Four strictly ascending recency limits in days for R = 5, 4, 3, 2 (recency <= limit); else R = 1."},
    {"rfm.f_min", CFG_MIN4, "100,40,12,4", 0, 0, CFG_NO_MAX, NULL, 0, OFF(rfm_f_min),
     "Four strictly descending minimum transaction counts for F = 5, 4, 3, 2; else F = 1."},
    {"rfm.m_min", CFG_MIN4, "50000,20000,8000,2000", 0, 0, CFG_NO_MAX, NULL, 0, OFF(rfm_m_min),
     "Four strictly descending minimum amounts (minor units) for M = 5, 4, 3, 2; else M = 1."},
    I32("rfm.rescore_days", rfm_rescore_days, "1", 1, 365, "Quantile scoring: days of event time between re-scorings."),
    I64("rfm.min_customers", rfm_min_customers, "1000", 1, 1e9, 0,
        "Quantile scoring starts once the customer base has this many customers."),
    {"rfm.segments", CFG_SEGMENTS,
     "Champions:R>=4,F>=4,M>=4;Cannot Lose Them:R<=2,F>=4,M>=4;At Risk:R<=2,F>=3;Loyal:R>=3,F>=4;"
     "Potential Loyalist:R>=4,F=2-3;New:R=5,F=1;Promising:R=4,F=1;Need Attention:R=3,F=2-3;"
     "About To Sleep:R=3,F=1;Hibernating:R=2,F<=2;Lost:R=1,F<=2",
     0, 0, 0, NULL, 0, OFF(segments),
     "Ordered segment rules, first match wins: `Name:COND,COND;Name:...`, COND one of `R>=n`, `R<=n`, "
     "`R=n`, `R=n-m` (likewise F, M); an absent score means 1-5. At most 16 rules, names 1-47 bytes, "
     "and together the rules must cover all 125 (R, F, M) combinations."},
    I32("nps.window_days", nps_window_days, "90", 1, 3660,
        "Trailing window of the NPS per segment and per touchpoint."),
    I32("campaign.wait_days", campaign_wait_days, "7", 0, 365,
        "How long a send waits for its campaign record before it is measured without it."),
    I64("kpi.interval_ms", kpi_interval_ms, "3600000", 1000, 365 * DAY_MS, 0,
        "Event time between CampaignKpi records of an open campaign that changed."),
    I64("kpi.partials_interval_ms", kpi_partials_interval_ms, "0", 0, 3600000, 0,
        "Minimum wall time between publications of changed partials; 0 = at each flush."),
    EXCL(NEWSLETTER, "0"),
    EXCL(WIN_BACK, "4"),
    EXCL(CROSS_SELL, "0"),
    EXCL(ONBOARDING, "0"),
    EXCL(OTHER, "0"),
    I32("contacts.max", contacts_max, "8", 1, 8,
        "Contacts kept per customer (besides the latest per campaign type); the Profile record holds at most 8."),
    I32("inactivity.min_days", inactivity_min_days, "14", 1, 3650,
        "STOPPED_STREAMING fires at the last play day + max(this, `inactivity.k` x usual gap) days."),
    DBL("inactivity.k", inactivity_k, "3.0", 0, 100, 0, "Multiple of the usual gap between play days."),
    I32("inactivity.min_play_days", inactivity_min_play_days, "3", 2, 1000,
        "Play days a customer needs before STOPPED_STREAMING and ENGAGEMENT_DROP apply."),
    DBL("drop.fraction", drop_fraction, "0.3", 0, 1, CFG_MIN_EXCL,
        "ENGAGEMENT_DROP when play days in the last 28 days fall below this x 4 x the weekly rate of the 12 "
        "weeks before."),
    I32("drop.min_history_weeks", drop_min_history_weeks, "8", 1, 520,
        "Weeks of history a customer needs before ENGAGEMENT_DROP applies."),
    DBL("churn.p_alive", churn_p_alive, "0.2", 0, 1, 0, "CHURN_RISK fires when P(alive) falls below this."),
    I32("trigger.cooldown_days", trigger_cooldown_days, "14", 0, 3650,
        "At most one trigger per customer in this many days, across kinds."),
    DBL("trigger.regular_cv", trigger_regular_cv, "0.5", 0, 10, 0,
        "Gaps with a coefficient of variation below this (over >= 8 play days) suggest LOGIN_REMINDER."),
    DBL("bgnbd.r", bgnbd_r, "0.243", 0, 1e6, CFG_MIN_EXCL, "BG/NBD r (CDNOW, Fader, Hardie & Lee 2005)."),
    DBL("bgnbd.alpha", bgnbd_alpha, "4.414", 0, 1e6, CFG_MIN_EXCL, "BG/NBD alpha, in units of `bgnbd.unit_days`."),
    DBL("bgnbd.a", bgnbd_a, "0.793", 0, 1e6, CFG_MIN_EXCL, "BG/NBD a."),
    DBL("bgnbd.b", bgnbd_b, "2.426", 0, 1e6, CFG_MIN_EXCL, "BG/NBD b."),
    I32("bgnbd.unit_days", bgnbd_unit_days, "7", 1, 365, "Time unit of the BG/NBD parameters, in days."),
    DBL("gammagamma.p", gammagamma_p, "6.25", 0, 1e6, CFG_MIN_EXCL, "Gamma-Gamma p."),
    DBL("gammagamma.q", gammagamma_q, "3.74", 1, 1e6, CFG_MIN_EXCL,
        "Gamma-Gamma q (> 1, so that the expected spend is finite)."),
    DBL("gammagamma.gamma", gammagamma_gamma, "1544", 0, 1e12, CFG_MIN_EXCL, "Gamma-Gamma gamma, in minor units."),
    I32("clv.horizon_days", clv_horizon_days, "365", 1, 3650, "Horizon of `clv_minor` (undiscounted)."),
    I32("dedup.per_customer", dedup_per_customer, "8", 1, 32,
        "Recent event ids kept per customer to drop duplicates (above 8, each decoded profile holds 192 B more)."),
    STR("state.dir", state_dir, "./cxstream-state", CFG_NONEMPTY, "RocksDB directory of local state."),
    I64("state.block_cache_mb", state_block_cache_mb, "64", 1, 1048576, 0, "RocksDB block cache, in MB."),
    I64("state.write_buffer_mb", state_write_buffer_mb, "32", 1, 4096, 0,
        "RocksDB memtable size, in MB (up to two are held while one is written out; a commit's write "
        "goes in chunks of 4 MB, so it fills several)."),
    I64("cache.max_customers", cache_max_customers, "200000", 1, 1e9, 0,
        "Profiles held in the write-back cache, decoded or encoded."),
    I64("cache.max_decoded", cache_max_decoded, "200000", 1, 1e9, 0,
        "Of those, profiles held decoded (576 B plus day buckets and campaign block, ~2 KB for an active "
        "customer); the others stay in their compact encoding (~0.2-0.5 KB) "
        "until used."),
    I64("commit.interval_ms", commit_interval_ms, "0", 0, 3600000, 0,
        "Wall time between flushes (state, changelog, offsets). 0 = by `processing.guarantee`: 5000 for "
        "`at_least_once` (outputs go out as events are processed; the interval is what a crash replays), "
        "1000 for `exactly_once` (`read_committed` readers see outputs at the commit). The longest interval: "
        "when the input goes quiet, what was processed is committed at once (at most once a second)."),
    I32("http.port", http_port, "9464", 0, 65535, "HTTP port for /metrics, health, API and dashboard; 0 = off."),
    STR("http.bind", http_bind, "0.0.0.0", CFG_NONEMPTY, "Address the HTTP server binds to."),
    STR("http.advertised", http_advertised, "", CFG_HOSTPORT,
        "host:port other instances and clients use to reach this one (published in cx.partials `owner::<p>` "
        "records for interactive queries, docs/dashboard.md); empty = `http.bind:http.port`, or "
        "`<hostname>:http.port` when bound to 0.0.0.0."),
    STR("group.id", group_id, "cxstream", CFG_NONEMPTY,
        "Consumer group of the input topics (`kafka.group.id`, when set, wins)."),
    STR("bootstrap.servers", bootstrap_servers, "localhost:9092", CFG_NONEMPTY,
        "Kafka brokers (`kafka.bootstrap.servers`, when set, wins)."),
    STR("schema.registry.url", schema_registry_url, "", CFG_URL,
        "Confluent-compatible Schema Registry; empty = the fixed schema ids of `schemas/ids.json`."),
    {"enriched.enabled", CFG_BOOL, "true", 0, 0, 0, NULL, 0, OFF(enriched_enabled), "Produce `cx.enriched`."},
    ENUM("log.level", log_level, "info", log_level_names, "Least severe level logged."),
    ENUM("log.format", log_format, "text", log_format_names,
         "`text`: `level component key=value ...`; `json`: one JSON object per line."),
    I64("statistics.interval_ms", statistics_interval_ms, "5000", 0, 86400000, 0,
        "librdkafka statistics interval (consumer lag metrics); 0 = off."),
};

#define N_KEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

/* ------------------------------------------------------------------ helpers */

static const cfg_key_t *find_key(const char *name) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(cfg_keys[i].name, name) == 0) return &cfg_keys[i];
    return NULL;
}

static char *trim(char *s) {
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Whole-string base-10 integer. */
static bool parse_i64(const char *s, int64_t *out) {
    if (!*s || isspace((unsigned char)*s)) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool in_bounds(const cfg_key_t *k, double v) {
    if ((k->flags & CFG_MIN_EXCL) ? !(v > k->min) : !(v >= k->min)) return false;
    if (!(k->flags & CFG_NO_MAX) && !(v <= k->max)) return false;
    return true;
}

/* "1..32", "> 0", ">= 0": for messages and the reference. */
static void range_text(const cfg_key_t *k, char *buf, size_t n) {
    const char *op = (k->flags & CFG_MIN_EXCL) ? ">" : ">=";
    if (k->flags & CFG_NO_MAX)
        snprintf(buf, n, "%s %.15g", op, k->min);
    else if (k->flags & CFG_MIN_EXCL)
        snprintf(buf, n, "> %.15g and <= %.15g", k->min, k->max);
    else
        snprintf(buf, n, "%.15g..%.15g", k->min, k->max);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Epoch ms, or ISO-8601 UTC: YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS[.mmm]]Z. */
static bool parse_ts(const char *s, int64_t *out) {
    if (parse_i64(s, out)) return true;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    size_t len = strlen(s);
    if (len < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d))
        return false;
    const char *p = s + 10;
    if (*p) {
        if ((*p != 'T' && *p != 't' && *p != ' ') || !digits(p + 1, 2, &h) || p[3] != ':' || !digits(p + 4, 2, &mi))
            return false;
        p += 6;
        if (*p == ':') {
            if (!digits(p + 1, 2, &sec)) return false;
            p += 3;
            if (*p == '.') {
                int nd = 0;
                p++;
                while (p[nd] >= '0' && p[nd] <= '9')
                    nd++;
                if (nd < 1 || nd > 3) return false;
                digits(p, nd, &ms);
                for (int i = nd; i < 3; i++)
                    ms *= 10;
                p += nd;
            }
        }
        if (strcmp(p, "Z") != 0 && strcmp(p, "z") != 0) return false;
    }
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 ||
        sec > 59)
        return false;
    *out = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * INT64_C(60000) + sec * 1000 + ms;
    return true;
}

static bool valid_topic(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-')) return false;
    }
    return true;
}

static bool valid_hostport(const char *s) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return false;
    int64_t port;
    if (!parse_i64(colon + 1, &port) || port < 1 || port > 65535) return false;
    for (const char *p = s; p < colon; p++)
        if (isspace((unsigned char)*p) || *p == '/') return false;
    return true;
}

/* Splits `s` at `sep` into at most `max` trimmed parts written into the copy `tmp` (caller frees).
 * Returns the number of parts, or -1 when there are more than max. */
static int split(const char *s, char sep, char *tmp, char **parts, int max) {
    strcpy(tmp, s);
    int n = 0;
    char *p = tmp;
    for (;;) {
        char *e = strchr(p, sep);
        if (e) *e = '\0';
        if (n == max) return -1;
        parts[n++] = trim(p);
        if (!e) break;
        p = e + 1;
    }
    return n;
}

/* ------------------------------------------------------------- segment map */

static void segment_rule_text(const cx_segment_rule_t *r, char *buf, size_t n) {
    size_t len = (size_t)snprintf(buf, n, "%s:", r->name);
    const char letters[3] = {'R', 'F', 'M'};
    const uint8_t lo[3] = {r->rmin, r->fmin, r->mmin}, hi[3] = {r->rmax, r->fmax, r->mmax};
    bool first = true;
    for (int i = 0; i < 3 && len < n; i++) {
        if (lo[i] == 1 && hi[i] == 5) continue;
        const char *comma = first ? "" : ",";
        first = false;
        if (lo[i] == hi[i])
            len += (size_t)snprintf(buf + len, n - len, "%s%c=%u", comma, letters[i], lo[i]);
        else if (hi[i] == 5)
            len += (size_t)snprintf(buf + len, n - len, "%s%c>=%u", comma, letters[i], lo[i]);
        else if (lo[i] == 1)
            len += (size_t)snprintf(buf + len, n - len, "%s%c<=%u", comma, letters[i], hi[i]);
        else
            len += (size_t)snprintf(buf + len, n - len, "%s%c=%u-%u", comma, letters[i], lo[i], hi[i]);
    }
}

static bool score_digit(const char *s, int *v) {
    if (s[0] < '1' || s[0] > '5' || s[1]) return false;
    *v = s[0] - '0';
    return true;
}

/* One condition, e.g. "R>=4", "F=2-3"; narrows lo/hi of its score. */
static bool parse_condition(char *c, uint8_t lo[3], uint8_t hi[3], char *why, size_t wn) {
    const char *letters = "RFM";
    char *l = c[0] ? strchr(letters, toupper((unsigned char)c[0])) : NULL;
    if (!l) {
        snprintf(why, wn, "condition '%s' does not start with R, F or M", c);
        return false;
    }
    int i = (int)(l - letters), a, b;
    char *p = trim(c + 1);
    int nlo = 1, nhi = 5;
    if (strncmp(p, ">=", 2) == 0 && score_digit(trim(p + 2), &a)) {
        nlo = a;
    } else if (strncmp(p, "<=", 2) == 0 && score_digit(trim(p + 2), &a)) {
        nhi = a;
    } else if (p[0] == '=') {
        char *v = trim(p + 1), *dash = strchr(v, '-');
        if (dash) {
            *dash = '\0';
            if (!score_digit(trim(v), &a) || !score_digit(trim(dash + 1), &b) || a > b) {
                snprintf(why, wn, "condition on %c: range is not n-m with 1 <= n <= m <= 5", letters[i]);
                return false;
            }
            nlo = a;
            nhi = b;
        } else if (score_digit(v, &a)) {
            nlo = nhi = a;
        } else {
            snprintf(why, wn, "condition '%s': score must be 1-5", c);
            return false;
        }
    } else {
        snprintf(why, wn, "condition '%s' is not %c>=n, %c<=n, %c=n or %c=n-m with n, m in 1-5", c, letters[i],
                 letters[i], letters[i], letters[i]);
        return false;
    }
    if (nlo > lo[i]) lo[i] = (uint8_t)nlo;
    if (nhi < hi[i]) hi[i] = (uint8_t)nhi;
    return true;
}

static int segment_match(const cx_segment_rule_t *rules, size_t n, int r, int f, int m) {
    for (size_t i = 0; i < n; i++) {
        const cx_segment_rule_t *x = &rules[i];
        if (r >= x->rmin && r <= x->rmax && f >= x->fmin && f <= x->fmax && m >= x->mmin && m <= x->mmax) return (int)i;
    }
    return -1;
}

static bool parse_segments(const char *text, cx_segment_rule_t *out, size_t *n_out, char *why, size_t wn) {
    bool ok = false;
    char *tmp = malloc(strlen(text) + 1);
    char *rules[CX_SEGMENTS_MAX + 2];
    if (!tmp) {
        snprintf(why, wn, "out of memory");
        return false;
    }
    int n = split(text, ';', tmp, rules, CX_SEGMENTS_MAX + 1);
    if (n > 0 && rules[n - 1][0] == '\0') n--; /* tolerate a trailing ';' */
    if (n < 0 || n > CX_SEGMENTS_MAX) {
        snprintf(why, wn, "more than %d rules", CX_SEGMENTS_MAX);
        goto done;
    }
    if (n == 0) {
        snprintf(why, wn, "no rules");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        char *colon = strchr(rules[i], ':');
        if (!colon) {
            snprintf(why, wn, "rule %d '%.60s' has no ':' after the segment name", i + 1, rules[i]);
            goto done;
        }
        *colon = '\0';
        char *name = trim(rules[i]);
        size_t nl = strlen(name);
        if (nl < 1 || nl > CX_SEGMENT_NAME_MAX) {
            snprintf(why, wn, "rule %d: segment name must be 1-%d bytes", i + 1, CX_SEGMENT_NAME_MAX);
            goto done;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(out[j].name, name) == 0) {
                snprintf(why, wn, "rule %d: segment name '%s' used twice", i + 1, name);
                goto done;
            }
        uint8_t lo[3] = {1, 1, 1}, hi[3] = {5, 5, 5};
        char *conds = trim(colon + 1);
        while (*conds) {
            char *comma = strchr(conds, ',');
            if (comma) *comma = '\0';
            char cw[160];
            if (!parse_condition(trim(conds), lo, hi, cw, sizeof cw)) {
                snprintf(why, wn, "rule %d '%s': %s", i + 1, name, cw);
                goto done;
            }
            if (!comma) break;
            conds = comma + 1;
        }
        for (int d = 0; d < 3; d++)
            if (lo[d] > hi[d]) {
                snprintf(why, wn, "rule %d '%s': conditions on %c contradict each other", i + 1, name, "RFM"[d]);
                goto done;
            }
        memset(&out[i], 0, sizeof out[i]);
        memcpy(out[i].name, name, nl);
        out[i].rmin = lo[0], out[i].rmax = hi[0];
        out[i].fmin = lo[1], out[i].fmax = hi[1];
        out[i].mmin = lo[2], out[i].mmax = hi[2];
    }
    for (int r = 1; r <= 5; r++)
        for (int f = 1; f <= 5; f++)
            for (int m = 1; m <= 5; m++)
                if (segment_match(out, (size_t)n, r, f, m) < 0) {
                    snprintf(why, wn, "no rule covers R=%d F=%d M=%d (the rules must cover all 125 combinations)", r, f,
                             m);
                    goto done;
                }
    *n_out = (size_t)n;
    ok = true;
done:
    free(tmp);
    return ok;
}

/* -------------------------------------------------------------- kafka pairs */

static cx_kv_t *kafka_find(const cx_config_t *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (strcmp(cfg->kafka[i].key, name) == 0) return &cfg->kafka[i];
    return NULL;
}

static cx_err_t kafka_put(cx_config_t *cfg, const char *name, const char *value) {
    char *v = strdup(value);
    if (!v) return CX_ERR_NOMEM;
    cx_kv_t *kv = kafka_find(cfg, name);
    if (kv) {
        free(kv->value);
        kv->value = v;
        return CX_OK;
    }
    char *k = strdup(name);
    cx_kv_t *arr = k ? realloc(cfg->kafka, (cfg->n_kafka + 1) * sizeof *arr) : NULL;
    if (!arr) {
        free(k);
        free(v);
        return CX_ERR_NOMEM;
    }
    cfg->kafka = arr;
    arr[cfg->n_kafka].key = k;
    arr[cfg->n_kafka].value = v;
    cfg->n_kafka++;
    return CX_OK;
}

/* ------------------------------------------------------------------ setting */

static void free_currencies(char **c, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(c[i]);
    free(c);
}

/* Parses `value` for key `k` and stores it into cfg. On refusal fills `why` (without key or
 * source) and returns CX_ERR_CONFIG, leaving cfg unchanged. */
static cx_err_t set_value(cx_config_t *cfg, const cfg_key_t *k, const char *value, char *why, size_t wn) {
    char *field = (char *)cfg + k->off;
    char range[64];
    range_text(k, range, sizeof range);
    switch (k->type) {
    case CFG_STRING:
    case CFG_TOPIC: {
        if ((k->flags & CFG_NONEMPTY) && !*value) {
            snprintf(why, wn, "must not be empty");
            return CX_ERR_CONFIG;
        }
        if (k->type == CFG_TOPIC && !valid_topic(value)) {
            snprintf(why, wn, "'%s' is not a valid topic name (1-249 bytes of [A-Za-z0-9._-])", value);
            return CX_ERR_CONFIG;
        }
        if ((k->flags & CFG_HOSTPORT) && *value && !valid_hostport(value)) {
            snprintf(why, wn, "'%s' is not host:port", value);
            return CX_ERR_CONFIG;
        }
        if ((k->flags & CFG_URL) && *value && strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) {
            snprintf(why, wn, "'%s' is not an http:// or https:// URL", value);
            return CX_ERR_CONFIG;
        }
        char *s = strdup(value);
        if (!s) return CX_ERR_NOMEM;
        free(*(char **)field);
        *(char **)field = s;
        return CX_OK;
    }
    case CFG_INT32:
    case CFG_INT64:
    case CFG_TS: {
        int64_t v;
        if (!(k->type == CFG_TS ? parse_ts(value, &v) : parse_i64(value, &v))) {
            snprintf(why, wn, "'%s' is not %s", value,
                     k->type == CFG_TS ? "epoch milliseconds or an ISO-8601 UTC time (1990-01-01T00:00:00Z)"
                                       : "an integer");
            return CX_ERR_CONFIG;
        }
        if (!in_bounds(k, (double)v)) {
            snprintf(why, wn, "%s is out of range (%s)", value, range);
            return CX_ERR_CONFIG;
        }
        if (k->type == CFG_INT32)
            *(int32_t *)field = (int32_t)v;
        else
            *(int64_t *)field = v;
        return CX_OK;
    }
    case CFG_DOUBLE: {
        char *end;
        errno = 0;
        double v = *value && !isspace((unsigned char)*value) ? strtod(value, &end) : NAN;
        if (isnan(v) || *end || errno || !isfinite(v)) {
            snprintf(why, wn, "'%s' is not a number", value);
            return CX_ERR_CONFIG;
        }
        if (!in_bounds(k, v)) {
            snprintf(why, wn, "%s is out of range (%s)", value, range);
            return CX_ERR_CONFIG;
        }
        *(double *)field = v;
        return CX_OK;
    }
    case CFG_BOOL: {
        if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0)
            *(bool *)field = true;
        else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0)
            *(bool *)field = false;
        else {
            snprintf(why, wn, "'%s' is not a boolean (true, false, 1, 0)", value);
            return CX_ERR_CONFIG;
        }
        return CX_OK;
    }
    case CFG_ENUM: {
        for (int i = 0; i < k->n_enum; i++)
            if (strcmp(value, k->enum_names[i]) == 0) {
                *(int *)field = i;
                return CX_OK;
            }
        size_t len = (size_t)snprintf(why, wn, "'%s' is not one of", value);
        for (int i = 0; i < k->n_enum && len < wn; i++)
            len += (size_t)snprintf(why + len, wn - len, "%s %s", i ? "," : "", k->enum_names[i]);
        return CX_ERR_CONFIG;
    }
    case CFG_CURRENCIES: {
        size_t cap = strlen(value) + 1, n = 0; /* parts <= commas + 1 */
        char **codes = calloc(cap, sizeof *codes);
        char *tmp = malloc(cap);
        char **parts = calloc(cap, sizeof *parts);
        cx_err_t err = CX_ERR_NOMEM;
        if (!codes || !tmp || !parts) goto cur_done;
        err = CX_ERR_CONFIG;
        int np = *value ? split(value, ',', tmp, parts, (int)cap) : 0;
        for (int i = 0; i < np; i++) {
            const char *c = parts[i];
            if (strlen(c) != 3 || !isupper((unsigned char)c[0]) || !isupper((unsigned char)c[1]) ||
                !isupper((unsigned char)c[2])) {
                snprintf(why, wn, "'%s' is not a currency code (three upper-case letters, e.g. EUR)", c);
                goto cur_done;
            }
            if (!(codes[n++] = strdup(c))) {
                err = CX_ERR_NOMEM;
                goto cur_done;
            }
        }
        free_currencies(cfg->currencies, cfg->n_currencies);
        cfg->currencies = codes;
        cfg->n_currencies = n;
        codes = NULL;
        err = CX_OK;
    cur_done:
        if (codes) free_currencies(codes, n);
        free(tmp);
        free(parts);
        return err;
    }
    case CFG_R_DAYS:
    case CFG_MIN4: {
        char tmp[256], *parts[5];
        int64_t v[4];
        if (strlen(value) >= sizeof tmp || split(value, ',', tmp, parts, 4) != 4) {
            snprintf(why, wn, "'%s' is not a list of 4 comma-separated integers", value);
            return CX_ERR_CONFIG;
        }
        for (int i = 0; i < 4; i++) {
            if (!parse_i64(parts[i], &v[i])) {
                snprintf(why, wn, "'%s' in '%s' is not an integer", parts[i], value);
                return CX_ERR_CONFIG;
            }
            if (!in_bounds(k, (double)v[i])) {
                snprintf(why, wn, "%s in '%s' is out of range (%s)", parts[i], value, range);
                return CX_ERR_CONFIG;
            }
            if (i > 0 && (k->type == CFG_R_DAYS ? v[i] <= v[i - 1] : v[i] >= v[i - 1])) {
                snprintf(why, wn, "'%s' is not strictly %s", value, k->type == CFG_R_DAYS ? "ascending" : "descending");
                return CX_ERR_CONFIG;
            }
        }
        for (int i = 0; i < 4; i++) {
            if (k->type == CFG_R_DAYS)
                ((int32_t *)field)[i] = (int32_t)v[i];
            else
                ((int64_t *)field)[i] = v[i];
        }
        return CX_OK;
    }
    case CFG_SEGMENTS: {
        cx_segment_rule_t rules[CX_SEGMENTS_MAX];
        size_t n;
        if (!parse_segments(value, rules, &n, why, wn)) return CX_ERR_CONFIG;
        memcpy(cfg->segments, rules, sizeof rules);
        cfg->n_segments = n;
        return CX_OK;
    }
    }
    snprintf(why, wn, "internal: unhandled type");
    return CX_ERR_CONFIG;
}

static void refuse(char *errstr, size_t n, const char *key, const char *why, const char *source) {
    if (source)
        cx_seterr(errstr, n, "%s: %s (%s)", key, why, source);
    else
        cx_seterr(errstr, n, "%s: %s", key, why);
}

cx_err_t cx_config_set(cx_config_t *cfg, const char *key, const char *value, const char *source, char *errstr,
                       size_t errstr_size) {
    if (!cfg || !key || !value) {
        cx_seterr(errstr, errstr_size, "cx_config_set: NULL argument");
        return CX_ERR_INVALID;
    }
    if (strncmp(key, "kafka.", 6) == 0) {
        if (!key[6]) {
            refuse(errstr, errstr_size, key, "empty librdkafka property name", source);
            return CX_ERR_CONFIG;
        }
        cx_err_t err = kafka_put(cfg, key + 6, value);
        if (err) cx_seterr(errstr, errstr_size, "%s: out of memory", key);
        return err;
    }
    const cfg_key_t *k = find_key(key);
    if (!k) {
        refuse(errstr, errstr_size, key, "unknown key (see docs/configuration.md)", source);
        return CX_ERR_CONFIG;
    }
    char why[512];
    why[0] = '\0';
    cx_err_t err = set_value(cfg, k, value, why, sizeof why);
    if (err == CX_ERR_NOMEM)
        cx_seterr(errstr, errstr_size, "%s: out of memory", key);
    else if (err)
        refuse(errstr, errstr_size, key, why, source);
    return err;
}

cx_err_t cx_config_set_kv(cx_config_t *cfg, const char *kv, const char *source, char *errstr, size_t errstr_size) {
    if (!cfg || !kv) {
        cx_seterr(errstr, errstr_size, "cx_config_set_kv: NULL argument");
        return CX_ERR_INVALID;
    }
    char *copy = strdup(kv);
    if (!copy) return CX_ERR_NOMEM;
    cx_err_t err;
    char *eq = strchr(copy, '=');
    if (!eq) {
        if (source)
            cx_seterr(errstr, errstr_size, "'%s' is not key=value (%s)", kv, source);
        else
            cx_seterr(errstr, errstr_size, "'%s' is not key=value", kv);
        err = CX_ERR_CONFIG;
    } else {
        *eq = '\0';
        char *key = trim(copy);
        if (!*key) {
            if (source)
                cx_seterr(errstr, errstr_size, "'%s' has an empty key (%s)", kv, source);
            else
                cx_seterr(errstr, errstr_size, "'%s' has an empty key", kv);
            err = CX_ERR_CONFIG;
        } else {
            err = cx_config_set(cfg, key, trim(eq + 1), source, errstr, errstr_size);
        }
    }
    free(copy);
    return err;
}

/* ------------------------------------------------------------ life cycle */

cx_config_t *cx_config_new(void) {
    cx_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg) return NULL;
    for (size_t i = 0; i < N_KEYS; i++) {
        char why[512];
        if (set_value(cfg, &cfg_keys[i], cfg_keys[i].def, why, sizeof why) != CX_OK) {
            /* A default that does not parse is our bug (the unit test checks every one); the
             * only run-time cause is memory. */
            cx_log(CX_LOG_ERROR, "config", "msg=\"default refused\" key=%s why=\"%s\"", cfg_keys[i].name, why);
            cx_config_destroy(cfg);
            return NULL;
        }
    }
    return cfg;
}

void cx_config_destroy(cx_config_t *cfg) {
    if (!cfg) return;
    for (size_t i = 0; i < N_KEYS; i++)
        if (cfg_keys[i].type == CFG_STRING || cfg_keys[i].type == CFG_TOPIC)
            free(*(char **)((char *)cfg + cfg_keys[i].off));
    free_currencies(cfg->currencies, cfg->n_currencies);
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    free(cfg);
}

/* ------------------------------------------------------------ file, env */

static bool ends_in_continuation(const char *s, size_t n) {
    size_t bs = 0;
    while (bs < n && s[n - 1 - bs] == '\\')
        bs++;
    return bs % 2 == 1;
}

cx_err_t cx_config_load_file(cx_config_t *cfg, const char *path, char *errstr, size_t errstr_size) {
    if (!cfg || !path) {
        cx_seterr(errstr, errstr_size, "cx_config_load_file: NULL argument");
        return CX_ERR_INVALID;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        cx_seterr(errstr, errstr_size, "cannot read configuration file %s: %s", path, strerror(errno));
        return CX_ERR_CONFIG;
    }
    cx_err_t err = CX_OK;
    char *line = NULL, *logical = NULL;
    size_t line_cap = 0, logical_len = 0;
    ssize_t got;
    int lineno = 0, start_line = 0;
    bool continuing = false;
    char source[512];
    while ((got = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        size_t n = (size_t)got;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *p = line;
        if (lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3, n -= 3; /* BOM */
        while (*p == ' ' || *p == '\t' || *p == '\f')
            p++, n--;
        if (!continuing) {
            if (*p == '\0' || *p == '#' || *p == '!') continue;
            start_line = lineno;
            logical_len = 0;
        }
        continuing = ends_in_continuation(p, n);
        if (continuing) p[--n] = '\0';
        char *grown = realloc(logical, logical_len + n + 1);
        if (!grown) {
            err = CX_ERR_NOMEM;
            cx_seterr(errstr, errstr_size, "out of memory reading %s", path);
            goto done;
        }
        logical = grown;
        memcpy(logical + logical_len, p, n + 1);
        logical_len += n;
        if (continuing) continue;
        snprintf(source, sizeof source, "file %s:%d", path, start_line);
        if ((err = cx_config_set_kv(cfg, logical, source, errstr, errstr_size)) != CX_OK) goto done;
    }
    if (ferror(f)) {
        cx_seterr(errstr, errstr_size, "error reading configuration file %s: %s", path, strerror(errno));
        err = CX_ERR_CONFIG;
    } else if (continuing) {
        snprintf(source, sizeof source, "file %s:%d", path, start_line);
        err = cx_config_set_kv(cfg, logical, source, errstr, errstr_size);
    }
done:
    free(line);
    free(logical);
    fclose(f);
    return err;
}

/* CXSTREAM_<KEY>: key upper-cased, '.' -> '_'. */
static void env_name(const char *key, char *buf, size_t n) {
    size_t len = (size_t)snprintf(buf, n, "CXSTREAM_");
    for (const char *k = key; *k && len + 1 < n; k++)
        buf[len++] = *k == '.' ? '_' : (char)toupper((unsigned char)*k);
    buf[len] = '\0';
}

cx_err_t cx_config_load_env(cx_config_t *cfg, char *const *envp, char *errstr, size_t errstr_size) {
    if (!cfg) {
        cx_seterr(errstr, errstr_size, "cx_config_load_env: NULL argument");
        return CX_ERR_INVALID;
    }
    if (!envp) envp = environ;
    if (!envp) return CX_OK;
    for (char *const *e = envp; *e; e++) {
        const char *entry = *e, *eq = strchr(entry, '=');
        if (strncmp(entry, "CXSTREAM_", 9) != 0 || !eq) continue;
        char name[256], key[256], source[300];
        size_t nl = (size_t)(eq - entry);
        if (nl >= sizeof name) {
            cx_seterr(errstr, errstr_size, "%.64s...: environment variable name too long", entry);
            return CX_ERR_CONFIG;
        }
        memcpy(name, entry, nl);
        name[nl] = '\0';
        snprintf(source, sizeof source, "env %s", name);
        if (strncmp(name, "CXSTREAM_KAFKA_", 15) == 0) {
            size_t len = (size_t)snprintf(key, sizeof key, "kafka.");
            for (const char *p = name + 15; *p; p++)
                key[len++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
            key[len] = '\0';
        } else {
            const char *found = NULL;
            for (size_t i = 0; i < N_KEYS && !found; i++) {
                char want[256];
                env_name(cfg_keys[i].name, want, sizeof want);
                if (strcmp(want, name) == 0) found = cfg_keys[i].name;
            }
            if (!found) {
                cx_seterr(errstr, errstr_size,
                          "%s: no configuration key of that name (CXSTREAM_<KEY> is the key upper-cased "
                          "with . as _; see docs/configuration.md)",
                          name);
                return CX_ERR_CONFIG;
            }
            snprintf(key, sizeof key, "%s", found);
        }
        cx_err_t err = cx_config_set(cfg, key, eq + 1, source, errstr, errstr_size);
        if (err) return err;
    }
    return CX_OK;
}

/* ------------------------------------------------------------ validation */

cx_err_t cx_config_validate(const cx_config_t *cfg, char *errstr, size_t errstr_size) {
    if (!cfg) {
        cx_seterr(errstr, errstr_size, "cx_config_validate: NULL argument");
        return CX_ERR_INVALID;
    }
    /* A topic read and written by us, or two outputs sharing a topic, would loop or mix records. */
    for (size_t i = 0; i < N_KEYS; i++) {
        if (cfg_keys[i].type != CFG_TOPIC) continue;
        const char *a = *(char *const *)((const char *)cfg + cfg_keys[i].off);
        for (size_t j = i + 1; j < N_KEYS; j++) {
            if (cfg_keys[j].type != CFG_TOPIC) continue;
            const char *b = *(char *const *)((const char *)cfg + cfg_keys[j].off);
            if (strcmp(a, b) == 0) {
                cx_seterr(errstr, errstr_size, "%s and %s: both are '%s'; every topic must be distinct",
                          cfg_keys[i].name, cfg_keys[j].name, a);
                return CX_ERR_CONFIG;
            }
        }
    }
    return CX_OK;
}

/* ------------------------------------------------------------ reading */

static bool secret_name(const char *name) {
    return strstr(name, "password") || strstr(name, "secret") || strstr(name, "jaas");
}

static void value_text(const cx_config_t *cfg, const cfg_key_t *k, char *buf, size_t n) {
    const char *field = (const char *)cfg + k->off;
    size_t len = 0;
    buf[0] = '\0';
    switch (k->type) {
    case CFG_STRING:
    case CFG_TOPIC: snprintf(buf, n, "%s", *(char *const *)field); break;
    case CFG_INT32: snprintf(buf, n, "%" PRId32, *(const int32_t *)field); break;
    case CFG_INT64:
    case CFG_TS: snprintf(buf, n, "%" PRId64, *(const int64_t *)field); break;
    case CFG_DOUBLE: snprintf(buf, n, "%.17g", *(const double *)field); break;
    case CFG_BOOL: snprintf(buf, n, "%s", *(const bool *)field ? "true" : "false"); break;
    case CFG_ENUM: {
        int v = *(const int *)field;
        snprintf(buf, n, "%s", v >= 0 && v < k->n_enum ? k->enum_names[v] : "?");
        break;
    }
    case CFG_CURRENCIES:
        for (size_t i = 0; i < cfg->n_currencies && len < n; i++)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "," : "", cfg->currencies[i]);
        break;
    case CFG_R_DAYS:
        for (int i = 0; i < 4 && len < n; i++)
            len += (size_t)snprintf(buf + len, n - len, "%s%" PRId32, i ? "," : "", ((const int32_t *)field)[i]);
        break;
    case CFG_MIN4:
        for (int i = 0; i < 4 && len < n; i++)
            len += (size_t)snprintf(buf + len, n - len, "%s%" PRId64, i ? "," : "", ((const int64_t *)field)[i]);
        break;
    case CFG_SEGMENTS:
        for (size_t i = 0; i < cfg->n_segments && len < n; i++) {
            if (i) len += (size_t)snprintf(buf + len, n - len, ";");
            if (len < n) segment_rule_text(&cfg->segments[i], buf + len, n - len);
            len += strlen(buf + len);
        }
        break;
    }
}

/* %.17g prints 0.29999999999999999 for 0.3: shorten to the shortest text that reads back. */
static void shortest_double(double d, char *buf, size_t n) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) return;
    }
}

const char *cx_config_get_text(const cx_config_t *cfg, const char *key, char *buf, size_t n) {
    if (!cfg || !key || !buf || n == 0) return NULL;
    if (strncmp(key, "kafka.", 6) == 0) {
        const cx_kv_t *kv = kafka_find(cfg, key + 6);
        if (!kv) return NULL;
        snprintf(buf, n, "%s", secret_name(kv->key) ? "***" : kv->value);
        return buf;
    }
    const cfg_key_t *k = find_key(key);
    if (!k) return NULL;
    if (k->type == CFG_DOUBLE)
        shortest_double(*(const double *)((const char *)cfg + k->off), buf, n);
    else
        value_text(cfg, k, buf, n);
    return buf;
}

size_t cx_config_key_count(void) {
    return N_KEYS;
}

const char *cx_config_key_name(size_t i) {
    return i < N_KEYS ? cfg_keys[i].name : NULL;
}

int cx_config_segment_of(const cx_config_t *cfg, int r, int f, int m) {
    if (!cfg || r < 1 || r > 5 || f < 1 || f > 5 || m < 1 || m > 5) return -1;
    return segment_match(cfg->segments, cfg->n_segments, r, f, m);
}

const char *cx_config_kafka_value(const cx_config_t *cfg, const char *name) {
    const cx_kv_t *kv = cfg && name ? kafka_find(cfg, name) : NULL;
    return kv ? kv->value : NULL;
}

const char *cx_config_bootstrap_servers(const cx_config_t *cfg) {
    const char *v = cx_config_kafka_value(cfg, "bootstrap.servers");
    return v ? v : cfg->bootstrap_servers;
}

int64_t cx_config_commit_interval_ms(const cx_config_t *cfg) {
    if (cfg->commit_interval_ms > 0) return cfg->commit_interval_ms;
    return cfg->guarantee == CX_GUARANTEE_EXACTLY_ONCE ? CX_COMMIT_MS_EXACTLY_ONCE : CX_COMMIT_MS_AT_LEAST_ONCE;
}

bool cx_config_currency_allowed(const cx_config_t *cfg, const char *code) {
    if (cfg->n_currencies == 0) return true;
    for (size_t i = 0; i < cfg->n_currencies; i++)
        if (strcmp(cfg->currencies[i], code) == 0) return true;
    return false;
}

/* ------------------------------------------------------------ reference */

static const char *const type_names[] = {
    [CFG_STRING] = "string",   [CFG_TOPIC] = "topic",      [CFG_INT32] = "integer",  [CFG_INT64] = "integer",
    [CFG_TS] = "timestamp",    [CFG_DOUBLE] = "number",    [CFG_BOOL] = "bool",      [CFG_ENUM] = "enum",
    [CFG_CURRENCIES] = "list", [CFG_R_DAYS] = "list of 4", [CFG_MIN4] = "list of 4", [CFG_SEGMENTS] = "segment map",
};

static const char reference_preamble[] =
    "<!-- Generated from the key table in processor/config.c by tools/gen_config_doc.sh; do not edit. -->\n"
    "# cxstream configuration reference\n"
    "\n"
    "cxstream reads a Kafka-style properties file (`cxstream run -c FILE`): one `key=value` per line,\n"
    "lines starting with `#` or `!` are comments, blank lines are ignored, whitespace around the key and\n"
    "the value is trimmed, and a line ending in a single `\\` continues on the next line (leading\n"
    "whitespace of the continuation is dropped). A key given twice takes the later value.\n"
    "\n"
    "Precedence, lowest first: built-in defaults (below) < the file < environment variables <\n"
    "`--set key=value` on the command line.\n"
    "\n"
    "- **Environment.** `CXSTREAM_<KEY>` sets `<key>`: the key upper-cased with `.` written as `_`, e.g.\n"
    "  `CXSTREAM_RFM_WINDOW_DAYS=180`, `CXSTREAM_EXCLUSION_WEEKS_WIN_BACK=6`. `CXSTREAM_KAFKA_<NAME>` sets\n"
    "  `kafka.<name>` with the name lower-cased and `_` written as `.`, e.g.\n"
    "  `CXSTREAM_KAFKA_SECURITY_PROTOCOL=ssl`. Any other variable starting with `CXSTREAM_` is refused.\n"
    "- **librdkafka pass-through.** Every `kafka.<property>` key is handed to librdkafka as `<property>`\n"
    "  (consumer, producer and admin clients), in the order first given; cxstream does not check the\n"
    "  names, librdkafka does when the client is created. `bootstrap.servers` and `group.id` below are\n"
    "  applied first and `kafka.*` after them, so `kafka.bootstrap.servers` and `kafka.group.id` win when\n"
    "  both are set. Values of `kafka.*` properties whose names contain `password`, `secret` or `jaas`\n"
    "  are shown as `***` in logs.\n"
    "- **Errors.** An unknown key, a bad value or an unknown `CXSTREAM_` variable stops cxstream with exit\n"
    "  code 2 and a message naming the key, where it came from and why, e.g.\n"
    "  `rfm.window_days: 'abc' is not an integer (file cx.properties:12)`.\n"
    "- **Checks across keys.** All topic names must be distinct.\n"
    "\n"
    "Integers are base 10. Booleans are `true`, `false`, `1` or `0`. Durations carry their unit in the\n"
    "key (`_ms`, `_days`, `_weeks`, `_seconds`); amounts are in minor currency units. Ranges are inclusive.\n"
    "\n"
    "To regenerate this file after changing the table: `bash tools/gen_config_doc.sh` (it runs the\n"
    "`test_config` unit test with `CX_REGEN_DOCS=1`; without it the test fails when this file differs).\n"
    "\n"
    "List ranges apply to each element.\n"
    "\n"
    "| key | type | default | range | description |\n"
    "|---|---|---|---|---|\n";

/* Writes s for a markdown table cell: '|' escaped. */
static void cell(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', out);
        fputc(*s, out);
    }
}

cx_err_t cx_config_write_reference(FILE *out) {
    if (!out) return CX_ERR_INVALID;
    fputs(reference_preamble, out);
    for (size_t i = 0; i < N_KEYS; i++) {
        const cfg_key_t *k = &cfg_keys[i];
        char range[256] = "";
        switch (k->type) {
        case CFG_INT32:
        case CFG_INT64:
        case CFG_DOUBLE:
        case CFG_TS:
        case CFG_R_DAYS:
        case CFG_MIN4: range_text(k, range, sizeof range); break;
        case CFG_ENUM: {
            size_t len = 0;
            for (int j = 0; j < k->n_enum && len < sizeof range; j++)
                len += (size_t)snprintf(range + len, sizeof range - len, "%s`%s`", j ? ", " : "", k->enum_names[j]);
            break;
        }
        case CFG_BOOL: snprintf(range, sizeof range, "`true`, `false`"); break;
        case CFG_TOPIC: snprintf(range, sizeof range, "`[A-Za-z0-9._-]`, 1-249"); break;
        case CFG_STRING:
            snprintf(range, sizeof range, "%s",
                     (k->flags & CFG_HOSTPORT)   ? "empty or host:port"
                     : (k->flags & CFG_URL)      ? "empty or http(s):// URL"
                     : (k->flags & CFG_NONEMPTY) ? "non-empty"
                                                 : "");
            break;
        case CFG_CURRENCIES: snprintf(range, sizeof range, "ISO 4217 codes"); break;
        case CFG_SEGMENTS: snprintf(range, sizeof range, "covers all 125 (R,F,M)"); break;
        }
        fprintf(out, "| `%s` | %s | ", k->name, type_names[k->type]);
        if (*k->def) {
            fputc('`', out);
            cell(out, k->def);
            fputc('`', out);
        } else {
            fputs("(empty)", out);
        }
        fputs(" | ", out);
        cell(out, range);
        fputs(" | ", out);
        cell(out, k->help);
        fputs(" |\n", out);
    }
    return ferror(out) ? CX_ERR_IO : CX_OK;
}

size_t cx_config_topics(const cx_config_t *c, cx_topic_use_t out[CX_TOPICS_MAX]) {
    const cx_topic_use_t t[] = {
        {c->topic_play, true, false, false},
        {c->topic_purchase, true, false, false},
        {c->topic_email_send, true, false, false},
        {c->topic_survey, true, false, false},
        {c->topic_campaigns, false, true, true},
        {c->topic_segment_changes, false, false, false},
        {c->topic_disengagement_triggers, false, false, false},
        {c->topic_campaign_responses, false, false, false},
        {c->topic_campaign_kpis, false, false, true},
        {c->topic_enriched, false, false, false},
        {c->topic_dlq, false, false, false},
        {c->topic_changelog, false, false, true},
        {c->topic_partials, false, true, true},
    };
    _Static_assert(sizeof t / sizeof t[0] <= CX_TOPICS_MAX, "CX_TOPICS_MAX");
    memcpy(out, t, sizeof t);
    return sizeof t / sizeof t[0];
}
