/*
 * mock_helpers.h — what the integration tests share: an in-process Kafka cluster (librdkafka's
 * mock, rdkafka_mock.h) with every cxstream topic, a configuration pointing the runner at it, a
 * producer that reports where each record landed, the driving loop that polls the runner until
 * the group's committed offsets reach the end of every input partition, and a reader that brings
 * an output topic back as records (key, value, headers), decoded from Avro where asked.
 *
 * Static functions in a header because CMake builds only tests/integration/test_*.c. Everything
 * here aborts the test (cr_assert) on an unexpected failure. Ownership: every *_new/_read has a
 * matching free; records own their bytes.
 */
#ifndef CX_MOCK_HELPERS_H
#define CX_MOCK_HELPERS_H

#include <avro.h>
#include <criterion/criterion.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "config.h"
#include "pipeline.h"
#include "runner.h"

#define MH_PARTS 4
/* Kafka protocol ApiKeys (rdkafka_protocol.h is not installed) */
#define MH_API_PRODUCE       0
#define MH_API_OFFSET_COMMIT 8

static int64_t mh_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- temporary directories ---------- */

static int mh_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static char *mh_tempdir(void) {
    char *d = strdup("/tmp/cx-itest-XXXXXX");
    cr_assert(d && mkdtemp(d), "mkdtemp");
    return d;
}

static void mh_rmtree(char *d) {
    if (!d) return;
    nftw(d, mh_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(d);
}

/* ---------- the cluster ---------- */

typedef struct mh_cluster {
    rd_kafka_t *rk; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    char bootstraps[128];
} mh_cluster_t;

/* A one-broker mock cluster with every topic of cfg: inputs and per-customer outputs with
 * MH_PARTS partitions, the global tables with one. */
static void mh_cluster_start(mh_cluster_t *c, const cx_config_t *cfg) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof err), RD_KAFKA_CONF_OK, "%s", err);
    cr_assert_eq(rd_kafka_conf_set(conf, "log_level", "4", err, sizeof err), RD_KAFKA_CONF_OK, "%s", err);
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cr_assert(c->rk, "%s", err);
    c->mc = rd_kafka_handle_mock_cluster(c->rk);
    cr_assert(c->mc);
    snprintf(c->bootstraps, sizeof c->bootstraps, "%s", rd_kafka_mock_cluster_bootstraps(c->mc));
    cx_topic_use_t t[CX_TOPICS_MAX];
    size_t nt = cx_config_topics(cfg, t);
    for (size_t i = 0; i < nt; i++)
        cr_assert_eq(rd_kafka_mock_topic_create(c->mc, t[i].name, t[i].global ? 1 : MH_PARTS, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR, "create %s", t[i].name);
}

static void mh_cluster_stop(mh_cluster_t *c) {
    if (c->rk) rd_kafka_destroy(c->rk);
    memset(c, 0, sizeof *c);
}

/* Defaults, then the runner's bootstrap and state directory, then `sets` ("key=value", NULL-ended);
 * a short commit interval so tests do not wait for the default second. */
static cx_config_t *mh_config(const char *bootstraps, const char *state_dir, const char *const *sets) {
    char err[512];
    cx_config_t *cfg = cx_config_new();
    cr_assert(cfg);
    cr_assert_eq(cx_config_set(cfg, "commit.interval_ms", "100", NULL, err, sizeof err), CX_OK, "%s", err);
    /* the smallest input buffer: a poll takes about one batch, so a run of a few thousand records
     * needs many polls and an injected fault lands mid-stream (8 MB would take it all at once) */
    cr_assert_eq(cx_config_set(cfg, "input.buffer_kb", "64", NULL, err, sizeof err), CX_OK, "%s", err);
    if (bootstraps)
        cr_assert_eq(cx_config_set(cfg, "bootstrap.servers", bootstraps, NULL, err, sizeof err), CX_OK, "%s", err);
    if (state_dir) cr_assert_eq(cx_config_set(cfg, "state.dir", state_dir, NULL, err, sizeof err), CX_OK, "%s", err);
    for (size_t i = 0; sets && sets[i]; i++)
        cr_assert_eq(cx_config_set_kv(cfg, sets[i], NULL, err, sizeof err), CX_OK, "%s: %s", sets[i], err);
    cr_assert_eq(cx_config_validate(cfg, err, sizeof err), CX_OK, "%s", err);
    return cfg;
}

/* ---------- producing inputs ---------- */

/* Where a record landed, filled by the delivery report. */
typedef struct mh_sent {
    int32_t partition;
    int64_t offset;
    rd_kafka_resp_err_t err;
    int done;
} mh_sent_t;

static void mh_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    mh_sent_t *s = m->_private;
    if (!s) return;
    s->partition = m->partition;
    s->offset = m->offset;
    s->err = m->err;
    s->done = 1;
}

