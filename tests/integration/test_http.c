/*
 * test_http.c — the HTTP server on an ephemeral port over a pipeline fed in process (two input
 * partitions, only partition 0 owned), driven by a raw socket client: every endpoint's status and
 * JSON validity, malformed ids, a customer of a partition owned elsewhere (307 to the owner known
 * from cx.partials owner records, 503 while unknown), a 1 MB URL, a stalled
 * client next to a working one, and a processor that holds its lock too long.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "metrics.h"
#include "owners.h"
#include "pipeline.h"
#include "store.h"

/* ---------- fixture: a pipeline behind a fake provider ---------- */

typedef struct fake {
    pthread_mutex_t mu;
    cx_pipeline_t *pl;
    cx_pipeline_t *pl2; /* a second pipeline thread owning partition 1, when set */
    const cx_config_t *cfg;
    bool ready;
    cx_owners_t *owners; /* partition → owner from cx.partials owner records */
} fake_t;

static fake_t F;
static cx_config_t *cfg;
static cx_store_t *store;
static cx_http_t *http;
static uint16_t port;

static bool f_lock(void *o, int timeout_ms) {
    fake_t *f = o;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)timeout_ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    return pthread_mutex_timedlock(&f->mu, &ts) == 0;
}
static void f_unlock(void *o) {
    pthread_mutex_unlock(&((fake_t *)o)->mu);
}
static bool f_alive(void *o, const char **state) {
    (void)o;
    *state = "ok";
    return true;
}
static bool f_ready(void *o, cx_buf_t *m) {
    fake_t *f = o;
    cx_buf_appendf(m, "\"state\":\"%s\"", f->ready ? "running" : "starting");
    return f->ready;
}
static size_t f_pipelines(void *o, cx_pipeline_t **out, size_t cap) {
    fake_t *f = o;
    size_t n = 0;
    if (f->pl && n < cap) out[n++] = f->pl;
    if (f->pl2 && n < cap) out[n++] = f->pl2;
    return n;
}
static int32_t f_partitions(void *o) {
    (void)o;
    return 2;
}
static bool f_owner(void *o, int32_t part, char *addr, size_t n) {
    return cx_owners_get(((fake_t *)o)->owners, part, addr, n);
}
static cx_err_t f_metrics(void *o, cx_buf_t *out) {
    fake_t *f = o;
    return cx_metrics_collect_pipeline(out, f->cfg, f->pl, 1700000100000);
}

static cx_err_t null_emit(void *o, cx_record_kind_t k, const char *key, const void *rec) {
    (void)o, (void)k, (void)key, (void)rec;
    return CX_OK;
}

/* A customer id that hashes to partition `part` of 2. */
static void id_in(int32_t part, char *out, size_t n) {
    for (int i = 0;; i++) {
        snprintf(out, n, "cust-%d", i);
        if (cx_murmur2_partition(out, strlen(out), 2) == part) return;
    }
}

static char owned_id[32], other_id[32];

