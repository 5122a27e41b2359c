/*
 * test_cache.c — the write-back profile cache over an in-memory store: hits and misses, only clean
 * entries are evicted (least recently used first), the dirty bound, and a flush that writes the
 * profile with its timer-index key changes in one batch.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cache.h"

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
TestSuite(cache, .init = setup, .fini = teardown);

static cx_cache_entry_t *get(cx_cache_t *c, uint16_t part, const char *cid, bool create) {
    cx_cache_entry_t *e = NULL;
    cr_assert_eq(cx_cache_get(c, part, cid, create, &e, err, sizeof err), CX_OK, "%s", err);
    return e;
}

static void flush(cx_cache_t *c, int part) {
    cx_store_batch_t *b = cx_store_batch_new();
    cr_assert_eq(cx_cache_flush(c, part, b, NULL, NULL), CX_OK);
    cr_assert_eq(cx_store_write(st, b, err, sizeof err), CX_OK, "%s", err);
    cx_store_batch_destroy(b);
}

static bool in_store(uint16_t part, const char *cid) {
    cx_buf_t k = CX_BUF_INIT, v = CX_BUF_INIT;
    bool found = false;
    cx_store_key(&k, part, CX_KEY_PROFILE, cid, strlen(cid));
    cr_assert_eq(cx_store_get(st, k.data, k.len, &v, &found, err, sizeof err), CX_OK);
    cx_buf_free(&k);
    cx_buf_free(&v);
    return found;
}

typedef struct timer_list {
    char s[16][48];
    size_t n;
} timer_list_t;

static bool collect_timer(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    timer_list_t *t = opaque;
    uint16_t part;
    int64_t due;
    const char *cid;
    size_t cl;
    cr_assert(cx_store_timer_key_parse(k, kl, &part, &due, &cid, &cl));
    snprintf(t->s[t->n++], sizeof t->s[0], "%u/%lld/%.*s", part, (long long)due, (int)cl, cid);
    return true;
}

static timer_list_t timers(uint16_t part) {
    timer_list_t t = {0};
    cr_assert_eq(cx_store_scan_tag(st, part, CX_KEY_TIMER, collect_timer, &t, err, sizeof err), CX_OK);
    return t;
}

Test(cache, miss_then_hit_and_absent_without_create_is_null) {
    cx_cache_t *c = cx_cache_new(st, 10, 1000);
    cr_assert_null(get(c, 0, "a", false), "absent and not created");
    cx_cache_entry_t *e = get(c, 0, "a", true);
    cr_assert_not_null(e);
    cr_assert_str_eq(cx_sid_str(&e->prof->customer_id), "a");
    cr_assert_eq(e->prof->segment, -1);
    cr_assert_not(e->dirty, "a fresh profile is not dirty until marked");
    cr_assert_eq(get(c, 0, "a", false), e);
    cr_assert_null(get(c, 1, "a", false), "the same id in another partition is another customer");
    cx_cache_stats_t s = cx_cache_stats(c);
    cr_assert_eq(s.hits, 1u);
    cr_assert_eq(s.misses, 3u);
    cr_assert_eq(s.loads_found, 0u);
    cr_assert_eq(s.entries, 1u);
    cx_cache_destroy(c);
    cx_cache_destroy(NULL);
}

Test(cache, only_clean_entries_are_evicted_least_recent_first) {
    cx_cache_t *c = cx_cache_new(st, 2, 1000);
    cx_cache_entry_t *a = get(c, 0, "a", true);
    a->prof->purchases_total = 1;
    cx_cache_mark_dirty(c, a);
    cx_cache_entry_t *b = get(c, 0, "b", true);
    b->prof->purchases_total = 2;
    cx_cache_mark_dirty(c, b);
    cr_assert(cx_cache_needs_flush(c), "two dirty entries reach the bound of 2");
    cx_cache_entry_t *d = get(c, 0, "d", true);
    d->prof->purchases_total = 4;
    cx_cache_mark_dirty(c, d);
    cx_cache_stats_t s = cx_cache_stats(c);
    cr_assert_eq(s.entries, 3u, "dirty entries are never evicted, even above the bound");
    cr_assert_eq(s.dirty, 3u);
    cr_assert_eq(s.evictions, 0u);
    cr_assert_eq(get(c, 0, "a", false)->prof->purchases_total, 1);
    flush(c, -1);
    s = cx_cache_stats(c);
    cr_assert_eq(s.dirty, 0u);
    cr_assert_eq(s.entries, 2u, "once clean, the cache shrinks to its bound");
    cr_assert_eq(s.evictions, 1u);
    cr_assert_eq(s.flushed, 3u);
    cr_assert(in_store(0, "a") && in_store(0, "b") && in_store(0, "d"));
    /* after the flush the LRU order is d, b, a (flush pushes each to the front in dirty-list
     * order, newest dirty first) — whichever went, it is back with its data from the store */
    cx_cache_stats_t before = cx_cache_stats(c);
    int64_t totals = 0;
    const char *ids[] = {"a", "b", "d"};
    for (int i = 0; i < 3; i++)
        totals += get(c, 0, ids[i], false)->prof->purchases_total;
    cr_assert_eq(totals, 7);
    s = cx_cache_stats(c);
    cr_assert_geq(s.loads_found, before.loads_found + 1, "the evicted one was loaded again");
    cx_cache_destroy(c);
}

