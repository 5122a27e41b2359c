/*
 * changelog.c — mirroring flush batches to cx.changelog and restoring a partition from it
 * (changelog.h). A restored profile replaces the local one; its timer index key is recomputed from
 * index_due_ms, and the key of the profile it replaces (found in the records applied earlier in the
 * same batch, else in RocksDB) is deleted, so no stale index key survives a restore.
 */
#include "changelog.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "profile.h"

#define RESTORE_BATCH    16384 /* records per RocksDB write during a restore */
#define RESTORE_PROGRESS 50000 /* records between progress callbacks */
#define RESTORE_STALL_MS 60000 /* no record and no end of partition for this long: give up */

static const uint8_t CHECKPOINT_NAME[] = {'c'};

bool cx_changelog_key(const void *store_key, size_t kl, uint16_t *part, cx_buf_t *out) {
    const uint8_t *k = store_key;
    if (kl < 3) return false;
    uint8_t tag = k[2];
    *part = (uint16_t)((k[0] << 8) | k[1]);
    cx_buf_reset(out);
    switch (tag) {
    case CX_KEY_PROFILE:
        if (kl == 3 || kl - 3 > CX_ID_MAX) return false;
        return cx_buf_append(out, k + 3, kl - 3) == CX_OK;
    case CX_KEY_META:
        if (kl == 4 && k[3] == CHECKPOINT_NAME[0]) return false; /* local only */
        /* fall through */
    case CX_KEY_AGG: {
        uint8_t pre[2] = {CX_CHANGELOG_INTERNAL, tag};
        return cx_buf_append(out, pre, 2) == CX_OK && cx_buf_append(out, k + 3, kl - 3) == CX_OK;
    }
    default: return false; /* timer index: derived on restore */
    }
}

typedef struct mirror_ctx {
    cx_buf_t *scratch;
    cx_changelog_produce_cb produce;
    void *opaque;
    uint64_t records;
    cx_err_t rc;
} mirror_ctx_t;

static void mirror_cb(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
    mirror_ctx_t *m = opaque;
    uint16_t part;
    if (m->rc != CX_OK || !cx_changelog_key(k, kl, &part, m->scratch)) return;
    m->rc = m->produce(m->opaque, part, m->scratch->data, m->scratch->len, v, vl);
    if (m->rc == CX_OK) m->records++;
}

cx_err_t cx_changelog_mirror(const cx_store_batch_t *b, cx_buf_t *scratch, cx_changelog_produce_cb produce,
                             void *opaque, uint64_t *records) {
    mirror_ctx_t m = {scratch, produce, opaque, 0, CX_OK};
    cx_store_batch_each(b, mirror_cb, &m);
    if (records) *records = m.records;
    return m.rc;
}

static void checkpoint_key(uint8_t key[4], uint16_t part) {
    key[0] = (uint8_t)(part >> 8);
    key[1] = (uint8_t)part;
    key[2] = CX_KEY_META;
    key[3] = CHECKPOINT_NAME[0];
}

cx_err_t cx_changelog_checkpoint_get(cx_store_t *s, uint16_t part, int64_t *next_offset, char *errstr,
                                     size_t errstr_size) {
    uint8_t key[4];
    checkpoint_key(key, part);
    cx_buf_t v = CX_BUF_INIT;
    bool found = false;
    *next_offset = -1;
    cx_err_t rc = cx_store_get(s, key, sizeof key, &v, &found, errstr, errstr_size);
    if (rc == CX_OK && found) {
        if (v.len != 8) {
            cx_seterr(errstr, errstr_size, "partition %u: changelog checkpoint is corrupt", part);
            rc = CX_ERR_STATE;
        } else {
            uint64_t u = 0;
            for (int i = 7; i >= 0; i--)
                u = (u << 8) | v.data[i];
            *next_offset = (int64_t)u;
        }
    }
    cx_buf_free(&v);
    return rc;
}

