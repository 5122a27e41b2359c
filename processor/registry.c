/*
 * registry.c — the Schema Registry client of registry.h: two REST calls over one reused libcurl
 * easy handle (keep-alive), JSON through jansson, and a small fixed cache of resolved input ids
 * in front of the codec's decoders.
 */
#include "registry.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"

#define CACHE_SLOTS      64
#define MISSING_RETRY_MS 60000 /* a 404 is asked again after this */
#define ERROR_RETRY_MS   5000  /* an unreachable registry is asked again after this */
#define MAX_RESPONSE     (4u << 20)

typedef enum { SLOT_EMPTY = 0, SLOT_OURS, SLOT_FOREIGN, SLOT_MISSING, SLOT_ERROR } slot_state_t;

typedef struct slot {
    int32_t id;
    slot_state_t state;
    cx_record_kind_t kind; /* SLOT_OURS */
    int64_t retry_at_ms;   /* SLOT_MISSING, SLOT_ERROR */
    uint64_t used;         /* LRU clock */
    char why[256];         /* SLOT_MISSING, SLOT_ERROR, SLOT_FOREIGN */
} slot_t;

static const cx_record_kind_t input_kinds[] = {CX_REC_PLAY, CX_REC_PURCHASE, CX_REC_EMAIL_SEND, CX_REC_SURVEY,
                                               CX_REC_CAMPAIGN};
#define N_INPUTS (sizeof input_kinds / sizeof input_kinds[0])

