/*
 * test_changelog.c — the changelog record format (which store keys are mirrored and how their
 * records are keyed) and restore: applying the records mirrored from a pipeline's flush batches, in
 * order, to an empty in-memory store rebuilds the same profiles, timer index, metadata and
 * aggregates as the store the pipeline wrote; a warm restart that applies only the tail over a
 * restored head gives the same; malformed records are refused. The Kafka reading loop
 * (cx_changelog_restore) is covered by tests/system/test_restore.py.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changelog.h"
#include "config.h"
#include "pipeline.h"
#include "profile.h"
#include "store.h"

/* ---------- record format ---------- */

static bool key_of(const void *store_key, size_t kl, uint16_t *part, cx_buf_t *out) {
    return cx_changelog_key(store_key, kl, part, out);
}

Test(changelog, profile_key_becomes_the_customer_id) {
    cx_buf_t k = CX_BUF_INIT, out = CX_BUF_INIT;
    cr_assert_eq(cx_store_key(&k, 0x0102, CX_KEY_PROFILE, "cust-7", 6), CX_OK);
    uint16_t part = 0;
    cr_assert(key_of(k.data, k.len, &part, &out));
    cr_assert_eq(part, 0x0102);
    cr_assert_eq(out.len, 6);
    cr_assert_eq(memcmp(out.data, "cust-7", 6), 0);
    cx_buf_free(&k);
    cx_buf_free(&out);
}

Test(changelog, meta_and_aggregate_keys_are_prefixed_with_zero_and_tag) {
    cx_buf_t k = CX_BUF_INIT, out = CX_BUF_INIT;
    uint16_t part = 0;
    cr_assert_eq(cx_store_key(&k, 3, CX_KEY_META, "wm", 2), CX_OK);
    cr_assert(key_of(k.data, k.len, &part, &out));
    cr_assert_eq(part, 3);
    const uint8_t meta[] = {CX_CHANGELOG_INTERNAL, CX_KEY_META, 'w', 'm'};
    cr_assert_eq(out.len, sizeof meta);
    cr_assert_eq(memcmp(out.data, meta, sizeof meta), 0);

    const uint8_t rest[] = {0x00, 0xff, 'c', 'x'}; /* binary aggregate keys pass unchanged */
    cr_assert_eq(cx_store_key(&k, 1023, CX_KEY_AGG, rest, sizeof rest), CX_OK);
    cr_assert(key_of(k.data, k.len, &part, &out));
    cr_assert_eq(part, 1023);
    const uint8_t agg[] = {CX_CHANGELOG_INTERNAL, CX_KEY_AGG, 0x00, 0xff, 'c', 'x'};
    cr_assert_eq(out.len, sizeof agg);
    cr_assert_eq(memcmp(out.data, agg, sizeof agg), 0);
    cx_buf_free(&k);
    cx_buf_free(&out);
}

Test(changelog, timer_index_offsets_checkpoint_and_malformed_keys_are_not_mirrored) {
    cx_buf_t k = CX_BUF_INIT, out = CX_BUF_INIT;
    uint16_t part = 0;
    cr_assert_eq(cx_store_timer_key(&k, 0, INT64_C(1700000000000), "c1"), CX_OK);
    cr_assert_not(key_of(k.data, k.len, &part, &out));
    const uint8_t input = 1;
    cr_assert_eq(cx_store_key(&k, 0, CX_KEY_OFFSET, &input, 1), CX_OK);
    cr_assert_not(key_of(k.data, k.len, &part, &out));
    cr_assert_eq(cx_store_key(&k, 0, CX_KEY_META, "c", 1), CX_OK); /* the local checkpoint */
    cr_assert_not(key_of(k.data, k.len, &part, &out));
    cr_assert_eq(cx_store_key(&k, 0, CX_KEY_PROFILE, "", 0), CX_OK); /* empty customer id */
    cr_assert_not(key_of(k.data, k.len, &part, &out));
    const uint8_t shortkey[] = {0, 0};
    cr_assert_not(key_of(shortkey, sizeof shortkey, &part, &out));
    cx_buf_free(&k);
    cx_buf_free(&out);
}

/* ---------- a log of mirrored records ---------- */

typedef struct rec {
    uint16_t part;
    uint8_t *key, *val; /* val NULL: tombstone */
    size_t kl, vl;
} rec_t;

typedef struct clog {
    rec_t *r;
    size_t n, cap;
} clog_t;