void cx_changelog_checkpoint_put(cx_store_batch_t *b, uint16_t part, int64_t next_offset) {
    uint8_t key[4], val[8];
    checkpoint_key(key, part);
    for (int i = 0; i < 8; i++)
        val[i] = (uint8_t)((uint64_t)next_offset >> (8 * i));
    cx_store_batch_put(b, key, sizeof key, val, sizeof val);
}

/* ---------- restorer ---------- */

typedef struct due_slot {
    uint64_t hash; /* 0: empty */
    uint32_t cid_off, cid_len;
    int64_t due;
} due_slot_t;

struct cx_restorer {
    cx_store_t *store;
    uint16_t part;
    cx_store_batch_t *batch;
    size_t pending; /* records in batch */
    /* index_due_ms of the profiles put in the pending batch (they are not readable from RocksDB yet) */
    due_slot_t *slots;
    size_t n_slots;
    cx_buf_t cids;
    cx_profile_t prof;
    cx_buf_t key, val;
    uint64_t records;
};

cx_restorer_t *cx_restorer_new(cx_store_t *store, uint16_t part) {
    cx_restorer_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->store = store;
    r->part = part;
    r->n_slots = 2 * RESTORE_BATCH;
    r->batch = cx_store_batch_new();
    r->slots = calloc(r->n_slots, sizeof *r->slots);
    cx_profile_init_lean(&r->prof, "");
    if (!r->batch || !r->slots) {
        cx_restorer_destroy(r);
        return NULL;
    }
    return r;
}

void cx_restorer_destroy(cx_restorer_t *r) {
    if (!r) return;
    cx_store_batch_destroy(r->batch);
    free(r->slots);
    cx_buf_free(&r->cids);
    cx_profile_clear(&r->prof);
    cx_buf_free(&r->key);
    cx_buf_free(&r->val);
    free(r);
}

uint64_t cx_restorer_records(const cx_restorer_t *r) {
    return r->records;
}

static due_slot_t *slot_find(cx_restorer_t *r, const char *cid, size_t len, bool *found) {
    uint64_t h = cx_hash64(cid, len) | 1;
    size_t i = (size_t)(h % r->n_slots);
    for (;; i = (i + 1) % r->n_slots) {
        due_slot_t *s = &r->slots[i];
        if (!s->hash) {
            *found = false;
            s->hash = h; /* claimed by the caller */
            return s;
        }
        if (s->hash == h && s->cid_len == len && memcmp(r->cids.data + s->cid_off, cid, len) == 0) {
            *found = true;
            return s;
        }
    }
}

static cx_err_t write_pending(cx_restorer_t *r, char *errstr, size_t n) {
    cx_err_t rc = CX_OK;
    if (cx_store_batch_count(r->batch)) rc = cx_store_write(r->store, r->batch, errstr, n);
    cx_store_batch_clear(r->batch);
    memset(r->slots, 0, r->n_slots * sizeof *r->slots);
    cx_buf_reset(&r->cids);
    r->pending = 0;
    return rc;
}

/* The indexed due time of the customer's current profile: pending batch first, then RocksDB. */
static cx_err_t old_due(cx_restorer_t *r, const char *cid, size_t len, due_slot_t *s, bool in_batch, int64_t *due,
                        char *errstr, size_t n) {
    if (in_batch) {
        *due = s->due;
        return CX_OK;
    }
    *due = 0;
    bool found = false;
    cx_err_t rc = cx_store_key(&r->key, r->part, CX_KEY_PROFILE, cid, len);
    if (rc == CX_OK) rc = cx_store_get(r->store, r->key.data, r->key.len, &r->val, &found, errstr, n);
    if (rc != CX_OK || !found) return rc;
    char id[CX_ID_MAX + 1];
    memcpy(id, cid, len);
    id[len] = 0;
    if ((rc = cx_profile_decode(&r->prof, id, r->val.data, r->val.len, errstr, n)) != CX_OK) return rc;
    *due = r->prof.index_due_ms;
    return CX_OK;
}

