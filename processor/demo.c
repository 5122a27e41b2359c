/*
 * demo.c — `cxstream demo`: the embedded default (DESIGN §3). One process holds librdkafka's mock
 * cluster (rdkafka_mock.h), the generator producing to the input topics from a thread, and the
 * processor (the same runner as `cxstream run`) in the main thread. It prints a progress line each
 * second and, after --seconds or on SIGINT/SIGTERM, a summary: customers per segment, segment
 * changes, DLQ records by reason and duplicates. State lives in a temporary directory that is
 * removed at exit. The mock has no admin API, so every topic is created here with
 * rd_kafka_mock_topic_create; it also keeps only the newest 5 MB of each partition, which is why
 * the demo is a showcase, not a benchmark.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cli.h"
#include "gen.h"
#include "http.h"
#include "runner.h"

#define DEMO_PARTITIONS 4
#define DEMO_DAYS       730

static volatile sig_atomic_t demo_stop = 0; /* SIGINT/SIGTERM */

static void on_signal(int sig) {
    (void)sig;
    demo_stop = 1;
}

/* The generator thread: its own producer and generator; the main thread only reads `sent`. */
typedef struct gen_thread {
    rd_kafka_t *producer;
    cx_gen_opts_t opts;
    cx_gen_topics_t topics;
    double rate_per_s;
    volatile sig_atomic_t stop;
    cx_err_t rc;
    char err[512];
    uint64_t sent; /* written by the generator thread, read with __atomic_load */
} gen_thread_t;

static void gen_progress(void *opaque, uint64_t sent) {
    gen_thread_t *gt = opaque;
    __atomic_store_n(&gt->sent, sent, __ATOMIC_RELAXED);
}

