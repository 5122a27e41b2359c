/*
 * test_registry.c — the Schema Registry client against an in-process stand-in (libmicrohttpd)
 * speaking the two documented Confluent REST calls: POST /subjects/<subject>/versions and GET
 * /schemas/ids/<id>. No registry server is available here (DESIGN §8). The runner runs on the
 * librdkafka mock cluster (mock_helpers.h).
 */
#include <microhttpd.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-function" /* mock_helpers.h: not every helper is used */
#include "mock_helpers.h"
#include "registry.h"

/* ---------- the stand-in ---------- */

#define SR_MAX 16
typedef struct stand_in {
    struct MHD_Daemon *d;
    uint16_t port;
    char url[64];
    pthread_mutex_t mu;
    /* registrations seen, in order; the id answered is 100 + index of the subject's first POST */
    int n_posts;
    char *post_subject[SR_MAX], *post_body[SR_MAX], *post_type[SR_MAX];
    /* schemas served by GET /schemas/ids/<id> */
    int n_known;
    int32_t known_id[SR_MAX];
    char *known_text[SR_MAX];
    int gets;
} stand_in_t;

typedef struct upload {
    cx_buf_t body;
} upload_t;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/vnd.schemaregistry.v1+json");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result sr_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
    (void)version;
    stand_in_t *s = cls;
    if (!*con_cls) {
        upload_t *u = calloc(1, sizeof *u);
        *con_cls = u;
        return MHD_YES;
    }
    upload_t *u = *con_cls;
    if (*upload_size) {
        cx_buf_append(&u->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    char out[256];
    int32_t id;
    if (!strcmp(method, "POST") && !strncmp(url, "/subjects/", 10) && strstr(url, "/versions")) {
        const char *end = strstr(url, "/versions");
        pthread_mutex_lock(&s->mu);
        int k = s->n_posts < SR_MAX ? s->n_posts++ : SR_MAX - 1;
        s->post_subject[k] = strndup(url + 10, (size_t)(end - (url + 10)));
        s->post_body[k] = strndup(u->body.len ? (const char *)u->body.data : "", u->body.len);
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        s->post_type[k] = strdup(ct ? ct : "");
        int first = k;
        for (int i = 0; i < k; i++)
            if (!strcmp(s->post_subject[i], s->post_subject[k])) first = i;
        pthread_mutex_unlock(&s->mu);
        snprintf(out, sizeof out, "{\"id\":%d}", 100 + first);
        return reply(c, MHD_HTTP_OK, out);
    }
    if (!strcmp(method, "GET") && sscanf(url, "/schemas/ids/%" SCNd32, &id) == 1) {
        pthread_mutex_lock(&s->mu);
        s->gets++;
        const char *text = NULL;
        for (int i = 0; i < s->n_known; i++)
            if (s->known_id[i] == id) text = s->known_text[i];
        char *body = NULL;
        if (text) {
            json_t *j = json_pack("{s:s}", "schema", text);
            body = json_dumps(j, JSON_COMPACT);
            json_decref(j);
        }
        pthread_mutex_unlock(&s->mu);
        if (!body) return reply(c, MHD_HTTP_NOT_FOUND, "{\"error_code\":40403,\"message\":\"Schema not found\"}");
        enum MHD_Result rc = reply(c, MHD_HTTP_OK, body);
        free(body);
        return rc;
    }
    return reply(c, MHD_HTTP_NOT_FOUND, "{\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}");
}

static void sr_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls;
    (void)c;
    (void)t;
    upload_t *u = *con_cls;
    if (u) cx_buf_free(&u->body);
    free(u);
    *con_cls = NULL;
}

static void sr_start(stand_in_t *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, sr_handler, s,
                            MHD_OPTION_NOTIFY_COMPLETED, sr_completed, s, MHD_OPTION_END);
    cr_assert(s->d, "stand-in did not start");
    s->port = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%u/", s->port); /* trailing '/' on purpose */
}

static void sr_know(stand_in_t *s, int32_t id, const char *text) {
    pthread_mutex_lock(&s->mu);
    s->known_id[s->n_known] = id;
    s->known_text[s->n_known++] = strdup(text);
    pthread_mutex_unlock(&s->mu);
}

static int32_t sr_id_of(stand_in_t *s, const char *subject) {
    for (int i = 0; i < s->n_posts; i++)
        if (!strcmp(s->post_subject[i], subject)) return 100 + i;
    return -1;
}