cx_err_t cx_restorer_apply(cx_restorer_t *r, const void *key, size_t kl, const void *val, size_t vl, char *errstr,
                           size_t n) {
    const uint8_t *k = key;
    cx_err_t rc = CX_OK;
    if (kl == 0) {
        cx_seterr(errstr, n, "changelog record with an empty key");
        return CX_ERR_STATE;
    }
    if (k[0] == CX_CHANGELOG_INTERNAL) {
        if (kl < 2 || (k[1] != CX_KEY_META && k[1] != CX_KEY_AGG)) {
            cx_seterr(errstr, n, "changelog record with an unknown internal key (tag 0x%02x)", kl < 2 ? 0 : k[1]);
            return CX_ERR_STATE;
        }
        if (k[1] == CX_KEY_META && kl == 3 && k[2] == CHECKPOINT_NAME[0]) return CX_OK; /* never mirrored */
        if ((rc = cx_store_key(&r->key, r->part, (char)k[1], k + 2, kl - 2)) != CX_OK) return rc;
        if (val)
            cx_store_batch_put(r->batch, r->key.data, r->key.len, val, vl);
        else
            cx_store_batch_delete(r->batch, r->key.data, r->key.len);
    } else {
        if (kl > CX_ID_MAX) {
            cx_seterr(errstr, n, "changelog profile key of %zu bytes", kl);
            return CX_ERR_STATE;
        }
        char cid[CX_ID_MAX + 1];
        memcpy(cid, k, kl);
        cid[kl] = 0;
        bool in_batch;
        due_slot_t *s = slot_find(r, cid, kl, &in_batch);
        if (!in_batch) {
            s->cid_off = (uint32_t)r->cids.len;
            s->cid_len = (uint32_t)kl;
            if ((rc = cx_buf_append(&r->cids, cid, kl)) != CX_OK) return rc;
        }
        int64_t before = 0, after = 0;
        if ((rc = old_due(r, cid, kl, s, in_batch, &before, errstr, n)) != CX_OK) return rc;
        if (val) {
            if ((rc = cx_profile_decode(&r->prof, cid, val, vl, errstr, n)) != CX_OK) return rc;
            after = r->prof.index_due_ms;
        }
        s->due = after;
        if (before != after && before) {
            if ((rc = cx_store_timer_key(&r->key, r->part, before, cid)) != CX_OK) return rc;
            cx_store_batch_delete(r->batch, r->key.data, r->key.len);
        }
        if (before != after && after) {
            if ((rc = cx_store_timer_key(&r->key, r->part, after, cid)) != CX_OK) return rc;
            cx_store_batch_put(r->batch, r->key.data, r->key.len, "", 0);
        }
        if ((rc = cx_store_key(&r->key, r->part, CX_KEY_PROFILE, cid, kl)) != CX_OK) return rc;
        if (val)
            cx_store_batch_put(r->batch, r->key.data, r->key.len, val, vl);
        else
            cx_store_batch_delete(r->batch, r->key.data, r->key.len);
    }
    r->records++;
    if (++r->pending >= RESTORE_BATCH) rc = write_pending(r, errstr, n);
    return rc;
}

cx_err_t cx_restorer_finish(cx_restorer_t *r, int64_t next_offset, char *errstr, size_t n) {
    if (next_offset >= 0) cx_changelog_checkpoint_put(r->batch, r->part, next_offset);
    return write_pending(r, errstr, n);
}

/* ---------- reading from Kafka ---------- */

