/*
 * http.c — the HTTP server (http.h): libmicrohttpd with a small pool of internal polling threads,
 * routing to handlers that read the pipeline under the provider's lock, and the provider over a
 * runner. Requests are rare next to events, so handlers allocate freely; the processor never
 * waits for HTTP, only HTTP for the processor (bounded by lock_timeout_ms).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "campaigns.h"
#include "codec.h"
#include "embedded.h"
#include "http.h"
#include "metrics.h"
#include "owners.h"
#include "runner.h"
#include "voc.h"

struct cx_http {
    const cx_config_t *cfg;
    cx_http_provider_t prov;
    cx_http_opts_t opts;
    struct MHD_Daemon *d;
    uint16_t port;
    cx_codec_t *codec; /* JSON encoding of profiles; guarded by codec_mu */
    pthread_mutex_t codec_mu;
    void *owned; /* provider state allocated by cx_http_start_runner, freed on stop */
};

/* ---------- responses ---------- */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *ctype, cx_buf_t *b) {
    struct MHD_Response *resp;
    if (b->len) {
        resp = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE);
        if (resp) *b = (cx_buf_t)CX_BUF_INIT; /* the response owns the bytes now */
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    cx_buf_free(b);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result r = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, cx_buf_t *b) {
    return send_buf(c, status, "application/json; charset=utf-8", b);
}

/* {"error": msg} plus optional members (already JSON, without leading comma). */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg, const char *members) {
    cx_buf_t b = CX_BUF_INIT;
    cx_buf_append(&b, "{\"error\":", 9);
    cx_buf_json_str(&b, msg, strlen(msg));
    if (members && *members) cx_buf_appendf(&b, ",%s", members);
    cx_buf_putc(&b, '}');
    return send_json(c, status, &b);
}

static enum MHD_Result send_busy(struct MHD_Connection *c) {
    return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "processor busy: state lock not obtained in time", NULL);
}

/* A customer of partition `part` owned elsewhere (interactive queries): 307 to the owner's
 * /customers/{id} when its address is known (cx.partials owner records, owners.h), else 503 (not
 * 404: the customer may well exist on the owner). */
static enum MHD_Result send_not_owned(struct MHD_Connection *c, const char *cid, int32_t part, const char *owner) {
    cx_buf_t b = CX_BUF_INIT;
    if (!owner) {
        cx_buf_appendf(&b, "{\"error\":\"owner unknown\",\"partition\":%" PRId32 "}", part);
        return send_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, &b);
    }
    cx_buf_appendf(&b, "{\"error\":\"not owned here\",\"partition\":%" PRId32 ",\"owner\":", part);
    cx_buf_json_str(&b, owner, strlen(owner));
    cx_buf_putc(&b, '}');
    /* cid passed cx_id_valid and owner cx_owners_addr_valid: both are safe in a header */
    char loc[CX_OWNER_ADDR_MAX + CX_ID_MAX + 32];
    snprintf(loc, sizeof loc, "http://%s/customers/%s", owner, cid);
    struct MHD_Response *resp = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        cx_buf_free(&b);
        return MHD_NO;
    }
    b = (cx_buf_t)CX_BUF_INIT; /* the response owns the bytes now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
    enum MHD_Result r = MHD_queue_response(c, MHD_HTTP_TEMPORARY_REDIRECT, resp);
    MHD_destroy_response(resp);
    return r;
}

/* ---------- handlers ---------- */

static enum MHD_Result h_healthz(cx_http_t *h, struct MHD_Connection *c) {
    const char *state = "ok";
    bool ok = h->prov.alive ? h->prov.alive(h->prov.opaque, &state) : true;
    cx_buf_t b = CX_BUF_INIT;
    cx_buf_appendf(&b, "{\"status\":");
    cx_buf_json_str(&b, state, strlen(state));
    cx_buf_putc(&b, '}');
    return send_json(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, &b);
}

static enum MHD_Result h_readyz(cx_http_t *h, struct MHD_Connection *c) {
    cx_buf_t b = CX_BUF_INIT, m = CX_BUF_INIT;
    if (!h->prov.lock(h->prov.opaque, h->opts.lock_timeout_ms)) {
        cx_buf_appendf(&b, "{\"ready\":false,\"state\":\"busy\"}");
        return send_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, &b);
    }
    cx_pipeline_t *pls[CX_THREADS_MAX];
    bool ready =
        h->prov.ready ? h->prov.ready(h->prov.opaque, &m) : h->prov.pipelines(h->prov.opaque, pls, CX_THREADS_MAX) > 0;
    h->prov.unlock(h->prov.opaque);
    cx_buf_appendf(&b, "{\"ready\":%s", ready ? "true" : "false");
    if (m.len) {
        cx_buf_putc(&b, ',');
        cx_buf_append(&b, m.data, m.len);
    }
    cx_buf_putc(&b, '}');
    cx_buf_free(&m);
    return send_json(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, &b);
}