/* Idempotent (so records keep their order) and partitioned like the Java client (DESIGN §2). */
static rd_kafka_t *mh_producer_new(const char *bootstraps) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[] = {"bootstrap.servers", bootstraps, "partitioner", "murmur2_random", "enable.idempotence", "true",
                        "linger.ms",         "0",        NULL};
    for (size_t i = 0; kv[i]; i += 2)
        cr_assert_eq(rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, sizeof err), RD_KAFKA_CONF_OK, "%s", err);
    rd_kafka_conf_set_dr_msg_cb(conf, mh_dr_cb);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cr_assert(p, "%s", err);
    return p;
}

/* Produces one record and waits for its delivery report (sent may be NULL). */
static void mh_produce(rd_kafka_t *p, const char *topic, const char *key, const void *val, size_t len,
                       mh_sent_t *sent) {
    mh_sent_t local = {0};
    if (!sent) sent = &local;
    memset(sent, 0, sizeof *sent);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)val, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(sent), RD_KAFKA_V_END);
    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "produce to %s: %s", topic, rd_kafka_err2str(err));
    cr_assert_eq(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR, "flush");
    cr_assert(sent->done && !sent->err, "delivery to %s: %s", topic, rd_kafka_err2str(sent->err));
}

/* ---------- driving the runner ---------- */

/* The end offsets of every input partition and what the group has committed for them. */
typedef struct mh_offsets {
    int64_t end[CX_INPUTS][MH_PARTS];
    int64_t committed[CX_INPUTS][MH_PARTS]; /* < 0: nothing committed */
} mh_offsets_t;

