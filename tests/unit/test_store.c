/*
 * test_store.c — the RocksDB state store (in memory): key layout and scan order (partition, tag,
 * then bytes; timer keys by due time, negative ones first), atomic batches, point reads, and
 * dropping one partition without touching its neighbours.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

static cx_store_t *st;
static char err[512];

static void setup(void) {
    cx_store_opts_t o = {.dir = NULL};
    st = cx_store_open(&o, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
}
static void teardown(void) {
    cx_store_close(st);
}
TestSuite(store, .init = setup, .fini = teardown);

static void put(uint16_t part, char tag, const char *rest, const char *val) {
    cx_buf_t k = CX_BUF_INIT;
    cr_assert_eq(cx_store_key(&k, part, tag, rest, strlen(rest)), CX_OK);
    cx_store_batch_t *b = cx_store_batch_new();
    cx_store_batch_put(b, k.data, k.len, val, strlen(val));
    cr_assert_eq(cx_store_write(st, b, err, sizeof err), CX_OK, "%s", err);
    cx_store_batch_destroy(b);
    cx_buf_free(&k);
}

static bool get(uint16_t part, char tag, const char *rest, char *out, size_t n) {
    cx_buf_t k = CX_BUF_INIT, v = CX_BUF_INIT;
    bool found = true;
    cr_assert_eq(cx_store_key(&k, part, tag, rest, strlen(rest)), CX_OK);
    cr_assert_eq(cx_store_get(st, k.data, k.len, &v, &found, err, sizeof err), CX_OK);
    if (found) snprintf(out, n, "%.*s", (int)v.len, (const char *)v.data);
    cx_buf_free(&k);
    cx_buf_free(&v);
    return found;
}

typedef struct seen {
    char keys[64][64];
    size_t n, stop_after;
} seen_t;

static bool collect(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    seen_t *s = opaque;
    const uint8_t *b = k;
    /* "part:tag:rest" */
    snprintf(s->keys[s->n++], sizeof s->keys[0], "%u:%c:%.*s", (b[0] << 8) | b[1], b[2], (int)(kl - 3),
             (const char *)b + 3);
    return !(s->stop_after && s->n >= s->stop_after);
}

Test(store, absent_key_is_not_found_and_present_key_reads_back) {
    char out[64];
    cr_assert_not(get(0, CX_KEY_PROFILE, "nobody", out, sizeof out));
    put(0, CX_KEY_PROFILE, "alice", "v1");
    cr_assert(get(0, CX_KEY_PROFILE, "alice", out, sizeof out));
    cr_assert_str_eq(out, "v1");
    cr_assert_not(get(1, CX_KEY_PROFILE, "alice", out, sizeof out), "another partition is another key");
    put(0, CX_KEY_PROFILE, "alice", "v2");
    cr_assert(get(0, CX_KEY_PROFILE, "alice", out, sizeof out));
    cr_assert_str_eq(out, "v2");
}

Test(store, scan_of_a_tag_is_in_byte_order_within_the_partition) {
    put(1, CX_KEY_PROFILE, "bob", "");
    put(1, CX_KEY_PROFILE, "alice", "");
    put(1, CX_KEY_PROFILE, "Zed", "");
    put(1, CX_KEY_PROFILE, "alice2", "");
    put(0, CX_KEY_PROFILE, "aaa", "");   /* other partition */
    put(2, CX_KEY_PROFILE, "aaa", "");   /* other partition */
    put(1, CX_KEY_META, "p", "");        /* other tag */
    put(1, CX_KEY_AGG, "x", "");         /* other tag */
    put(256, CX_KEY_PROFILE, "aaa", ""); /* high byte of the partition number */
    seen_t s = {0};
    cr_assert_eq(cx_store_scan_tag(st, 1, CX_KEY_PROFILE, collect, &s, err, sizeof err), CX_OK);
    cr_assert_eq(s.n, 4u);
    cr_assert_str_eq(s.keys[0], "1:P:Zed");
    cr_assert_str_eq(s.keys[1], "1:P:alice");
    cr_assert_str_eq(s.keys[2], "1:P:alice2");
    cr_assert_str_eq(s.keys[3], "1:P:bob");
    /* a full range scan orders by partition (big-endian), then tag, then bytes */
    seen_t all = {0};
    uint8_t from[1] = {0}, to[3] = {0xff, 0xff, 0xff};
    cr_assert_eq(cx_store_scan(st, from, 1, to, 3, collect, &all, err, sizeof err), CX_OK);
    const char *want[] = {"0:P:aaa",    "1:A:x",   "1:M:p",   "1:P:Zed",  "1:P:alice",
                          "1:P:alice2", "1:P:bob", "2:P:aaa", "256:P:aaa"};
    cr_assert_eq(all.n, sizeof want / sizeof *want);
    for (size_t i = 0; i < all.n; i++)
        cr_assert_str_eq(all.keys[i], want[i]);
}