static enum MHD_Result h_metrics(cx_http_t *h, struct MHD_Connection *c) {
    cx_buf_t b = CX_BUF_INIT;
    if (!h->prov.lock(h->prov.opaque, h->opts.lock_timeout_ms)) return send_busy(c);
    cx_err_t rc = h->prov.metrics ? h->prov.metrics(h->prov.opaque, &b) : CX_OK;
    h->prov.unlock(h->prov.opaque);
    if (rc != CX_OK) {
        cx_buf_free(&b);
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, cx_err2str(rc), NULL);
    }
    return send_buf(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static enum MHD_Result h_customer(cx_http_t *h, struct MHD_Connection *c, const char *cid) {
    size_t len = strlen(cid);
    cx_buf_t b = CX_BUF_INIT;
    if (!cx_id_valid(cid, len))
        return send_error(c, MHD_HTTP_BAD_REQUEST, "malformed customer id: 1-128 bytes of [A-Za-z0-9._:@-] expected",
                          NULL);
    if (!h->prov.lock(h->prov.opaque, h->opts.lock_timeout_ms)) return send_busy(c);
    cx_pipeline_t *pls[CX_THREADS_MAX], *pl = NULL;
    size_t npl = h->prov.pipelines(h->prov.opaque, pls, CX_THREADS_MAX);
    int32_t np = h->prov.partitions(h->prov.opaque);
    if (!npl || np <= 0) {
        h->prov.unlock(h->prov.opaque);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready", NULL);
    }
    int32_t part = cx_murmur2_partition(cid, len, np);
    for (size_t i = 0; i < npl && !pl; i++)
        if (cx_pipeline_owns(pls[i], (uint16_t)part)) pl = pls[i];
    if (!pl) {
        char owner[CX_OWNER_ADDR_MAX + 1] = "";
        bool known = h->prov.owner && h->prov.owner(h->prov.opaque, part, owner, sizeof owner) &&
                     cx_owners_addr_valid(owner, strlen(owner));
        h->prov.unlock(h->prov.opaque);
        return send_not_owned(c, cid, part, known ? owner : NULL);
    }
    cx_profile_out_t prof;
    bool found = false;
    char err[256] = "";
    cx_err_t rc = cx_pipeline_profile(pl, (uint16_t)part, cid, &prof, &found, err, sizeof err);
    if (rc == CX_OK && found) {
        pthread_mutex_lock(&h->codec_mu);
        rc = cx_codec_encode(h->codec, CX_REC_PROFILE, &prof, CX_FMT_JSON, &b);
        pthread_mutex_unlock(&h->codec_mu);
    }
    h->prov.unlock(h->prov.opaque);
    if (rc != CX_OK) {
        cx_buf_free(&b);
        cx_log(CX_LOG_WARN, "http", "profile lookup failed customer_id=%s err=\"%s\"", cid, err);
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err[0] ? err : cx_err2str(rc), NULL);
    }
    if (!found) return send_error(c, MHD_HTTP_NOT_FOUND, "unknown customer", NULL);
    return send_json(c, MHD_HTTP_OK, &b);
}

/* ,"nps":..,"nps_se":..,"nps_ci_low":..,"nps_ci_high":..,"nps_responses":n,"promoters":..,... */
static void nps_members(cx_buf_t *b, const cx_nps_counts_t *cnt) {
    cx_nps_stats_t st = cx_nps_stats(cnt);
    const char *names[4] = {"nps", "nps_se", "nps_ci_low", "nps_ci_high"};
    double vals[4] = {st.nps, st.se, st.ci_low, st.ci_high};
    for (int i = 0; i < 4; i++) {
        cx_buf_appendf(b, ",\"%s\":", names[i]);
        if (st.defined)
            cx_buf_json_double(b, round(vals[i] * 100.0) / 100.0);
        else
            cx_buf_appendf(b, "null");
    }
    cx_buf_appendf(
        b, ",\"nps_responses\":%" PRId64 ",\"promoters\":%" PRId64 ",\"passives\":%" PRId64 ",\"detractors\":%" PRId64,
        cnt->promoters + cnt->passives + cnt->detractors, cnt->promoters, cnt->passives, cnt->detractors);
}