static cx_err_t produce(void *opaque, uint16_t part, const void *key, size_t kl, const void *val, size_t vl) {
    clog_t *l = opaque;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->r = realloc(l->r, l->cap * sizeof *l->r);
        cr_assert(l->r);
    }
    rec_t *r = &l->r[l->n++];
    r->part = part;
    r->kl = kl;
    r->key = malloc(kl ? kl : 1);
    memcpy(r->key, key, kl);
    r->vl = vl;
    r->val = NULL;
    if (val) {
        r->val = malloc(vl ? vl : 1);
        memcpy(r->val, val, vl);
    }
    return CX_OK;
}

static void clog_free(clog_t *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->r[i].key);
        free(l->r[i].val);
    }
    free(l->r);
}

/* When set, mirror_hook also keeps every flush batch's own operations (store keys; part = the
 * flush's number) and where each flush's records start in the log. */
#define MAX_FLUSHES 64
static clog_t *raw_ops;
static size_t flush_start[MAX_FLUSHES], n_flushes;

static void keep_raw(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    clog_t *l = opaque;
    (void)produce(l, (uint16_t)n_flushes, k, kl, v, vl);
}

/* Flush hook: mirror the batch, as the runner does, then let the pipeline write it. */
static cx_err_t mirror_hook(void *opaque, cx_store_batch_t *batch, char *errstr, size_t n) {
    (void)errstr, (void)n;
    if (raw_ops) {
        cr_assert_lt(n_flushes, MAX_FLUSHES);
        flush_start[n_flushes] = ((clog_t *)opaque)->n;
        cx_store_batch_each(batch, keep_raw, raw_ops);
        n_flushes++;
    }
    cx_buf_t scratch = CX_BUF_INIT;
    uint64_t records = 0;
    cx_err_t rc = cx_changelog_mirror(batch, &scratch, produce, opaque, &records);
    cx_buf_free(&scratch);
    return rc;
}

static cx_err_t null_emit(void *o, cx_record_kind_t k, const char *key, const void *rec) {
    (void)o, (void)k, (void)key, (void)rec;
    return CX_OK;
}

static cx_store_t *mem_store(void) {
    char err[256];
    cx_store_opts_t so = {.dir = NULL};
    cx_store_t *st = cx_store_open(&so, err, sizeof err);
    cr_assert(st, "%s", err);
    return st;
}

#define T0    INT64_C(1700000000000)
#define DAY   INT64_C(86400000)
#define PARTS 2

typedef struct fed {
    cx_config_t *cfg;
    cx_store_t *store;
    cx_pipeline_t *pl;
    clog_t log;
    char err[256];
} fed_t;

static void advance(fed_t *f, uint16_t part, int64_t wm) {
    bool more = true;
    while (more) {
        cr_assert_eq(cx_pipeline_advance(f->pl, part, wm, &more, f->err, sizeof f->err), CX_OK, "%s", f->err);
        if (cx_pipeline_needs_flush(f->pl))
            cr_assert_eq(cx_pipeline_flush(f->pl, -1, f->err, sizeof f->err), CX_OK, "%s", f->err);
    }
}

static void event(fed_t *f, uint16_t part, cx_event_type_t type, const char *cid, int seq, int64_t ts) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    snprintf(ev.event_id, sizeof ev.event_id, "e%d", seq);
    snprintf(ev.customer_id, sizeof ev.customer_id, "%s", cid);
    ev.ts_ms = ts;
    if (type == CX_EV_PURCHASE) {
        ev.u.purchase.kind = seq % 2 ? CX_PK_RENTAL : CX_PK_PURCHASE;
        ev.u.purchase.amount_minor = 100 + 37 * seq;
        memcpy(ev.u.purchase.currency, "EUR", 4);
    } else {
        snprintf(ev.u.play.title_id, sizeof ev.u.play.title_id, "t%d", seq % 5);
        ev.u.play.seconds_watched = 60 * (seq % 90);
    }
    advance(f, part, ts - f->cfg->watermark_lateness_ms);
    cr_assert_eq(cx_pipeline_event(f->pl, part, &ev, -1, f->err, sizeof f->err), CX_OK, "%s", f->err);
}

/* A pipeline over two partitions fed ~60 days of purchases and plays for 40 customers, flushed
 * every few days (so profiles are rewritten and timers move), then advanced far enough for
 * churn-type timers to fire. Every flush batch is mirrored into f->log. */