static void sr_stop(stand_in_t *s) {
    if (s->d) MHD_stop_daemon(s->d);
    for (int i = 0; i < s->n_posts; i++) {
        free(s->post_subject[i]);
        free(s->post_body[i]);
        free(s->post_type[i]);
    }
    for (int i = 0; i < s->n_known; i++)
        free(s->known_text[i]);
    pthread_mutex_destroy(&s->mu);
}

/* ---------- a run on the mock cluster ---------- */

static cx_codec_t *codec;

static void setup(void) {
    char err[256];
    codec = cx_codec_new(err, sizeof err);
    cr_assert(codec, "%s", err);
    cx_log_min_level = CX_LOG_ERROR;
}
static void teardown(void) {
    cx_codec_destroy(codec);
}
TestSuite(registry, .init = setup, .fini = teardown, .timeout = 300);

#define T0 INT64_C(1717200000000)

typedef struct run {
    mh_cluster_t cl;
    char *state_dir;
    cx_config_t *cfg;
    rd_kafka_t *prod;
} run_t;

static void run_open(run_t *x, const char *url) {
    memset(x, 0, sizeof *x);
    cx_config_t *defaults = mh_config(NULL, NULL, NULL);
    mh_cluster_start(&x->cl, defaults);
    cx_config_destroy(defaults);
    x->state_dir = mh_tempdir();
    char set[128];
    snprintf(set, sizeof set, "schema.registry.url=%s", url);
    const char *sets[] = {set, NULL};
    x->cfg = mh_config(x->cl.bootstraps, x->state_dir, sets);
    x->prod = mh_producer_new(x->cl.bootstraps);
}

static void run_free(run_t *x) {
    if (x->prod) rd_kafka_destroy(x->prod);
    cx_config_destroy(x->cfg);
    mh_cluster_stop(&x->cl);
    mh_rmtree(x->state_dir);
}

/* A purchase by cid, framed with schema id `id` (the fixed one when id < 0). */
static void send_purchase(run_t *x, const char *event_id, const char *cid, int64_t ts, int32_t id) {
    cx_event_t e;
    memset(&e, 0, sizeof e);
    e.type = CX_EV_PURCHASE;
    snprintf(e.event_id, sizeof e.event_id, "%s", event_id);
    snprintf(e.customer_id, sizeof e.customer_id, "%s", cid);
    e.ts_ms = ts;
    e.u.purchase.kind = CX_PK_RENTAL;
    e.u.purchase.amount_minor = 4900;
    strcpy(e.u.purchase.currency, "SEK");
    cx_buf_t b = CX_BUF_INIT;
    cr_assert_eq(cx_codec_encode(codec, CX_REC_PURCHASE, &e, CX_FMT_WIRE, &b), CX_OK);
    if (id >= 0) {
        b.data[1] = (uint8_t)(id >> 24);
        b.data[2] = (uint8_t)(id >> 16);
        b.data[3] = (uint8_t)(id >> 8);
        b.data[4] = (uint8_t)id;
    }
    mh_produce(x->prod, x->cfg->topic_purchase, cid, b.data, b.len, NULL);
    cx_buf_free(&b);
}

static int32_t wire_id(const mh_rec_t *r) {
    cr_assert(r->vlen >= 5 && r->val[0] == 0);
    return (int32_t)((uint32_t)r->val[1] << 24 | (uint32_t)r->val[2] << 16 | (uint32_t)r->val[3] << 8 | r->val[4]);
}

