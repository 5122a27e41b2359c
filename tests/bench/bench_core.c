/*
 * bench_core.c — the core benchmark of issue 7: wire-format events, pre-encoded in memory, through
 * decode -> validation -> pipeline (RocksDB on disk in a temp dir, write-back cache, flush every
 * 100k events or --flush-every) -> output encoding (Avro wire, as `run` produces), on one core,
 * without Kafka.
 *
 * Two sources. `--source uniform` (the default, the table's core rows): synthetic and controlled
 * events, N over D days in non-decreasing event time, customers drawn uniformly from C distinct ids
 * (hashed order, so the cache sees a uniform working set), 75% plays, 25% purchases.
 * `--source gen`: the records of `cxstream gen --customers C --days D` (seed 1), the end-to-end
 * benchmark's data (habits: heavy streamers to occasional renters, email sends, surveys, ~1% invalid
 * records, which are rejected as `run` rejects them), the first N input records or all of them
 * without --events; campaign records are applied when generated, outside the timed region, as `run`
 * applies the campaigns topic apart from the merge. Either way events are encoded in chunks of 1M
 * outside the timed region, so the input does not inflate the peak RSS and only the processing is
 * timed. Prints one line of key=value results.
 *
 * callgrind: the processing is the function process_chunk; run under
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=process_chunk
 * to count instructions of the processing only (perf's hardware counters are absent on this VM).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "config.h"
#include "gen.h"
#include "pipeline.h"

#define CHUNK_EVENTS 1000000
#define FLUSH_EVERY  100000 /* default of --flush-every */

typedef struct bench_sink {
    cx_codec_t *codec;
    cx_buf_t buf;
    uint64_t records, bytes;
} bench_sink_t;

static cx_err_t sink_emit(void *opaque, cx_record_kind_t kind, const char *key, const void *rec) {
    (void)key;
    bench_sink_t *s = opaque;
    if (kind < CX_REC_SEGMENT_CHANGE || kind > CX_REC_ENRICHED) return CX_OK; /* internal records */
    cx_buf_reset(&s->buf);
    cx_err_t rc = cx_codec_encode(s->codec, kind, rec, CX_FMT_WIRE, &s->buf);
    s->records++;
    s->bytes += s->buf.len;
    return rc;
}

typedef struct chunk {
    uint8_t *data; /* concatenated wire records */
    uint32_t *len; /* per record */
    uint8_t *kind; /* cx_record_kind_t */
    size_t n, used, cap;
    char *keys;     /* concatenated record keys (the customer ids, as Kafka keys carry them) */
    uint32_t *koff; /* per record */
    uint8_t *klen;  /* per record */
    size_t kused, kcap;
} chunk_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* buf with room for `need` bytes of *cap (doubling, from `first`): buf itself, its reallocation, or
 * NULL when out of memory (buf is then unchanged). */
static void *grow(void *buf, size_t *cap, size_t need, size_t first) {
    if (need <= *cap) return buf;
    size_t n = *cap ? *cap * 2 : first;
    while (n < need)
        n *= 2;
    void *b = realloc(buf, n);
    if (b) *cap = n;
    return b;
}

static int chunk_add(chunk_t *c, const void *data, size_t len, const char *key, cx_record_kind_t kind) {
    size_t kl = strlen(key);
    if (kl > UINT8_MAX) kl = UINT8_MAX; /* longer than CX_ID_MAX: only a prefetch hint, never a lookup */
    char *k = grow(c->keys, &c->kcap, c->kused + kl, (size_t)16 << 20);
    if (!k) return -1;
    c->keys = k;
    uint8_t *d = grow(c->data, &c->cap, c->used + len, (size_t)64 << 20);
    if (!d) return -1;
    c->data = d;
    memcpy(c->keys + c->kused, key, kl);
    c->koff[c->n] = (uint32_t)c->kused;
    c->klen[c->n] = (uint8_t)kl;
    c->kused += kl;
    memcpy(c->data + c->used, data, len);
    c->used += len;
    c->len[c->n] = (uint32_t)len;
    c->kind[c->n] = (uint8_t)kind;
    c->n++;
    return 0;
}