static void feed(fed_t *f) {
    memset(f, 0, sizeof *f);
    f->cfg = cx_config_new();
    f->store = mem_store();
    cx_sink_t sink = {NULL, null_emit};
    f->pl = cx_pipeline_new(f->cfg, f->store, &sink, f->err, sizeof f->err);
    cr_assert(f->pl, "%s", f->err);
    cx_pipeline_set_flush_hook(f->pl, mirror_hook, &f->log);
    for (uint16_t p = 0; p < PARTS; p++)
        cr_assert_eq(cx_pipeline_assign(f->pl, p, NULL, f->err, sizeof f->err), CX_OK, "%s", f->err);
    int seq = 0;
    for (int day = 0; day < 60; day++) {
        for (int c = 0; c < 40; c++) {
            if ((c * 7 + day) % (c % 5 + 2)) continue; /* each customer has its own rhythm */
            if (c >= 30 && day > 20) continue;         /* a few go quiet: their timers fire */
            char cid[16];
            snprintf(cid, sizeof cid, "c%02d", c);
            uint16_t part = (uint16_t)(c % PARTS);
            int64_t ts = T0 + day * DAY + c * 60000;
            event(f, part, (seq % 3) ? CX_EV_PLAY : CX_EV_PURCHASE, cid, seq, ts);
            seq++;
        }
        if (day % 4 == 3) cr_assert_eq(cx_pipeline_flush(f->pl, -1, f->err, sizeof f->err), CX_OK, "%s", f->err);
    }
    for (uint16_t p = 0; p < PARTS; p++)
        advance(f, p, T0 + 120 * DAY);
    cr_assert_eq(cx_pipeline_flush(f->pl, -1, f->err, sizeof f->err), CX_OK, "%s", f->err);
    cr_assert_gt(f->log.n, 0);
    cr_assert_gt(cx_pipeline_stats(f->pl).timers_fired, 0);
}

static void fed_free(fed_t *f) {
    cx_pipeline_destroy(f->pl);
    cx_store_close(f->store);
    cx_config_destroy(f->cfg);
    clog_free(&f->log);
}

/* ---------- comparing stores ---------- */

typedef struct dump {
    cx_buf_t text; /* one line per key: hex key = hex value */
    size_t profiles, timers;
} dump_t;

static void hex(cx_buf_t *b, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        cx_buf_appendf(b, "%02x", p[i]);
}

static bool dump_cb(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    dump_t *d = opaque;
    const uint8_t *key = k;
    if (kl >= 3 && key[2] == CX_KEY_OFFSET) return true;                /* input offsets: not mirrored */
    if (kl == 4 && key[2] == CX_KEY_META && key[3] == 'c') return true; /* the local checkpoint */
    if (kl >= 3 && key[2] == CX_KEY_PROFILE) d->profiles++;
    if (kl >= 3 && key[2] == CX_KEY_TIMER) d->timers++;
    hex(&d->text, key, kl);
    cx_buf_append(&d->text, " = ", 3);
    hex(&d->text, v, vl);
    cx_buf_putc(&d->text, '\n');
    return true;
}

static void dump(cx_store_t *s, dump_t *d) {
    char err[256];
    memset(d, 0, sizeof *d);
    const uint8_t from[] = {0x00}, to[] = {0xff, 0xff, 0xff};
    cr_assert_eq(cx_store_scan(s, from, sizeof from, to, sizeof to, dump_cb, d, err, sizeof err), CX_OK, "%s", err);
    cx_buf_putc(&d->text, 0);
}

static void expect_same(cx_store_t *want, cx_store_t *got) {
    dump_t a, b;
    dump(want, &a);
    dump(got, &b);
    cr_assert_gt(a.profiles, 0);
    cr_assert_gt(a.timers, 0);
    cr_assert_eq(b.profiles, a.profiles);
    cr_assert_eq(b.timers, a.timers);
    cr_assert_str_eq((char *)b.text.data, (char *)a.text.data);
    cx_buf_free(&a.text);
    cx_buf_free(&b.text);
}