bool cx_changelog_foreign_group(const rd_kafka_message_t *m, const char *group, char *other, size_t other_size) {
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t vl = 0;
    if (rd_kafka_message_headers(m, &h) || !h || rd_kafka_header_get_last(h, CX_GROUP_HEADER, &v, &vl) || !v)
        return false;
    if (vl == strlen(group) && memcmp(v, group, vl) == 0) return false;
    if (other_size) {
        size_t k = vl < other_size - 1 ? vl : other_size - 1;
        memcpy(other, v, k);
        other[k] = 0;
    }
    return true;
}

cx_err_t cx_changelog_restore(rd_kafka_t *rk, const char *topic, const char *group, cx_store_t *store, uint16_t part,
                              int64_t from_offset, void (*progress)(void *opaque, const cx_restore_progress_t *pr),
                              void *opaque, cx_restore_progress_t *result, char *errstr, size_t n) {
    cx_restore_progress_t pr = {.part = part, .from = from_offset, .end = -1, .position = from_offset};
    cx_err_t rc = CX_OK;
    double t0 = cx_mono_s();
    cx_restorer_t *r = cx_restorer_new(store, part);
    if (!r) return CX_ERR_NOMEM;
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, part, &lo, &hi, 30000);
    if (err) {
        cx_seterr(errstr, n, "changelog %s[%u]: watermarks: %s", topic, part, rd_kafka_err2str(err));
        rc = CX_ERR_KAFKA;
        goto done;
    }
    pr.end = hi;
    if (from_offset < 0 || from_offset < lo) from_offset = lo; /* compacted or deleted head */
    pr.from = pr.position = from_offset;
    if (from_offset < hi) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, part)->offset = from_offset;
        err = rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
            cx_seterr(errstr, n, "changelog %s[%u]: assign: %s", topic, part, rd_kafka_err2str(err));
            rc = CX_ERR_KAFKA;
            goto done;
        }
        double last_seen = cx_mono_s();
        uint64_t next_report = RESTORE_PROGRESS;
        for (;;) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
            if (!m) {
                if ((cx_mono_s() - last_seen) * 1000 > RESTORE_STALL_MS) {
                    cx_seterr(errstr, n, "changelog %s[%u]: no progress for %d s at offset %" PRId64, topic, part,
                              RESTORE_STALL_MS / 1000, pr.position);
                    rc = CX_ERR_TIMEOUT;
                    break;
                }
                continue;
            }
            last_seen = cx_mono_s();
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (m->offset > pr.position) pr.position = m->offset; /* past control records */
                rd_kafka_message_destroy(m);
                break;
            }
            if (m->err) {
                cx_log(CX_LOG_WARN, "restore", "consume error partition=%u err=\"%s\"", part,
                       rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            char other[256];
            if (m->partition == part && cx_changelog_foreign_group(m, group, other, sizeof other)) {
                cx_seterr(errstr, n,
                          "changelog %s[%u] offset %" PRId64 " was written by group \"%s\", not \"%s\": each "
                          "application needs its own changelog (set topic.changelog and topic.partials)",
                          topic, part, m->offset, other, group);
                rc = CX_ERR_STATE;
            } else if (m->partition == part) {
                rc = cx_restorer_apply(r, m->key, m->key_len, m->payload, m->payload ? m->len : 0, errstr, n);
                pr.position = m->offset + 1;
                pr.records = cx_restorer_records(r);
            }
            rd_kafka_message_destroy(m);
            if (rc != CX_OK || pr.position >= hi) break; /* at the end seen when the restore began */
            if (progress && pr.records >= next_report) {
                next_report += RESTORE_PROGRESS;
                pr.seconds = cx_mono_s() - t0;
                progress(opaque, &pr);
            }
        }
        rd_kafka_assign(rk, NULL);
    }
    if (rc == CX_OK) rc = cx_restorer_finish(r, pr.position, errstr, n);
done:
    pr.records = cx_restorer_records(r);
    pr.seconds = cx_mono_s() - t0;
    if (progress) progress(opaque, &pr);
    if (result) *result = pr;
    cx_restorer_destroy(r);
    return rc;
}
