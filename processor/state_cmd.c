/*
 * state_cmd.c — `cxstream state`: looks into a stopped processor's local state (state.dir).
 * `state dump` writes every stored customer profile as JSON lines sorted by customer_id, in the
 * format of replay's profiles.jsonl (each profile as of its partition's stored watermark);
 * `state offsets` prints, per partition with stored metadata, the watermark and the next offset of
 * each input topic that the last durable flush wrote together with the state. Tests compare a live
 * run's state with the generator's truth through it, and operators use it to see where a
 * processor will resume. RocksDB holds a lock on the directory while `cxstream run` is up, so the
 * processor must be stopped first; a locked directory is reported as such (exit 1).
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
#include "profile_lines.h"
#include "pipeline.h"

typedef struct state_ctx {
    cx_config_t *cfg;
    cx_store_t *store;
    cx_pipeline_t *pl;
    uint16_t parts[CX_PARTS_MAX]; /* partitions with stored metadata, ascending */
    int n_parts;
} state_ctx_t;

static void usage(FILE *f) {
    fprintf(f, "usage: cxstream state dump    -c FILE [--set key=value]... [--output PROFILES.jsonl]\n"
               "       cxstream state offsets -c FILE [--set key=value]...\n"
               "Reads the local state in state.dir of a STOPPED processor (RocksDB locks the directory\n"
               "while `cxstream run` holds it).\n"
               "  dump     every customer's profile as JSON lines sorted by customer_id (the format of\n"
               "           replay's profiles.jsonl), to --output or stdout\n"
               "  offsets  per partition: the stored watermark and next offset of each input topic,\n"
               "           one JSON object per line\n");
}

/* Reading state flushes (cx_pipeline_each_profile), and a flush may publish internal records
 * (partials, watermarks); nothing here goes anywhere: the dump only reads. */
static cx_err_t sink_discard(void *opaque, cx_record_kind_t kind, const char *key, const void *rec) {
    (void)opaque;
    (void)rec;
    cx_log(CX_LOG_DEBUG, "state", "discarded output kind=%d key=%s", (int)kind, key);
    return CX_OK;
}

static bool found_any(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    *(bool *)opaque = true;
    return false;
}

/* Opens state.dir (refusing a missing one, explaining a locked one), finds the partitions with
 * metadata and assigns them to a pipeline. Returns an exit code. */
static int state_open(state_ctx_t *s, const char *cmd, char *err, size_t errsz) {
    struct stat st;
    char current[4096];
    snprintf(current, sizeof current, "%s/CURRENT", s->cfg->state_dir);
    if (stat(current, &st) != 0) {
        int e = errno;
        fprintf(stderr, "cxstream state %s: no state store in state.dir=%s (%s)\n", cmd, s->cfg->state_dir,
                e == ENOENT ? "no RocksDB CURRENT file" : strerror(e));
        snprintf(current, sizeof current, "%s/thread-0/CURRENT", s->cfg->state_dir);
        if (stat(current, &st) == 0)
            fprintf(stderr,
                    "  (it holds the state of pipeline threads, processing.threads > 1: read one thread's with "
                    "--set state.dir=%s/thread-K)\n",
                    s->cfg->state_dir);
        return CX_EXIT_RUNTIME;
    }
    cx_store_opts_t so = {.dir = s->cfg->state_dir, .block_cache_mb = 16};
    if (!(s->store = cx_store_open(&so, err, errsz))) {
        if (strstr(err, "lock") || strstr(err, "LOCK"))
            fprintf(stderr,
                    "cxstream state %s: state.dir=%s is locked by another process: stop the processor "
                    "(`cxstream run` holds the RocksDB lock) and retry\n  (%s)\n",
                    cmd, s->cfg->state_dir, err);
        else
            fprintf(stderr, "cxstream state %s: %s\n", cmd, err);
        return CX_EXIT_RUNTIME;
    }
    for (int p = 0; p < CX_PARTS_MAX; p++) {
        bool any = false;
        if (cx_store_scan_tag(s->store, (uint16_t)p, CX_KEY_META, found_any, &any, err, errsz) != CX_OK) {
            fprintf(stderr, "cxstream state %s: %s\n", cmd, err);
            return CX_EXIT_RUNTIME;
        }
        if (any) s->parts[s->n_parts++] = (uint16_t)p;
    }
    cx_sink_t sink = {NULL, sink_discard};
    if (!(s->pl = cx_pipeline_new(s->cfg, s->store, &sink, err, errsz))) {
        fprintf(stderr, "cxstream state %s: %s\n", cmd, err);
        return CX_EXIT_RUNTIME;
    }
    for (int k = 0; k < s->n_parts; k++)
        if (cx_pipeline_assign(s->pl, s->parts[k], NULL, err, errsz) != CX_OK) {
            fprintf(stderr, "cxstream state %s: partition %u: %s\n", cmd, s->parts[k], err);
            return CX_EXIT_RUNTIME;
        }
    return CX_EXIT_OK;
}

/* ---------- state offsets ---------- */