Test(store, scan_stops_when_the_callback_says_so) {
    for (int i = 0; i < 10; i++) {
        char id[8];
        snprintf(id, sizeof id, "c%d", i);
        put(3, CX_KEY_PROFILE, id, "");
    }
    seen_t s = {.stop_after = 3};
    cr_assert_eq(cx_store_scan_tag(st, 3, CX_KEY_PROFILE, collect, &s, err, sizeof err), CX_OK);
    cr_assert_eq(s.n, 3u);
}

typedef struct timers {
    int64_t due[16];
    char cid[16][16];
    size_t n;
} timers_t;

static bool collect_timer(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    timers_t *t = opaque;
    uint16_t part;
    const char *cid;
    size_t cl;
    cr_assert(cx_store_timer_key_parse(k, kl, &part, &t->due[t->n], &cid, &cl));
    cr_assert_eq(part, 7);
    snprintf(t->cid[t->n++], sizeof t->cid[0], "%.*s", (int)cl, cid);
    return true;
}

Test(store, timer_keys_scan_in_due_then_customer_order_with_negative_dues_first) {
    int64_t dues[] = {1000, -5, 86400000, 0, 1000, INT64_MAX, INT64_MIN, 999};
    const char *cids[] = {"b", "x", "a", "z", "a", "m", "n", "q"};
    cx_store_batch_t *b = cx_store_batch_new();
    cx_buf_t k = CX_BUF_INIT;
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(cx_store_timer_key(&k, 7, dues[i], cids[i]), CX_OK);
        cx_store_batch_put(b, k.data, k.len, "", 0);
    }
    cr_assert_eq(cx_store_batch_count(b), 8u);
    cr_assert_eq(cx_store_write(st, b, err, sizeof err), CX_OK);
    timers_t t = {0};
    cr_assert_eq(cx_store_scan_tag(st, 7, CX_KEY_TIMER, collect_timer, &t, err, sizeof err), CX_OK);
    int64_t want_due[] = {INT64_MIN, -5, 0, 999, 1000, 1000, 86400000, INT64_MAX};
    const char *want_cid[] = {"n", "x", "z", "q", "a", "b", "a", "m"};
    cr_assert_eq(t.n, 8u);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(t.due[i], want_due[i], "timer %d", i);
        cr_assert_str_eq(t.cid[i], want_cid[i], "timer %d", i);
    }
    cx_store_batch_destroy(b);
    cx_buf_free(&k);
}

Test(store, timer_key_parse_refuses_other_keys) {
    cx_buf_t k = CX_BUF_INIT;
    uint16_t part;
    int64_t due;
    const char *cid;
    size_t cl;
    cr_assert_eq(cx_store_key(&k, 1, CX_KEY_PROFILE, "abcdefghijk", 11), CX_OK);
    cr_assert_not(cx_store_timer_key_parse(k.data, k.len, &part, &due, &cid, &cl));
    cr_assert_eq(cx_store_timer_key(&k, 1, 5, ""), CX_OK);
    cr_assert_not(cx_store_timer_key_parse(k.data, k.len - 1, &part, &due, &cid, &cl), "truncated");
    cr_assert_eq(cx_store_timer_key(&k, 513, -86400000, "cust"), CX_OK);
    cr_assert(cx_store_timer_key_parse(k.data, k.len, &part, &due, &cid, &cl));
    cr_assert_eq(part, 513);
    cr_assert_eq(due, -86400000);
    cr_assert_eq(cl, 4u);
    cr_assert(memcmp(cid, "cust", 4) == 0);
    cx_buf_free(&k);
}