/* Applies log records [from, to) of every partition to `store`, then the checkpoint `to`. */
static void apply(cx_store_t *store, const clog_t *log, size_t from, size_t to) {
    char err[256];
    for (uint16_t p = 0; p < PARTS; p++) {
        cx_restorer_t *r = cx_restorer_new(store, p);
        cr_assert(r);
        uint64_t n = 0;
        for (size_t i = from; i < to; i++) {
            const rec_t *rec = &log->r[i];
            if (rec->part != p) continue;
            cr_assert_eq(cx_restorer_apply(r, rec->key, rec->kl, rec->val, rec->vl, err, sizeof err), CX_OK, "%s", err);
            n++;
        }
        cr_assert_eq(cx_restorer_records(r), n);
        cr_assert_eq(cx_restorer_finish(r, (int64_t)to, err, sizeof err), CX_OK, "%s", err);
        cx_restorer_destroy(r);
    }
}

/* ---------- restore ---------- */

Test(changelog, applying_the_mirrored_flushes_rebuilds_profiles_and_timer_index) {
    fed_t f;
    feed(&f);
    cx_store_t *restored = mem_store();
    apply(restored, &f.log, 0, f.log.n);
    expect_same(f.store, restored);
    char err[256];
    for (uint16_t p = 0; p < PARTS; p++) {
        int64_t ck = -2;
        cr_assert_eq(cx_changelog_checkpoint_get(restored, p, &ck, err, sizeof err), CX_OK, "%s", err);
        cr_assert_eq(ck, (int64_t)f.log.n);
    }
    cx_store_close(restored);
    fed_free(&f);
}

Test(changelog, tail_applied_over_a_restored_head_replaces_stale_timer_keys) {
    fed_t f;
    feed(&f);
    cx_store_t *restored = mem_store();
    /* warm restart: the head is already local (read back from RocksDB, not from the pending batch) */
    apply(restored, &f.log, 0, f.log.n / 2);
    apply(restored, &f.log, f.log.n / 2, f.log.n);
    expect_same(f.store, restored);
    cx_store_close(restored);
    fed_free(&f);
}

/* A crash between two chunks of a flush's write (cx_store_write: a batch goes in chunks, each atomic,
 * not the whole) leaves any prefix of the flush's operations in the store and the checkpoint of the
 * flush before. The restore from that checkpoint (the whole flush is in the changelog first) gives
 * the store the pipeline wrote: timer index keys precede the profiles in a flush, so a profile
 * already written always has its index key, and the restore moves the keys of the others. */
Test(changelog, a_prefix_of_a_flush_written_before_a_crash_is_completed_by_the_restore) {
    clog_t raw = {0};
    raw_ops = &raw;
    n_flushes = 0;
    fed_t f;
    feed(&f);
    raw_ops = NULL;
    cr_assert_gt(n_flushes, 4);
    char err[256];
    size_t tried = 0;
    for (size_t k = 1; k < n_flushes; k += 3) {
        size_t first = 0, end = 0; /* flush k's operations: raw.r[first..end) */
        while (first < raw.n && raw.r[first].part < k)
            first++;
        for (end = first; end < raw.n && raw.r[end].part == k; end++)
            ;
        for (int cut = 1; cut <= 3 && end > first; cut++) {
            size_t upto = first + (end - first) * (size_t)cut / 4;
            cx_store_t *s = mem_store();
            apply(s, &f.log, 0, flush_start[k]); /* the state and checkpoint before flush k */
            cx_store_batch_t *b = cx_store_batch_new();
            for (size_t i = first; i < upto; i++)
                if (raw.r[i].val)
                    cx_store_batch_put(b, raw.r[i].key, raw.r[i].kl, raw.r[i].val, raw.r[i].vl);
                else
                    cx_store_batch_delete(b, raw.r[i].key, raw.r[i].kl);
            cr_assert_eq(cx_store_write(s, b, err, sizeof err), CX_OK, "%s", err);
            cx_store_batch_destroy(b);
            apply(s, &f.log, flush_start[k], f.log.n); /* the next start restores the tail */
            expect_same(f.store, s);
            cx_store_close(s);
            tried++;
        }
    }
    cr_assert_gt(tried, 6);
    clog_free(&raw);
    fed_free(&f);
}