Test(cache, a_recent_hit_protects_an_entry_from_eviction) {
    cx_cache_t *c = cx_cache_new(st, 2, 1000);
    /* store three profiles, then read them clean */
    const char *ids[] = {"x", "y", "z"};
    for (int i = 0; i < 3; i++) {
        cx_cache_entry_t *e = get(c, 0, ids[i], true);
        e->prof->plays_total = i + 1;
        cx_cache_mark_dirty(c, e);
    }
    flush(c, -1);
    cx_cache_t *c2 = cx_cache_new(st, 2, 1000);
    get(c2, 0, "x", false);
    get(c2, 0, "y", false);
    get(c2, 0, "x", false); /* x is now the most recent */
    get(c2, 0, "z", false); /* evicts y, the least recent */
    cx_cache_stats_t s = cx_cache_stats(c2);
    cr_assert_eq(s.evictions, 1u);
    cr_assert_eq(s.hits, 1u);
    uint64_t misses = s.misses;
    get(c2, 0, "x", false);
    cr_assert_eq(cx_cache_stats(c2).misses, misses, "x stayed");
    cx_cache_entry_t *y = get(c2, 0, "y", false);
    cr_assert_eq(cx_cache_stats(c2).misses, misses + 1, "y was evicted");
    cr_assert_eq(y->prof->plays_total, 2);
    cx_cache_destroy(c);
    cx_cache_destroy(c2);
}

/* on_put of cx_cache_flush: the earliest due put per partition (4 partitions) */
static cx_err_t min_put_cb(void *opaque, uint16_t part, int64_t due, const void *key, size_t klen) {
    int64_t *min_put = opaque;
    cr_assert_eq(cx_store_timer_key_due(key), due, "the key given is the timer key");
    cr_assert_gt(klen, 11u);
    if (part < 4 && due < min_put[part]) min_put[part] = due;
    return CX_OK;
}