/* One purchase of `amount` by customer `cid` in partition `part` of pl. */
static void purchase(cx_pipeline_t *pl, uint16_t part, const char *cid, const char *eid, int64_t amount) {
    char err[256];
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_PURCHASE;
    snprintf(ev.event_id, sizeof ev.event_id, "%s", eid);
    snprintf(ev.customer_id, sizeof ev.customer_id, "%s", cid);
    ev.ts_ms = 1700000000000;
    ev.u.purchase.kind = CX_PK_PURCHASE;
    ev.u.purchase.amount_minor = amount;
    memcpy(ev.u.purchase.currency, "SEK", 4);
    bool more = true;
    while (more)
        cr_assert_eq(cx_pipeline_advance(pl, part, ev.ts_ms, &more, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(cx_pipeline_event(pl, part, &ev, -1, err, sizeof err), CX_OK, "%s", err);
}

static void setup(void) {
    char err[256];
    cfg = cx_config_new();
    cx_store_opts_t so = {.dir = NULL};
    store = cx_store_open(&so, err, sizeof err);
    cr_assert(store, "%s", err);
    static cx_sink_t sink = {NULL, null_emit};
    F.pl = cx_pipeline_new(cfg, store, &sink, err, sizeof err);
    cr_assert(F.pl, "%s", err);
    F.cfg = cfg;
    F.ready = true;
    pthread_mutex_init(&F.mu, NULL);
    cr_assert_eq(cx_pipeline_assign(F.pl, 0, NULL, err, sizeof err), CX_OK, "%s", err);
    id_in(0, owned_id, sizeof owned_id);
    id_in(1, other_id, sizeof other_id);
    purchase(F.pl, 0, owned_id, "e1", 1299);

    F.owners = cx_owners_new();
    cr_assert(F.owners);
    cx_http_provider_t prov = {&F,          f_lock,       f_unlock,  f_alive, f_ready,
                               f_pipelines, f_partitions, f_metrics, NULL,    f_owner};
    cx_http_opts_t o = {.bind = "127.0.0.1", .port = 0, .conn_timeout_s = 1, .lock_timeout_ms = 300};
    http = cx_http_start(cfg, &o, &prov, err, sizeof err);
    cr_assert(http, "%s", err);
    port = cx_http_port(http);
    cr_assert_neq(port, 0);
}

static cx_store_t *store2;

static void teardown(void) {
    cx_http_stop(http);
    cx_pipeline_destroy(F.pl);
    cx_pipeline_destroy(F.pl2);
    cx_store_close(store);
    cx_store_close(store2);
    cx_owners_destroy(F.owners);
    cx_config_destroy(cfg);
    pthread_mutex_destroy(&F.mu);
}

/* ---------- raw socket client ---------- */

typedef struct resp {
    int status; /* 0: connection closed without a status line */
    char ctype[128];
    char location[512];
    char *body;
    size_t body_len;
} resp_t;

static int connect_local(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return; /* the server may close early (e.g. an over-long URL) */
        p += k;
        n -= (size_t)k;
    }
}

static resp_t read_resp(int fd) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
        ssize_t k = recv(fd, buf + len, cap - len, 0);
        if (k <= 0) break;
        len += (size_t)k;
    }
    buf[len] = 0;
    resp_t r = {0};
    sscanf(buf, "HTTP/1.%*d %d", &r.status);
    char *ct = strcasestr(buf, "\r\nContent-Type: ");
    if (ct) sscanf(ct + 16, "%127[^\r]", r.ctype);
    char *loc = strcasestr(buf, "\r\nLocation: ");
    if (loc) sscanf(loc + 12, "%511[^\r]", r.location);
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep) {
        r.body_len = len - (size_t)(sep + 4 - buf);
        r.body = malloc(r.body_len + 1);
        memcpy(r.body, sep + 4, r.body_len);
        r.body[r.body_len] = 0;
    }
    free(buf);
    return r;
}

static resp_t request(const char *method, const char *path) {
    int fd = connect_local();
    char head[512];
    snprintf(head, sizeof head, "%s ", method);
    send_all(fd, head, strlen(head));
    send_all(fd, path, strlen(path));
    const char *tail = " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    send_all(fd, tail, strlen(tail));
    resp_t r = read_resp(fd);
    close(fd);
    return r;
}

static json_t *get_json(const char *path, int want_status) {
    resp_t r = request("GET", path);
    cr_assert_eq(r.status, want_status, "GET %s: status %d, body %s", path, r.status, r.body ? r.body : "");
    cr_assert(strstr(r.ctype, "application/json"), "GET %s: content type %s", path, r.ctype);
    json_error_t je;
    json_t *j = json_loadb(r.body, r.body_len, 0, &je);
    cr_assert(j, "GET %s: invalid JSON (%s): %s", path, je.text, r.body);
    free(r.body);
    return j;
}

/* ---------- tests ---------- */

TestSuite(http, .init = setup, .fini = teardown, .timeout = 60);

