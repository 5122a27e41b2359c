/*
 * replay.c — `cxstream replay`: the pipeline without Kafka. Reads JSON-lines events in file order
 * (the merged order), routes each to partition murmur2(customer_id) % N, and writes every output
 * topic as JSON lines to DIR/<topic>.jsonl plus DIR/profiles.jsonl (DESIGN §3). It is the test
 * driver for users and for our own scenario tests, and the way to backfill history.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "codec.h"
#include "pipeline.h"
#include "profile_lines.h"

enum { OUT_SEG, OUT_TRIG, OUT_RESP, OUT_KPI, OUT_ENRICHED, OUT_DLQ, OUT__COUNT };

typedef struct replay {
    cx_codec_t *codec;
    FILE *out[OUT__COUNT];
    cx_buf_t buf;
    cx_err_t write_err;
} replay_t;

static int out_of_kind(cx_record_kind_t kind) {
    switch (kind) {
    case CX_REC_SEGMENT_CHANGE: return OUT_SEG;
    case CX_REC_TRIGGER: return OUT_TRIG;
    case CX_REC_RESPONSE: return OUT_RESP;
    case CX_REC_KPI: return OUT_KPI;
    case CX_REC_ENRICHED: return OUT_ENRICHED;
    default: return -1;
    }
}

static cx_err_t write_line(replay_t *r, int which) {
    if (fwrite(r->buf.data, 1, r->buf.len, r->out[which]) != r->buf.len || fputc('\n', r->out[which]) == EOF)
        return r->write_err = CX_ERR_IO;
    return CX_OK;
}

static cx_err_t sink_emit(void *opaque, cx_record_kind_t kind, const char *key, const void *rec) {
    (void)key;
    replay_t *r = opaque;
    int which = out_of_kind(kind);
    if (which < 0) return CX_OK; /* internal records (changelog, partials) have no file */
    cx_buf_reset(&r->buf);
    cx_err_t rc = cx_codec_encode(r->codec, kind, rec, CX_FMT_JSON, &r->buf);
    return rc == CX_OK ? write_line(r, which) : rc;
}

static cx_err_t write_dlq(replay_t *r, uint64_t line_no, cx_dlq_code_t code, const char *detail, const char *line,
                          size_t len) {
    cx_buf_reset(&r->buf);
    cx_err_t rc =
        cx_buf_appendf(&r->buf, "{\"line\":%" PRIu64 ",\"error\":\"%s\",\"detail\":", line_no, cx_dlq_code_name(code));
    if (rc == CX_OK) rc = cx_buf_json_str(&r->buf, detail, strlen(detail));
    if (rc == CX_OK) rc = cx_buf_append(&r->buf, ",\"value\":", 9);
    if (rc == CX_OK) rc = cx_buf_json_str(&r->buf, line, len);
    if (rc == CX_OK) rc = cx_buf_putc(&r->buf, '}');
    return rc == CX_OK ? write_line(r, OUT_DLQ) : rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: cxstream replay [-c FILE] [--set key=value]... --input EVENTS.jsonl --output DIR\n"
               "                       [--until MILLIS] [--partitions N]\n"
               "Runs the pipeline over JSON-lines events (file order = merged event-time order) and\n"
               "writes DIR/<topic>.jsonl for every output topic and DIR/profiles.jsonl.\n");
}

static cx_err_t drain(cx_pipeline_t *pl, uint16_t part, int64_t wm, char *err, size_t n) {
    for (bool more = true; more;) {
        cx_err_t rc = cx_pipeline_advance(pl, part, wm, &more, err, n);
        if (rc != CX_OK) return rc;
        if (cx_pipeline_needs_flush(pl) && (rc = cx_pipeline_flush(pl, -1, err, n)) != CX_OK) return rc;
    }
    return CX_OK;
}