Test(cache, flush_moves_the_timer_key_only_earlier) {
    cx_cache_t *c = cx_cache_new(st, 100, 1000);
    cx_cache_entry_t *e = get(c, 3, "cust", true);
    e->prof->timer_due_ms = 2 * 86400000;
    cx_cache_mark_dirty(c, e);
    cx_cache_entry_t *f = get(c, 3, "other", true);
    f->prof->purchases_total = 1; /* dirty without a timer */
    cx_cache_mark_dirty(c, f);
    cr_assert_eq(timers(3).n, 0u, "nothing before the flush");
    int64_t min_put[4] = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    cx_store_batch_t *b = cx_store_batch_new();
    cr_assert_eq(cx_cache_flush(c, 3, b, min_put_cb, min_put), CX_OK);
    cr_assert_eq(cx_store_write(st, b, err, sizeof err), CX_OK, "%s", err);
    cx_store_batch_destroy(b);
    cr_assert_eq(min_put[3], 2 * 86400000, "the earliest key put is reported per partition");
    cr_assert_eq(min_put[0], INT64_MAX);
    timer_list_t t = timers(3);
    cr_assert_eq(t.n, 1u);
    cr_assert_str_eq(t.s[0], "3/172800000/cust");
    cr_assert_eq(e->prof->index_due_ms, 2 * 86400000);
    /* the due moves earlier: the old key goes, the new one comes, in the same flush */
    e = get(c, 3, "cust", false);
    e->prof->timer_due_ms = 86400000;
    cx_cache_mark_dirty(c, e);
    flush(c, 3);
    t = timers(3);
    cr_assert_eq(t.n, 1u);
    cr_assert_str_eq(t.s[0], "3/86400000/cust");
    /* later, or none: the key stays where it is (the pipeline re-indexes when its scan gets there) */
    e = get(c, 3, "cust", false);
    e->prof->timer_due_ms = 5 * 86400000;
    cx_cache_mark_dirty(c, e);
    flush(c, 3);
    t = timers(3);
    cr_assert_eq(t.n, 1u);
    cr_assert_str_eq(t.s[0], "3/86400000/cust");
    cr_assert_eq(e->prof->index_due_ms, 86400000);
    e->prof->timer_due_ms = 0;
    cx_cache_mark_dirty(c, e);
    flush(c, 3);
    cr_assert_eq(timers(3).n, 1u);
    /* consumed by the scan (index_due_ms 0), then a new due: put without a delete */
    e->prof->index_due_ms = 0;
    e->prof->timer_due_ms = 7 * 86400000;
    cx_cache_mark_dirty(c, e);
    flush(c, 3);
    t = timers(3);
    cr_assert_eq(t.n, 2u, "the consumed key is the pipeline's to delete");
    cr_assert_str_eq(t.s[1], "3/604800000/cust");
    cx_cache_destroy(c);
}

Test(cache, a_loaded_profile_knows_its_indexed_timer) {
    cx_cache_t *c = cx_cache_new(st, 1, 1000);
    cx_cache_entry_t *e = get(c, 0, "t", true);
    e->prof->timer_due_ms = 5000;
    cx_cache_mark_dirty(c, e);
    flush(c, -1);
    get(c, 0, "u", true); /* evicts t */
    cr_assert_eq(cx_cache_stats(c).evictions, 1u);
    e = get(c, 0, "t", false); /* reloaded */
    cr_assert_eq(e->prof->index_due_ms, 5000);
    cr_assert(e->in_store);
    e->prof->timer_due_ms = 3000;
    cx_cache_mark_dirty(c, e);
    flush(c, -1);
    timer_list_t t = timers(0);
    cr_assert_eq(t.n, 1u, "the later key of the reloaded profile was deleted");
    cr_assert_str_eq(t.s[0], "0/3000/t");
    cx_cache_destroy(c);
}

Test(cache, flush_of_one_partition_leaves_the_others_dirty) {
    cx_cache_t *c = cx_cache_new(st, 100, 1000);
    cx_cache_mark_dirty(c, get(c, 0, "a", true));
    cx_cache_mark_dirty(c, get(c, 1, "b", true));
    flush(c, 1);
    cr_assert(in_store(1, "b"));
    cr_assert_not(in_store(0, "a"));
    cr_assert_eq(cx_cache_stats(c).dirty, 1u);
    int n = 0;
    void cb(void *o, cx_cache_entry_t *e);
    cx_cache_each_dirty(c, -1, cb, &n);
    cr_assert_eq(n, 1);
    cx_cache_destroy(c);
}

void cb(void *o, cx_cache_entry_t *e) {
    cr_assert_str_eq(cx_sid_str(&e->prof->customer_id), "a");
    (*(int *)o)++;
}