Test(http, health_and_readiness_answer_json) {
    json_t *j = get_json("/healthz", 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    j = get_json("/readyz", 200);
    cr_assert(json_is_true(json_object_get(j, "ready")));
    json_decref(j);
    F.ready = false;
    j = get_json("/readyz", 503);
    cr_assert(json_is_false(json_object_get(j, "ready")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "starting");
    json_decref(j);
}

Test(http, known_customer_returns_profile_json) {
    char path[64];
    snprintf(path, sizeof path, "/customers/%s", owned_id);
    json_t *j = get_json(path, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "customer_id")), owned_id);
    cr_assert_eq(json_integer_value(json_object_get(j, "purchases_total")), 1);
    cr_assert_eq(json_integer_value(json_object_get(j, "revenue_total_minor")), 1299);
    cr_assert(json_is_string(json_object_get(j, "segment")));
    json_decref(j);
}

Test(http, unknown_customer_is_404_and_malformed_id_is_400) {
    char unknown[32];
    for (int i = 0;; i++) { /* unknown, but in the owned partition */
        snprintf(unknown, sizeof unknown, "nobody-%d", i);
        if (cx_murmur2_partition(unknown, strlen(unknown), 2) == 0) break;
    }
    char path[64];
    snprintf(path, sizeof path, "/customers/%s", unknown);
    json_decref(get_json(path, 404));
    json_decref(get_json("/customers/bad%20id", 400));
    json_decref(get_json("/customers/a%2Fb", 400));
    json_decref(get_json("/customers/", 400));
    char long_id[12 + 130] = "/customers/";
    memset(long_id + 11, 'x', 129);
    long_id[11 + 129] = 0;
    json_decref(get_json(long_id, 400));
}

Test(http, customer_of_a_partition_owned_elsewhere_with_unknown_owner_is_503_not_404) {
    char path[64];
    snprintf(path, sizeof path, "/customers/%s", other_id);
    json_t *j = get_json(path, 503);
    cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "owner unknown");
    cr_assert_eq(json_integer_value(json_object_get(j, "partition")), 1);
    json_decref(j);
}

Test(http, customer_of_a_partition_owned_elsewhere_redirects_to_the_known_owner) {
    const char *other_owner = "{\"owner\":\"10.0.0.7:8081\",\"generation\":3,\"ts\":1700000000000}";
    cr_assert_eq(cx_owners_apply(F.owners, "owner::1", 8, other_owner, strlen(other_owner)), CX_OK);
    char path[64], want[128];
    snprintf(path, sizeof path, "/customers/%s", other_id);
    resp_t r = request("GET", path);
    cr_assert_eq(r.status, 307, "status %d body %s", r.status, r.body ? r.body : "");
    snprintf(want, sizeof want, "http://10.0.0.7:8081/customers/%s", other_id);
    cr_assert_str_eq(r.location, want);
    cr_assert(strstr(r.ctype, "application/json"));
    json_error_t je;
    json_t *j = json_loadb(r.body, r.body_len, 0, &je);
    cr_assert(j, "invalid JSON: %s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "not owned here");
    cr_assert_eq(json_integer_value(json_object_get(j, "partition")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "owner")), "10.0.0.7:8081");
    json_decref(j);
    free(r.body);
    /* an owner record of the owned partition changes nothing: the profile is served here */
    const char *self = "{\"owner\":\"10.0.0.9:8081\",\"generation\":1,\"ts\":1700000000000}";
    cr_assert_eq(cx_owners_apply(F.owners, "owner::0", 8, self, strlen(self)), CX_OK);
    snprintf(path, sizeof path, "/customers/%s", owned_id);
    json_decref(get_json(path, 200));
}

Test(http, segments_list_every_rule_with_counts_and_shares) {
    json_t *j = get_json("/segments", 200);
    json_t *segs = json_object_get(j, "segments");
    cr_assert_eq(json_array_size(segs), cfg->n_segments);
    int64_t sum = 0;
    double share = 0;
    size_t i;
    json_t *s;
    json_array_foreach(segs, i, s) {
        cr_assert_str_eq(json_string_value(json_object_get(s, "segment")), cfg->segments[i].name);
        sum += json_integer_value(json_object_get(s, "customers"));
        share += json_number_value(json_object_get(s, "share"));
        cr_assert(json_is_null(json_object_get(s, "nps")));
    }
    cr_assert_eq(sum, 1);
    cr_assert_float_eq(share, 1.0, 1e-9);
    cr_assert_eq(json_integer_value(json_object_get(j, "customers")), 1);
    json_decref(j);
}