static int topk_by_count(const void *a, const void *b) {
    const cx_topk_item_t *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->term, y->term);
}

/* The top n comment terms over several pipelines: each one's top CX_VOC_MERGE_TOP summed by term
 * (counts and errors add, as for space-saving summaries), then the n largest. One pipeline: its own. */
#define CX_VOC_MERGE_TOP 50
static cx_err_t merged_themes(cx_pipeline_t *const *pls, size_t npl, int by, const char *name, int category,
                              cx_topk_item_t *out, size_t n, size_t *n_out, uint64_t *total, bool *found) {
    if (npl == 1) return cx_voc_themes(cx_pipeline_voc(pls[0]), by, name, category, out, n, n_out, total, found);
    size_t cap = npl * CX_VOC_MERGE_TOP, m = 0;
    cx_topk_item_t *all = malloc(cap * sizeof *all), part[CX_VOC_MERGE_TOP];
    if (!all) return CX_ERR_NOMEM;
    *n_out = 0;
    *total = 0;
    *found = false;
    for (size_t i = 0; i < npl; i++) {
        size_t got = 0;
        uint64_t t = 0;
        bool f = false;
        cx_err_t rc = cx_voc_themes(cx_pipeline_voc(pls[i]), by, name, category, part, CX_VOC_MERGE_TOP, &got, &t, &f);
        if (rc != CX_OK) {
            free(all);
            return rc;
        }
        *found |= f;
        *total += t;
        for (size_t j = 0; j < got; j++) {
            size_t k = 0;
            while (k < m && !(all[k].len == part[j].len && memcmp(all[k].term, part[j].term, part[j].len) == 0))
                k++;
            if (k == m) {
                all[m++] = part[j];
            } else {
                all[k].count += part[j].count;
                all[k].error += part[j].error;
            }
        }
    }
    qsort(all, m, sizeof *all, topk_by_count);
    *n_out = m < n ? m : n;
    memcpy(out, all, *n_out * sizeof *all);
    free(all);
    return CX_OK;
}

/* /segments/{name}/themes and /touchpoints/{name}/themes ?category=detractor|promoter&n=1..50:
 * the top comment terms (voc.h), merged over the owned partitions. */
static enum MHD_Result h_themes(cx_http_t *h, struct MHD_Connection *c, int by, const char *rest) {
    const char *slash = strchr(rest, '/');
    char name[CX_SHORT_MAX + 1];
    size_t len = slash ? (size_t)(slash - rest) : 0;
    if (!slash || strcmp(slash, "/themes") != 0) return send_error(c, MHD_HTTP_NOT_FOUND, "no such path", NULL);
    if (len == 0 || len > CX_SHORT_MAX) return send_error(c, MHD_HTTP_BAD_REQUEST, "malformed name", NULL);
    memcpy(name, rest, len);
    name[len] = 0;
    const char *cat = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "category");
    const char *ns = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
    int category;
    if (!cat || !strcmp(cat, "detractor") || !strcmp(cat, "detractors"))
        category = CX_VOC_DETRACTORS;
    else if (!strcmp(cat, "promoter") || !strcmp(cat, "promoters"))
        category = CX_VOC_PROMOTERS;
    else
        return send_error(c, MHD_HTTP_BAD_REQUEST, "category: detractor or promoter expected", NULL);
    long n = ns ? strtol(ns, NULL, 10) : 10;
    if (n < 1 || n > 50) return send_error(c, MHD_HTTP_BAD_REQUEST, "n: 1..50 expected", NULL);
    cx_topk_item_t items[50];
    size_t got = 0;
    uint64_t total = 0;
    bool found = false;
    if (!h->prov.lock(h->prov.opaque, h->opts.lock_timeout_ms)) return send_busy(c);
    cx_pipeline_t *pls[CX_THREADS_MAX];
    size_t npl = h->prov.pipelines(h->prov.opaque, pls, CX_THREADS_MAX);
    cx_err_t rc =
        npl ? merged_themes(pls, npl, by, name, category, items, (size_t)n, &got, &total, &found) : CX_ERR_STATE;
    h->prov.unlock(h->prov.opaque);
    if (!npl) return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready", NULL);
    if (rc != CX_OK) return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, cx_err2str(rc), NULL);
    if (!found) return send_error(c, MHD_HTTP_NOT_FOUND, "unknown segment", NULL);
    cx_buf_t b = CX_BUF_INIT;
    cx_buf_appendf(&b, "{\"%s\":", by == CX_VOC_BY_SEGMENT ? "segment" : "touchpoint");
    cx_buf_json_str(&b, name, len);
    cx_buf_appendf(&b,
                   ",\"category\":\"%s\",\"scope\":\"local\",\"terms_counted\":%" PRIu64 ",\"error_bound\":%" PRIu64
                   ",\"terms\":[",
                   category == CX_VOC_PROMOTERS ? "promoter" : "detractor", total, total / CX_VOC_TOPK_M);
    for (size_t i = 0; i < got; i++) {
        cx_buf_appendf(&b, "%s{\"term\":", i ? "," : "");
        cx_buf_json_str(&b, items[i].term, items[i].len);
        cx_buf_appendf(&b, ",\"count\":%" PRIu64 ",\"error\":%" PRIu64 "}", items[i].count, items[i].error);
    }
    cx_buf_appendf(&b, "]}");
    return send_json(c, MHD_HTTP_OK, &b);
}