Test(cache, dropping_a_partition_forgets_unflushed_changes) {
    cx_cache_t *c = cx_cache_new(st, 100, 1000);
    cx_cache_entry_t *e = get(c, 2, "k", true);
    e->prof->purchases_total = 1;
    cx_cache_mark_dirty(c, e);
    flush(c, -1);
    e = get(c, 2, "k", false);
    e->prof->purchases_total = 99;
    cx_cache_mark_dirty(c, e);
    cx_cache_mark_dirty(c, get(c, 5, "other", true));
    cx_cache_drop_partition(c, 2);
    cx_cache_stats_t s = cx_cache_stats(c);
    cr_assert_eq(s.entries, 1u);
    cr_assert_eq(s.dirty, 1u);
    cr_assert_eq(get(c, 2, "k", false)->prof->purchases_total, 1, "back to the stored state");
    cx_cache_destroy(c);
}

Test(cache, many_customers_through_a_small_cache_keep_their_data) {
    cx_cache_t *c = cx_cache_new(st, 8, 1000);
    char id[16];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 100; i++) {
            snprintf(id, sizeof id, "c%03d", i);
            cx_cache_entry_t *e = get(c, (uint16_t)(i % 3), id, true);
            e->prof->plays_total++;
            cx_cache_mark_dirty(c, e);
            if (cx_cache_needs_flush(c)) flush(c, -1);
        }
    }
    flush(c, -1);
    cr_assert_leq(cx_cache_stats(c).entries, 8u);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "c%03d", i);
        cr_assert_eq(get(c, (uint16_t)(i % 3), id, false)->prof->plays_total, 3, "%s", id);
    }
    cx_cache_destroy(c);
}

/* The profile key's stored value, decoded. */
static cx_profile_t stored(uint16_t part, const char *cid) {
    cx_buf_t k = CX_BUF_INIT, v = CX_BUF_INIT;
    bool found = false;
    cx_store_key(&k, part, CX_KEY_PROFILE, cid, strlen(cid));
    cr_assert_eq(cx_store_get(st, k.data, k.len, &v, &found, err, sizeof err), CX_OK);
    cr_assert(found, "%s is in the store", cid);
    cx_profile_t p;
    cx_profile_init_lean(&p, cid);
    cr_assert_eq(cx_profile_decode(&p, cid, v.data, v.len, err, sizeof err), CX_OK, "%s", err);
    cx_buf_free(&k);
    cx_buf_free(&v);
    return p;
}

Test(cache, trim_encodes_beyond_max_decoded_and_a_dirty_encoded_entry_flushes_its_changes) {
    cx_cache_t *c = cx_cache_new(st, 100, 2);
    cx_cache_entry_t *a = get(c, 1, "a", true), *b = get(c, 1, "b", true), *d = get(c, 1, "d", true);
    a->prof->purchases_total = 11;
    a->prof->timer_due_ms = 9000; /* no key yet: the flush puts one from the encoded form */
    b->prof->purchases_total = 22;
    cx_cache_mark_dirty(c, a);
    cx_cache_mark_dirty(c, b);
    cx_cache_stats_t s = cx_cache_stats(c);
    cr_assert_eq(s.decoded, 3u, "a get never encodes another entry: its profile may be in use");
    cr_assert_eq(cx_cache_trim(c), CX_OK);
    s = cx_cache_stats(c);
    cr_assert_eq(s.decoded, 2u);
    cr_assert_eq(s.encodes, 1u);
    cr_assert_null(a->prof, "the least recently loaded goes first");
    cr_assert_not_null(a->enc);
    cr_assert_gt(s.encoded_bytes, 0u);
    cr_assert_eq(cx_cache_timer_due(a), 9000, "the timer due is known without decoding");
    cr_assert_not_null(b->prof);
    cr_assert_not_null(d->prof);
    /* flushed from its encoding: the profile, the new timer key, and index_due_ms recorded in it */
    flush(c, -1);
    cx_profile_t pa = stored(1, "a");
    cr_assert_eq(pa.purchases_total, 11);
    cr_assert_eq(pa.timer_due_ms, 9000);
    cr_assert_eq(pa.index_due_ms, 9000, "the encoding was rewritten with the key it put");
    cx_profile_clear(&pa);
    timer_list_t t = timers(1);
    cr_assert_eq(t.n, 1u);
    cr_assert_str_eq(t.s[0], "1/9000/a");
    cr_assert_eq(cx_cache_index_due(a), 9000);
    cr_assert_null(a->prof, "still encoded");
    /* used again: decoded from memory, not read from the store */
    uint64_t misses = cx_cache_stats(c).misses;
    cx_cache_entry_t *a2 = get(c, 1, "a", false);
    cr_assert_eq(a2, a);
    cr_assert_eq(cx_cache_stats(c).misses, misses);
    cr_assert_eq(cx_cache_stats(c).decodes, 1u);
    cr_assert_eq(a->prof->purchases_total, 11);
    cr_assert_eq(a->prof->index_due_ms, 9000);
    cr_assert_not_null(a->enc, "a clean entry keeps its encoding while decoded");
    /* changed: the encoding is stale and goes; a trim must encode it again */
    a->prof->purchases_total = 12;
    cx_cache_mark_dirty(c, a);
    cr_assert_null(a->enc);
    cr_assert_eq(cx_cache_trim(c), CX_OK);
    cr_assert_null(b->prof, "b, not used since the last trim, goes before a, used since");
    cr_assert_not_null(a->prof);
    get(c, 1, "e", true);
    get(c, 1, "f", true);
    cr_assert_eq(cx_cache_trim(c), CX_OK);
    cr_assert_eq(cx_cache_trim(c), CX_OK);
    cr_assert_leq(cx_cache_stats(c).decoded, 2u);
    cr_assert_null(a->prof, "a's second chance is used up");
    flush(c, -1);
    pa = stored(1, "a");
    cr_assert_eq(pa.purchases_total, 12, "the change made before the trim is what was flushed");
    cx_profile_clear(&pa);
    cx_cache_destroy(c);
}

