/*
 * http.h — the HTTP server of DESIGN §7 on libmicrohttpd: /metrics (Prometheus text), /healthz,
 * /readyz, /customers/{id}, /segments, /campaigns, /campaigns/{id}, /stats and the dashboard (/ and
 * the other files embedded from processor/web/).
 *
 * The server runs on its own threads (MHD's internal polling threads, a small pool, with a
 * connection timeout), so a slow or stalled client never blocks the processor or other clients.
 * It reads the pipeline through a provider: a set of callbacks with a lock that the processing
 * loop also holds while it processes (the runners' locks; cx_http_start_runners wires them). Every
 * response of ours is JSON except /metrics (text/plain; version=0.0.4) and the dashboard files;
 * protocol errors that MHD answers itself (414 for an over-long URL, 400 for a malformed request)
 * carry MHD's own small bodies.
 *
 * Ownership: the server borrows cfg and the provider's opaque until cx_http_stop returns; it owns
 * its codec. Stop the server before destroying what the provider reads.
 */
#ifndef CX_HTTP_H
#define CX_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "cx.h"
#include "pipeline.h"

struct cx_runner;

typedef struct cx_http_provider {
    void *opaque;
    /* Takes the lock guarding the pipeline; false when not obtained within timeout_ms (→ 503). */
    bool (*lock)(void *opaque, int timeout_ms);
    void (*unlock)(void *opaque);
    /* No lock: true while the processing loop runs (/healthz); fills a short state word. */
    bool (*alive)(void *opaque, const char **state);
    /* With the lock: ready to serve (/readyz). Appends JSON object members (no braces, no leading
     * comma) describing the state, e.g. "state":"running","partitions":2. */
    bool (*ready)(void *opaque, cx_buf_t *members);
    /* With the lock: the pipelines that may be read (none while starting or stopped), at most cap
     * into out; returns their number. Several with `processing.threads` > 1: each owns its own
     * partitions, and the answers merge them (campaign KPIs, merged from cx.partials, are the same
     * in each: the first one's are used). */
    size_t (*pipelines)(void *opaque, cx_pipeline_t **out, size_t cap);
    /* With the lock: partitions per input topic, to find a customer's partition; 0 when unknown. */
    int32_t (*partitions)(void *opaque);
    /* With the lock: appends the Prometheus exposition. */
    cx_err_t (*metrics)(void *opaque, cx_buf_t *out);
    /* Optional; NULL: the merged KPIs of the first pipeline's campaigns (cx_campaigns_each_kpi, CampaignKpi
     * JSON, [] and 404 while the pipeline is NULL). With the lock: id NULL appends a JSON array of
     * KPI objects; otherwise one JSON object, *found false for an unknown campaign. */
    cx_err_t (*campaigns)(void *opaque, const char *id, cx_buf_t *out, bool *found);
    /* Optional; NULL: owners are never known. With the lock: the advertised address (host:port) of
     * the instance owning input partition `part` into addr; false when unknown. A customer of a
     * partition owned elsewhere gets 307 to http://<owner>/customers/{id}, or 503 when unknown. */
    bool (*owner)(void *opaque, int32_t part, char *addr, size_t addr_size);
} cx_http_provider_t;

typedef struct cx_http_opts {
    const char *bind;        /* IPv4 address; NULL or "" = 0.0.0.0 */
    uint16_t port;           /* 0 = an ephemeral port (see cx_http_port) */
    unsigned conn_timeout_s; /* idle connection timeout; 0 = 10 */
    unsigned threads;        /* polling threads; 0 = 4 */
    int lock_timeout_ms;     /* wait for the provider lock; 0 = 5000 */
} cx_http_opts_t;

typedef struct cx_http cx_http_t;

/* Starts listening. NULL with errstr on failure (address in use, bad bind address). */
cx_http_t *cx_http_start(const cx_config_t *cfg, const cx_http_opts_t *o, const cx_http_provider_t *prov, char *errstr,
                         size_t errstr_size);
/* The bound port (the real one when opts.port was 0). */
uint16_t cx_http_port(const cx_http_t *h);
/* Stops accepting, waits for running handlers, frees. NULL ok. */
void cx_http_stop(cx_http_t *h);

/* The server for runners (`run` with one per pipeline thread, `demo` with one) on
 * cfg->http_bind:cfg->http_port, reading them under their locks (taken in index order). The runners
 * must outlive the server; n ≤ CX_THREADS_MAX. */
cx_http_t *cx_http_start_runners(const cx_config_t *cfg, struct cx_runner *const *r, size_t n, char *errstr,
                                 size_t errstr_size);

#endif