/* Starts a runner, processes every input to its end, closes it. */
static void run_through(run_t *x) {
    char err[768];
    cx_runner_opts_t ro = {.create_topics = false};
    cx_runner_t *r = cx_runner_new(x->cfg, &ro, err, sizeof err);
    cr_assert(r, "%s", err);
    cr_assert_eq(cx_runner_start(r, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(mh_drive(r, x->cfg, x->cl.bootstraps, 60000, NULL, NULL, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(cx_runner_close(r, err, sizeof err), CX_OK, "%s", err);
    cx_runner_destroy(r);
}

Test(registry, outputs_are_registered_under_topic_value_and_written_with_the_registry_ids) {
    stand_in_t s;
    sr_start(&s);
    run_t x;
    run_open(&x, s.url);
    send_purchase(&x, "p1", "alice", T0, -1);
    send_purchase(&x, "p2", "bob", T0 + 1000, -1);
    run_through(&x);

    const struct {
        const char *topic;
        cx_record_kind_t kind;
    } outs[] = {
        {x.cfg->topic_segment_changes, CX_REC_SEGMENT_CHANGE},
        {x.cfg->topic_disengagement_triggers, CX_REC_TRIGGER},
        {x.cfg->topic_campaign_responses, CX_REC_RESPONSE},
        {x.cfg->topic_campaign_kpis, CX_REC_KPI},
        {x.cfg->topic_enriched, CX_REC_ENRICHED},
    };
    cr_assert_eq(s.n_posts, 5, "registrations: %d", s.n_posts);
    for (size_t i = 0; i < 5; i++) {
        char subject[256];
        snprintf(subject, sizeof subject, "%s-value", outs[i].topic);
        int k = sr_id_of(&s, subject) - 100;
        cr_assert(k >= 0, "no registration under %s", subject);
        cr_assert_str_eq(s.post_type[k], "application/vnd.schemaregistry.v1+json");
        json_t *body = json_loads(s.post_body[k], 0, NULL);
        cr_assert(body && json_object_size(body) == 1, "body %s", s.post_body[k]);
        /* the .avsc text exactly as shipped (logicalType and all), not a re-serialisation */
        cr_assert_str_eq(json_string_value(json_object_get(body, "schema")), cx_codec_schema_text(codec, outs[i].kind));
        json_decref(body);
    }
    mh_recs_t seg, enr;
    mh_read_topic(x.cl.bootstraps, x.cfg->topic_segment_changes, &seg);
    mh_read_topic(x.cl.bootstraps, x.cfg->topic_enriched, &enr);
    cr_assert_eq(seg.n, 2);
    cr_assert_eq(enr.n, 2);
    char subject[256];
    snprintf(subject, sizeof subject, "%s-value", x.cfg->topic_segment_changes);
    for (size_t i = 0; i < seg.n; i++)
        cr_assert_eq(wire_id(&seg.v[i]), sr_id_of(&s, subject));
    snprintf(subject, sizeof subject, "%s-value", x.cfg->topic_enriched);
    for (size_t i = 0; i < enr.n; i++)
        cr_assert_eq(wire_id(&enr.v[i]), sr_id_of(&s, subject));
    cr_assert_neq(sr_id_of(&s, subject), CX_REC_ENRICHED);
    mh_recs_free(&seg);
    mh_recs_free(&enr);
    run_free(&x);
    sr_stop(&s);
}

Test(registry, foreign_input_id_is_accepted_when_the_registry_holds_our_schema_and_dlqd_when_not) {
    stand_in_t s;
    sr_start(&s);
    /* id 77: PurchaseEvent re-serialised (sorted keys, indented): equal as JSON, not as text */
    json_t *ours = json_loads(cx_codec_schema_text(codec, CX_REC_PURCHASE), 0, NULL);
    char *reformatted = json_dumps(ours, JSON_SORT_KEYS | JSON_INDENT(3));
    cr_assert_str_neq(reformatted, cx_codec_schema_text(codec, CX_REC_PURCHASE));
    sr_know(&s, 77, reformatted);
    /* id 79: a schema that is not ours (PlayEvent on the purchase topic) */
    sr_know(&s, 79, cx_codec_schema_text(codec, CX_REC_PLAY));
    free(reformatted);
    json_decref(ours);

    run_t x;
    run_open(&x, s.url);
    send_purchase(&x, "p1", "alice", T0, 77);
    send_purchase(&x, "p2", "alice", T0 + 1000, 77); /* cached: no second lookup */
    send_purchase(&x, "p3", "bob", T0 + 2000, 78);   /* 404 */
    send_purchase(&x, "p4", "carol", T0 + 3000, 79); /* someone else's schema */
    send_purchase(&x, "p5", "dave", T0 + 4000, -1);  /* the fixed id still works */
    run_through(&x);

    mh_recs_t enr, dlq;
    mh_read_topic(x.cl.bootstraps, x.cfg->topic_enriched, &enr);
    mh_read_topic(x.cl.bootstraps, x.cfg->topic_dlq, &dlq);
    cr_assert_eq(enr.n, 3, "enriched: %zu", enr.n);
    size_t alice = 0, dave = 0;
    for (size_t i = 0; i < enr.n; i++) {
        alice += strcmp(enr.v[i].key, "alice") == 0;
        dave += strcmp(enr.v[i].key, "dave") == 0;
    }
    cr_assert_eq(alice, 2);
    cr_assert_eq(dave, 1);
    cr_assert_eq(dlq.n, 2, "dlq: %zu", dlq.n);
    for (size_t i = 0; i < dlq.n; i++) {
        cr_assert_str_eq(dlq.v[i].hdr_error, "UNKNOWN_SCHEMA");
        const char *want = strcmp(dlq.v[i].key, "bob") == 0 ? "78" : "79";
        cr_assert(strstr(dlq.v[i].hdr_detail, want), "detail: %s", dlq.v[i].hdr_detail);
        cr_assert_eq(wire_id(&dlq.v[i]), atoi(want), "the DLQ keeps the original bytes");
    }
    cr_assert_eq(s.gets, 3, "lookups: %d (77 once, 78, 79)", s.gets);
    mh_recs_free(&enr);
    mh_recs_free(&dlq);
    run_free(&x);
    sr_stop(&s);
}

Test(registry, lookups_are_cached_and_failures_are_retried_later) {
    stand_in_t s;
    sr_start(&s);
    char err[512];
    cx_registry_t *g = cx_registry_new(s.url, 2000, codec, err, sizeof err);
    cr_assert(g, "%s", err);
    cx_record_kind_t kind = 0;
    cr_assert_eq(cx_registry_resolve(g, 90, &kind, err, sizeof err), CX_ERR_NOT_FOUND);
    cr_assert(strstr(err, "90"), "%s", err);
    sr_know(&s, 90, cx_codec_schema_text(codec, CX_REC_SURVEY));
    /* within the retry delay the 404 stands, without asking again */
    cr_assert_eq(cx_registry_resolve(g, 90, &kind, err, sizeof err), CX_ERR_NOT_FOUND);
    cr_assert_eq(s.gets, 1);
    cx_registry_destroy(g);

    g = cx_registry_new(s.url, 2000, codec, err, sizeof err);
    cr_assert_eq(cx_registry_resolve(g, 90, &kind, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(kind, CX_REC_SURVEY);
    cx_registry_destroy(g);

    /* a registry that is down: an error naming it, not a crash */
    uint16_t port = s.port;
    sr_stop(&s);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    g = cx_registry_new(url, 2000, codec, err, sizeof err);
    cr_assert_eq(cx_registry_resolve(g, 91, &kind, err, sizeof err), CX_ERR_IO);
    cr_assert(strstr(err, url), "%s", err);
    cx_registry_stats_t st = cx_registry_stats(g);
    cr_assert_eq(st.failures, 1);
    cr_assert_eq(cx_registry_resolve(g, 91, &kind, err, sizeof err), CX_ERR_IO); /* cached for the retry delay */
    cr_assert_eq(cx_registry_stats(g).requests, st.requests);
    cx_registry_destroy(g);
}

/* A port nothing listens on: bind one, read its number, close it. */
static uint16_t closed_port(void) {
    stand_in_t s;
    sr_start(&s);
    uint16_t p = s.port;
    sr_stop(&s);
    return p;
}

Test(registry, registry_down_at_start_is_a_clear_error_naming_the_url) {
    char url[64], err[768];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", closed_port());
    run_t x;
    run_open(&x, url);
    cx_runner_opts_t ro = {.create_topics = false};
    cx_runner_t *r = cx_runner_new(x.cfg, &ro, err, sizeof err);
    cr_assert(r, "%s", err);
    cr_assert_eq(cx_runner_start(r, err, sizeof err), CX_ERR_IO);
    cr_assert(strstr(err, url), "error does not name the registry: %s", err);
    cx_runner_destroy(r);

    /* the binary: exit 1, the URL on stderr */
    const char *bin_dir = getenv("CX_BINARY_DIR");
    char bin[512], cmd[2048];
    snprintf(bin, sizeof bin, "%s/cxstream", bin_dir ? bin_dir : ".");
    if (access(bin, X_OK) == 0) {
        snprintf(cmd, sizeof cmd,
                 "%s run --set bootstrap.servers=%s --set state.dir=%s --set http.port=0 "
                 "--set schema.registry.url=%s 2>&1",
                 bin, x.cl.bootstraps, x.state_dir, url);
        FILE *f = popen(cmd, "r");
        cr_assert(f);
        char out[4096] = "";
        size_t got = fread(out, 1, sizeof out - 1, f);
        out[got] = 0;
        int status = pclose(f);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d: %s", status, out);
        cr_assert(strstr(out, url), "stderr does not name the registry: %s", out);
    } else {
        cr_log_warn("%s not built: exit status not checked", bin);
    }
    run_free(&x);
}
