/*
 * gen_kafka.c — the generator's outlets: producing the stream to the input topics
 * (cx_gen_produce) and the `cxstream gen` subcommand, which produces to a cluster or writes replay
 * JSON lines (--output). Delivery failures are counted by a delivery-report callback that
 * cx_gen_conf_producer installs, and reported, never dropped.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gen.h"

#define DR_MAGIC UINT32_C(0x63786472) /* "cxdr": guards against foreign per-message opaques */

typedef struct dr_state {
    uint32_t magic;
    uint64_t delivered, failed;
    rd_kafka_resp_err_t first_err;
    char first_topic[128];
} dr_state_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    dr_state_t *st = m->_private;
    if (!st || st->magic != DR_MAGIC) return;
    if (!m->err) {
        st->delivered++;
        return;
    }
    if (st->failed++ == 0) {
        st->first_err = m->err;
        snprintf(st->first_topic, sizeof st->first_topic, "%s", m->rkt ? rd_kafka_topic_name(m->rkt) : "?");
    }
}

cx_gen_topics_t cx_gen_topics_default(void) {
    cx_gen_topics_t t = {"cx.play", "cx.purchase", "cx.email_send", "cx.survey", "cx.campaigns"};
    return t;
}

cx_err_t cx_gen_conf_producer(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size) {
    /* The stream is in event-time order within each partition, and a processor merges by it. A
     * plain producer retries a failed request behind later ones that succeeded: under load, runs of
     * a partition's records landed a day or two late. Idempotence keeps the produce order. */
    static const char *const kv[][2] = {{"partitioner", "murmur2_random"}, {"enable.idempotence", "true"}};
    char err[256];
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof err) != RD_KAFKA_CONF_OK) {
            cx_seterr(errstr, errstr_size, "%s: %s", kv[i][0], err);
            return CX_ERR_KAFKA;
        }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    return CX_OK;
}

static const char *topic_of(const cx_gen_topics_t *t, cx_event_type_t type) {
    switch (type) {
    case CX_EV_PLAY: return t->play;
    case CX_EV_PURCHASE: return t->purchase;
    case CX_EV_EMAIL_SEND: return t->email_send;
    case CX_EV_SURVEY: return t->survey;
    default: return t->campaigns;
    }
}