static int cmd_offsets(state_ctx_t *s) {
    const char *topics[CX_INPUTS];
    topics[CX_EV_EMAIL_SEND] = s->cfg->topic_email_send;
    topics[CX_EV_PURCHASE] = s->cfg->topic_purchase;
    topics[CX_EV_PLAY] = s->cfg->topic_play;
    topics[CX_EV_SURVEY] = s->cfg->topic_survey;
    cx_buf_t b = {0};
    cx_err_t rc = CX_OK;
    for (int k = 0; k < s->n_parts && rc == CX_OK; k++) {
        uint16_t p = s->parts[k];
        int64_t off[CX_INPUTS], wm = cx_pipeline_watermark(s->pl, p);
        cx_pipeline_offsets(s->pl, p, off);
        cx_buf_reset(&b);
        rc = cx_buf_appendf(&b, "{\"partition\":%u,\"watermark\":", p);
        if (rc == CX_OK) rc = wm == INT64_MIN ? cx_buf_append(&b, "null", 4) : cx_buf_appendf(&b, "%" PRId64, wm);
        if (rc == CX_OK) rc = cx_buf_append(&b, ",\"next_offsets\":{", 17);
        for (int i = 0; i < CX_INPUTS && rc == CX_OK; i++) {
            if (i) rc = cx_buf_putc(&b, ',');
            if (rc == CX_OK) rc = cx_buf_json_str(&b, topics[i], strlen(topics[i]));
            /* -1: nothing of this input consumed yet */
            if (rc == CX_OK) rc = off[i] < 0 ? cx_buf_append(&b, ":null", 5) : cx_buf_appendf(&b, ":%" PRId64, off[i]);
        }
        if (rc == CX_OK) rc = cx_buf_append(&b, "}}\n", 3);
        if (rc == CX_OK && fwrite(b.data, 1, b.len, stdout) != b.len) rc = CX_ERR_IO;
    }
    cx_buf_free(&b);
    if (rc == CX_OK && fflush(stdout) != 0) rc = CX_ERR_IO;
    if (rc != CX_OK) {
        fprintf(stderr, "cxstream state offsets: %s\n", cx_err2str(rc));
        return CX_EXIT_RUNTIME;
    }
    return CX_EXIT_OK;
}

/* ---------- state dump ---------- */

static int cmd_dump(state_ctx_t *s, const char *output, char *err, size_t errsz) {
    int rcode = CX_EXIT_RUNTIME;
    FILE *out = NULL;
    cx_codec_t *codec = cx_codec_new(err, errsz);
    cx_profile_lines_t d;
    cx_profile_lines_init(&d, codec);
    if (!codec) {
        fprintf(stderr, "cxstream state dump: %s\n", err);
        goto done;
    }
    for (int k = 0; k < s->n_parts; k++)
        if (cx_pipeline_each_profile(s->pl, s->parts[k], cx_profile_lines_add, &d, err, errsz) != CX_OK ||
            d.rc != CX_OK) {
            fprintf(stderr, "cxstream state dump: partition %u: %s\n", s->parts[k],
                    d.rc != CX_OK ? cx_err2str(d.rc) : err);
            goto done;
        }
    out = output && strcmp(output, "-") != 0 ? fopen(output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "cxstream state dump: cannot write --output %s: %s\n", output, strerror(errno));
        goto done;
    }
    if (cx_profile_lines_write(&d, out) != CX_OK) {
        fprintf(stderr, "cxstream state dump: writing %s failed: %s\n", output ? output : "stdout", strerror(errno));
        goto done;
    }
    cx_log(CX_LOG_INFO, "state", "dumped customers=%zu partitions=%d dir=%s", d.n, s->n_parts, s->cfg->state_dir);
    rcode = CX_EXIT_OK;
done:
    if (out && out != stdout && fclose(out) != 0 && rcode == CX_EXIT_OK) rcode = CX_EXIT_RUNTIME;
    cx_profile_lines_free(&d);
    cx_codec_destroy(codec);
    return rcode;
}

int cx_cmd_state(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 's'},
                                         {"output", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cx_cli_conf_t cc = {0};
    const char *output = NULL, *sub = NULL;
    int c, rcode = CX_EXIT_USAGE;
    char err[512] = "";
    state_ctx_t s = {0};
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return CX_EXIT_OK;
    }
    if (argc < 2 || (strcmp(argv[1], "dump") != 0 && strcmp(argv[1], "offsets") != 0)) {
        if (argc >= 2) fprintf(stderr, "cxstream state: unknown subcommand '%s'\n", argv[1]);
        usage(stderr);
        return CX_EXIT_USAGE;
    }
    sub = argv[1];
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "c:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cc.file = optarg; break;
        case 's': cx_cli_add_set(&cc, optarg); break;
        case 'o':
            if (strcmp(sub, "dump") != 0) {
                fprintf(stderr, "cxstream state %s: --output applies to dump only\n", sub);
                goto done;
            }
            output = optarg;
            break;
        case 'h':
            usage(stdout);
            rcode = CX_EXIT_OK;
            goto done;
        default: usage(stderr); goto done;
        }
    }
    if (optind < argc - 1) {
        fprintf(stderr, "cxstream state %s: unexpected argument '%s'\n", sub, argv[1 + optind]);
        goto done;
    }
    if (!(s.cfg = cx_cli_config(&cc, err, sizeof err))) {
        fprintf(stderr, "cxstream state %s: %s\n", sub, err);
        goto done;
    }
    if ((rcode = state_open(&s, sub, err, sizeof err)) != CX_EXIT_OK) goto done;
    rcode = strcmp(sub, "dump") == 0 ? cmd_dump(&s, output, err, sizeof err) : cmd_offsets(&s);
done:
    cx_pipeline_destroy(s.pl);
    cx_store_close(s.store);
    cx_config_destroy(s.cfg);
    cx_cli_conf_free(&cc);
    return rcode;
}