static int touchpoint_by_name(const void *a, const void *b) {
    return strcmp(((const cx_voc_touchpoint_t *)a)->name, ((const cx_voc_touchpoint_t *)b)->name);
}

static void voc_segment_add(cx_voc_segment_t *a, const cx_voc_segment_t *b) {
    cx_nps_counts_merge(&a->nps, &b->nps);
    a->monetary_minor_sum += b->monetary_minor_sum;
    a->clv_minor_sum += b->clv_minor_sum;
    a->triggers += b->triggers;
    a->sends_test += b->sends_test;
    a->responders += b->responders;
}

static enum MHD_Result h_segments(cx_http_t *h, struct MHD_Connection *c) {
    int64_t counts[CX_SEGMENTS_MAX] = {0};
    cx_voc_segment_t vs[CX_SEGMENTS_MAX];
    cx_voc_touchpoint_t tps[64];
    size_t ntp = 0;
    int64_t wm = INT64_MIN;
    memset(vs, 0, sizeof vs);
    if (!h->prov.lock(h->prov.opaque, h->opts.lock_timeout_ms)) return send_busy(c);
    cx_pipeline_t *pls[CX_THREADS_MAX];
    size_t npl = h->prov.pipelines(h->prov.opaque, pls, CX_THREADS_MAX);
    if (!npl) {
        h->prov.unlock(h->prov.opaque);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready", NULL);
    }
    /* each pipeline's own partitions; several (processing.threads) are summed */
    for (size_t k = 0; k < npl; k++) {
        int64_t cnt[CX_SEGMENTS_MAX];
        cx_voc_segment_t v[CX_SEGMENTS_MAX];
        cx_voc_touchpoint_t tp[64];
        cx_pipeline_segment_counts(pls[k], cnt, CX_SEGMENTS_MAX);
        cx_voc_segments(cx_pipeline_voc(pls[k]), v, CX_SEGMENTS_MAX);
        for (size_t s = 0; s < CX_SEGMENTS_MAX; s++) {
            counts[s] += cnt[s];
            voc_segment_add(&vs[s], &v[s]);
        }
        size_t nt = cx_voc_touchpoints(cx_pipeline_voc(pls[k]), tp, sizeof tp / sizeof tp[0]);
        for (size_t t = 0; t < nt; t++) {
            size_t j = 0;
            while (j < ntp && strcmp(tps[j].name, tp[t].name) != 0)
                j++;
            if (j == ntp && ntp == sizeof tps / sizeof tps[0]) continue;
            if (j == ntp) {
                tps[ntp++] = tp[t];
            } else {
                cx_nps_counts_merge(&tps[j].nps, &tp[t].nps);
            }
        }
        for (int i = 0; i < CX_PARTS_MAX; i++)
            if (cx_pipeline_owns(pls[k], (uint16_t)i) && cx_pipeline_watermark(pls[k], (uint16_t)i) > wm)
                wm = cx_pipeline_watermark(pls[k], (uint16_t)i);
    }
    h->prov.unlock(h->prov.opaque);
    if (npl > 1) qsort(tps, ntp, sizeof tps[0], touchpoint_by_name); /* each pipeline's are sorted */