int cx_cmd_replay(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"set", required_argument, 0, 's'},
        {"input", required_argument, 0, 'i'},  {"output", required_argument, 0, 'o'},
        {"until", required_argument, 0, 'u'},  {"partitions", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    cx_cli_conf_t cc = {0};
    const char *input = NULL, *outdir = NULL;
    int64_t until = INT64_MIN;
    long partitions = 0;
    int rcode = CX_EXIT_USAGE, c;
    char err[512] = "";
    cx_config_t *cfg = NULL;
    cx_store_t *store = NULL;
    cx_pipeline_t *pl = NULL;
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0;
    replay_t r = {0};
    cx_profile_lines_t plines = {0};
    cx_event_t ev;
    cx_campaign_t camp = {0};
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c': cc.file = optarg; break;
        case 's': cx_cli_add_set(&cc, optarg); break;
        case 'i': input = optarg; break;
        case 'o': outdir = optarg; break;
        case 'u':
            errno = 0;
            until = strtoll(optarg, &end, 10);
            if (errno || *end || end == optarg) {
                fprintf(stderr, "cxstream replay: --until: '%s' is not a millisecond timestamp\n", optarg);
                goto done;
            }
            break;
        case 'p':
            partitions = strtol(optarg, &end, 10);
            if (*end || partitions < 1 || partitions > CX_PARTS_MAX) {
                fprintf(stderr, "cxstream replay: --partitions: '%s' is not in 1..%d\n", optarg, CX_PARTS_MAX);
                goto done;
            }
            break;
        case 'h':
            usage(stdout);
            rcode = CX_EXIT_OK;
            goto done;
        default: usage(stderr); goto done;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cxstream replay: unexpected argument '%s'\n", argv[optind]);
        goto done;
    }
    if (!input || !outdir) {
        fprintf(stderr, "cxstream replay: --input and --output are required\n");
        usage(stderr);
        goto done;
    }
    if (!(cfg = cx_cli_config(&cc, err, sizeof err))) {
        fprintf(stderr, "cxstream replay: %s\n", err);
        goto done;
    }
    if (!partitions) partitions = cfg->replay_partitions > 0 ? cfg->replay_partitions : 1;
    rcode = CX_EXIT_RUNTIME;
    if (!(in = strcmp(input, "-") == 0 ? stdin : fopen(input, "r"))) {
        fprintf(stderr, "cxstream replay: cannot open --input %s: %s\n", input, strerror(errno));
        goto done;
    }
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cxstream replay: cannot create --output %s: %s\n", outdir, strerror(errno));
        goto done;
    }
    const char *topics[OUT__COUNT] = {cfg->topic_segment_changes,    cfg->topic_disengagement_triggers,
                                      cfg->topic_campaign_responses, cfg->topic_campaign_kpis,
                                      cfg->topic_enriched,           cfg->topic_dlq};
    for (int i = 0; i < OUT__COUNT; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.jsonl", outdir, topics[i]);
        if (!(r.out[i] = fopen(path, "w"))) {
            fprintf(stderr, "cxstream replay: cannot write %s: %s\n", path, strerror(errno));
            goto done;
        }
    }
    if (!(r.codec = cx_codec_new(err, sizeof err))) {
        fprintf(stderr, "cxstream replay: %s\n", err);
        goto done;
    }
    cx_store_opts_t so = {.dir = NULL};
    if (!(store = cx_store_open(&so, err, sizeof err))) {
        fprintf(stderr, "cxstream replay: %s\n", err);
        goto done;
    }
    cx_sink_t sink = {&r, sink_emit};
    if (!(pl = cx_pipeline_new(cfg, store, &sink, err, sizeof err))) {
        fprintf(stderr, "cxstream replay: %s\n", err);
        goto done;
    }
    for (long p = 0; p < partitions; p++)
        if (cx_pipeline_assign(pl, (uint16_t)p, NULL, err, sizeof err) != CX_OK) {
            fprintf(stderr, "cxstream replay: %s\n", err);
            goto done;
        }
    cx_check_opts_t chk = {.min_ts_ms = cfg->input_min_ts_ms,
                           .max_future_ms = cfg->input_max_future_ms,
                           .now_ms = 0,
                           .currencies = (const char *const *)cfg->currencies,
                           .n_currencies = cfg->n_currencies};
    uint64_t line_no = 0, accepted = 0, rejected = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) >= 0) {
        line_no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0) continue;
        char detail[256] = "";
        bool is_campaign = false;
        cx_dlq_code_t code =
            cx_codec_decode_json(r.codec, line, (size_t)len, &ev, &camp, &is_campaign, detail, sizeof detail);
        if (code == CX_DLQ_NONE && !is_campaign) code = cx_codec_check_event(&ev, &chk, detail, sizeof detail);
        if (code != CX_DLQ_NONE) {
            rejected++;
            if (write_dlq(&r, line_no, code, detail, line, (size_t)len) != CX_OK) goto io_error;
            continue;
        }
        cx_err_t rc;
        if (is_campaign) {
            rc = cx_pipeline_campaign(pl, camp.campaign_id, &camp, err, sizeof err);
            cx_campaign_clear(&camp);
        } else {
            uint16_t part = (uint16_t)cx_murmur2_partition(ev.customer_id, strlen(ev.customer_id), (int32_t)partitions);
            rc = drain(pl, part, ev.ts_ms - cfg->watermark_lateness_ms, err, sizeof err);
            if (rc == CX_OK) rc = cx_pipeline_event(pl, part, &ev, -1, err, sizeof err);
            if (rc == CX_OK && cx_pipeline_needs_flush(pl)) rc = cx_pipeline_flush(pl, -1, err, sizeof err);
        }
        if (r.write_err) goto io_error;
        if (rc != CX_OK) {
            fprintf(stderr, "cxstream replay: line %" PRIu64 ": %s\n", line_no, err[0] ? err : cx_err2str(rc));
            goto done;
        }
        accepted++;
    }
    if (until != INT64_MIN)
        for (long p = 0; p < partitions; p++)
            if (drain(pl, (uint16_t)p, until, err, sizeof err) != CX_OK) {
                fprintf(stderr, "cxstream replay: --until: %s\n", err);
                goto done;
            }
    if (r.write_err) goto io_error;
    cx_profile_lines_init(&plines, r.codec);
    for (long p = 0; p < partitions; p++)
        if (cx_pipeline_each_profile(pl, (uint16_t)p, cx_profile_lines_add, &plines, err, sizeof err) != CX_OK ||
            plines.rc != CX_OK) {
            fprintf(stderr, "cxstream replay: profiles: %s\n", err[0] ? err : cx_err2str(plines.rc));
            goto done;
        }
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/profiles.jsonl", outdir);
        FILE *pf = fopen(path, "w");
        if (!pf) {
            fprintf(stderr, "cxstream replay: cannot write %s: %s\n", path, strerror(errno));
            goto done;
        }
        cx_err_t wrc = cx_profile_lines_write(&plines, pf);
        if (fclose(pf) != 0 || wrc != CX_OK) goto io_error;
    }
    cx_pipeline_stats_t st = cx_pipeline_stats(pl);
    cx_log(CX_LOG_INFO, "replay",
           "lines=%" PRIu64 " accepted=%" PRIu64 " rejected=%" PRIu64 " duplicates=%" PRIu64 " late=%" PRIu64
           " segment_changes=%" PRIu64 " customers=%zu",
           line_no, accepted, rejected, st.duplicates, st.late, st.out[CX_REC_SEGMENT_CHANGE], plines.n);
    rcode = CX_EXIT_OK;
    goto done;
io_error:
    fprintf(stderr, "cxstream replay: writing to %s failed: %s\n", outdir, strerror(errno));
    rcode = CX_EXIT_RUNTIME;
done:
    cx_profile_lines_free(&plines);
    for (int i = 0; i < OUT__COUNT; i++)
        if (r.out[i] && fclose(r.out[i]) != 0 && rcode == CX_EXIT_OK) rcode = CX_EXIT_RUNTIME;
    cx_buf_free(&r.buf);
    free(line);
    if (in && in != stdin) fclose(in);
    cx_pipeline_destroy(pl);
    cx_store_close(store);
    cx_codec_destroy(r.codec);
    cx_config_destroy(cfg);
    cx_cli_conf_free(&cc);
    return rcode;
}