static void *gen_main(void *arg) {
    gen_thread_t *gt = arg;
    gt->rc = cx_gen_produce(gt->producer, &gt->opts, &gt->topics, gt->rate_per_s, &gt->stop, gen_progress, gt, NULL,
                            gt->err, sizeof gt->err);
    return NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void demo_usage(FILE *f) {
    fprintf(f, "usage: cxstream demo [--seconds N] [--customers N] [--rate R] [--seed S] [--http-port P]\n"
               "                     [--set key=value]...\n"
               "Runs an in-process Kafka cluster (librdkafka's mock), the generator and the processor in\n"
               "one process for N seconds (default 20), printing progress each second and a summary at\n"
               "the end (or on Ctrl-C). --customers: generated population (default 2000); --rate: records\n"
               "per second the generator produces (default 20000, 0 = as fast as possible).\n");
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* Creates every topic the runner reads or writes on the mock (inputs and per-customer outputs
 * with the input partition count; global tables with one partition). */
static cx_err_t create_topics(rd_kafka_mock_cluster_t *mc, const cx_config_t *c, char *errstr, size_t n) {
    cx_topic_use_t t[CX_TOPICS_MAX];
    size_t nt = cx_config_topics(c, t);
    for (size_t i = 0; i < nt; i++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, t[i].name, t[i].global ? 1 : DEMO_PARTITIONS, 1);
        if (err) {
            cx_seterr(errstr, n, "creating topic %s on the mock cluster: %s", t[i].name, rd_kafka_err2str(err));
            return CX_ERR_KAFKA;
        }
    }
    return CX_OK;
}

static uint64_t dlq_total(const cx_runner_stats_t *st) {
    uint64_t n = 0;
    for (int i = 0; i < CX_DLQ__COUNT; i++)
        n += st->dlq[i];
    return n;
}

static void print_summary(FILE *f, const cx_config_t *cfg, const int64_t *seg, const cx_runner_stats_t *st,
                          const cx_pipeline_stats_t *ps, uint64_t sent, double secs) {
    int64_t total = 0;
    for (size_t i = 0; i < cfg->n_segments; i++)
        total += seg[i];
    fprintf(f, "\n== cxstream demo: %.1f s, %" PRIu64 " records generated, %" PRIu64 " consumed ==\n", secs, sent,
            st->consumed);
    fprintf(f, "%-22s %10s %7s\n", "segment", "customers", "share");
    for (size_t i = 0; i < cfg->n_segments; i++)
        fprintf(f, "%-22s %10" PRId64 " %6.1f%%\n", cfg->segments[i].name, seg[i],
                total ? 100.0 * (double)seg[i] / (double)total : 0.0);
    fprintf(f, "%-22s %10" PRId64 "\n", "(all segmented)", total);
    fprintf(f, "\n%-22s %10" PRIu64 "\n", "events applied", ps->events);
    fprintf(f, "%-22s %10" PRIu64 "\n", "segment changes", ps->out[CX_REC_SEGMENT_CHANGE]);
    fprintf(f, "%-22s %10" PRIu64 "\n", "triggers", ps->out[CX_REC_TRIGGER]);
    fprintf(f, "%-22s %10" PRIu64 "\n", "campaign responses", ps->out[CX_REC_RESPONSE]);
    fprintf(f, "%-22s %10" PRIu64 "\n", "duplicates dropped", ps->duplicates);
    fprintf(f, "%-22s %10" PRIu64 "\n", "late events", ps->late);
    fprintf(f, "\n%-22s %10s\n", "DLQ reason", "records");
    for (int i = 1; i < CX_DLQ__COUNT; i++)
        if (st->dlq[i]) fprintf(f, "%-22s %10" PRIu64 "\n", cx_dlq_code_name((cx_dlq_code_t)i), st->dlq[i]);
    fprintf(f, "%-22s %10" PRIu64 "\n", "(all DLQ)", dlq_total(st));
    fprintf(f, "\n%-22s %10" PRIu64 "\n", "commits", st->commits);
    fprintf(f, "%-22s %10" PRIu64 "\n", "records produced", st->produced);
    fflush(f);
}

int cx_cmd_demo(int argc, char **argv) {
    static const struct option opts[] = {{"seconds", required_argument, 0, 't'},
                                         {"customers", required_argument, 0, 'n'},
                                         {"rate", required_argument, 0, 'r'},
                                         {"seed", required_argument, 0, 'S'},
                                         {"http-port", required_argument, 0, 'p'},
                                         {"set", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    uint64_t seconds = 20, customers = 2000, rate = 20000, seed = 1, http_port = 0;
    bool http_port_set = false;
    cx_cli_conf_t cc = {0};
    int c, rcode = CX_EXIT_USAGE;
    char err[768] = "", statedir[] = "/tmp/cxstream-demo-XXXXXX";
    bool have_statedir = false, gen_started = false;
    cx_config_t *cfg = NULL;
    cx_runner_t *r = NULL;
    cx_http_t *http = NULL;
    rd_kafka_t *mrk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    gen_thread_t *gt = NULL;
    pthread_t tid;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!parse_u64(optarg, 1, 86400, &seconds)) goto bad_flag;
            break;
        case 'n':
            if (!parse_u64(optarg, 1, 10000000, &customers)) goto bad_flag;
            break;
        case 'r':
            if (!parse_u64(optarg, 0, 10000000, &rate)) goto bad_flag;
            break;
        case 'S':
            if (!parse_u64(optarg, 0, UINT64_MAX, &seed)) goto bad_flag;
            break;
        case 'p':
            if (!parse_u64(optarg, 0, 65535, &http_port)) goto bad_flag;
            http_port_set = true;
            break;
        case 's': cx_cli_add_set(&cc, optarg); break;
        case 'h':
            demo_usage(stdout);
            rcode = CX_EXIT_OK;
            goto done;
        default: demo_usage(stderr); goto done;
        }
        continue;
    bad_flag:
        for (size_t k = 0; opts[k].name; k++)
            if (opts[k].val == c) fprintf(stderr, "cxstream demo: --%s: bad value '%s'\n", opts[k].name, optarg);
        goto done;
    }
    if (optind < argc) {
        fprintf(stderr, "cxstream demo: unexpected argument '%s'\n", argv[optind]);
        goto done;
    }
    if (!(cfg = cx_cli_config(&cc, err, sizeof err))) {
        fprintf(stderr, "cxstream demo: %s\n", err);
        goto done;
    }
    rcode = CX_EXIT_RUNTIME;

    /* the in-process cluster, on a handle of its own that outlives everything connected to it */
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(mconf, "test.mock.num.brokers", "1", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(mconf, "log_level", "4", err, sizeof err) != RD_KAFKA_CONF_OK || /* no notices */
        !(mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err))) {
        rd_kafka_conf_destroy(mconf);
        fprintf(stderr, "cxstream demo: %s\n", err);
        goto done;
    }
    if (!(mc = rd_kafka_handle_mock_cluster(mrk))) {
        fprintf(stderr, "cxstream demo: cannot create the mock cluster\n");
        goto done;
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    if (!mkdtemp(statedir)) {
        fprintf(stderr, "cxstream demo: cannot create a state directory: %s\n", strerror(errno));
        goto done;
    }
    have_statedir = true;
    char port[16];
    snprintf(port, sizeof port, "%" PRIu64, http_port);
    if (cx_config_set(cfg, "bootstrap.servers", bootstraps, "demo", err, sizeof err) != CX_OK ||
        cx_config_set(cfg, "state.dir", statedir, "demo", err, sizeof err) != CX_OK ||
        (http_port_set && cx_config_set(cfg, "http.port", port, "--http-port", err, sizeof err) != CX_OK)) {
        fprintf(stderr, "cxstream demo: %s\n", err);
        rcode = CX_EXIT_USAGE;
        goto done;
    }
    if (cx_config_kafka_value(cfg, "bootstrap.servers"))
        cx_log(CX_LOG_WARN, "demo",
               "kafka.bootstrap.servers is set: the demo's processor will not use its own cluster");
    if (create_topics(mc, cfg, err, sizeof err) != CX_OK) {
        fprintf(stderr, "cxstream demo: %s\n", err);
        goto done;
    }

    cx_cli_catch_stop_signals(on_signal);

    /* the processor: joins the group before the generator starts, so it sees the stream from 0 */
    cx_runner_opts_t ro = {.create_topics = false};
    if (!(r = cx_runner_new(cfg, &ro, err, sizeof err))) {
        fprintf(stderr, "cxstream demo: %s\n", err);
        goto done;
    }
    /* the dashboard and API (http.port, default 9464; --http-port 0 turns it off) */
    if (cfg->http_port && !(http = cx_http_start_runners(cfg, &r, 1, err, sizeof err))) {
        if (http_port_set) {
            fprintf(stderr, "cxstream demo: http: %s\n", err);
            goto done;
        }
        cx_log(CX_LOG_WARN, "demo", "dashboard not served err=\"%s\" (choose a port with --http-port)", err);
    }
    cx_err_t rc = cx_runner_start(r, err, sizeof err);
    if (rc != CX_OK) {
        fprintf(stderr, "cxstream demo: %s\n", err);
        if (rc == CX_ERR_CONFIG) rcode = CX_EXIT_USAGE;
        goto done;
    }

    /* the generator thread */
    if (!(gt = calloc(1, sizeof *gt))) goto done;
    gt->opts = cx_gen_opts_default();
    gt->opts.customers = customers;
    gt->opts.seed = seed;
    /* two years of history ending at today's 00:00 UTC: events must not lie in the future
     * (input.max_future_ms), and 2,000 customers give about a million records, ~50 s at 20k/s */
    gt->opts.days = DEMO_DAYS;
    gt->opts.start_ts_ms = (cx_day((int64_t)time(NULL) * 1000) - DEMO_DAYS) * CX_DAY_MS;
    gt->topics = (cx_gen_topics_t){cfg->topic_play, cfg->topic_purchase, cfg->topic_email_send, cfg->topic_survey,
                                   cfg->topic_campaigns};
    gt->rate_per_s = (double)rate;
    rd_kafka_conf_t *pconf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(pconf, "bootstrap.servers", bootstraps, err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(pconf, "linger.ms", "5", err, sizeof err) != RD_KAFKA_CONF_OK ||
        cx_gen_conf_producer(pconf, err, sizeof err) != CX_OK ||
        !(gt->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof err))) {
        if (!gt->producer) rd_kafka_conf_destroy(pconf);
        fprintf(stderr, "cxstream demo: generator producer: %s\n", err);
        goto done;
    }
    if (pthread_create(&tid, NULL, gen_main, gt) != 0) {
        fprintf(stderr, "cxstream demo: cannot start the generator thread\n");
        goto done;
    }
    gen_started = true;

    fprintf(stdout,
            "cxstream demo: mock cluster %s, %" PRIu64 " customers, %" PRIu64 " records/s%s, %" PRIu64
            " s; state in %s\n",
            bootstraps, customers, rate, rate ? "" : " (unpaced)", seconds, statedir);
    if (http)
        fprintf(stdout, "cxstream demo: dashboard on http://%s:%u/ (API: /segments /customers/ID /metrics)\n",
                strcmp(cfg->http_bind, "0.0.0.0") ? cfg->http_bind : "localhost", (unsigned)cx_http_port(http));
    fflush(stdout);

    double t0 = cx_mono_s(), next_print = t0 + 1.0;
    uint64_t last_consumed = 0;
    while (!demo_stop) {
        if ((rc = cx_runner_poll(r, 100, err, sizeof err)) != CX_OK) {
            fprintf(stderr, "cxstream demo: processor stopped: %s\n", err);
            goto done;
        }
        double now = cx_mono_s();
        if (now >= next_print) {
            cx_runner_stats_t st = cx_runner_stats(r);
            cx_pipeline_stats_t ps = cx_pipeline_stats(cx_runner_pipeline(r));
            fprintf(stdout,
                    "t=%3.0fs events/s=%-7" PRIu64 " generated=%-9" PRIu64 " consumed=%-9" PRIu64 " lag=%-7" PRId64
                    " dlq=%-6" PRIu64 " segment_changes=%" PRIu64 "\n",
                    now - t0, st.consumed - last_consumed, __atomic_load_n(&gt->sent, __ATOMIC_RELAXED), st.consumed,
                    cx_runner_lag(r), dlq_total(&st), ps.out[CX_REC_SEGMENT_CHANGE]);
            fflush(stdout);
            last_consumed = st.consumed;
            next_print += 1.0;
            if (next_print < now) next_print = now + 1.0;
        }
        if (now - t0 >= (double)seconds) break;
    }

    /* stop the generator first, so the last numbers describe a quiet stream */
    gt->stop = 1;
    pthread_join(tid, NULL);
    gen_started = false;
    if (gt->rc != CX_OK) cx_log(CX_LOG_WARN, "demo", "generator ended with err=\"%s\"", gt->err);

    cx_runner_stats_t st = cx_runner_stats(r);
    cx_pipeline_stats_t ps = cx_pipeline_stats(cx_runner_pipeline(r));
    int64_t seg[CX_SEGMENTS_MAX] = {0};
    cx_pipeline_segment_counts(cx_runner_pipeline(r), seg, cfg->n_segments);
    double secs = cx_mono_s() - t0;
    if (cx_runner_close(r, err, sizeof err) != CX_OK) {
        fprintf(stderr, "cxstream demo: final commit failed: %s\n", err);
        goto done;
    }
    st = cx_runner_stats(r); /* DLQ and produced counts include the final cycle */
    print_summary(stdout, cfg, seg, &st, &ps, __atomic_load_n(&gt->sent, __ATOMIC_RELAXED), secs);
    rcode = CX_EXIT_OK;
done:
    if (gen_started) {
        gt->stop = 1;
        pthread_join(tid, NULL);
    }
    cx_http_stop(http); /* before the runner it reads */
    cx_runner_destroy(r);
    if (gt) {
        if (gt->producer) rd_kafka_destroy(gt->producer);
        free(gt);
    }
    if (mrk) rd_kafka_destroy(mrk); /* and with it the mock cluster */
    if (have_statedir) nftw(statedir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    cx_config_destroy(cfg);
    cx_cli_conf_free(&cc);
    return rcode;
}