    const cx_config_t *cfg = h->cfg;
    size_t ns = cfg->n_segments < CX_SEGMENTS_MAX ? cfg->n_segments : CX_SEGMENTS_MAX;
    int64_t total = 0;
    for (size_t s = 0; s < ns; s++)
        total += counts[s];
    cx_buf_t b = CX_BUF_INIT;
    cx_buf_appendf(&b, "{\"scope\":\"local\",\"customers\":%" PRId64 ",\"watermark_ts\":", total);
    if (wm == INT64_MIN)
        cx_buf_appendf(&b, "null");
    else
        cx_buf_appendf(&b, "%" PRId64, wm);
    cx_buf_appendf(&b, ",\"segments\":[");
    for (size_t s = 0; s < ns; s++) {
        cx_buf_appendf(&b, "%s{\"segment\":", s ? "," : "");
        cx_buf_json_str(&b, cfg->segments[s].name, strlen(cfg->segments[s].name));
        cx_buf_appendf(&b, ",\"customers\":%" PRId64 ",\"share\":", counts[s]);
        if (total)
            cx_buf_json_double(&b, (double)counts[s] / (double)total);
        else
            cx_buf_appendf(&b, "null");
        const cx_voc_segment_t *g = &vs[s];
        if (counts[s] > 0)
            cx_buf_appendf(&b, ",\"avg_monetary_minor\":%" PRId64 ",\"avg_clv_minor\":%" PRId64,
                           g->monetary_minor_sum / counts[s], g->clv_minor_sum / counts[s]);
        else
            cx_buf_appendf(&b, ",\"avg_monetary_minor\":null,\"avg_clv_minor\":null");
        nps_members(&b, &g->nps);
        cx_buf_appendf(&b,
                       ",\"triggers_fired\":%" PRId64 ",\"campaign_sends_test\":%" PRId64
                       ",\"campaign_responders\":%" PRId64 ",\"campaign_response_rate\":",
                       g->triggers, g->sends_test, g->responders);
        if (g->sends_test > 0)
            cx_buf_json_double(&b, (double)g->responders / (double)g->sends_test);
        else
            cx_buf_appendf(&b, "null");
        cx_buf_putc(&b, '}');
    }
    cx_buf_appendf(&b, "],\"nps_window_days\":%d,\"touchpoints\":[", (int)cfg->nps_window_days);
    for (size_t t = 0; t < ntp; t++) {
        cx_buf_appendf(&b, "%s{\"touchpoint\":", t ? "," : "");
        cx_buf_json_str(&b, tps[t].name, strlen(tps[t].name));
        nps_members(&b, &tps[t].nps);
        cx_buf_putc(&b, '}');
    }
    cx_buf_appendf(&b, "]}");
    return send_json(c, MHD_HTTP_OK, &b);
}

/* The merged campaign KPIs of the provider's pipeline, as CampaignKpi JSON (the codec's field names:
 * the dashboard and the cx.campaign_kpis consumers read the same object). */
typedef struct kpi_list {
    cx_http_t *h;
    cx_buf_t *out;
    size_t n;
} kpi_list_t;

static cx_err_t kpi_json(cx_http_t *h, const cx_kpi_t *kpi, cx_buf_t *out) {
    pthread_mutex_lock(&h->codec_mu);
    cx_err_t rc = cx_codec_encode(h->codec, CX_REC_KPI, kpi, CX_FMT_JSON, out);
    pthread_mutex_unlock(&h->codec_mu);
    return rc;
}

static cx_err_t kpi_list_add(void *opaque, const cx_kpi_t *kpi) {
    kpi_list_t *l = opaque;
    if (l->n++ && cx_buf_putc(l->out, ',') != CX_OK) return CX_ERR_NOMEM;
    return kpi_json(l->h, kpi, l->out);
}

static cx_err_t pipeline_campaigns(cx_http_t *h, const char *id, cx_buf_t *out, bool *found) {
    cx_pipeline_t *pls[CX_THREADS_MAX];
    cx_campaigns_t *k = h->prov.pipelines(h->prov.opaque, pls, CX_THREADS_MAX) ? cx_pipeline_campaigns(pls[0]) : NULL;
    if (id) {
        cx_kpi_t kpi;
        *found = k && cx_campaigns_kpi(k, id, &kpi);
        return *found ? kpi_json(h, &kpi, out) : CX_OK;
    }
    kpi_list_t l = {h, out, 0};
    cx_err_t rc = cx_buf_putc(out, '[');
    if (rc == CX_OK && k) rc = cx_campaigns_each_kpi(k, kpi_list_add, &l);
    return rc == CX_OK ? cx_buf_putc(out, ']') : rc;
}

