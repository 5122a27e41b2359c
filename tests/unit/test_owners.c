/*
 * test_owners.c — the partition → owner map of interactive queries (owners.h): cx.partials owner
 * records applied, a newer record replacing an older one and a late older one ignored, other kinds
 * and malformed records, the records this instance publishes, and the advertised address.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "campaigns.h"
#include "config.h"
#include "owners.h"

static cx_err_t apply(cx_owners_t *o, const char *key, const char *val) {
    return cx_owners_apply(o, key, strlen(key), val, val ? strlen(val) : 0);
}

static const char *owner_of(cx_owners_t *o, int32_t p) {
    static char addr[CX_OWNER_ADDR_MAX + 1];
    return cx_owners_get(o, p, addr, sizeof addr) ? addr : NULL;
}

Test(owners, applied_records_give_each_partition_its_owner) {
    cx_owners_t *o = cx_owners_new();
    cr_assert_null(owner_of(o, 0));
    cr_assert_eq(apply(o, "owner::0", "{\"owner\":\"10.0.0.1:8081\",\"generation\":1,\"ts\":1000}"), CX_OK);
    cr_assert_eq(apply(o, "owner::5", "{\"owner\":\"host-b:9090\",\"generation\":2,\"ts\":1000}"), CX_OK);
    cr_assert_str_eq(owner_of(o, 0), "10.0.0.1:8081");
    cr_assert_str_eq(owner_of(o, 5), "host-b:9090");
    cr_assert_null(owner_of(o, 1));
    cr_assert_null(owner_of(o, -1));
    cr_assert_null(owner_of(o, 100000));
    cx_owners_destroy(o);
}

Test(owners, newer_record_overwrites_and_a_late_older_one_is_ignored) {
    cx_owners_t *o = cx_owners_new();
    cr_assert_eq(apply(o, "owner::3", "{\"owner\":\"a:1\",\"generation\":4,\"ts\":1000}"), CX_OK);
    cr_assert_eq(apply(o, "owner::3", "{\"owner\":\"b:2\",\"generation\":1,\"ts\":2000}"), CX_OK);
    cr_assert_str_eq(owner_of(o, 3), "b:2");
    /* the revoked owner's periodic record delivered late */
    cr_assert_eq(apply(o, "owner::3", "{\"owner\":\"a:1\",\"generation\":4,\"ts\":1999}"), CX_OK);
    cr_assert_str_eq(owner_of(o, 3), "b:2");
    /* same instant: the higher generation wins */
    cr_assert_eq(apply(o, "owner::3", "{\"owner\":\"c:3\",\"generation\":2,\"ts\":2000}"), CX_OK);
    cr_assert_str_eq(owner_of(o, 3), "c:3");
    cr_assert_eq(apply(o, "owner::3", "{\"owner\":\"d:4\",\"generation\":1,\"ts\":2000}"), CX_OK);
    cr_assert_str_eq(owner_of(o, 3), "c:3");
    cx_owners_destroy(o);
}

Test(owners, other_kinds_and_tombstones_are_ignored_malformed_owner_records_rejected) {
    cx_owners_t *o = cx_owners_new();
    cr_assert_eq(apply(o, "campaign:spring:0", "{\"sent_test\":1}"), CX_OK);
    cr_assert_eq(apply(o, "wm::0", "{\"watermark\":5}"), CX_OK);
    cr_assert_eq(apply(o, "future-kind:x:0", "whatever"), CX_OK);
    cr_assert_eq(apply(o, "owner::0", NULL), CX_OK);
    cr_assert_null(owner_of(o, 0));
    cr_assert_eq(apply(o, "owner::0", "not json"), CX_ERR_INVALID);
    cr_assert_eq(apply(o, "owner::0", "{\"owner\":\"a b:1\",\"ts\":1}"), CX_ERR_INVALID); /* unsafe in a header */
    cr_assert_eq(apply(o, "owner::0", "{\"owner\":\"a:1\"}"), CX_ERR_INVALID);            /* no ts */
    cr_assert_eq(apply(o, "owner::0", "{\"owner\":\"\",\"ts\":1}"), CX_ERR_INVALID);
    cr_assert_eq(apply(o, "owner::99999", "{\"owner\":\"a:1\",\"ts\":1}"), CX_ERR_INVALID);
    cr_assert_eq(apply(o, "owner:x:0", "{\"owner\":\"a:1\",\"ts\":1}"), CX_ERR_INVALID);
    cr_assert_null(owner_of(o, 0));
    cx_owners_destroy(o);
}

Test(owners, campaigns_apply_ignores_owner_records) {
    char err[256];
    cx_config_t *cfg = cx_config_new();
    static const cx_sink_t sink = {NULL, NULL};
    cx_campaigns_t *k = cx_campaigns_new(cfg, NULL, NULL, &sink, err, sizeof err);
    cr_assert(k, "%s", err);
    const char *v = "{\"owner\":\"a:1\",\"generation\":1,\"ts\":1}";
    cr_assert_eq(cx_campaigns_apply_partial(k, "owner::2", 8, v, strlen(v)), CX_OK);
    cx_campaigns_destroy(k);
    cx_config_destroy(cfg);
}

Test(owners, published_record_round_trips_through_apply) {
    char key[32];
    cx_buf_t val = CX_BUF_INIT;
    cr_assert_eq(cx_owners_record(7, "127.0.0.1:18081", 2, 1700000000000, key, sizeof key, &val), CX_OK);
    cr_assert_str_eq(key, "owner::7");
    cx_owners_t *o = cx_owners_new();
    cr_assert_eq(cx_owners_apply(o, key, strlen(key), val.data, val.len), CX_OK);
    cr_assert_str_eq(owner_of(o, 7), "127.0.0.1:18081");
    cr_assert_eq(cx_owners_record(7, "bad addr", 2, 1, key, sizeof key, &val), CX_ERR_INVALID);
    cx_buf_free(&val);
    cx_owners_destroy(o);
}

Test(owners, self_address_is_advertised_else_bind_else_hostname) {
    cx_config_t *cfg = cx_config_new();
    char addr[CX_OWNER_ADDR_MAX + 1], host[256] = "", want[300];
    char err[256];
    cr_assert_eq(cx_config_set(cfg, "http.port", "0", "test", err, sizeof err), CX_OK, "%s", err);
    cr_assert_not(cx_owners_self_address(cfg, addr, sizeof addr));
    cr_assert_eq(cx_config_set(cfg, "http.port", "8081", "test", err, sizeof err), CX_OK, "%s", err);
    cr_assert(cx_owners_self_address(cfg, addr, sizeof addr));
    gethostname(host, sizeof host - 1);
    snprintf(want, sizeof want, "%s:8081", host);
    cr_assert_str_eq(addr, want);
    cr_assert_eq(cx_config_set(cfg, "http.bind", "10.1.2.3", "test", err, sizeof err), CX_OK, "%s", err);
    cr_assert(cx_owners_self_address(cfg, addr, sizeof addr));
    cr_assert_str_eq(addr, "10.1.2.3:8081");
    cr_assert_eq(cx_config_set(cfg, "http.advertised", "cx-1.svc:80", "test", err, sizeof err), CX_OK, "%s", err);
    cr_assert(cx_owners_self_address(cfg, addr, sizeof addr));
    cr_assert_str_eq(addr, "cx-1.svc:80");
    cx_config_destroy(cfg);
}