Test(cache, a_corrupt_encoding_is_an_error_on_load_not_a_crash) {
    cx_cache_t *c = cx_cache_new(st, 100, 1);
    cx_cache_entry_t *a = get(c, 0, "a", true);
    get(c, 0, "b", true);
    cr_assert_eq(cx_cache_trim(c), CX_OK);
    cr_assert_null(a->prof);
    a->enc[0] = 0xff; /* an unknown encoding version */
    cx_cache_entry_t *e = NULL;
    err[0] = 0;
    cr_assert_neq(cx_cache_get(c, 0, "a", false, &e, err, sizeof err), CX_OK);
    cr_assert_null(e);
    cr_assert_neq(err[0], 0, "the error says what was wrong");
    cx_cache_destroy(c);
}

/* ---- the flush's batch order ---- */

typedef struct batch_ops {
    int kind[4096]; /* 0 delete, 1 timer put, 2 profile put */
    char key[4096][96];
    size_t len[4096], n;
} batch_ops_t;

static void collect_op(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    (void)vl;
    batch_ops_t *o = opaque;
    cr_assert_lt(o->n, 4096);
    cr_assert_leq(kl, sizeof o->key[0]);
    const uint8_t *kb = k;
    o->kind[o->n] = !v ? 0 : kb[2] == CX_KEY_TIMER ? 1 : 2;
    memcpy(o->key[o->n], k, kl);
    o->len[o->n++] = kl;
}

static int keycmp(const batch_ops_t *o, size_t i, size_t j) {
    size_t n = o->len[i] < o->len[j] ? o->len[i] : o->len[j];
    int c = memcmp(o->key[i], o->key[j], n);
    return c ? c : (o->len[i] > o->len[j]) - (o->len[i] < o->len[j]);
}

/* Marks 3 partitions x 10 id stems x 12 customers dirty (created when `create`), each with a due
 * from the table, shifted by `shift` places and less 0-2 ms; with `far`, one due of six does not fit
 * the sort's words. */