static void mh_offsets_read(const cx_config_t *cfg, const char *bootstraps, mh_offsets_t *o) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[] = {"bootstrap.servers",  bootstraps, "group.id", cfg->group_id,
                        "enable.auto.commit", "false",    NULL};
    for (size_t i = 0; kv[i]; i += 2)
        cr_assert_eq(rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, sizeof err), RD_KAFKA_CONF_OK, "%s", err);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    cr_assert(c, "%s", err);
    const char *topics[CX_INPUTS] = {cfg->topic_email_send, cfg->topic_purchase, cfg->topic_play, cfg->topic_survey};
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(CX_INPUTS * MH_PARTS);
    for (int i = 0; i < CX_INPUTS; i++)
        for (int32_t p = 0; p < MH_PARTS; p++) {
            int64_t lo = 0, hi = 0;
            /* 30 s: a check right after a fault test takes the broker down (for 10 s) must outlast it */
            cr_assert_eq(rd_kafka_query_watermark_offsets(c, topics[i], p, &lo, &hi, 30000),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
            o->end[i][p] = hi;
            rd_kafka_topic_partition_list_add(l, topics[i], p);
        }
    cr_assert_eq(rd_kafka_committed(c, l, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int k = 0; k < l->cnt; k++) {
        int i = k / MH_PARTS, p = k % MH_PARTS;
        o->committed[i][p] = l->elems[k].err ? -1 : l->elems[k].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
}

static bool mh_offsets_at_end(const mh_offsets_t *o) {
    for (int i = 0; i < CX_INPUTS; i++)
        for (int p = 0; p < MH_PARTS; p++) {
            if (o->end[i][p] == 0) continue; /* empty: nothing to commit */
            if (o->committed[i][p] != o->end[i][p]) return false;
        }
    return true;
}

/* Called after every poll, e.g. to inject a fault once the runner is under way. */
typedef void (*mh_hook_t)(void *opaque, cx_runner_t *r);

/* Polls the runner until the group has committed the end of every input partition (checked after
 * each commit cycle), or until timeout_ms. Returns the poll result that stopped it: CX_OK at the
 * end, CX_ERR_TIMEOUT, or the runner's error (errstr filled). */
static cx_err_t mh_drive(cx_runner_t *r, const cx_config_t *cfg, const char *bootstraps, int64_t timeout_ms,
                         mh_hook_t hook, void *opaque, char *errstr, size_t n) {
    int64_t deadline = mh_mono_ms() + timeout_ms;
    uint64_t seen_commits = 0;
    while (mh_mono_ms() < deadline) {
        cx_err_t rc = cx_runner_poll(r, 50, errstr, n);
        if (rc != CX_OK) return rc;
        if (hook) hook(opaque, r);
        cx_runner_stats_t st = cx_runner_stats(r);
        if (st.commits == seen_commits) continue;
        seen_commits = st.commits;
        mh_offsets_t o;
        mh_offsets_read(cfg, bootstraps, &o);
        if (mh_offsets_at_end(&o)) return CX_OK;
    }
    {
        mh_offsets_t o;
        mh_offsets_read(cfg, bootstraps, &o);
        char buf[1024];
        size_t k = 0;
        for (int i = 0; i < CX_INPUTS; i++)
            for (int p = 0; p < MH_PARTS; p++)
                if (o.end[i][p] && k < sizeof buf - 64)
                    k += (size_t)snprintf(buf + k, sizeof buf - k, " %d[%d]=%" PRId64 "/%" PRId64, i, p,
                                          o.committed[i][p], o.end[i][p]);
        cx_seterr(errstr, n, "committed offsets did not reach the end within %" PRId64 " ms:%s", timeout_ms,
                  k ? buf : " (no input)");
    }
    return CX_ERR_TIMEOUT;
}

/* ---------- reading outputs ---------- */

typedef struct mh_rec {
    int32_t partition;
    int64_t offset;
    char *key; /* NUL-terminated copy */
    uint8_t *val;
    size_t vlen;
    char *hdr_error, *hdr_detail, *hdr_topic, *hdr_partition, *hdr_offset, *hdr_group; /* NULL when absent */
} mh_rec_t;

typedef struct mh_recs {
    mh_rec_t *v;
    size_t n, cap;
} mh_recs_t;

static char *mh_hdr(rd_kafka_headers_t *h, const char *name) {
    const void *v;
    size_t len;
    if (!h || rd_kafka_header_get_last(h, name, &v, &len)) return NULL;
    char *s = malloc(len + 1);
    memcpy(s, v, len);
    s[len] = 0;
    return s;
}

/* Every record of `topic`, partition by partition in offset order. */
static void mh_read_topic(const char *bootstraps, const char *topic, mh_recs_t *out) {
    char err[256];
    memset(out, 0, sizeof *out);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[] = {"bootstrap.servers",    bootstraps, "group.id", "mh-reader", "enable.auto.commit", "false",
                        "enable.partition.eof", "false",    NULL};
    for (size_t i = 0; kv[i]; i += 2)
        cr_assert_eq(rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, sizeof err), RD_KAFKA_CONF_OK, "%s", err);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    cr_assert(c, "%s", err);
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, topic, NULL);
    cr_assert_eq(rd_kafka_metadata(c, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    cr_assert(parts > 0 && parts <= 64, "%s has %d partitions", topic, parts);
    int64_t hi[64], remaining = 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0;
        cr_assert_eq(rd_kafka_query_watermark_offsets(c, topic, p, &lo, &hi[p], 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_assert_eq(lo, 0, "%s [%d] lost records (the mock keeps only 5 MB)", topic, p);
        remaining += hi[p];
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    cr_assert_eq(rd_kafka_assign(c, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    mh_rec_t **byp = calloc((size_t)parts, sizeof *byp);
    size_t *nbyp = calloc((size_t)parts, sizeof *nbyp);
    int64_t deadline = mh_mono_ms() + 30000;
    while (remaining > 0) {
        cr_assert(mh_mono_ms() < deadline, "reading %s: %" PRId64 " records missing", topic, remaining);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        int p = m->partition;
        byp[p] = realloc(byp[p], (nbyp[p] + 1) * sizeof **byp);
        mh_rec_t *r = &byp[p][nbyp[p]++];
        memset(r, 0, sizeof *r);
        r->partition = p;
        r->offset = m->offset;
        r->key = malloc(m->key_len + 1);
        memcpy(r->key, m->key ? m->key : "", m->key_len);
        r->key[m->key_len] = 0;
        r->vlen = m->len;
        r->val = malloc(m->len ? m->len : 1);
        if (m->len) memcpy(r->val, m->payload, m->len);
        rd_kafka_headers_t *h = NULL;
        rd_kafka_message_headers(m, &h);
        r->hdr_error = mh_hdr(h, "cx.error");
        r->hdr_detail = mh_hdr(h, "cx.error.detail");
        r->hdr_topic = mh_hdr(h, "cx.source.topic");
        r->hdr_partition = mh_hdr(h, "cx.source.partition");
        r->hdr_offset = mh_hdr(h, "cx.source.offset");
        r->hdr_group = mh_hdr(h, "cx.group");
        remaining--;
        rd_kafka_message_destroy(m);
    }
    for (int p = 0; p < parts; p++) {
        for (size_t k = 0; k < nbyp[p]; k++) {
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 64;
                out->v = realloc(out->v, out->cap * sizeof *out->v);
            }
            out->v[out->n++] = byp[p][k];
        }
        free(byp[p]);
    }
    free(byp);
    free(nbyp);
    rd_kafka_destroy(c);
}

static void mh_recs_free(mh_recs_t *rs) {
    for (size_t i = 0; i < rs->n; i++) {
        mh_rec_t *r = &rs->v[i];
        free(r->key);
        free(r->val);
        free(r->hdr_error);
        free(r->hdr_detail);
        free(r->hdr_topic);
        free(r->hdr_partition);
        free(r->hdr_offset);
        free(r->hdr_group);
    }
    free(rs->v);
    memset(rs, 0, sizeof *rs);
}

/* The records as a sorted list of distinct strings "key|hex(value)|headers": the set that
 * at-least-once promises (repeats allowed, nothing lost, nothing different). Caller frees. */
typedef struct mh_set {
    char **s;
    size_t n;
} mh_set_t;

static int mh_strcmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static mh_set_t mh_set_of(const mh_recs_t *rs) {
    mh_set_t set = {calloc(rs->n + 1, sizeof(char *)), 0};
    for (size_t i = 0; i < rs->n; i++) {
        const mh_rec_t *r = &rs->v[i];
        size_t cap = strlen(r->key) + 2 * r->vlen + 512;
        char *s = malloc(cap);
        size_t k = (size_t)snprintf(s, cap, "%s|", r->key);
        for (size_t j = 0; j < r->vlen; j++)
            k += (size_t)snprintf(s + k, cap - k, "%02x", r->val[j]);
        snprintf(s + k, cap - k, "|%s|%s|%s|%s", r->hdr_error ? r->hdr_error : "", r->hdr_topic ? r->hdr_topic : "",
                 r->hdr_partition ? r->hdr_partition : "", r->hdr_offset ? r->hdr_offset : "");
        set.s[set.n++] = s;
    }
    qsort(set.s, set.n, sizeof *set.s, mh_strcmp);
    size_t w = 0;
    for (size_t i = 0; i < set.n; i++) {
        if (w && strcmp(set.s[w - 1], set.s[i]) == 0) {
            free(set.s[i]);
            continue;
        }
        set.s[w++] = set.s[i];
    }
    set.n = w;
    return set;
}

static void mh_set_free(mh_set_t *set) {
    for (size_t i = 0; i < set->n; i++)
        free(set->s[i]);
    free(set->s);
    memset(set, 0, sizeof *set);
}

/* Asserts two sets are equal, naming the first difference. */
static void mh_assert_same_set(const mh_set_t *a, const mh_set_t *b, const char *what) {
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int c = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->s[i], b->s[j]);
        cr_assert_eq(c, 0, "%s: %s only in the %s run (%zu vs %zu distinct records); nearest in the other: %s", what,
                     c < 0 ? a->s[i] : b->s[j], c < 0 ? "first" : "second", a->n, b->n,
                     c < 0 ? (j < b->n ? b->s[j] : "-") : (i < a->n ? a->s[i] : "-"));
        i++;
        j++;
    }
}

/* ---------- decoding output values ---------- */

/* Unwraps avro-c's JSON form of a union branch ({"string": "x"} -> "x") in every field. */
static void mh_unwrap_unions(json_t *obj) {
    const char *k;
    json_t *v;
    static const char *const prim[] = {"string", "int", "long", "double", "float", "boolean", "bytes", NULL};
    json_object_foreach(obj, k, v) {
        if (!json_is_object(v) || json_object_size(v) != 1) continue;
        for (size_t i = 0; prim[i]; i++) {
            json_t *inner = json_object_get(v, prim[i]);
            if (inner) {
                json_object_set(obj, k, inner);
                break;
            }
        }
    }
}

/* A wire-format value (0x00, BE schema id, Avro) of `kind` as a JSON object, unions unwrapped. */
static json_t *mh_decode(cx_codec_t *codec, cx_record_kind_t kind, const uint8_t *val, size_t len) {
    cr_assert(len >= 5 && val[0] == 0, "not wire format");
    int32_t id = (int32_t)((uint32_t)val[1] << 24 | (uint32_t)val[2] << 16 | (uint32_t)val[3] << 8 | val[4]);
    cr_assert_eq(id, cx_codec_schema_id(codec, kind), "schema id %d, expected %d", id, cx_codec_schema_id(codec, kind));
    const char *text = cx_codec_schema_text(codec, kind);
    avro_schema_t schema;
    cr_assert_eq(avro_schema_from_json_length(text, strlen(text), &schema), 0, "%s", avro_strerror());
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t v;
    cr_assert_eq(avro_generic_value_new(iface, &v), 0);
    avro_reader_t rd = avro_reader_memory((const char *)val + 5, (int64_t)(len - 5));
    cr_assert_eq(avro_value_read(rd, &v), 0, "avro read: %s", avro_strerror());
    char *js = NULL;
    cr_assert_eq(avro_value_to_json(&v, 1, &js), 0);
    json_error_t je;
    json_t *obj = json_loads(js, 0, &je);
    cr_assert(obj, "%s: %s", js, je.text);
    mh_unwrap_unions(obj);
    free(js);
    avro_reader_free(rd);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    return obj;
}

#endif