cx_err_t cx_gen_produce(rd_kafka_t *rk, const cx_gen_opts_t *o, const cx_gen_topics_t *topics, double rate_per_s,
                        volatile sig_atomic_t *stop, void (*progress)(void *opaque, uint64_t sent), void *opaque,
                        FILE *truth_out, char *errstr, size_t errstr_size) {
    cx_gen_topics_t deftopics = cx_gen_topics_default();
    if (!topics) topics = &deftopics;
    cx_gen_opts_t go = *o;
    go.raw = CX_GEN_RAW_WIRE;
    cx_err_t ret = CX_OK;
    uint64_t sent = 0;
    /* On the heap: librdkafka holds a pointer to it in every message until its delivery report. */
    dr_state_t *st = calloc(1, sizeof *st);
    cx_gen_t *g = st ? cx_gen_new(&go, errstr, errstr_size) : NULL;
    if (!st || !g) {
        if (!st) cx_seterr(errstr, errstr_size, "gen: out of memory");
        free(st);
        return CX_ERR_INVALID;
    }
    st->magic = DR_MAGIC;
    double t0 = cx_mono_s();
    cx_gen_record_t r;
    int rc = 0;
    while (!(stop && *stop) && (rc = cx_gen_next(g, &r)) == 1) {
        const char *topic = topic_of(topics, r.type);
        rd_kafka_resp_err_t err;
        for (;;) {
            err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(r.key, strlen(r.key)), RD_KAFKA_V_VALUE((void *)r.raw, r.raw_len),
                                    RD_KAFKA_V_TIMESTAMP(r.ts_ms), RD_KAFKA_V_OPAQUE(st), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || (stop && *stop)) break;
            rd_kafka_poll(rk, 50); /* the local queue drains as the broker acknowledges */
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) break; /* stopped while waiting for room */
        if (err) {
            cx_seterr(errstr, errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(err));
            ret = CX_ERR_KAFKA;
            break;
        }
        sent++;
        if (sent % 1000 == 0) rd_kafka_poll(rk, 0);
        if (progress && sent % 10000 == 0) progress(opaque, sent);
        if (rate_per_s > 0) {
            /* pace: record n is due at t0 + n / rate; wait in short slices, serving callbacks */
            double due = t0 + (double)sent / rate_per_s;
            for (double now = cx_mono_s(); now < due && !(stop && *stop); now = cx_mono_s()) {
                double wait_ms = (due - now) * 1000.0;
                rd_kafka_poll(rk, wait_ms > 100 ? 100 : (int)wait_ms + 1);
            }
        }
    }
    if (ret == CX_OK && !(stop && *stop) && rc < 0) {
        cx_seterr(errstr, errstr_size, "%s", cx_gen_error(g));
        ret = CX_ERR_INVALID;
    }
    /* Flush what was handed over, even after an error or a stop: bounded by message.timeout.ms. */
    rd_kafka_resp_err_t ferr = rd_kafka_flush(rk, 120000);
    if (ferr) {
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(rk, 5000);
    }
    uint64_t reported = st->delivered + st->failed;
    if (ret == CX_OK && st->failed)
        cx_seterr(errstr, errstr_size, "%" PRIu64 " of %" PRIu64 " records not delivered; first: %s: %s", st->failed,
                  sent, st->first_topic, rd_kafka_err2str(st->first_err)),
            ret = CX_ERR_KAFKA;
    else if (ret == CX_OK && ferr)
        cx_seterr(errstr, errstr_size, "flush timed out with %" PRIu64 " of %" PRIu64 " records unconfirmed",
                  sent - reported, sent),
            ret = CX_ERR_KAFKA;
    else if (ret == CX_OK && reported != sent)
        cx_seterr(errstr, errstr_size,
                  "%" PRIu64 " of %" PRIu64 " delivery reports missing: configure the producer with "
                  "cx_gen_conf_producer()",
                  sent - reported, sent),
            ret = CX_ERR_KAFKA;
    if (progress) progress(opaque, sent);
    if (truth_out && cx_gen_write_truth(g, truth_out) != CX_OK && ret == CX_OK) {
        cx_seterr(errstr, errstr_size, "writing the truth file: %s", strerror(errno));
        ret = CX_ERR_IO;
    }
    cx_gen_destroy(g);
    /* A report still outstanding would write into st later: keep it alive in that case. */
    if (rd_kafka_outq_len(rk) == 0 || reported == sent) free(st);
    return ret;
}

/* ---------------------------------------------------------------- cxstream gen */

static volatile sig_atomic_t gen_stop;
static void on_signal(int sig) {
    (void)sig;
    gen_stop = 1;
}

static void usage(FILE *f) {
    fputs("usage: cxstream gen -b BROKERS [options]\n"
          "       cxstream gen --output FILE.jsonl [options]\n"
          "Synthetic customer events for the cxstream input topics (docs/generator.md).\n"
          "  -b, --brokers LIST     bootstrap servers; produce to cx.play, cx.purchase, cx.email_send,\n"
          "                         cx.survey, cx.campaigns\n"
          "  -o, --output FILE      write replay JSON lines instead of producing ('-' = stdout)\n"
          "  --customers N          population size (default 10000)\n"
          "  --days D               days of event time (default 90)\n"
          "  --seed S               random seed; same seed and options, same records (default 1)\n"
          "  --start-ts MILLIS      first instant of the period (default 1736121600000 =\n"
          "                         2025-01-06T00:00:00Z)\n"
          "  --rate R               records per second, 0 = as fast as possible (default 0)\n"
          "  --invalid-rate F       share of invalid records, 0..1 (default 0.01)\n"
          "  --control-share F      share of each campaign's sample in CONTROL, 0..1 (default 0.1)\n"
          "  --truth FILE           write the generator's tally as JSON after the last record\n"
          "  -X KEY=VALUE           librdkafka producer property (repeatable)\n"
          "  -h, --help             this text\n",
          f);
}