static void dirty_all(cx_cache_t *c, bool create, size_t shift, bool far) {
    const char *stems[] = {"a",
                           "ab",
                           "abc",
                           "customer-0000000",
                           "customer-00000000000000x",
                           "customer-00000000000000",
                           "customer-1",
                           "\xc3\xa9t\xc3\xa9",
                           "\xff",
                           "z"};
    int64_t dues[] = {86400000, 86400000, 2 * 86400000, 1, far ? INT64_C(1) << 48 : 3 * 86400000, 86400000 + 1};
    size_t made = 0;
    for (uint16_t part = 0; part < 3; part++)
        for (size_t s = 0; s < sizeof stems / sizeof *stems; s++)
            for (int v = 0; v < 12; v++) {
                char cid[64];
                snprintf(cid, sizeof cid, "%s%s%d", stems[s], v % 2 ? "" : "-", v);
                cx_cache_entry_t *e = get(c, (uint16_t)(2 - part), cid, create);
                cr_assert_not_null(e);
                e->prof->timer_due_ms = dues[(made++ + shift) % 6] - (create ? 0 : v % 3);
                cx_cache_mark_dirty(c, e);
            }
}

/* Ids that share long prefixes, differ only past 14 or 22 bytes, in length, in bytes above 0x7f;
 * dues equal, near and far (and one that does not fit the sort's words): the batch holds the
 * index keys that move away, then those that move in, then the profiles, each run in RocksDB's
 * byte order. */
static void three_runs_in_key_order(bool far) {
    cx_cache_t *c = cx_cache_new(st, 4096, 4096);
    dirty_all(c, true, 0, far);
    flush(c, -1); /* index keys now exist: the next flush moves some of them */
    dirty_all(c, false, 3, far);
    cx_store_batch_t *b = cx_store_batch_new();
    cr_assert_eq(cx_cache_flush(c, -1, b, NULL, NULL), CX_OK);
    batch_ops_t *o = calloc(1, sizeof *o);
    cr_assert_not_null(o);
    cx_store_batch_each(b, collect_op, o);
    size_t runs[3] = {0};
    for (size_t i = 0; i < o->n; i++) {
        runs[o->kind[i]]++;
        if (i == 0) continue;
        cr_assert_geq(o->kind[i], o->kind[i - 1], "op %zu: run %d after run %d", i, o->kind[i], o->kind[i - 1]);
        if (o->kind[i] == o->kind[i - 1]) cr_assert_gt(keycmp(o, i, i - 1), 0, "op %zu out of key order", i);
    }
    cr_assert_eq(runs[2], 3 * 10 * 12, "every dirty profile");
    cr_assert_gt(runs[0], 0, "no index key moved away");
    cr_assert_gt(runs[1], 0, "no index key moved in");
    free(o);
    cr_assert_eq(cx_store_write(st, b, err, sizeof err), CX_OK, "%s", err);
    cx_store_batch_destroy(b);
    cx_cache_destroy(c);
}

Test(cache, a_flush_writes_three_runs_each_in_key_order) {
    three_runs_in_key_order(true);
}

/* every due in the sort's words: all three runs go through the merge sort, none through qsort */
Test(cache, a_flush_writes_three_runs_each_in_key_order_when_every_due_fits_the_sort_words) {
    three_runs_in_key_order(false);
}

Test(cache, a_prefetch_hint_changes_nothing) {
    cx_cache_t *c = cx_cache_new(st, 100, 1);
    cx_cache_entry_t *a = get(c, 0, "a", true), *b = get(c, 0, "b", true);
    cr_assert_eq(cx_cache_trim(c), CX_OK);
    cr_assert_null(a->prof, "a is encoded, b decoded");
    cr_assert_not_null(b->prof);
    char longid[CX_ID_MAX + 8];
    memset(longid, 'x', sizeof longid);
    const struct {
        const char *id;
        size_t len;
    } ids[] = {{"a", 1}, {"b", 1}, {"absent", 6}, {"ab", 1}, {longid, sizeof longid}, {"", 0}};
    cx_cache_stats_t before = cx_cache_stats(c);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        for (int stage = 0; stage < 4; stage++)
            cx_cache_prefetch(c, ids[i].id, ids[i].len, stage);
    cx_cache_stats_t after = cx_cache_stats(c);
    cr_assert_eq(memcmp(&before, &after, sizeof before), 0, "no hit, miss, decode or encode is counted");
    cr_assert_null(a->prof, "a hint does not decode");
    cr_assert_not_null(b->prof);
    cr_assert_eq(get(c, 0, "b", false), b);
    cx_cache_destroy(c);
}
