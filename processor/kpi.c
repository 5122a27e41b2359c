/*
 * kpi.c — KPI arithmetic over merged partial counts, the two-proportion z-test, and the two
 * encodings of a campaign partial (RocksDB varints, cx.partials JSON).
 */
#include "kpi.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define COUNTS_VERSION 1

void cx_kpi_counts_merge(cx_kpi_counts_t *acc, const cx_kpi_counts_t *add) {
    for (int g = 0; g < CX_GROUP__COUNT; g++) {
        acc->sent[g] += add->sent[g];
        acc->resp_any[g] += add->resp_any[g];
        acc->resp_hard[g] += add->resp_hard[g];
    }
    acc->retrievals += add->retrievals;
    acc->purchases += add->purchases;
    acc->turnover_minor += add->turnover_minor;
    if (add->max_end_ms > acc->max_end_ms) acc->max_end_ms = add->max_end_ms;
}

bool cx_kpi_z_test(int64_t x1, int64_t n1, int64_t x2, int64_t n2, double *z, double *p) {
    if (n1 <= 0 || n2 <= 0 || x1 < 0 || x2 < 0 || x1 > n1 || x2 > n2) return false;
    double p1 = (double)x1 / (double)n1, p2 = (double)x2 / (double)n2;
    double pool = (double)(x1 + x2) / (double)(n1 + n2);
    double var = pool * (1.0 - pool) * (1.0 / (double)n1 + 1.0 / (double)n2);
    if (!(var > 0.0)) return false;
    double zz = (p1 - p2) / sqrt(var);
    *z = zz;
    *p = erfc(fabs(zz) / sqrt(2.0)); /* 2 × (1 − Φ(|z|)) */
    return true;
}

void cx_kpi_compute(const cx_kpi_counts_t *c, cx_kpi_t *out) {
    out->sent_test = c->sent[CX_GROUP_TEST];
    out->sent_control = c->sent[CX_GROUP_CONTROL];
    out->responders_test_any = c->resp_any[CX_GROUP_TEST];
    out->responders_test_hard = c->resp_hard[CX_GROUP_TEST];
    out->responders_control_any = c->resp_any[CX_GROUP_CONTROL];
    out->responders_control_hard = c->resp_hard[CX_GROUP_CONTROL];
    out->retrievals = c->retrievals;
    out->purchases = c->purchases;
    out->turnover_minor = c->turnover_minor;
    out->revenue_per_responder_minor =
        out->responders_test_any > 0 ? out->turnover_minor / out->responders_test_any : 0;
    out->response_rate_test = out->sent_test > 0 ? (double)out->responders_test_any / (double)out->sent_test : 0.0;
    out->response_rate_control =
        out->sent_control > 0 ? (double)out->responders_control_any / (double)out->sent_control : 0.0;
    out->has_lift = out->response_rate_control > 0.0;
    out->lift =
        out->has_lift ? (out->response_rate_test - out->response_rate_control) / out->response_rate_control : 0.0;
    double z;
    out->has_lift_p_value = cx_kpi_z_test(out->responders_test_any, out->sent_test, out->responders_control_any,
                                          out->sent_control, &z, &out->lift_p_value);
    if (!out->has_lift_p_value) out->lift_p_value = 0.0;
}

/* Field order of both encodings. */
#define COUNT_FIELDS(X)                                       \
    X("sent_test", sent[CX_GROUP_TEST])                       \
    X("sent_control", sent[CX_GROUP_CONTROL])                 \
    X("responders_test_any", resp_any[CX_GROUP_TEST])         \
    X("responders_test_hard", resp_hard[CX_GROUP_TEST])       \
    X("responders_control_any", resp_any[CX_GROUP_CONTROL])   \
    X("responders_control_hard", resp_hard[CX_GROUP_CONTROL]) \
    X("retrievals", retrievals)                               \
    X("purchases", purchases)                                 \
    X("turnover_minor", turnover_minor)                       \
    X("max_window_end_ts", max_end_ms)

cx_err_t cx_kpi_counts_encode(const cx_kpi_counts_t *c, cx_buf_t *out) {
    cx_err_t e = cx_buf_put_uvarint(out, COUNTS_VERSION);
#define PUT(name, f) \
    if (!e) e = cx_buf_put_svarint(out, c->f);
    COUNT_FIELDS(PUT)
#undef PUT
    return e;
}

bool cx_kpi_counts_decode(const void *buf, size_t len, cx_kpi_counts_t *c) {
    const uint8_t *b = buf;
    uint64_t u;
    int64_t v;
    size_t k;
    memset(c, 0, sizeof *c);
    if (!(k = cx_get_uvarint(b, len, &u)) || u != COUNTS_VERSION) return false;
    b += k;
    len -= k;
#define GET(name, f)                                     \
    if (!(k = cx_get_svarint(b, len, &v))) return false; \
    b += k;                                              \
    len -= k;                                            \
    c->f = v;
    COUNT_FIELDS(GET)
#undef GET
    return len == 0;
}

cx_err_t cx_kpi_counts_json(const cx_kpi_counts_t *c, cx_buf_t *out) {
    cx_err_t e = cx_buf_putc(out, '{');
    const char *sep = "";
#define PUT(name, f)                                                       \
    if (!e) e = cx_buf_appendf(out, "%s\"" name "\":%" PRId64, sep, c->f); \
    sep = ",";
    COUNT_FIELDS(PUT)
#undef PUT
    (void)sep;
    if (!e) e = cx_buf_putc(out, '}');
    return e;
}

bool cx_kpi_counts_from_json(const void *buf, size_t len, cx_kpi_counts_t *c) {
    memset(c, 0, sizeof *c);
    json_error_t jerr;
    json_t *o = json_loadb(buf, len, 0, &jerr);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return false;
    }
    bool ok = true;
#define GET(name, f)                               \
    {                                              \
        json_t *x = json_object_get(o, name);      \
        if (json_is_integer(x))                    \
            c->f = (int64_t)json_integer_value(x); \
        else                                       \
            ok = false;                            \
    }
    COUNT_FIELDS(GET)
#undef GET
    json_decref(o);
    return ok;
}

bool cx_partial_key_parse(const char *key, size_t len, const char **kind, size_t *kind_len, const char **id,
                          size_t *id_len, int32_t *partition) {
    const char *c1 = memchr(key, ':', len);
    if (!c1) return false;
    const char *c2 = NULL;
    for (const char *q = key + len; q > c1; q--)
        if (q[-1] == ':') {
            c2 = q - 1;
            break;
        }
    if (!c2 || c2 == c1) return false;
    const char *num = c2 + 1;
    size_t nl = (size_t)(key + len - num);
    if (nl == 0 || nl > 5) return false;
    int32_t part = 0;
    for (size_t i = 0; i < nl; i++) {
        if (num[i] < '0' || num[i] > '9') return false;
        part = part * 10 + (num[i] - '0');
    }
    *kind = key;
    *kind_len = (size_t)(c1 - key);
    *id = c1 + 1;
    *id_len = (size_t)(c2 - (c1 + 1));
    *partition = part;
    return true;
}