Test(changelog, restore_without_checkpoint_has_none_stored) {
    cx_store_t *s = mem_store();
    char err[256];
    int64_t ck = 0;
    cr_assert_eq(cx_changelog_checkpoint_get(s, 5, &ck, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(ck, -1);
    cx_restorer_t *r = cx_restorer_new(s, 5);
    cr_assert_eq(cx_restorer_finish(r, 0, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(cx_changelog_checkpoint_get(s, 5, &ck, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(ck, 0);
    cx_restorer_destroy(r);
    cx_store_close(s);
}

Test(changelog, profile_tombstone_removes_profile_and_its_timer_key) {
    fed_t f;
    feed(&f);
    /* the last mirrored version of some profile with a due timer */
    char err[256];
    const rec_t *last = NULL;
    cx_profile_t prof;
    for (size_t i = f.log.n; i-- > 0 && !last;) {
        const rec_t *rec = &f.log.r[i];
        if (rec->key[0] == CX_CHANGELOG_INTERNAL || !rec->val) continue;
        char cid[CX_ID_MAX + 1];
        memcpy(cid, rec->key, rec->kl);
        cid[rec->kl] = 0;
        cx_profile_init(&prof, cid);
        cr_assert_eq(cx_profile_decode(&prof, cid, rec->val, rec->vl, err, sizeof err), CX_OK, "%s", err);
        if (prof.index_due_ms)
            last = rec;
        else
            cx_profile_clear(&prof);
    }
    cr_assert(last, "no profile with a timer in the log");
    cx_store_t *s = mem_store();
    cx_restorer_t *r = cx_restorer_new(s, last->part);
    cr_assert_eq(cx_restorer_apply(r, last->key, last->kl, last->val, last->vl, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(cx_restorer_finish(r, 1, err, sizeof err), CX_OK, "%s", err);
    dump_t d;
    dump(s, &d);
    cr_assert_eq(d.profiles, 1);
    cr_assert_eq(d.timers, 1);
    cx_buf_free(&d.text);
    cx_buf_t tk = CX_BUF_INIT, v = CX_BUF_INIT;
    bool found = false;
    cr_assert_eq(cx_store_timer_key(&tk, last->part, prof.index_due_ms, cx_sid_str(&prof.customer_id)), CX_OK);
    cr_assert_eq(cx_store_get(s, tk.data, tk.len, &v, &found, err, sizeof err), CX_OK, "%s", err);
    cr_assert(found, "the timer index key is derived from index_due_ms");

    cr_assert_eq(cx_restorer_apply(r, last->key, last->kl, NULL, 0, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(cx_restorer_finish(r, 2, err, sizeof err), CX_OK, "%s", err);
    dump(s, &d);
    cr_assert_eq(d.profiles, 0);
    cr_assert_eq(d.timers, 0);
    cx_buf_free(&d.text);
    cx_buf_free(&tk);
    cx_buf_free(&v);
    cx_profile_clear(&prof);
    cx_restorer_destroy(r);
    cx_store_close(s);
    fed_free(&f);
}

Test(changelog, malformed_records_are_refused) {
    cx_store_t *s = mem_store();
    cx_restorer_t *r = cx_restorer_new(s, 0);
    char err[256];
    cr_assert_eq(cx_restorer_apply(r, "", 0, "x", 1, err, sizeof err), CX_ERR_STATE);
    const uint8_t unknown[] = {CX_CHANGELOG_INTERNAL, 'Z', 'k'};
    cr_assert_eq(cx_restorer_apply(r, unknown, sizeof unknown, "x", 1, err, sizeof err), CX_ERR_STATE);
    const uint8_t lone[] = {CX_CHANGELOG_INTERNAL};
    cr_assert_eq(cx_restorer_apply(r, lone, sizeof lone, "x", 1, err, sizeof err), CX_ERR_STATE);
    char longid[CX_ID_MAX + 2];
    memset(longid, 'a', sizeof longid);
    cr_assert_eq(cx_restorer_apply(r, longid, sizeof longid, "x", 1, err, sizeof err), CX_ERR_STATE);
    cr_assert_neq(cx_restorer_apply(r, "c1", 2, "\xff\xff\xff", 3, err, sizeof err), CX_OK); /* not a profile */
    cr_assert_eq(cx_restorer_records(r), 0);
    /* a checkpoint record (never mirrored) is ignored, not applied */
    const uint8_t ck[] = {CX_CHANGELOG_INTERNAL, CX_KEY_META, 'c'};
    const uint8_t val[8] = {42};
    cr_assert_eq(cx_restorer_apply(r, ck, sizeof ck, val, sizeof val, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(cx_restorer_finish(r, 7, err, sizeof err), CX_OK, "%s", err);
    int64_t next = 0;
    cr_assert_eq(cx_changelog_checkpoint_get(s, 0, &next, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(next, 7);
    cx_restorer_destroy(r);
    cx_store_close(s);
}