Test(store, a_batch_applies_puts_and_deletes_together) {
    put(0, CX_KEY_PROFILE, "old", "1");
    cx_buf_t k = CX_BUF_INIT;
    cx_store_batch_t *b = cx_store_batch_new();
    cx_store_key(&k, 0, CX_KEY_PROFILE, "old", 3);
    cx_store_batch_delete(b, k.data, k.len);
    cx_store_key(&k, 0, CX_KEY_PROFILE, "new", 3);
    cx_store_batch_put(b, k.data, k.len, "2", 1);
    char out[8];
    cr_assert(get(0, CX_KEY_PROFILE, "old", out, sizeof out), "nothing applied before the write");
    cr_assert_not(get(0, CX_KEY_PROFILE, "new", out, sizeof out));
    cr_assert_eq(cx_store_write(st, b, err, sizeof err), CX_OK);
    cr_assert_not(get(0, CX_KEY_PROFILE, "old", out, sizeof out));
    cr_assert(get(0, CX_KEY_PROFILE, "new", out, sizeof out));
    cx_store_batch_clear(b);
    cr_assert_eq(cx_store_batch_count(b), 0u);
    cx_store_batch_destroy(b);
    cx_store_batch_destroy(NULL);
    cx_buf_free(&k);
}

Test(store, dropping_a_partition_leaves_its_neighbours) {
    const uint16_t parts[] = {0, 4, 5, 6, 0x0500, 0x04ff};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        put(parts[i], CX_KEY_PROFILE, "c", "v");
        put(parts[i], CX_KEY_META, "p", "v");
        put(parts[i], CX_KEY_AGG, "\xff\xff", "v"); /* bytes above every tag */
        cx_buf_t k = CX_BUF_INIT;
        cx_store_batch_t *b = cx_store_batch_new();
        cx_store_timer_key(&k, parts[i], INT64_MAX, "c");
        cx_store_batch_put(b, k.data, k.len, "", 0);
        cr_assert_eq(cx_store_write(st, b, err, sizeof err), CX_OK);
        cx_store_batch_destroy(b);
        cx_buf_free(&k);
    }
    cr_assert_eq(cx_store_drop_partition(st, 5, err, sizeof err), CX_OK, "%s", err);
    seen_t s = {0};
    uint8_t from[1] = {0}, to[3] = {0xff, 0xff, 0xff};
    cr_assert_eq(cx_store_scan(st, from, 1, to, 3, collect, &s, err, sizeof err), CX_OK);
    cr_assert_eq(s.n, 4u * 5, "four keys in each of the five other partitions");
    for (size_t i = 0; i < s.n; i++)
        cr_assert(strncmp(s.keys[i], "5:", 2) != 0, "%s survived", s.keys[i]);
    char out[8];
    cr_assert(get(4, CX_KEY_PROFILE, "c", out, sizeof out));
    cr_assert(get(6, CX_KEY_PROFILE, "c", out, sizeof out));
    cr_assert(get(0x0500, CX_KEY_PROFILE, "c", out, sizeof out));
}