/* Encodes events [first, first + n) into c. */
static int encode_chunk(cx_codec_t *codec, chunk_t *c, uint64_t first, size_t n, uint64_t total, uint64_t customers,
                        int64_t start_ms, int64_t span_ms) {
    static const char *genres[] = {"drama", "comedy", "action", "documentary", "kids", "thriller"};
    static const char *devices[] = {"tv", "mobile", "web", "tablet"};
    cx_buf_t b = {0};
    c->n = c->used = c->kused = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = first + i, rnd = k * 7919 + 17;
        uint64_t r1 = splitmix(&rnd), r2 = splitmix(&rnd);
        cx_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.ts_ms = start_ms + (int64_t)((double)k / (double)total * (double)span_ms);
        snprintf(ev.event_id, sizeof ev.event_id, "e%011" PRIu64, k);
        snprintf(ev.customer_id, sizeof ev.customer_id, "c%09" PRIu64, r1 % customers);
        cx_record_kind_t kind;
        if (r2 % 4 != 0) {
            ev.type = CX_EV_PLAY;
            kind = CX_REC_PLAY;
            snprintf(ev.u.play.title_id, sizeof ev.u.play.title_id, "t%05u", (unsigned)((r2 >> 8) % 20000));
            ev.u.play.has_genre = true;
            strcpy(ev.u.play.genre, genres[(r2 >> 24) % 6]);
            ev.u.play.seconds_watched = (int32_t)((r2 >> 32) % 7200);
            ev.u.play.has_device = true;
            strcpy(ev.u.play.device, devices[(r2 >> 40) % 4]);
        } else {
            ev.type = CX_EV_PURCHASE;
            kind = CX_REC_PURCHASE;
            ev.u.purchase.has_title_id = true;
            snprintf(ev.u.purchase.title_id, sizeof ev.u.purchase.title_id, "t%05u", (unsigned)((r2 >> 8) % 20000));
            ev.u.purchase.kind = (cx_purchase_kind_t)((r2 >> 24) % 2);
            ev.u.purchase.amount_minor = 199 + (int64_t)((r2 >> 32) % 2000);
            strcpy(ev.u.purchase.currency, "EUR");
        }
        cx_buf_reset(&b);
        if (cx_codec_encode(codec, kind, &ev, CX_FMT_WIRE, &b) != CX_OK) {
            cx_buf_free(&b);
            return -1;
        }
        if (chunk_add(c, b.data, b.len, ev.customer_id, kind) != 0) {
            cx_buf_free(&b);
            return -1;
        }
    }
    cx_buf_free(&b);
    return 0;
}

/* Fills c with up to `n` input records of the generator (campaigns go to the pipeline at once);
 * returns how many, 0 at the end of the stream, -1 on failure (err). */
static long gen_chunk(cx_gen_t *g, cx_pipeline_t *pl, chunk_t *c, size_t n, char *err, size_t errn) {
    c->n = c->used = c->kused = 0;
    cx_gen_record_t rec;
    while (c->n < n) {
        int got = cx_gen_next(g, &rec);
        if (got < 0) {
            snprintf(err, errn, "generator: %s", cx_gen_error(g));
            return -1;
        }
        if (got == 0) break;
        if (rec.type == CX_EV_CAMPAIGN) {
            if (cx_pipeline_campaign(pl, rec.campaign->campaign_id, rec.campaign, err, errn) != CX_OK) return -1;
            continue;
        }
        if (chunk_add(c, rec.raw, rec.raw_len, rec.key, cx_codec_kind_of_event(rec.type)) != 0) {
            snprintf(err, errn, "out of memory");
            return -1;
        }
    }
    return (long)c->n;
}