static enum MHD_Result h_campaigns(cx_http_t *h, struct MHD_Connection *c, const char *id) {
    cx_buf_t b = CX_BUF_INIT;
    if (id && !cx_id_valid(id, strlen(id)))
        return send_error(c, MHD_HTTP_BAD_REQUEST, "malformed campaign id: 1-128 bytes of [A-Za-z0-9._:@-] expected",
                          NULL);
    if (!h->prov.lock(h->prov.opaque, h->opts.lock_timeout_ms)) return send_busy(c);
    bool found = true;
    cx_err_t rc =
        h->prov.campaigns ? h->prov.campaigns(h->prov.opaque, id, &b, &found) : pipeline_campaigns(h, id, &b, &found);
    h->prov.unlock(h->prov.opaque);
    if (rc != CX_OK) {
        cx_buf_free(&b);
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, cx_err2str(rc), NULL);
    }
    if (!found) {
        cx_buf_free(&b);
        return send_error(c, MHD_HTTP_NOT_FOUND, "unknown campaign", NULL);
    }
    return send_json(c, MHD_HTTP_OK, &b);
}

/* Counters for the dashboard's live rates (events/s is the difference of two polls). */
static enum MHD_Result h_stats(cx_http_t *h, struct MHD_Connection *c) {
    if (!h->prov.lock(h->prov.opaque, h->opts.lock_timeout_ms)) return send_busy(c);
    cx_pipeline_t *pls[CX_THREADS_MAX];
    size_t npl = h->prov.pipelines(h->prov.opaque, pls, CX_THREADS_MAX);
    if (!npl) {
        h->prov.unlock(h->prov.opaque);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready", NULL);
    }
    cx_pipeline_stats_t st = {0};
    int owned = 0;
    for (size_t k = 0; k < npl; k++) {
        cx_pipeline_stats_t s = cx_pipeline_stats(pls[k]);
        st.events += s.events;
        st.duplicates += s.duplicates;
        st.late += s.late;
        st.timers_fired += s.timers_fired;
        for (size_t i = 0; i < sizeof st.out / sizeof st.out[0]; i++)
            st.out[i] += s.out[i];
        for (int i = 0; i < CX_PARTS_MAX; i++)
            owned += cx_pipeline_owns(pls[k], (uint16_t)i);
    }
    h->prov.unlock(h->prov.opaque);
    cx_buf_t b = CX_BUF_INIT;
    cx_buf_appendf(&b,
                   "{\"now_ms\":%" PRId64 ",\"events\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"late\":%" PRIu64
                   ",\"timers_fired\":%" PRIu64 ",\"segment_changes\":%" PRIu64 ",\"triggers\":%" PRIu64
                   ",\"responses\":%" PRIu64 ",\"kpis\":%" PRIu64 ",\"partitions\":%d}",
                   cx_wall_ms(), st.events, st.duplicates, st.late, st.timers_fired, st.out[CX_REC_SEGMENT_CHANGE],
                   st.out[CX_REC_TRIGGER], st.out[CX_REC_RESPONSE], st.out[CX_REC_KPI], owned);
    return send_json(c, MHD_HTTP_OK, &b);
}

static const char *content_type(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    if (!strcmp(dot, ".json")) return "application/json; charset=utf-8";
    return "application/octet-stream";
}

/* "/" → web/index.html, "/name.ext" → web/name.ext (embedded in the binary). */
static bool serve_file(struct MHD_Connection *c, const char *url, enum MHD_Result *res) {
    char name[128];
    const char *base = strcmp(url, "/") == 0 ? "index.html" : url + 1;
    if (strchr(base, '/') || !strchr(base, '.') || strlen(base) > 100) return false;
    snprintf(name, sizeof name, "web/%s", base);
    const struct cx_embedded_file *f = cx_embedded_find(name);
    if (!f) return false;
    struct MHD_Response *resp = MHD_create_response_from_buffer(f->size, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        *res = MHD_NO;
        return true;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(base));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    *res = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    (void)upload_data;
    (void)con_cls;
    cx_http_t *h = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        *upload_data_size = 0; /* the body is not read: the connection closes after the answer */
        return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD", NULL);
    }
    if (!strcmp(url, "/healthz")) return h_healthz(h, c);
    if (!strcmp(url, "/readyz")) return h_readyz(h, c);
    if (!strcmp(url, "/metrics")) return h_metrics(h, c);
    if (!strcmp(url, "/segments")) return h_segments(h, c);
    if (!strncmp(url, "/segments/", 10)) return h_themes(h, c, CX_VOC_BY_SEGMENT, url + 10);
    if (!strncmp(url, "/touchpoints/", 13)) return h_themes(h, c, CX_VOC_BY_TOUCHPOINT, url + 13);
    if (!strcmp(url, "/stats")) return h_stats(h, c);
    if (!strcmp(url, "/campaigns")) return h_campaigns(h, c, NULL);
    if (!strncmp(url, "/campaigns/", 11)) return h_campaigns(h, c, url + 11);
    if (!strncmp(url, "/customers/", 11)) return h_customer(h, c, url + 11);
    enum MHD_Result res;
    if (serve_file(c, url, &res)) return res;
    return send_error(c, MHD_HTTP_NOT_FOUND, "no such path", NULL);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    cx_log(CX_LOG_DEBUG, "http", "mhd msg=\"%s\"", msg);
}