static int usage_error(const char *fmt, const char *a, const char *b) {
    fputs("cxstream gen: ", stderr);
    fprintf(stderr, fmt, a, b);
    fputs("\n(see cxstream gen --help)\n", stderr);
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_i64(const char *s, int64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v != v) return false;
    *out = v;
    return true;
}

static void log_progress(void *opaque, uint64_t sent) {
    (void)opaque;
    if (sent % 100000 == 0) cx_log(CX_LOG_INFO, "gen", "sent=%" PRIu64, sent);
}

static int write_jsonl(const cx_gen_opts_t *o, const char *path, FILE *truth) {
    char err[512];
    cx_gen_opts_t go = *o;
    go.raw = CX_GEN_RAW_JSON;
    cx_gen_t *g = cx_gen_new(&go, err, sizeof err);
    if (!g) {
        fprintf(stderr, "cxstream gen: %s\n", err);
        return 2;
    }
    bool to_stdout = strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "w");
    int code = 0;
    if (!f) {
        fprintf(stderr, "cxstream gen: --output %s: %s\n", path, strerror(errno));
        cx_gen_destroy(g);
        return 1;
    }
    cx_gen_record_t r;
    int rc = 0;
    while (!gen_stop && (rc = cx_gen_next(g, &r)) == 1) {
        if (fwrite(r.raw, 1, r.raw_len, f) != r.raw_len || fputc('\n', f) == EOF) break;
    }
    if (!gen_stop && rc < 0) {
        fprintf(stderr, "cxstream gen: %s\n", cx_gen_error(g));
        code = 1;
    }
    if (ferror(f) || (to_stdout ? fflush(f) : fclose(f)) != 0) {
        fprintf(stderr, "cxstream gen: writing %s: %s\n", path, strerror(errno));
        code = 1;
    }
    if (truth && cx_gen_write_truth(g, truth) != CX_OK) {
        fprintf(stderr, "cxstream gen: writing the truth file: %s\n", strerror(errno));
        code = 1;
    }
    uint64_t valid, invalid, camps;
    cx_gen_counts(g, &valid, &invalid, &camps);
    cx_log(CX_LOG_INFO, "gen", "output=%s valid=%" PRIu64 " invalid=%" PRIu64 " campaigns=%" PRIu64, path, valid,
           invalid, camps);
    cx_gen_destroy(g);
    return code;
}