typedef struct run {
    cx_codec_t *codec;
    cx_pipeline_t *pl;
    const cx_config_t *cfg;
    int partitions;
    uint64_t since_flush, flush_every, events, rejected;
    char err[512];
} run_t;

static cx_err_t drain(run_t *r, uint16_t part, int64_t wm) {
    for (bool more = true; more;) {
        cx_err_t rc = cx_pipeline_advance(r->pl, part, wm, &more, r->err, sizeof r->err);
        if (rc != CX_OK) return rc;
        if (cx_pipeline_needs_flush(r->pl) && (rc = cx_pipeline_flush(r->pl, -1, r->err, sizeof r->err)) != CX_OK)
            return rc;
    }
    return CX_OK;
}

/* The timed work: what `run` does per record between poll and produce. */
__attribute__((noinline)) static cx_err_t process_chunk(run_t *r, const chunk_t *c) {
    cx_check_opts_t chk = {.min_ts_ms = r->cfg->input_min_ts_ms,
                           .max_future_ms = r->cfg->input_max_future_ms,
                           .currencies = (const char *const *)r->cfg->currencies,
                           .n_currencies = r->cfg->n_currencies};
    const uint8_t *p = c->data;
    cx_event_t ev;
    char detail[256];
    static const size_t dist[] = {16, 12, 8, 4};
    for (size_t i = 0; i < c->n; p += c->len[i], i++) {
        /* the runner's staged prefetch (run.c prefetch_ahead): the customers a few records ahead */
        for (int s = 0; s < 4; s++)
            if (i + dist[s] < c->n)
                cx_pipeline_prefetch(r->pl, c->keys + c->koff[i + dist[s]], c->klen[i + dist[s]], s);
        cx_dlq_code_t code =
            cx_codec_decode_event(r->codec, (cx_record_kind_t)c->kind[i], p, c->len[i], &ev, detail, sizeof detail);
        if (code == CX_DLQ_NONE) code = cx_codec_check_event(&ev, &chk, detail, sizeof detail);
        if (code != CX_DLQ_NONE) {
            r->rejected++;
            continue;
        }
        uint16_t part = (uint16_t)cx_murmur2_partition(ev.customer_id, strlen(ev.customer_id), r->partitions);
        cx_err_t rc = drain(r, part, ev.ts_ms - r->cfg->watermark_lateness_ms);
        if (rc == CX_OK) rc = cx_pipeline_event(r->pl, part, &ev, (int64_t)r->events, r->err, sizeof r->err);
        if (rc != CX_OK) return rc;
        r->events++;
        if (++r->since_flush >= r->flush_every || cx_pipeline_needs_flush(r->pl)) {
            if ((rc = cx_pipeline_flush(r->pl, -1, r->err, sizeof r->err)) != CX_OK) return rc;
            r->since_flush = 0;
        }
    }
    return CX_OK;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void usage(void) {
    fprintf(stderr, "usage: bench_core [--events N] --customers C [--days D] [--partitions P] [--enriched 0|1]\n"
                    "                  [--dir DIR] [--flush-every E] [--source uniform|gen] [--set key=value]...\n"
                    "  --events defaults to 1,000,000 (uniform) or the whole generated stream (gen)\n");
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"events", required_argument, 0, 'n'},   {"customers", required_argument, 0, 'c'},
        {"days", required_argument, 0, 'd'},     {"partitions", required_argument, 0, 'p'},
        {"enriched", required_argument, 0, 'e'}, {"dir", required_argument, 0, 'D'},
        {"set", required_argument, 0, 's'},      {"flush-every", required_argument, 0, 'f'},
        {"source", required_argument, 0, 'S'},   {0, 0, 0, 0}};
    uint64_t n_events = 0, customers = 100000, flush_every = FLUSH_EVERY;
    bool from_gen = false;
    int days = 90, partitions = 4, enriched = 0, o, status = 1;
    const char *dir = NULL;
    char err[512] = "", tmpl[] = "/tmp/cxbench-XXXXXX";
    const char *sets[32];
    int n_sets = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'n': n_events = strtoull(optarg, NULL, 10); break;
        case 'c': customers = strtoull(optarg, NULL, 10); break;
        case 'f': flush_every = strtoull(optarg, NULL, 10); break;
        case 'd': days = atoi(optarg); break;
        case 'p': partitions = atoi(optarg); break;
        case 'e': enriched = atoi(optarg); break;
        case 'D': dir = optarg; break;
        case 'S':
            if (strcmp(optarg, "gen") != 0 && strcmp(optarg, "uniform") != 0) {
                fprintf(stderr, "bench_core: --source is uniform or gen, not %s\n", optarg);
                return 2;
            }
            from_gen = strcmp(optarg, "gen") == 0;
            break;
        case 's':
            if (n_sets < 32) sets[n_sets++] = optarg;
            break;
        default: usage(); return 2;
        }
    }
    if (!n_events && !from_gen) n_events = 1000000;
    if (!customers || !flush_every || partitions < 1 || partitions > CX_PARTS_MAX) {
        usage();
        return 2;
    }
    if (!dir && !(dir = mkdtemp(tmpl))) {
        perror("mkdtemp");
        return 1;
    }
    cx_config_t *cfg = cx_config_new();
    cx_store_t *store = NULL;
    bench_sink_t bs = {0};
    run_t r = {0};
    chunk_t ch = {0};
    cx_gen_t *gen = NULL;
    if (!cfg) goto done;
    cfg->enriched_enabled = enriched != 0;
    for (int i = 0; i < n_sets; i++)
        if (cx_config_set_kv(cfg, sets[i], "--set", err, sizeof err) != CX_OK) {
            fprintf(stderr, "bench_core: %s\n", err);
            goto done;
        }
    if (!(bs.codec = cx_codec_new(err, sizeof err)) || !(r.codec = cx_codec_new(err, sizeof err))) goto fail;
    cx_store_opts_t so = {.dir = dir,
                          .block_cache_mb = (size_t)cfg->state_block_cache_mb,
                          .write_buffer_mb = (size_t)cfg->state_write_buffer_mb};
    if (!(store = cx_store_open(&so, err, sizeof err))) goto fail;
    cx_sink_t sink = {&bs, sink_emit};
    if (!(r.pl = cx_pipeline_new(cfg, store, &sink, err, sizeof err))) goto fail;
    for (int p = 0; p < partitions; p++)
        if (cx_pipeline_assign(r.pl, (uint16_t)p, NULL, err, sizeof err) != CX_OK) goto fail;
    r.cfg = cfg;
    r.partitions = partitions;
    r.flush_every = flush_every;
    if (from_gen) {
        cx_gen_opts_t go = cx_gen_opts_default();
        go.customers = customers;
        go.days = days;
        if (!(gen = cx_gen_new(&go, err, sizeof err))) goto fail;
    }
    size_t chunk_n = n_events && n_events < CHUNK_EVENTS ? (size_t)n_events : CHUNK_EVENTS;
    ch.len = malloc(chunk_n * sizeof *ch.len);
    ch.kind = malloc(chunk_n);
    ch.koff = malloc(chunk_n * sizeof *ch.koff);
    ch.klen = malloc(chunk_n);
    if (!ch.len || !ch.kind || !ch.koff || !ch.klen) goto fail;
    long rss_base = rss_kb();
    double busy = 0, cpu0;
    struct rusage ru;
    double cpu_busy = 0;
    int64_t start_ms = INT64_C(1736121600000); /* 2025-01-06T00:00:00Z */
    uint64_t wire_bytes = 0;
    uint64_t inputs = 0; /* records read, rejected ones included */
    for (uint64_t first = 0; !n_events || first < n_events; first += chunk_n) {
        size_t n = (size_t)(n_events && n_events - first < chunk_n ? n_events - first : chunk_n);
        if (gen) {
            long got = gen_chunk(gen, r.pl, &ch, n, err, sizeof err);
            if (got < 0) goto fail;
            if (got == 0) break;
        } else if (encode_chunk(r.codec, &ch, first, n, n_events, customers, start_ms, (int64_t)days * 86400000) != 0) {
            snprintf(err, sizeof err, "encoding events failed");
            goto fail;
        }
        inputs += ch.n;
        wire_bytes += ch.used;
        getrusage(RUSAGE_SELF, &ru);
        cpu0 = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               ru.ru_stime.tv_usec / 1e6;
        double t0 = now_s();
        if (process_chunk(&r, &ch) != CX_OK) goto fail;
        busy += now_s() - t0;
        getrusage(RUSAGE_SELF, &ru);
        cpu_busy += (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                    ru.ru_stime.tv_usec / 1e6 - cpu0;
    }
    double t0 = now_s();
    if (cx_pipeline_flush(r.pl, -1, err, sizeof err) != CX_OK) goto fail;
    busy += now_s() - t0;
    cx_pipeline_stats_t st = cx_pipeline_stats(r.pl);
    free(ch.data);
    ch.data = NULL; /* the input buffer is not the processor's memory */
    free(ch.keys);
    ch.keys = NULL;
    getrusage(RUSAGE_SELF, &ru);
    long peak_kb = ru.ru_maxrss;
    cx_store_compact(store);
    uint64_t db_bytes = cx_store_size_bytes(store);
    /* distinct customers actually drawn: with uniform draws, C * (1 - exp(-N/C)) */
    double distinct =
        gen ? (double)customers : (double)customers * (1.0 - __builtin_exp(-(double)n_events / (double)customers));
    cx_cache_stats_t cs = cx_pipeline_cache_stats(r.pl);
    printf("source=%s events=%" PRIu64 " customers=%" PRIu64 " distinct_customers=%.0f enriched=%d partitions=%d "
           "seconds=%.3f cpu_seconds=%.3f events_per_s=%.0f peak_rss_mb=%.1f rss_base_mb=%.1f "
           "db_bytes=%" PRIu64 " db_bytes_per_customer=%.1f wire_bytes_per_event=%.1f rejected=%" PRIu64
           " segment_changes=%" PRIu64 " triggers=%" PRIu64 " enriched_out=%" PRIu64 " out_bytes=%" PRIu64
           " flushes=%" PRIu64 " timers_fired=%" PRIu64 " decodes_per_event=%.2f encodes_per_event=%.2f\n",
           gen ? "gen" : "uniform", r.events, customers, distinct, enriched, partitions, busy, cpu_busy,
           (double)r.events / busy, peak_kb / 1024.0, rss_base / 1024.0, db_bytes, (double)db_bytes / distinct,
           (double)wire_bytes / (double)inputs, r.rejected, st.out[CX_REC_SEGMENT_CHANGE], st.out[CX_REC_TRIGGER],
           st.out[CX_REC_ENRICHED], bs.bytes, st.flushes, st.timers_fired, (double)cs.decodes / (double)r.events,
           (double)cs.encodes / (double)r.events);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "bench_core: %s\n", err[0] ? err : r.err);
done:
    cx_gen_destroy(gen);
    free(ch.data);
    free(ch.len);
    free(ch.kind);
    free(ch.keys);
    free(ch.koff);
    free(ch.klen);
    cx_pipeline_destroy(r.pl);
    cx_store_close(store);
    cx_codec_destroy(r.codec);
    cx_codec_destroy(bs.codec);
    cx_buf_free(&bs.buf);
    cx_config_destroy(cfg);
    if (dir == tmpl) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpl);
        if (system(cmd) != 0) status = status ? status : 1;
    }
    return status;
}