struct cx_registry {
    char *url; /* without a trailing '/' */
    int timeout_ms;
    CURL *curl;
    struct curl_slist *headers;
    cx_buf_t resp;
    bool resp_too_big;
    json_t *ours[N_INPUTS]; /* parsed input schemas, by input_kinds index */
    slot_t cache[CACHE_SLOTS];
    uint64_t clock;
    cx_registry_stats_t st;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init(void) {
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *opaque) {
    cx_registry_t *g = opaque;
    size_t n = size * nmemb;
    if (g->resp.len + n > MAX_RESPONSE) {
        g->resp_too_big = true;
        return 0; /* aborts the transfer */
    }
    return cx_buf_append(&g->resp, p, n) == CX_OK ? n : 0;
}

cx_registry_t *cx_registry_new(const char *url, int timeout_ms, const cx_codec_t *codec, char *errstr,
                               size_t errstr_size) {
    cx_registry_t *g = NULL;
    if (!url || !*url || !codec) {
        cx_seterr(errstr, errstr_size, "schema registry: no URL or no codec");
        return NULL;
    }
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        cx_seterr(errstr, errstr_size, "schema registry: libcurl initialisation failed: %s",
                  curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    if (!(g = calloc(1, sizeof *g)) || !(g->url = strdup(url))) goto nomem;
    size_t ul = strlen(g->url);
    while (ul > 0 && g->url[ul - 1] == '/')
        g->url[--ul] = 0;
    g->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    for (size_t i = 0; i < N_INPUTS; i++) {
        const char *text = cx_codec_schema_text(codec, input_kinds[i]);
        json_error_t je;
        if (!text || !(g->ours[i] = json_loads(text, 0, &je))) {
            cx_seterr(errstr, errstr_size, "schema registry: embedded schema of kind %d does not parse: %s",
                      (int)input_kinds[i], text ? je.text : "missing");
            goto fail;
        }
    }
    if (!(g->curl = curl_easy_init())) goto nomem;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
    if (h) g->headers = h;
    if (!h || !(h = curl_slist_append(g->headers, "Accept: application/vnd.schemaregistry.v1+json, application/json")))
        goto nomem;
    g->headers = h;
    curl_easy_setopt(g->curl, CURLOPT_NOSIGNAL, 1L); /* we are multi-threaded: no SIGALRM timeouts */
    curl_easy_setopt(g->curl, CURLOPT_TIMEOUT_MS, (long)g->timeout_ms);
    curl_easy_setopt(g->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)g->timeout_ms);
    curl_easy_setopt(g->curl, CURLOPT_HTTPHEADER, g->headers);
    curl_easy_setopt(g->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(g->curl, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(g->curl, CURLOPT_USERAGENT, "cxstream/" CX_VERSION);
    return g;
nomem:
    cx_seterr(errstr, errstr_size, "schema registry: out of memory");
fail:
    cx_registry_destroy(g);
    return NULL;
}

void cx_registry_destroy(cx_registry_t *g) {
    if (!g) return;
    if (g->curl) curl_easy_cleanup(g->curl);
    curl_slist_free_all(g->headers);
    for (size_t i = 0; i < N_INPUTS; i++)
        json_decref(g->ours[i]);
    cx_buf_free(&g->resp);
    free(g->url);
    free(g);
}

/* One request: body NULL = GET, else POST. Fills g->resp (NUL-terminated) and *status. CX_ERR_IO on
 * a transport failure (errstr names the URL). */
static cx_err_t request(cx_registry_t *g, const char *path, const char *body, long *status, char *errstr, size_t n) {
    char *full = NULL;
    if (asprintf(&full, "%s%s", g->url, path) < 0) {
        cx_seterr(errstr, n, "out of memory");
        return CX_ERR_NOMEM;
    }
    cx_buf_reset(&g->resp);
    g->resp_too_big = false;
    curl_easy_setopt(g->curl, CURLOPT_URL, full);
    if (body) {
        curl_easy_setopt(g->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(g->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(g->curl, CURLOPT_HTTPGET, 1L);
    }
    g->st.requests++;
    CURLcode cc = curl_easy_perform(g->curl);
    cx_err_t rc = CX_OK;
    if (cc != CURLE_OK) {
        g->st.failures++;
        cx_seterr(errstr, n, "schema registry %s: %s", full,
                  g->resp_too_big ? "response larger than 4 MB" : curl_easy_strerror(cc));
        rc = CX_ERR_IO;
    } else if (cx_buf_putc(&g->resp, 0) != CX_OK) {
        cx_seterr(errstr, n, "out of memory");
        rc = CX_ERR_NOMEM;
    } else {
        g->resp.len--; /* keep the terminator out of the length */
        curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, status);
    }
    free(full);
    return rc;
}

/* The registry's own error message ({"error_code":..,"message":..}) or the start of the body. */
static void describe_failure(cx_registry_t *g, const char *what, long status, char *errstr, size_t n) {
    json_t *j = json_loadb((const char *)g->resp.data, g->resp.len, 0, NULL);
    const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
    g->st.failures++;
    cx_seterr(errstr, n, "schema registry %s%s: HTTP %ld: %.200s", g->url, what, status,
              msg           ? msg
              : g->resp.len ? (const char *)g->resp.data
                            : "(empty body)");
    json_decref(j);
}

cx_err_t cx_registry_register(cx_registry_t *g, const char *subject, const char *schema_text, int32_t *id, char *errstr,
                              size_t errstr_size) {
    cx_err_t rc = CX_ERR_NOMEM;
    char *body = NULL, *esc = NULL, *path = NULL;
    json_t *req = json_pack("{s:s}", "schema", schema_text), *resp = NULL;
    if (!req || !(body = json_dumps(req, JSON_COMPACT)) || !(esc = curl_easy_escape(g->curl, subject, 0)) ||
        asprintf(&path, "/subjects/%s/versions", esc) < 0) {
        path = NULL;
        cx_seterr(errstr, errstr_size, "out of memory");
        goto done;
    }
    long status = 0;
    if ((rc = request(g, path, body, &status, errstr, errstr_size)) != CX_OK) goto done;
    rc = CX_ERR_IO;
    if (status != 200) {
        describe_failure(g, path, status, errstr, errstr_size);
        goto done;
    }
    resp = json_loadb((const char *)g->resp.data, g->resp.len, 0, NULL);
    json_t *jid = resp ? json_object_get(resp, "id") : NULL;
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 || json_integer_value(jid) > INT32_MAX) {
        cx_seterr(errstr, errstr_size, "schema registry %s%s: answer without an integer id: %.200s", g->url, path,
                  (const char *)g->resp.data);
        goto done;
    }
    *id = (int32_t)json_integer_value(jid);
    rc = CX_OK;
done:
    json_decref(req);
    json_decref(resp);
    free(body);
    curl_free(esc);
    free(path);
    return rc;
}

cx_err_t cx_registry_register_outputs(cx_registry_t *g, const cx_config_t *cfg, cx_codec_t *codec, char *errstr,
                                      size_t errstr_size) {
    const struct {
        cx_record_kind_t kind;
        const char *topic;
        bool on;
    } outs[] = {
        {CX_REC_SEGMENT_CHANGE, cfg->topic_segment_changes, true},
        {CX_REC_TRIGGER, cfg->topic_disengagement_triggers, true},
        {CX_REC_RESPONSE, cfg->topic_campaign_responses, true},
        {CX_REC_KPI, cfg->topic_campaign_kpis, true},
        {CX_REC_ENRICHED, cfg->topic_enriched, cfg->enriched_enabled},
    };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        if (!outs[i].on) continue;
        char subject[512];
        snprintf(subject, sizeof subject, "%s-value", outs[i].topic);
        int32_t id = -1;
        cx_err_t rc =
            cx_registry_register(g, subject, cx_codec_schema_text(codec, outs[i].kind), &id, errstr, errstr_size);
        if (rc != CX_OK) return rc;
        cx_codec_set_schema_id(codec, outs[i].kind, id);
        cx_log(CX_LOG_INFO, "registry", "registered subject=%s id=%" PRId32, subject, id);
    }
    return CX_OK;
}

/* The cache slot of id: its own, else an empty one, else the least recently used (reset). */
static slot_t *slot_for(cx_registry_t *g, int32_t id) {
    slot_t *victim = NULL;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        slot_t *s = &g->cache[i];
        if (s->state == SLOT_EMPTY) {
            if (!victim || victim->state != SLOT_EMPTY) victim = s;
        } else if (s->id == id) {
            return s;
        } else if (!victim || (victim->state != SLOT_EMPTY && s->used < victim->used)) {
            victim = s;
        }
    }
    memset(victim, 0, sizeof *victim);
    victim->id = id;
    return victim;
}

/* Asks the registry for id and fills s. */
static void lookup(cx_registry_t *g, slot_t *s) {
    char path[64], err[512];
    snprintf(path, sizeof path, "/schemas/ids/%" PRId32, s->id);
    long status = 0;
    json_t *resp = NULL, *schema = NULL;
    g->st.lookups++;
    if (request(g, path, NULL, &status, err, sizeof err) != CX_OK) {
        s->state = SLOT_ERROR;
        s->retry_at_ms = cx_mono_ms() + ERROR_RETRY_MS;
        cx_seterr(s->why, sizeof s->why, "%s", err);
        cx_log(CX_LOG_WARN, "registry", "lookup failed id=%" PRId32 " err=\"%s\"", s->id, err);
        return;
    }
    if (status == 404) {
        s->state = SLOT_MISSING;
        s->retry_at_ms = cx_mono_ms() + MISSING_RETRY_MS;
        cx_seterr(s->why, sizeof s->why, "schema id %" PRId32 " is unknown to the registry", s->id);
        cx_log(CX_LOG_WARN, "registry", "unknown id=%" PRId32, s->id);
        return;
    }
    if (status != 200) {
        describe_failure(g, path, status, err, sizeof err);
        s->state = SLOT_ERROR;
        s->retry_at_ms = cx_mono_ms() + ERROR_RETRY_MS;
        cx_seterr(s->why, sizeof s->why, "%s", err);
        cx_log(CX_LOG_WARN, "registry", "lookup failed id=%" PRId32 " err=\"%s\"", s->id, err);
        return;
    }
    resp = json_loadb((const char *)g->resp.data, g->resp.len, 0, NULL);
    const char *text = resp ? json_string_value(json_object_get(resp, "schema")) : NULL;
    const char *type = resp ? json_string_value(json_object_get(resp, "schemaType")) : NULL;
    s->state = SLOT_FOREIGN;
    cx_seterr(s->why, sizeof s->why, "schema id %" PRId32 " is not one of cxstream's input schemas", s->id);
    if (!text) {
        s->state = SLOT_ERROR;
        s->retry_at_ms = cx_mono_ms() + ERROR_RETRY_MS;
        cx_seterr(s->why, sizeof s->why, "schema registry %s%s: answer without a schema", g->url, path);
    } else if ((!type || strcmp(type, "AVRO") == 0) && (schema = json_loads(text, 0, NULL))) {
        for (size_t i = 0; i < N_INPUTS; i++)
            if (json_equal(schema, g->ours[i])) {
                s->state = SLOT_OURS;
                s->kind = input_kinds[i];
                break;
            }
    }
    cx_log(CX_LOG_INFO, "registry", "resolved id=%" PRId32 " kind=%d", s->id, s->state == SLOT_OURS ? (int)s->kind : 0);
    json_decref(schema);
    json_decref(resp);
}

cx_err_t cx_registry_resolve(cx_registry_t *g, int32_t id, cx_record_kind_t *kind, char *errstr, size_t errstr_size) {
    slot_t *s = slot_for(g, id);
    s->used = ++g->clock;
    if (s->state == SLOT_EMPTY ||
        ((s->state == SLOT_MISSING || s->state == SLOT_ERROR) && cx_mono_ms() >= s->retry_at_ms))
        lookup(g, s);
    else
        g->st.cache_hits++;
    switch (s->state) {
    case SLOT_OURS: *kind = s->kind; return CX_OK;
    case SLOT_ERROR: cx_seterr(errstr, errstr_size, "%s", s->why); return CX_ERR_IO;
    default: cx_seterr(errstr, errstr_size, "%s", s->why); return CX_ERR_NOT_FOUND;
    }
}

/* The wire id when buf is framed and carries an id other than the codec's for expected; else -1
 * (the codec decides: its own id, or a framing error it reports itself). */
static int64_t foreign_id(const cx_codec_t *c, cx_record_kind_t expected, const void *buf, size_t len) {
    const uint8_t *p = buf;
    if (!p || len < 5 || p[0] != 0) return -1;
    int32_t id = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
    return id == cx_codec_schema_id(c, expected) ? -1 : id;
}

/* Resolves a foreign id: CX_DLQ_NONE when it is `expected`'s schema (the codec's id for expected is
 * switched to it until restore_id), else UNKNOWN_SCHEMA with the detail. */
static cx_dlq_code_t admit(cx_registry_t *g, cx_codec_t *c, cx_record_kind_t expected, int32_t id, int32_t *saved,
                           char *detail, size_t dn) {
    cx_record_kind_t kind = 0;
    char why[256];
    if (cx_registry_resolve(g, id, &kind, why, sizeof why) != CX_OK) {
        cx_seterr(detail, dn, "%s", why);
        return CX_DLQ_UNKNOWN_SCHEMA;
    }
    if (kind != expected) {
        cx_seterr(detail, dn, "schema id %" PRId32 " is the registry's schema of record kind %d, not %d of this topic",
                  id, (int)kind, (int)expected);
        return CX_DLQ_UNKNOWN_SCHEMA;
    }
    *saved = cx_codec_schema_id(c, expected);
    cx_codec_set_schema_id(c, expected, id);
    return CX_DLQ_NONE;
}

cx_dlq_code_t cx_registry_decode_event(cx_registry_t *g, cx_codec_t *c, cx_record_kind_t expected, const void *buf,
                                       size_t len, cx_event_t *out, char *detail, size_t detail_size) {
    int64_t id = g ? foreign_id(c, expected, buf, len) : -1;
    if (id < 0) return cx_codec_decode_event(c, expected, buf, len, out, detail, detail_size);
    int32_t saved;
    cx_dlq_code_t code = admit(g, c, expected, (int32_t)id, &saved, detail, detail_size);
    if (code != CX_DLQ_NONE) return code;
    code = cx_codec_decode_event(c, expected, buf, len, out, detail, detail_size);
    cx_codec_set_schema_id(c, expected, saved);
    return code;
}

cx_dlq_code_t cx_registry_decode_campaign(cx_registry_t *g, cx_codec_t *c, const void *buf, size_t len,
                                          cx_campaign_t *out, char *detail, size_t detail_size) {
    int64_t id = g ? foreign_id(c, CX_REC_CAMPAIGN, buf, len) : -1;
    if (id < 0) return cx_codec_decode_campaign(c, buf, len, out, detail, detail_size);
    int32_t saved;
    cx_dlq_code_t code = admit(g, c, CX_REC_CAMPAIGN, (int32_t)id, &saved, detail, detail_size);
    if (code != CX_DLQ_NONE) return code;
    code = cx_codec_decode_campaign(c, buf, len, out, detail, detail_size);
    cx_codec_set_schema_id(c, CX_REC_CAMPAIGN, saved);
    return code;
}

cx_registry_stats_t cx_registry_stats(const cx_registry_t *g) {
    cx_registry_stats_t z = {0};
    return g ? g->st : z;
}