/* ---------- server ---------- */

cx_http_t *cx_http_start(const cx_config_t *cfg, const cx_http_opts_t *o, const cx_http_provider_t *prov, char *errstr,
                         size_t n) {
    cx_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        cx_seterr(errstr, n, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->codec_mu, NULL);
    h->cfg = cfg;
    h->prov = *prov;
    if (o) h->opts = *o;
    if (!h->opts.conn_timeout_s) h->opts.conn_timeout_s = 10;
    if (!h->opts.threads) h->opts.threads = 4;
    if (h->opts.lock_timeout_ms <= 0) h->opts.lock_timeout_ms = 5000;
    if (!(h->codec = cx_codec_new(errstr, n))) goto fail;

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(h->opts.port);
    const char *bind = h->opts.bind && *h->opts.bind ? h->opts.bind : "0.0.0.0";
    if (inet_pton(AF_INET, bind, &sa.sin_addr) != 1) {
        cx_seterr(errstr, n, "http.bind=%s: not an IPv4 address", bind);
        goto fail;
    }
    h->d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, h->opts.port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT,
                            h->opts.conn_timeout_s, MHD_OPTION_THREAD_POOL_SIZE, h->opts.threads,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)32 * 1024, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!h->d) {
        cx_seterr(errstr, n, "cannot listen on %s:%u (address in use?)", bind, (unsigned)h->opts.port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : h->opts.port;
    cx_log(CX_LOG_INFO, "http", "listening bind=%s port=%u", bind, (unsigned)h->port);
    return h;
fail:
    cx_http_stop(h);
    return NULL;
}

uint16_t cx_http_port(const cx_http_t *h) {
    return h->port;
}

void cx_http_stop(cx_http_t *h) {
    if (!h) return;
    if (h->d) MHD_stop_daemon(h->d);
    cx_codec_destroy(h->codec);
    pthread_mutex_destroy(&h->codec_mu);
    free(h->owned);
    free(h);
}

/* ---------- provider over runners (one per pipeline thread) ---------- */

typedef struct runner_prov {
    cx_runner_t *r[CX_THREADS_MAX];
    size_t n;
    const cx_config_t *cfg;
} runner_prov_t;

/* Every runner's lock in index order (the only order anyone takes more than one), each within
 * what is left of timeout_ms. */
static bool rp_lock(void *o, int timeout_ms) {
    runner_prov_t *rp = o;
    int64_t until = cx_mono_ms() + timeout_ms;
    for (size_t i = 0; i < rp->n; i++) {
        int64_t left = until - cx_mono_ms();
        if (!cx_runner_lock_timed(rp->r[i], left > 0 ? (int)left : 0)) {
            while (i--)
                cx_runner_unlock(rp->r[i]);
            return false;
        }
    }
    return true;
}
static void rp_unlock(void *o) {
    runner_prov_t *rp = o;
    for (size_t i = rp->n; i--;)
        cx_runner_unlock(rp->r[i]);
}

/* Alive while every pipeline is: the first one starting, stopped or stalled names the state. */
static bool rp_alive(void *o, const char **state) {
    runner_prov_t *rp = o;
    *state = "ok";
    for (size_t i = 0; i < rp->n; i++) {
        int64_t hb = cx_runner_heartbeat_ms(rp->r[i]);
        if (!cx_runner_started(rp->r[i])) {
            *state = hb ? "stopped" : "starting";
            if (hb) return false;
            continue;
        }
        /* a poll returns within its timeout plus one batch and at most one commit cycle */
        int64_t stale_ms = 60000 + cx_config_commit_interval_ms(rp->cfg);
        if (hb && cx_mono_ms() - hb > stale_ms) {
            *state = "stalled";
            return false;
        }
    }
    return true;
}

static bool rp_ready(void *o, cx_buf_t *m) {
    runner_prov_t *rp = o;
    int partitions = 0, pending = 0;
    uint64_t campaigns = 0, restored = 0, records = 0;
    cx_runner_restore_t active = {0}; /* the first thread's restore in progress, if any */
    for (size_t i = 0; i < rp->n; i++) {
        if (!cx_runner_started(rp->r[i])) {
            cx_buf_appendf(m, "\"state\":\"starting\",\"campaigns_loaded\":false,\"partitions\":0");
            return false;
        }
        cx_runner_stats_t st = cx_runner_stats(rp->r[i]);
        cx_runner_restore_t rs = cx_runner_restore_status(rp->r[i]);
        partitions += st.partitions;
        campaigns = st.campaigns > campaigns ? st.campaigns : campaigns; /* each thread reads the table */
        pending += rs.pending;
        restored += rs.partitions_restored;
        records += rs.records_total;
        if (rs.active && !active.active) active = rs;
    }
    bool ready = partitions > 0 && pending == 0;
    cx_buf_appendf(m,
                   "\"state\":\"%s\",\"campaigns_loaded\":true,\"partitions\":%d,\"input_partitions\":%" PRId32
                   ",\"campaigns\":%" PRIu64,
                   ready     ? "running"
                   : pending ? "restoring"
                             : "waiting_for_assignment",
                   partitions, cx_runner_partition_count(rp->r[0]), campaigns);
    if (rp->n > 1) cx_buf_appendf(m, ",\"threads\":%zu", rp->n);
    /* changelog restore (changelog.h): partitions still to restore and the one being read */
    cx_buf_appendf(m, ",\"restoring_partitions\":%d,\"restore\":", pending);
    if (active.active)
        cx_buf_appendf(m,
                       "{\"partition\":%u,\"from\":%" PRId64 ",\"position\":%" PRId64 ",\"end\":%" PRId64
                       ",\"records\":%" PRIu64 ",\"seconds\":%.3f}",
                       active.current.part, active.current.from, active.current.position, active.current.end,
                       active.current.records, active.current.seconds);
    else
        cx_buf_appendf(m, "null");
    cx_buf_appendf(m, ",\"restored_partitions\":%" PRIu64 ",\"restored_records\":%" PRIu64, restored, records);
    return ready;
}

static size_t rp_pipelines(void *o, cx_pipeline_t **out, size_t cap) {
    runner_prov_t *rp = o;
    size_t n = 0;
    for (size_t i = 0; i < rp->n; i++)
        if (!cx_runner_started(rp->r[i])) return 0; /* all or none */
    for (size_t i = 0; i < rp->n && n < cap; i++)
        out[n++] = cx_runner_pipeline(rp->r[i]);
    return n;
}

static int32_t rp_partitions(void *o) {
    runner_prov_t *rp = o;
    return cx_runner_started(rp->r[0]) ? cx_runner_partition_count(rp->r[0]) : 0;
}

static bool rp_owner(void *o, int32_t part, char *addr, size_t addr_size) {
    runner_prov_t *rp = o;
    return cx_runner_started(rp->r[0]) && cx_runner_owner(rp->r[0], part, addr, addr_size);
}

static cx_err_t rp_metrics(void *o, cx_buf_t *out) {
    runner_prov_t *rp = o;
    return cx_metrics_collect_runners(out, rp->cfg, rp->r, rp->n, cx_wall_ms());
}

cx_http_t *cx_http_start_runners(const cx_config_t *cfg, cx_runner_t *const *r, size_t n, char *errstr, size_t en) {
    if (n < 1 || n > CX_THREADS_MAX) {
        cx_seterr(errstr, en, "%zu runners: 1..%d expected", n, CX_THREADS_MAX);
        return NULL;
    }
    runner_prov_t *rp = calloc(1, sizeof *rp);
    if (!rp) {
        cx_seterr(errstr, en, "out of memory");
        return NULL;
    }
    memcpy(rp->r, r, n * sizeof *r);
    rp->n = n;
    rp->cfg = cfg;
    cx_http_provider_t prov = {.opaque = rp,
                               .lock = rp_lock,
                               .unlock = rp_unlock,
                               .alive = rp_alive,
                               .ready = rp_ready,
                               .pipelines = rp_pipelines,
                               .partitions = rp_partitions,
                               .metrics = rp_metrics,
                               .owner = rp_owner,
                               .campaigns = NULL};
    cx_http_opts_t o = {.bind = cfg->http_bind, .port = (uint16_t)cfg->http_port};
    cx_http_t *h = cx_http_start(cfg, &o, &prov, errstr, en);
    if (!h) {
        free(rp);
        return NULL;
    }
    h->owned = rp;
    for (size_t i = 0; i < n; i++)
        cx_runner_http_serving(r[i]); /* from now on the runners advertise this server (owner records) */
    return h;
}
