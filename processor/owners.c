/*
 * owners.c — the partition → owner address map fed by cx.partials "owner::<p>" records, the
 * records themselves and the address this instance advertises (owners.h).
 */
#include "owners.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kpi.h"
#include "pipeline.h"

typedef struct owner_ent {
    bool known;
    int64_t ts, generation;
    char addr[CX_OWNER_ADDR_MAX + 1];
} owner_ent_t;

struct cx_owners {
    pthread_mutex_t mu;
    owner_ent_t ent[CX_PARTS_MAX];
};

cx_owners_t *cx_owners_new(void) {
    cx_owners_t *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    pthread_mutex_init(&o->mu, NULL);
    return o;
}

void cx_owners_destroy(cx_owners_t *o) {
    if (!o) return;
    pthread_mutex_destroy(&o->mu);
    free(o);
}

bool cx_owners_addr_valid(const char *addr, size_t len) {
    if (len == 0 || len > CX_OWNER_ADDR_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        char ch = addr[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '_' || ch == ':' || ch == '-' || ch == '[' || ch == ']';
        if (!ok) return false;
    }
    return true;
}

cx_err_t cx_owners_apply(cx_owners_t *o, const char *key, size_t klen, const void *value, size_t vlen) {
    const char *kind, *id;
    size_t kind_len, id_len;
    int32_t part;
    if (!key || !value) return CX_OK;
    if (klen < 6 || memcmp(key, "owner:", 6) != 0) return CX_OK; /* another module's kind */
    if (!cx_partial_key_parse(key, klen, &kind, &kind_len, &id, &id_len, &part) || kind_len != 5 || id_len != 0 ||
        part < 0 || part >= CX_PARTS_MAX)
        return CX_ERR_INVALID;
    json_error_t jerr;
    json_t *j = json_loadb(value, vlen, 0, &jerr);
    if (!j) return CX_ERR_INVALID;
    json_t *a = json_object_get(j, "owner"), *g = json_object_get(j, "generation"), *t = json_object_get(j, "ts");
    if (!json_is_string(a) || !cx_owners_addr_valid(json_string_value(a), json_string_length(a)) ||
        (g && !json_is_integer(g)) || !json_is_integer(t)) {
        json_decref(j);
        return CX_ERR_INVALID;
    }
    int64_t ts = (int64_t)json_integer_value(t), gen = g ? (int64_t)json_integer_value(g) : 0;
    pthread_mutex_lock(&o->mu);
    owner_ent_t *e = &o->ent[part];
    if (!e->known || ts > e->ts || (ts == e->ts && gen >= e->generation)) {
        e->known = true;
        e->ts = ts;
        e->generation = gen;
        memcpy(e->addr, json_string_value(a), json_string_length(a) + 1);
    }
    pthread_mutex_unlock(&o->mu);
    json_decref(j);
    return CX_OK;
}

bool cx_owners_get(cx_owners_t *o, int32_t p, char *addr, size_t addr_size) {
    if (addr_size) addr[0] = 0;
    if (!o || p < 0 || p >= CX_PARTS_MAX || !addr_size) return false;
    pthread_mutex_lock(&o->mu);
    bool known = o->ent[p].known;
    if (known) snprintf(addr, addr_size, "%s", o->ent[p].addr);
    pthread_mutex_unlock(&o->mu);
    return known;
}

cx_err_t cx_owners_record(int32_t p, const char *addr, int64_t generation, int64_t ts_ms, char *key, size_t key_size,
                          cx_buf_t *val) {
    if (!addr || !cx_owners_addr_valid(addr, strlen(addr)) || p < 0) return CX_ERR_INVALID;
    snprintf(key, key_size, "owner::%" PRId32, p);
    cx_buf_reset(val);
    cx_err_t rc = cx_buf_append(val, "{\"owner\":", 9);
    if (rc == CX_OK) rc = cx_buf_json_str(val, addr, strlen(addr));
    if (rc == CX_OK) rc = cx_buf_appendf(val, ",\"generation\":%" PRId64 ",\"ts\":%" PRId64 "}", generation, ts_ms);
    return rc;
}

bool cx_owners_self_address(const cx_config_t *cfg, char *addr, size_t addr_size) {
    if (addr_size) addr[0] = 0;
    if (!cfg || cfg->http_port <= 0 || !addr_size) return false;
    if (cfg->http_advertised && cfg->http_advertised[0]) {
        snprintf(addr, addr_size, "%s", cfg->http_advertised);
        return true;
    }
    const char *bind = cfg->http_bind;
    if (bind && bind[0] && strcmp(bind, "0.0.0.0") != 0) {
        snprintf(addr, addr_size, "%s:%" PRId32, bind, cfg->http_port);
        return true;
    }
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
    snprintf(addr, addr_size, "%s:%" PRId32, host, cfg->http_port);
    return true;
}