static int produce_to(const cx_gen_opts_t *o, const char *brokers, char **props, int n_props, double rate,
                      FILE *truth) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int code = 0;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "linger.ms", "20", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "message.timeout.ms", "60000", err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "cxstream gen: -b: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    for (int i = 0; i < n_props; i++) {
        char *eq = strchr(props[i], '=');
        if (!eq) {
            rd_kafka_conf_destroy(conf);
            return usage_error("-X %s: expected KEY=VALUE%s", props[i], "");
        }
        *eq = 0;
        rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, props[i], eq + 1, err, sizeof err);
        *eq = '=';
        if (res != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return usage_error("-X %s: %s", props[i], err);
        }
    }
    if (cx_gen_conf_producer(conf, err, sizeof err) != CX_OK) {
        fprintf(stderr, "cxstream gen: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "cxstream gen: producer: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    conf = NULL; /* owned by rk now */
    cx_err_t e = cx_gen_produce(rk, o, NULL, rate, &gen_stop, log_progress, NULL, truth, err, sizeof err);
    if (e != CX_OK) {
        fprintf(stderr, "cxstream gen: %s\n", err);
        code = e == CX_ERR_INVALID ? 2 : 1;
    }
    rd_kafka_destroy(rk);
    return code;
}

int cx_cmd_gen(int argc, char **argv) {
    cx_gen_opts_t o = cx_gen_opts_default();
    const char *brokers = NULL, *output = NULL, *truth_path = NULL;
    double rate = 0;
    char **props = calloc((size_t)argc + 1, sizeof *props);
    int n_props = 0, code = 0;
    FILE *truth = NULL;
    struct sigaction sa, old_int, old_term;
    if (!props) return 1;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i], *val = NULL;
        char flag[64];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            goto done;
        }
        /* --flag=value or --flag value */
        char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq) {
            snprintf(flag, sizeof flag, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", a);
        }
        static const char *const known[] = {
            "-b",     "--brokers",  "-o",     "--output",       "--customers",     "--days",
            "--seed", "--start-ts", "--rate", "--invalid-rate", "--control-share", "--truth",
            "-X"};
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++)
            ok |= strcmp(flag, known[k]) == 0;
        if (!ok) {
            code = usage_error("unknown option '%s'%s", a, "");
            goto done;
        }
        if (!val) {
            if (i + 1 >= argc) {
                code = usage_error("%s needs a value%s", flag, "");
                goto done;
            }
            val = argv[++i];
        }
        uint64_t u;
        if (!strcmp(flag, "-b") || !strcmp(flag, "--brokers"))
            brokers = val;
        else if (!strcmp(flag, "-o") || !strcmp(flag, "--output"))
            output = val;
        else if (!strcmp(flag, "--truth"))
            truth_path = val;
        else if (!strcmp(flag, "-X"))
            props[n_props++] = val;
        else if (!strcmp(flag, "--customers")) {
            if (!parse_u64(val, &u) || u < 1 || u > UINT64_C(100000000)) {
                code = usage_error("--customers: '%s' is not an integer in 1..100000000%s", val, "");
                goto done;
            }
            o.customers = u;
        } else if (!strcmp(flag, "--days")) {
            if (!parse_u64(val, &u) || u < 1 || u > 3650) {
                code = usage_error("--days: '%s' is not an integer in 1..3650%s", val, "");
                goto done;
            }
            o.days = (int32_t)u;
        } else if (!strcmp(flag, "--seed")) {
            if (!parse_u64(val, &u)) {
                code = usage_error("--seed: '%s' is not a non-negative integer%s", val, "");
                goto done;
            }
            o.seed = u;
        } else if (!strcmp(flag, "--start-ts")) {
            if (!parse_i64(val, &o.start_ts_ms) || o.start_ts_ms < INT64_C(631152000000)) {
                code = usage_error("--start-ts: '%s' is not epoch milliseconds after 1990%s", val, "");
                goto done;
            }
        } else if (!strcmp(flag, "--rate")) {
            if (!parse_double(val, &rate) || rate < 0) {
                code = usage_error("--rate: '%s' is not a number >= 0%s", val, "");
                goto done;
            }
        } else if (!strcmp(flag, "--invalid-rate")) {
            if (!parse_double(val, &o.invalid_rate) || o.invalid_rate < 0 || o.invalid_rate > 1) {
                code = usage_error("--invalid-rate: '%s' is not a number in 0..1%s", val, "");
                goto done;
            }
        } else if (!strcmp(flag, "--control-share")) {
            if (!parse_double(val, &o.control_share) || o.control_share < 0 || o.control_share > 1) {
                code = usage_error("--control-share: '%s' is not a number in 0..1%s", val, "");
                goto done;
            }
        }
    }
    if (!brokers && !output) {
        code = usage_error("-b BROKERS or --output FILE is required%s%s", "", "");
        goto done;
    }
    if (brokers && output) {
        code = usage_error("-b and --output exclude each other%s%s", "", "");
        goto done;
    }
    if (truth_path && !(truth = fopen(truth_path, "w"))) {
        fprintf(stderr, "cxstream gen: --truth %s: %s\n", truth_path, strerror(errno));
        code = 1;
        goto done;
    }
    gen_stop = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    code = output ? write_jsonl(&o, output, truth) : produce_to(&o, brokers, props, n_props, rate, truth);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (truth && fclose(truth) != 0 && code == 0) {
        fprintf(stderr, "cxstream gen: --truth %s: %s\n", truth_path, strerror(errno));
        code = 1;
    }
done:
    free(props);
    return code;
}