Test(http, campaigns_are_empty_until_kpis_exist) {
    json_t *j = get_json("/campaigns", 200);
    cr_assert(json_is_array(j));
    cr_assert_eq(json_array_size(j), 0);
    json_decref(j);
    json_decref(get_json("/campaigns/spring-sale", 404));
    json_decref(get_json("/campaigns/bad!id", 400));
}

Test(http, stats_unknown_paths_and_methods) {
    json_t *j = get_json("/stats", 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "events")), 1);
    cr_assert_eq(json_integer_value(json_object_get(j, "partitions")), 1);
    json_decref(j);
    json_decref(get_json("/nope", 404));
    json_decref(get_json("/customers", 404));
    resp_t r = request("DELETE", "/segments");
    cr_assert_eq(r.status, 405);
    json_t *e = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert(e != NULL, "405 body is not JSON: %s", r.body);
    json_decref(e);
    free(r.body);
}

/* processing.threads: a second pipeline with its own store owns partition 1. Its customer is
 * served here instead of redirected, and /segments and /stats add both pipelines up. */
Test(http, two_pipeline_threads_answer_for_both_partitions_and_are_summed) {
    char err[256], path[64];
    cx_store_opts_t so = {.dir = NULL};
    store2 = cx_store_open(&so, err, sizeof err);
    cr_assert(store2, "%s", err);
    static cx_sink_t sink = {NULL, null_emit};
    cx_pipeline_t *pl2 = cx_pipeline_new(cfg, store2, &sink, err, sizeof err);
    cr_assert(pl2, "%s", err);
    cr_assert_eq(cx_pipeline_assign(pl2, 1, NULL, err, sizeof err), CX_OK, "%s", err);
    purchase(pl2, 1, other_id, "e2", 500);
    purchase(pl2, 1, other_id, "e3", 700);
    pthread_mutex_lock(&F.mu);
    F.pl2 = pl2;
    pthread_mutex_unlock(&F.mu);

    snprintf(path, sizeof path, "/customers/%s", other_id);
    json_t *j = get_json(path, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "customer_id")), other_id);
    cr_assert_eq(json_integer_value(json_object_get(j, "revenue_total_minor")), 1200);
    json_decref(j);
    snprintf(path, sizeof path, "/customers/%s", owned_id);
    j = get_json(path, 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "revenue_total_minor")), 1299);
    json_decref(j);

    j = get_json("/segments", 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "customers")), 2);
    json_decref(j);
    j = get_json("/stats", 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "events")), 3);
    cr_assert_eq(json_integer_value(json_object_get(j, "partitions")), 2);
    json_decref(j);
}

Test(http, metrics_are_prometheus_text) {
    resp_t r = request("GET", "/metrics");
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.ctype, "text/plain; version=0.0.4"), "%s", r.ctype);
    cr_assert(strstr(r.body, "\ncxstream_events_total 1\n"), "%s", r.body);
    cr_assert(strstr(r.body, "# TYPE cxstream_segment_customers gauge\n"), "%s", r.body);
    free(r.body);
}

Test(http, dashboard_is_served_from_the_binary) {
    resp_t r = request("GET", "/");
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.ctype, "text/html"), "%s", r.ctype);
    cr_assert(strstr(r.body, "<table id=\"segments\""));
    cr_assert(!strstr(r.body, "http://") && !strstr(r.body, "https://"), "external resource in the dashboard");
    free(r.body);
}

Test(http, one_megabyte_url_is_refused_and_the_server_lives_on) {
    size_t n = 1 << 20;
    char *path = malloc(n + 1);
    path[0] = '/';
    memset(path + 1, 'a', n - 1);
    path[n] = 0;
    resp_t r = request("GET", path);
    free(path);
    /* MHD answers 414 once its buffer is full; a reset before the answer is read is tolerated */
    cr_assert(r.status == 414 || r.status == 400 || r.status == 0, "status %d", r.status);
    cr_log_info("1 MB URL answered with status %d", r.status);
    free(r.body);
    json_decref(get_json("/healthz", 200));
}