/* An on-disk store in a fresh directory `dir` (a mkdtemp template, filled in). */
static cx_store_t *open_tmp_store(char *dir, size_t write_buffer_mb) {
    cr_assert_not_null(mkdtemp(dir));
    cx_store_opts_t o = {.dir = dir, .write_buffer_mb = write_buffer_mb};
    cx_store_t *d = cx_store_open(&o, err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    return d;
}

static void remove_dir(const char *dir) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(store, on_disk_store_keeps_data_across_reopen) {
    char dir[] = "/tmp/cx-test-store-XXXXXX";
    cx_store_t *d = open_tmp_store(dir, 0);
    cx_store_opts_t o = {.dir = dir};
    cx_buf_t k = CX_BUF_INIT, v = CX_BUF_INIT;
    cx_store_key(&k, 2, CX_KEY_PROFILE, "p", 1);
    cx_store_batch_t *b = cx_store_batch_new();
    cx_store_batch_put(b, k.data, k.len, "kept", 4);
    cr_assert_eq(cx_store_write(d, b, err, sizeof err), CX_OK);
    cx_store_close(d);
    d = cx_store_open(&o, err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    bool found = false;
    cr_assert_eq(cx_store_get(d, k.data, k.len, &v, &found, err, sizeof err), CX_OK);
    cr_assert(found);
    cr_assert_eq(v.len, 4u);
    cr_assert(memcmp(v.data, "kept", 4) == 0);
    cx_store_close(d);
    cx_store_batch_destroy(b);
    cx_buf_free(&k);
    cx_buf_free(&v);
    remove_dir(dir);
}

/* Memtable bytes after writing ~6 MB of profiles into a store with the given write_buffer_mb. */
static uint64_t memtables_after_writes(size_t write_buffer_mb) {
    cx_store_opts_t o = {.dir = NULL, .write_buffer_mb = write_buffer_mb};
    char e[256];
    cx_store_t *s = cx_store_open(&o, e, sizeof e);
    cr_assert_not_null(s, "%s", e);
    char val[600];
    memset(val, 'v', sizeof val);
    cx_buf_t k = CX_BUF_INIT;
    for (int b = 0; b < 10; b++) {
        cx_store_batch_t *batch = cx_store_batch_new();
        for (int i = 0; i < 1000; i++) {
            char id[32];
            snprintf(id, sizeof id, "c%06d", b * 1000 + i);
            cx_store_key(&k, 0, CX_KEY_PROFILE, id, strlen(id));
            cx_store_batch_put(batch, k.data, k.len, val, sizeof val);
        }
        cr_assert_eq(cx_store_write(s, batch, e, sizeof e), CX_OK, "%s", e);
        cx_store_batch_destroy(batch);
    }
    uint64_t mem = cx_store_memtable_bytes(s);
    cx_buf_free(&k);
    cx_store_close(s);
    return mem;
}

Test(store, write_buffer_mb_bounds_the_memtables) {
    uint64_t small = memtables_after_writes(1), big = memtables_after_writes(64);
    cr_assert_gt(big, 5u << 20, "64 MB memtables hold all ~6 MB written (%" PRIu64 ")", big);
    cr_assert_lt(small, 3u << 20, "1 MB memtables (at most two) were written out (%" PRIu64 ")", small);
}

/* One batch far larger than a memtable (~24 MB: 6,000 keys of 4 KB) is held and written in chunks of
 * ~4 MB (written whole, it made one memtable as large as itself), in order: every operation is
 * visited and applied once, and a delete of a key put in an earlier chunk wins. */
static bool visit_count(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    (void)k, (void)kl, (void)v, (void)vl;
    (*(int *)opaque)++;
    return true;
}

typedef struct order {
    int n, puts, dels, first_del; /* first_del: index of the first delete visited */
} order_t;

static void visit_order(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    (void)k, (void)kl, (void)vl;
    order_t *o = opaque;
    if (v)
        o->puts++;
    else if (o->dels++ == 0)
        o->first_del = o->n;
    o->n++;
}

Test(store, a_batch_larger_than_the_memtables_is_written_in_order_and_whole) {
    cx_store_opts_t o = {.dir = NULL, .write_buffer_mb = 1};
    cx_store_t *s = cx_store_open(&o, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    enum { N = 6000, VLEN = 4096 };
    char *val = malloc(VLEN), id[32];
    cr_assert_not_null(val);
    cx_buf_t k = CX_BUF_INIT, v = CX_BUF_INIT;
    cx_store_batch_t *b = cx_store_batch_new();
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "big%05d", i);
        memset(val, 'a' + i % 26, VLEN);
        cx_store_key(&k, 3, CX_KEY_PROFILE, id, strlen(id));
        cx_store_batch_put(b, k.data, k.len, val, VLEN);
    }
    for (int i = 0; i < 10; i++) { /* the first ten keys, put ~24 MB earlier */
        snprintf(id, sizeof id, "big%05d", i);
        cx_store_key(&k, 3, CX_KEY_PROFILE, id, strlen(id));
        cx_store_batch_delete(b, k.data, k.len);
    }
    cr_assert_eq(cx_store_batch_count(b), (size_t)N + 10);
    size_t chunks = cx_store_batch_chunks(b);
    cr_assert(chunks >= 5 && chunks <= 7, "a 24 MB batch in %zu chunks", chunks);
    order_t ord = {0};
    cx_store_batch_each(b, visit_order, &ord);
    cr_assert_eq(ord.puts, N);
    cr_assert_eq(ord.dels, 10);
    cr_assert_eq(ord.first_del, N, "operations visited out of order");
    cr_assert_eq(cx_store_write(s, b, err, sizeof err), CX_OK, "%s", err);
    int n = 0;
    cr_assert_eq(cx_store_scan_tag(s, 3, CX_KEY_PROFILE, visit_count, &n, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(n, N - 10);
    for (int i = 0; i < N; i += 997) {
        snprintf(id, sizeof id, "big%05d", i);
        cx_store_key(&k, 3, CX_KEY_PROFILE, id, strlen(id));
        bool found = false;
        cr_assert_eq(cx_store_get(s, k.data, k.len, &v, &found, err, sizeof err), CX_OK);
        cr_assert_eq(found, i >= 10, "%s", id);
        if (found) cr_assert(v.len == VLEN && v.data[0] == 'a' + i % 26 && v.data[VLEN - 1] == 'a' + i % 26, "%s", id);
    }
    /* cleared, the batch is empty and takes new operations */
    cx_store_batch_clear(b);
    cr_assert_eq(cx_store_batch_count(b), 0u);
    cr_assert_eq(cx_store_batch_chunks(b), 1u);
    cx_store_batch_put(b, k.data, k.len, "x", 1);
    cr_assert_eq(cx_store_batch_count(b), 1u);
    cx_store_batch_destroy(b);
    cx_buf_free(&k);
    cx_buf_free(&v);
    free(val);
    cx_store_close(s);
}

/* A batch of n profiles "w<round>-<i>" with 1 KB values. */
static cx_store_batch_t *profiles_batch(int round, int n, size_t vlen) {
    cx_store_batch_t *b = cx_store_batch_new();
    cx_buf_t k = CX_BUF_INIT;
    char id[32], *val = malloc(vlen);
    cr_assert_not_null(val);
    memset(val, 'a' + round % 26, vlen);
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "w%d-%d", round, i);
        cx_store_key(&k, 1, CX_KEY_PROFILE, id, strlen(id));
        cx_store_batch_put(b, k.data, k.len, val, vlen);
    }
    cx_buf_free(&k);
    free(val);
    return b;
}

Test(store, a_write_behind_is_read_back_by_every_later_operation) {
    /* each round's batch is handed over and, without waiting, read back: a point read, a scan, a
     * second write — each must see the batch in flight (read-your-writes), never the state before */
    cx_store_batch_t *b[2] = {NULL, NULL};
    for (int round = 0; round < 20; round++) {
        cx_store_batch_t **mine = &b[round % 2];
        if (*mine) { /* handed over two rounds ago: the store is done with it once wait returns */
            cr_assert_eq(cx_store_wait(st, err, sizeof err), CX_OK, "%s", err);
            cx_store_batch_destroy(*mine);
        }
        *mine = profiles_batch(round, 2000, 200);
        cr_assert_eq(cx_store_write_async(st, *mine, err, sizeof err), CX_OK, "%s", err);
        char id[32], out[256];
        snprintf(id, sizeof id, "w%d-%d", round, 1999);
        cr_assert(get(1, CX_KEY_PROFILE, id, out, sizeof out), "round %d: the last put of the batch in flight", round);
        cr_assert_eq(out[0], 'a' + round % 26);
        cr_assert_eq(strlen(out), 200u);
    }
    seen_t s = {.n = 0, .stop_after = 64};
    cr_assert_eq(cx_store_scan_tag(st, 1, CX_KEY_PROFILE, collect, &s, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(s.n, 64u, "the scan sees the profiles written behind");
    cr_assert_eq(cx_store_wait(st, err, sizeof err), CX_OK, "%s", err);
    cr_assert_geq(cx_store_wait_seconds(st), 0.0);
    cx_store_batch_destroy(b[0]);
    cx_store_batch_destroy(b[1]);
}

Test(store, a_write_in_flight_holds_back_only_reads_of_its_own_keys) {
    put(1, CX_KEY_PROFILE, "old", "1");
    put(1, CX_KEY_PROFILE, "other", "x");
    cx_store_batch_t *b = profiles_batch(0, 3000, 10); /* w0-0 .. w0-2999 */
    cx_buf_t k = CX_BUF_INIT;
    cr_assert_eq(cx_store_key(&k, 1, CX_KEY_PROFILE, "old", 3), CX_OK);
    cx_store_batch_delete(b, k.data, k.len);
    cx_store_hold(st, true);
    cr_assert_eq(cx_store_write_async(st, b, err, sizeof err), CX_OK, "%s", err);
    cr_assert(cx_store_writing(st));
    /* keys the batch does not touch read at once, and as they are (a read that waited would hang) */
    char out[64];
    uint64_t reads0, scans0, reads, scans;
    cx_store_behind_counts(st, &reads0, &scans0);
    cr_assert(get(1, CX_KEY_PROFILE, "other", out, sizeof out));
    cr_assert_str_eq(out, "x");
    cr_assert_not(get(1, CX_KEY_PROFILE, "absent", out, sizeof out));
    cr_assert_not(get(2, CX_KEY_PROFILE, "w0-5", out, sizeof out), "the same id in another partition");
    cx_store_behind_counts(st, &reads, &scans);
    cr_assert_eq(reads - reads0, 3u, "three reads did not wait");
    /* a scan behind sees the store as it was before the write: "old" still there, no w0-* */
    seen_t s = {.n = 0, .stop_after = 64};
    cr_assert_eq(cx_store_scan_behind(st, "\x00\x01P", 3, "\x00\x01Q", 3, collect, &s, err, sizeof err), CX_OK, "%s",
                 err);
    cr_assert_eq(s.n, 2u);
    cr_assert_str_eq(s.keys[0], "1:P:old");
    cr_assert_str_eq(s.keys[1], "1:P:other");
    cx_store_behind_counts(st, &reads, &scans);
    cr_assert_eq(scans - scans0, 1u);
    cr_assert(cx_store_writing(st), "still held");
    cx_store_hold(st, false);
    /* a read of one of its keys waits for it */
    cr_assert(get(1, CX_KEY_PROFILE, "w0-2999", out, sizeof out));
    cr_assert_not(cx_store_writing(st));
    cr_assert_not(get(1, CX_KEY_PROFILE, "old", out, sizeof out), "deleted by the batch");
    s.n = 0;
    cr_assert_eq(cx_store_scan_behind(st, "\x00\x01P", 3, "\x00\x01Q", 3, collect, &s, err, sizeof err), CX_OK, "%s",
                 err);
    cr_assert_eq(s.n, 64u, "after the write the scan sees it (stops at 64)");
    cx_store_behind_counts(st, &reads, &scans);
    cr_assert_eq(scans - scans0, 1u, "no write was in flight for the second scan");
    cx_buf_free(&k);
    cx_store_batch_destroy(b);
}

Test(store, close_lands_the_write_behind_in_flight) {
    char dir[] = "/tmp/cx-test-store-XXXXXX";
    cx_store_t *d = open_tmp_store(dir, 0);
    cx_store_opts_t o = {.dir = dir};
    cx_store_batch_t *b = profiles_batch(7, 20000, 100);
    cr_assert_eq(cx_store_write_async(d, b, err, sizeof err), CX_OK, "%s", err);
    cx_store_close(d); /* no wait first: close waits for the writer */
    cx_store_batch_destroy(b);
    d = cx_store_open(&o, err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    cx_buf_t k = CX_BUF_INIT, v = CX_BUF_INIT;
    cx_store_key(&k, 1, CX_KEY_PROFILE, "w7-19999", 8);
    bool found = false;
    cr_assert_eq(cx_store_get(d, k.data, k.len, &v, &found, err, sizeof err), CX_OK, "%s", err);
    cr_assert(found, "the batch handed over before close is in the reopened store");
    cr_assert_eq(v.len, 100u);
    cx_store_close(d);
    cx_buf_free(&k);
    cx_buf_free(&v);
    remove_dir(dir);
}

Test(store, a_failed_write_behind_fails_every_later_operation_with_its_message) {
    /* the store's directory disappears: RocksDB cannot create the next WAL when a full memtable is
     * switched, so a write behind fails; the failure must reach the caller, and stay */
    char dir[] = "/tmp/cx-test-store-XXXXXX";
    cx_store_t *d = open_tmp_store(dir, 1);
    remove_dir(dir);
    cx_err_t rc = CX_OK;
    cx_store_batch_t *b = NULL;
    for (int round = 0; round < 40 && rc == CX_OK; round++) {
        if (b) {
            rc = cx_store_wait(d, err, sizeof err);
            cx_store_batch_destroy(b);
            b = NULL;
            if (rc != CX_OK) break;
        }
        b = profiles_batch(round, 1000, 1000); /* ~1 MB: a memtable per round */
        rc = cx_store_write_async(d, b, err, sizeof err);
    }
    if (b && rc == CX_OK) rc = cx_store_wait(d, err, sizeof err);
    cx_store_batch_destroy(b);
    cr_assert_eq(rc, CX_ERR_IO, "a write into a deleted directory failed");
    cr_assert(strstr(err, "state write failed") != NULL, "message: %s", err);
    char again[512] = "";
    cx_buf_t k = CX_BUF_INIT, v = CX_BUF_INIT;
    cx_store_key(&k, 1, CX_KEY_PROFILE, "w0-0", 4);
    bool found = false;
    cr_assert_eq(cx_store_get(d, k.data, k.len, &v, &found, again, sizeof again), CX_ERR_IO, "reads fail too");
    cr_assert(strstr(again, "state write failed") != NULL, "message: %s", again);
    cx_store_close(d);
    cx_buf_free(&k);
    cx_buf_free(&v);
}

Test(store, hinted_memtable_inserts_keep_the_latest_version_of_every_key) {
    /* Memtable inserts take a hint per 3-byte prefix (partition, key kind): batches of keys ascending
     * within each prefix, in rounds that overwrite half the keys of the round before and interleave
     * new ones, over two partitions and two kinds; every key must read its latest value. */
    char dir[] = "/tmp/cx-test-store-XXXXXX";
    cx_store_t *d = open_tmp_store(dir, 1);
    cx_buf_t k = CX_BUF_INIT, v = CX_BUF_INIT;
    char id[32], val[32], want[32];
    for (int round = 0; round < 4; round++) {
        cx_store_batch_t *b = cx_store_batch_new();
        for (uint16_t part = 0; part < 2; part++)
            for (int kind = 0; kind < 2; kind++)
                for (int i = round % 2; i < 2000; i += 1 + (round % 2)) {
                    snprintf(id, sizeof id, "c%05d", i);
                    cx_store_key(&k, part, kind ? CX_KEY_PROFILE : CX_KEY_META, id, strlen(id));
                    snprintf(val, sizeof val, "r%d-%s", round, id);
                    cx_store_batch_put(b, k.data, k.len, val, strlen(val));
                }
        cr_assert_eq(cx_store_write(d, b, err, sizeof err), CX_OK, "%s", err);
        cx_store_batch_destroy(b);
    }
    for (uint16_t part = 0; part < 2; part++)
        for (int kind = 0; kind < 2; kind++)
            for (int i = 0; i < 2000; i++) {
                snprintf(id, sizeof id, "c%05d", i);
                cx_store_key(&k, part, kind ? CX_KEY_PROFILE : CX_KEY_META, id, strlen(id));
                bool found = false;
                cr_assert_eq(cx_store_get(d, k.data, k.len, &v, &found, err, sizeof err), CX_OK, "%s", err);
                cr_assert(found, "key %u/%d/%s", part, kind, id);
                /* odd rounds write every other key from 1; even rounds all: the last writer of i */
                snprintf(want, sizeof want, "r%d-%s", i % 2 ? 3 : 2, id);
                cr_assert(v.len == strlen(want) && memcmp(v.data, want, v.len) == 0, "key %s: %.*s, want %s", id,
                          (int)v.len, (const char *)v.data, want);
            }
    cx_store_close(d);
    /* and the option is in force (RocksDB writes the options it runs with) */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -q 'memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.3' %s/OPTIONS-*",
             dir);
    cr_assert_eq(system(cmd), 0, "the OPTIONS file of %s names the hint's prefix extractor", dir);
    snprintf(cmd, sizeof cmd,
             "grep -q '^ *bottommost_compression=kZSTD' %s/OPTIONS-* && grep -q '^ *compression=kLZ4Compression' "
             "%s/OPTIONS-*",
             dir, dir);
    cr_assert_eq(system(cmd), 0, "LZ4, and zstd at the bottommost level");
    remove_dir(dir);
    cx_buf_free(&k);
    cx_buf_free(&v);
}