Test(http, stalled_client_does_not_block_others_and_is_timed_out) {
    int slow = connect_local();
    const char *half = "GET /segments HTTP/1.1\r\nHost: loc";
    send_all(slow, half, strlen(half));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    json_decref(get_json("/healthz", 200));
    json_decref(get_json("/segments", 200));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(s, 0.9, "other requests waited %.2f s behind the stalled client", s);
    /* the stalled connection is closed by the 1 s connection timeout: recv sees EOF, not our 10 s limit */
    char c;
    ssize_t k = recv(slow, &c, 1, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_eq(k, 0, "stalled connection not closed (recv %zd, %s)", k, strerror(errno));
    cr_assert_lt(s, 5.0);
    close(slow);
}

Test(http, processor_holding_its_lock_gives_503_not_a_hang) {
    pthread_mutex_lock(&F.mu); /* the "processor" is busy */
    json_t *j = get_json("/segments", 503);
    json_decref(j);
    j = get_json("/healthz", 200); /* liveness needs no lock */
    json_decref(j);
    pthread_mutex_unlock(&F.mu);
    json_decref(get_json("/segments", 200));
}

/* ---------- campaign KPIs: the same fixture plus two campaigns sent to the owned customer ---------- */

static void apply(const cx_event_t *ev) {
    char err[256];
    bool more = true;
    while (more)
        cr_assert_eq(cx_pipeline_advance(F.pl, 0, ev->ts_ms, &more, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(cx_pipeline_event(F.pl, 0, ev, -1, err, sizeof err), CX_OK, "%s", err);
}

static void send_of(const char *event_id, const char *campaign_id, cx_group_t group, int64_t ts) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_EMAIL_SEND;
    snprintf(ev.event_id, sizeof ev.event_id, "%s", event_id);
    snprintf(ev.customer_id, sizeof ev.customer_id, "%s", owned_id);
    ev.ts_ms = ts;
    snprintf(ev.u.email_send.campaign_id, sizeof ev.u.email_send.campaign_id, "%s", campaign_id);
    ev.u.email_send.group = group;
    ev.u.email_send.channel = 0;
    apply(&ev);
}

static void setup_campaigns(void) {
    char err[256];
    setup();
    pthread_mutex_lock(&F.mu);
    const int64_t t = 1700000000000;
    const char *ids[] = {"b-autumn", "a-spring"}; /* added out of order: the list is sorted by id */
    for (int i = 0; i < 2; i++) {
        cx_campaign_t c;
        memset(&c, 0, sizeof c);
        snprintf(c.campaign_id, sizeof c.campaign_id, "%s", ids[i]);
        c.name = (char *)ids[i];
        c.type = CX_CT_NEWSLETTER;
        c.start_ts_ms = t - 86400000;
        c.end_ts_ms = t + 30 * 86400000LL;
        c.observation_days = 7;
        cr_assert_eq(cx_pipeline_campaign(F.pl, c.campaign_id, &c, err, sizeof err), CX_OK, "%s", err);
    }
    send_of("s2", "b-autumn", CX_GROUP_CONTROL, t + 3600000);
    send_of("s1", "a-spring", CX_GROUP_TEST, t + 5400000); /* the latest send: the purchase's last touch */
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_PURCHASE;
    snprintf(ev.event_id, sizeof ev.event_id, "e2");
    snprintf(ev.customer_id, sizeof ev.customer_id, "%s", owned_id);
    ev.ts_ms = t + 7200000;
    ev.u.purchase.kind = CX_PK_PURCHASE;
    ev.u.purchase.amount_minor = 4900;
    memcpy(ev.u.purchase.currency, "SEK", 4);
    apply(&ev);
    pthread_mutex_unlock(&F.mu);
}

TestSuite(http_campaigns, .init = setup_campaigns, .fini = teardown, .timeout = 60);

/* Every CampaignKpi field of schemas/campaign_kpi.avsc, in schema order. */
static void assert_kpi_object(json_t *k) {
    static const char *const fields[] = {"campaign_id",
                                         "ts",
                                         "as_of_ts",
                                         "sent_test",
                                         "sent_control",
                                         "responders_test_any",
                                         "responders_test_hard",
                                         "responders_control_any",
                                         "responders_control_hard",
                                         "retrievals",
                                         "purchases",
                                         "turnover_minor",
                                         "revenue_per_responder_minor",
                                         "response_rate_test",
                                         "response_rate_control",
                                         "lift",
                                         "lift_p_value",
                                         "closed"};
    cr_assert(json_is_object(k));
    cr_assert_eq(json_object_size(k), sizeof fields / sizeof fields[0]);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        cr_assert(json_object_get(k, fields[i]), "field %s missing", fields[i]);
}

Test(http_campaigns, list_has_the_merged_kpis_of_every_campaign_in_id_order) {
    json_t *j = get_json("/campaigns", 200);
    cr_assert(json_is_array(j));
    cr_assert_eq(json_array_size(j), 2, "%zu campaigns", json_array_size(j));
    json_t *a = json_array_get(j, 0), *b = json_array_get(j, 1);
    assert_kpi_object(a);
    assert_kpi_object(b);
    cr_assert_str_eq(json_string_value(json_object_get(a, "campaign_id")), "a-spring");
    cr_assert_str_eq(json_string_value(json_object_get(b, "campaign_id")), "b-autumn");
    cr_assert_eq(json_integer_value(json_object_get(a, "sent_test")), 1);
    cr_assert_eq(json_integer_value(json_object_get(a, "sent_control")), 0);
    cr_assert_eq(json_integer_value(json_object_get(a, "responders_test_any")), 1);
    cr_assert_eq(json_integer_value(json_object_get(a, "purchases")), 1);
    cr_assert_eq(json_integer_value(json_object_get(a, "turnover_minor")), 4900);
    cr_assert_eq(json_integer_value(json_object_get(b, "sent_test")), 0);
    cr_assert_eq(json_integer_value(json_object_get(b, "sent_control")), 1);
    cr_assert(json_is_false(json_object_get(a, "closed")), "the campaign runs for 30 more days");
    json_decref(j);
}

Test(http_campaigns, one_campaign_by_id_404_unknown_400_malformed) {
    json_t *j = get_json("/campaigns/a-spring", 200);
    assert_kpi_object(j);
    cr_assert_str_eq(json_string_value(json_object_get(j, "campaign_id")), "a-spring");
    cr_assert_eq(json_integer_value(json_object_get(j, "sent_test")), 1);
    json_decref(j);
    json_decref(get_json("/campaigns/no-such-campaign", 404));
    json_decref(get_json("/campaigns/bad!id", 400));
    json_decref(get_json("/campaigns/", 400));
}

/* The dashboard's campaign table reads these members of each /campaigns object: all present. */
Test(http_campaigns, dashboard_campaign_table_reads_fields_the_api_has) {
    resp_t r = request("GET", "/");
    cr_assert_eq(r.status, 200);
    const char *fn = strstr(r.body, "function renderCampaigns");
    cr_assert(fn, "no renderCampaigns in the dashboard");
    cr_assert(strstr(r.body, "getJSON(\"/campaigns\")"), "the dashboard does not poll /campaigns");
    const char *end = strstr(fn, "\n}");
    cr_assert(end);
    json_t *list = get_json("/campaigns", 200);
    json_t *k = json_array_get(list, 0);
    int seen = 0;
    for (const char *p = fn; p && p < end; p++) {
        if (strncmp(p, "k.", 2) != 0 || (p > fn && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))) continue;
        char name[64];
        size_t n = 0;
        for (p += 2; (isalnum((unsigned char)*p) || *p == '_') && n < sizeof name - 1; p++)
            name[n++] = *p;
        name[n] = 0;
        cr_assert(json_object_get(k, name), "dashboard reads k.%s, not in /campaigns", name);
        seen++;
    }
    cr_assert_geq(seen, 7, "%d fields read", seen);
    json_decref(list);
    free(r.body);
}
